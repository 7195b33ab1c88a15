"""AuthService: users, lockout, constant work for unknown users, sessions, tokens, first run, demo users."""

from __future__ import annotations

import io
import logging
import os
import stat

import pytest

from plantlink.auth import (
    DEMO_USERS,
    AuthFailed,
    AuthService,
    InvalidRequest,
    LockedOut,
    UserNotFound,
    bootstrap_demo_users,
)
from plantlink.auth.passwords import Passwords
from plantlink.auth.service import FIRST_ADMIN_FILE
from plantlink.auth.settings import AuthSettings
from tests.auth.conftest import BACKENDS, FAST, Clock


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """Users, roles, tokens and sessions on SQLite and on PostgreSQL."""
    return str(request.param)

PW = "a-good-password-1"


def test_users_roles_disable_reset(service: AuthService) -> None:
    user, generated = service.create_user("Alice", {"windsor": "operator", "detroit": "viewer"}, "t", PW)
    assert (user.name, user.roles, user.disabled, generated) == (
        "alice", {"windsor": "operator", "detroit": "viewer"}, False, None)
    with pytest.raises(InvalidRequest, match="exists already"):
        service.create_user("alice", {}, "t", PW)
    with pytest.raises(InvalidRequest, match="invalid role 'boss'"):
        service.create_user("bob", {"windsor": "boss"}, "t", PW)
    with pytest.raises(InvalidRequest, match="invalid user name"):
        service.create_user("bad name", {}, "t", PW)
    with pytest.raises(UserNotFound):
        service.set_disabled("nobody", True, "t")
    assert service.set_roles("alice", {"*": "viewer"}, "t").roles == {"*": "viewer"}
    assert service.authenticate("alice", PW).name == "alice"
    service.set_disabled("alice", True, "t")
    with pytest.raises(AuthFailed):
        service.authenticate("alice", PW)
    service.set_disabled("alice", False, "t")
    new = service.reset_password("alice", "t")
    assert new is not None
    with pytest.raises(AuthFailed):
        service.authenticate("alice", PW)
    assert service.authenticate("alice", new).name == "alice"


def test_lockout_per_user_and_address_and_its_expiry(service: AuthService, clock: Clock) -> None:
    """The (user, address) pair backs off after its free failures; other addresses are not concerned; the
    block ends after the time it announced. (Policy details: tests/auth/test_throttle.py.)"""
    s = AuthSettings()
    service.create_user("alice", {"windsor": "viewer"}, "t", PW)
    for _ in range(s.pair_free_failures):
        with pytest.raises(AuthFailed):
            service.authenticate("alice", "wrong-password", "10.0.0.1")
    with pytest.raises(LockedOut) as exc:  # even the right password is refused now, from that address
        service.authenticate("alice", PW, "10.0.0.1")
    assert exc.value.retry_after == int(s.pair_backoff_s)
    assert service.authenticate("alice", PW, "10.0.0.2").name == "alice"
    clock.advance(s.pair_backoff_s - 1)
    with pytest.raises(LockedOut):
        service.authenticate("alice", PW, "10.0.0.1")
    clock.advance(1.5)
    assert service.authenticate("alice", PW, "10.0.0.1").name == "alice"


def test_an_address_spraying_names_is_slowed_not_locked(data_dir, clock: Clock) -> None:  # type: ignore[no-untyped-def]
    settings = AuthSettings(argon2_time_cost=1, argon2_memory_kib=1024, argon2_parallelism=1, address_slow_after=3)
    svc = AuthService.open(data_dir, settings=settings, clock=clock)
    svc.create_user("alice", {"windsor": "viewer"}, "t", PW)
    for name in ("u1", "u2", "u3"):  # different (unknown) users, same address
        with pytest.raises(AuthFailed):
            svc.authenticate(name, "whatever-pw", "192.0.2.9")
    with pytest.raises(LockedOut) as exc:
        svc.authenticate("alice", PW, "192.0.2.9")
    assert exc.value.retry_after == int(settings.address_slow_interval_s)
    assert svc.authenticate("alice", PW, "192.0.2.10").name == "alice"
    clock.advance(settings.address_slow_interval_s)
    assert svc.authenticate("alice", PW, "192.0.2.9").name == "alice"
    svc.close()


class CountingPasswords(Passwords):
    def __init__(self, settings: AuthSettings):
        super().__init__(settings)
        self.verified: list[str] = []

    def verify(self, stored_hash: str, password: str) -> bool:
        self.verified.append(stored_hash)
        return super().verify(stored_hash, password)


def test_unknown_and_disabled_users_cost_one_verification_each(service: AuthService) -> None:
    service.passwords = counting = CountingPasswords(FAST)
    service.create_user("alice", {"windsor": "viewer"}, "t", PW)
    service.create_user("bob", {"windsor": "viewer"}, "t", PW)
    service.set_disabled("bob", True, "t")
    errors = []
    for name, pw in (("nobody", PW), ("bad name!", PW), ("alice", "wrong-pw-123"), ("bob", PW)):
        with pytest.raises(AuthFailed) as exc:
            service.authenticate(name, pw)
        errors.append(str(exc.value))
    assert len(counting.verified) == 4  # no early return for the unknown, invalid or disabled user
    assert counting.verified[0] == counting.verified[1] == counting.dummy_hash
    assert len(set(errors)) == 1  # and the same message for all


def test_sessions_expire_idle_and_end_on_disable(service: AuthService, clock: Clock) -> None:
    service.create_user("alice", {"windsor": "operator"}, "t", PW)
    s = service.login("alice", PW, "127.0.0.1")
    assert s.secret not in repr(s) and s.csrf not in repr(s)
    p = service.session_principal(s.secret)
    assert p is not None and (p.name, p.roles, p.kind) == ("alice", {"windsor": "operator"}, "session")
    assert service.session_principal(s.secret + "x") is None
    assert service.session_principal("") is None
    other = s.csrf[:-1] + ("1" if s.csrf[-1] == "0" else "0")  # the last character changed, always
    assert service.check_csrf(s.secret, s.csrf) and not service.check_csrf(s.secret, other)
    assert not service.check_csrf(s.secret, None)
    # idle: each request within the idle time keeps it alive, until the absolute lifetime
    for _ in range(int(FAST.session_ttl_s // (FAST.session_idle_s / 2)) - 1):
        clock.advance(FAST.session_idle_s / 2)
        assert service.session_principal(s.secret) is not None
    clock.advance(FAST.session_idle_s / 2)
    assert service.session_principal(s.secret) is None  # 12 h after login
    s2 = service.login("alice", PW)
    clock.advance(FAST.session_idle_s + 1)
    assert service.session_principal(s2.secret) is None  # idle too long
    s3 = service.login("alice", PW)
    service.set_disabled("alice", True, "t")
    assert service.session_principal(s3.secret) is None
    service.set_disabled("alice", False, "t")
    s4 = service.login("alice", PW)
    service.logout(s4.secret, "alice")
    assert service.session_principal(s4.secret) is None


def test_token_scope_never_exceeds_the_user_or_creator(service: AuthService) -> None:
    service.create_user("eng", {"windsor": "engineer", "detroit": "viewer"}, "t", PW)
    with pytest.raises(InvalidRequest, match="exceeds what the user holds: detroit=operator"):
        service.create_token("eng", "script", {"detroit": "operator"}, "t")
    with pytest.raises(InvalidRequest, match=r"\*=viewer"):
        service.create_token("eng", "script", {"*": "viewer"}, "t")
    with pytest.raises(InvalidRequest, match="exceeds what the creator holds: windsor=engineer"):
        service.create_token("eng", "script", {"windsor": "engineer"}, "op", actor_roles={"windsor": "operator"})
    t = service.create_token("eng", "script", {"windsor": "operator"}, "t", days=7)
    p = service.token_principal(t.secret)
    assert p is not None and (p.name, p.roles, p.kind, p.token_id) == ("eng", {"windsor": "operator"}, "token",
                                                                       t.info.id)
    default = service.create_token("eng", "all mine", None, "t")
    assert default.info.roles == {"windsor": "engineer", "detroit": "viewer"}
    # the user's roles are lowered later: the token shrinks with them
    service.set_roles("eng", {"windsor": "viewer"}, "t")
    assert service.token_principal(t.secret).roles == {"windsor": "viewer"}  # type: ignore[union-attr]
    assert service.token_principal(default.secret).roles == {"windsor": "viewer"}  # type: ignore[union-attr]
    for days in (0, -1, 367):
        with pytest.raises(InvalidRequest, match="lifetime"):
            service.create_token("eng", "x", None, "t", days=days)


def test_token_expiry_revocation_last_used_and_forgeries(service: AuthService, clock: Clock) -> None:
    service.create_user("bot", {"windsor": "viewer"}, "t", PW)
    t = service.create_token("bot", "ci", None, "t", days=1)
    assert t.secret not in repr(t) and t.secret.startswith(f"plk_{t.info.id}_")
    assert service.tokens("bot")[0].last_used_us is None
    assert service.token_principal(t.secret) is not None
    assert service.tokens("bot")[0].last_used_us == int(clock() * 1e6)
    token_id, secret = t.info.id, t.secret.split("_", 2)[2]
    forged = [
        "", "plk_", "plk_zz", f"plk_{token_id}", f"plk_{token_id}_", f"plk_{token_id}_{secret}x",
        f"plk_{token_id}_{secret[:-1]}", f"plk_{'0' * 16}_{secret}", f"xyz_{token_id}_{secret}",
        f"plk_{token_id.upper()}_{secret}", "plk_" + "a" * 300, f"plk_{token_id}_{secret}\x00",
    ]
    assert [service.token_principal(f) for f in forged] == [None] * len(forged)
    clock.advance(86400 - 1)
    assert service.token_principal(t.secret) is not None
    clock.advance(1)
    assert service.token_principal(t.secret) is None  # expired
    t2 = service.create_token("bot", "ci2", None, "t")
    service.revoke_token(t2.info.id, "t")
    assert service.token_principal(t2.secret) is None
    assert service.tokens_by_id(t2.info.id).revoked_us == int(clock() * 1e6)
    t3 = service.create_token("bot", "ci3", None, "t")
    service.set_disabled("bot", True, "t")
    assert service.token_principal(t3.secret) is None
    with pytest.raises(InvalidRequest, match="no token"):
        service.revoke_token("0123456789abcdef", "t")


def test_first_run_admin_password_to_a_terminal_only(data_dir, clock: Clock) -> None:  # type: ignore[no-untyped-def]
    """On a terminal the password is shown once; anywhere else (a log file) only the path of a 0600 file that
    holds it."""
    main, side = os.openpty()
    svc = AuthService.open(data_dir, settings=FAST, clock=clock)
    try:
        with os.fdopen(side, "w", closefd=True) as tty:
            password = svc.ensure_admin(tty)
        shown = os.read(main, 65536).decode()
        assert password is not None and shown.count(password) == 1
        assert not (data_dir / "secrets" / FIRST_ADMIN_FILE).exists()
        assert svc.user("admin").roles == {"*": "admin"}
        assert svc.authenticate("admin", password).name == "admin"
        again = io.StringIO()
        assert svc.ensure_admin(again) is None and again.getvalue() == ""
    finally:
        os.close(main)
        svc.close()


def test_first_run_admin_password_not_into_a_log(service: AuthService, data_dir) -> None:  # type: ignore[no-untyped-def]
    log_file = io.StringIO()  # not a terminal
    password = service.ensure_admin(log_file)
    assert password is not None and password not in log_file.getvalue()
    secret = data_dir / "secrets" / FIRST_ADMIN_FILE
    assert str(secret) in log_file.getvalue()
    assert secret.read_text().strip() == password and stat.S_IMODE(secret.stat().st_mode) == 0o600
    assert service.authenticate("admin", password).name == "admin"


def test_demo_users(service: AuthService) -> None:
    assert bootstrap_demo_users(service) == list(DEMO_USERS)
    assert bootstrap_demo_users(service) == []
    for name, (roles, password) in DEMO_USERS.items():
        assert service.authenticate(name, password).roles == roles
    assert DEMO_USERS["detroit-operator"][0] == {"detroit": "operator"}
    assert service.ensure_admin(io.StringIO()) is None  # users exist: no first-run admin


def test_secrets_never_reach_logs_or_audit(service: AuthService, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    out = io.StringIO()
    admin_pw = service.ensure_admin(out)
    _, alice_pw = service.create_user("alice", {"windsor": "operator"}, "admin")
    with pytest.raises(AuthFailed):
        service.login("alice", "my-typo-password")
    s = service.login("alice", alice_pw)  # type: ignore[arg-type]
    t = service.create_token("alice", "script", None, "admin")
    reset = service.reset_password("alice", "admin")
    service.audit.record("test.secret", "alice", details={"password": "p4ss-in-details", "api_token": "tok-xyz",
                                                           "nested": [{"Secret": "deep-secret"}], "ok": 1})
    secrets_ = [admin_pw, alice_pw, "my-typo-password", s.secret, s.csrf, t.secret, t.secret.split("_", 2)[2],
                reset, "p4ss-in-details", "tok-xyz", "deep-secret"]
    exported = "".join(service.audit.export_csv())
    for secret in secrets_:
        assert secret and secret not in caplog.text and secret not in exported
    kinds = [r.kind for r in service.audit.query()]
    assert kinds == ["auth.user_created", "auth.user_created", "auth.login_failed", "auth.login",
                     "auth.token_created", "auth.password_reset", "test.secret"]
    assert next(service.audit.query(kind="test.secret")).details["ok"] == 1
