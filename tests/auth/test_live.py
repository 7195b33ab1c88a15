"""The re-check of live connections: ``plantlink.auth.live.check`` (verdicts from the store) and
``plantlink.auth.watch.SessionWatch`` (periodic re-check, in-process changes at once, verify before an action),
on a real SQLite store with a clock the test moves."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import sqlalchemy as sa

from plantlink.auth import AuthService, repo
from plantlink.auth.live import CHUNK, Credential, Ended, check, credential_of
from plantlink.auth.service import sha256_hex
from plantlink.auth.watch import SessionWatch
from plantlink.identity import Principal
from tests.auth.conftest import BACKENDS, FAST, Clock
from tests.waiting import wait_for


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """Sessions and tokens checked on SQLite and on PostgreSQL."""
    return str(request.param)

PW = "a-good-password-1"
US = 1_000_000


def session_cred(service: AuthService, name: str) -> tuple[Credential, str]:
    s = service.login(name, PW)
    return Credential("session", sha256_hex(s.secret), name), s.secret


def verdicts(service: AuthService, *creds: Credential, touch: bool = False) -> list[object]:
    got = check(service.engine, service.settings, creds, int(service.clock() * US), touch)
    return [got[c] for c in creds]


def test_credential_of_a_scope() -> None:
    p = Principal("alice", {"windsor": "operator"})
    cred, who = credential_of({"principal": p, "session_secret": "s3cret"})  # type: ignore[misc]
    assert (cred.kind, cred.key, cred.user, who) == ("session", sha256_hex("s3cret"), "alice", p)
    tok = Principal("bob", {"*": "viewer"}, kind="token", token_id="0123456789abcdef")
    assert credential_of({"principal": tok})[0] == Credential("token", "0123456789abcdef", "bob")  # type: ignore[index]
    assert credential_of({"principal": p})[0].kind == "fixed"  # type: ignore[index]  # other middleware's principal
    assert credential_of({}) is None and credential_of(None) is None


def test_session_verdicts(service: AuthService, clock: Clock) -> None:
    service.create_user("alice", {"windsor": "operator", "detroit": "viewer"}, "t", PW)
    service.create_user("bob", {"windsor": "viewer"}, "t", PW)
    a, a_secret = session_cred(service, "alice")
    b, _ = session_cred(service, "bob")
    fixed = Credential("fixed", "x", "carol")
    got = check(service.engine, service.settings, [a, b, fixed], int(clock() * US))
    assert got == {a: Principal("alice", {"windsor": "operator", "detroit": "viewer"}),
                   b: Principal("bob", {"windsor": "viewer"})}  # nothing to say about a fixed one
    service.set_roles("alice", {"detroit": "viewer"}, "t")
    assert verdicts(service, a) == [Principal("alice", {"detroit": "viewer"})]
    service.logout(a_secret, "alice")
    assert verdicts(service, a) == [Ended("session_ended")]
    service.set_disabled("bob", True, "t")  # deletes bob's sessions: the verdict names the disable
    assert verdicts(service, b) == [Ended("user_disabled")]


def test_expiry_idle_and_touch(service: AuthService, clock: Clock) -> None:
    service.create_user("alice", {"windsor": "operator"}, "t", PW)
    a, _ = session_cred(service, "alice")
    clock.advance(service.settings.session_idle_s - 10)
    assert verdicts(service, a, touch=True) == [Principal("alice", {"windsor": "operator"})]  # activity
    clock.advance(20)
    assert isinstance(verdicts(service, a)[0], Principal)  # idle counts from the touch
    clock.advance(service.settings.session_idle_s + 1)
    assert verdicts(service, a) == [Ended("session_idle")]
    b, _ = session_cred(service, "alice")
    steps = int(service.settings.session_ttl_s // (service.settings.session_idle_s / 2)) + 1
    for _ in range(steps):  # active all along, until the session's end
        clock.advance(service.settings.session_idle_s / 2)
        verdicts(service, b, touch=True)
    assert verdicts(service, b) == [Ended("session_expired")]


def test_token_verdicts(service: AuthService, clock: Clock) -> None:
    service.create_user("alice", {"windsor": "operator", "detroit": "viewer"}, "t", PW)
    t1 = service.create_token("alice", "ci", None, "t").info.id
    t2 = service.create_token("alice", "short", {"windsor": "operator"}, "t", days=1).info.id
    c1, c2 = Credential("token", t1, "alice"), Credential("token", t2, "alice")
    assert verdicts(service, c1, c2) == [
        Principal("alice", {"windsor": "operator", "detroit": "viewer"}, kind="token", token_id=t1),
        Principal("alice", {"windsor": "operator"}, kind="token", token_id=t2)]
    service.set_roles("alice", {"windsor": "viewer"}, "t")  # a token never holds more than its user
    assert verdicts(service, c1)[0] == Principal("alice", {"windsor": "viewer"}, kind="token", token_id=t1)
    service.revoke_token(t1, "t")
    clock.advance(86400 + 1)
    missing = Credential("token", "f" * 16, "alice")
    assert verdicts(service, c1, c2, missing) == [Ended("token_revoked"), Ended("token_expired"),
                                                  Ended("token_revoked")]
    t3 = service.create_token("alice", "third", None, "t").info.id
    service.set_disabled("alice", True, "t")
    assert verdicts(service, Credential("token", t3, "alice")) == [Ended("user_disabled")]


def test_many_sessions_in_chunks(service: AuthService, clock: Clock) -> None:
    user, _ = service.create_user("alice", {"windsor": "viewer"}, "t", PW)
    now = int(clock() * US)
    creds = [Credential("session", sha256_hex(f"s{i}"), "alice") for i in range(CHUNK * 2 + 7)]
    with service.engine.begin() as c:
        for cr in creds[:-3]:
            repo.insert_session(c, cr.key, user.id, now, now + 3600 * US, None)
    got = verdicts(service, *creds)
    assert got[:-3] == [Principal("alice", {"windsor": "viewer"})] * (len(creds) - 3)
    assert got[-3:] == [Ended("session_ended")] * 3


# -- the watch ---------------------------------------------------------------------------------------

class Seen:
    def __init__(self) -> None:
        self.ended: list[Ended] = []
        self.changed: list[Principal] = []


def watch_one(watch: SessionWatch, cred: Credential, who: Principal) -> Seen:
    seen = Seen()
    watch.watch(cred, who, on_end=seen.ended.append, on_change=seen.changed.append)
    return seen


async def test_changes_in_this_process_end_at_once(service: AuthService) -> None:
    watch = SessionWatch(service, interval=3600)  # no periodic check: only the service's own notice
    service.create_user("alice", {"windsor": "operator"}, "t", PW)
    service.create_user("bob", {"windsor": "operator"}, "t", PW)
    a, a_secret = session_cred(service, "alice")
    b, _ = session_cred(service, "bob")
    tok = Credential("token", service.create_token("bob", "ci", None, "t").info.id, "bob")
    who_a, who_b = Principal("alice", {"windsor": "operator"}), Principal("bob", {"windsor": "operator"})
    seen_a, seen_b, seen_t = watch_one(watch, a, who_a), watch_one(watch, b, who_b), watch_one(watch, tok, who_b)
    await asyncio.to_thread(service.logout, a_secret, "alice")  # from a worker thread, as the route does
    await wait_for(lambda: bool(seen_a.ended), 5, "the logged-out session ended")
    assert seen_a.ended == [Ended("logged_out")] and not seen_b.ended and not seen_t.ended
    await asyncio.to_thread(service.reset_password, "bob", "t", "another-good-password")
    await wait_for(lambda: bool(seen_b.ended), 5, "a password reset ends the user's sessions")
    assert seen_b.ended == [Ended("password_reset")] and not seen_t.ended  # tokens live on
    service.set_disabled("bob", True, "t")
    await wait_for(lambda: bool(seen_t.ended), 5, "a disable ends the user's tokens")
    assert seen_t.ended == [Ended("user_disabled")] and watch.watched == 0
    await watch.stop()


async def test_changes_elsewhere_are_found_by_the_periodic_check(service: AuthService, data_dir: Path,
                                                                  clock: Clock, service_url: str) -> None:
    elsewhere = AuthService.open(data_dir, service_url, settings=FAST, clock=clock)  # another process, in effect
    watch = SessionWatch(service, interval=0.05)
    service.create_user("alice", {"windsor": "operator", "detroit": "viewer"}, "t", PW)
    a, _ = session_cred(service, "alice")
    seen = watch_one(watch, a, Principal("alice", {"windsor": "operator", "detroit": "viewer"}))
    elsewhere.set_roles("alice", {"detroit": "viewer"}, "t")
    await wait_for(lambda: bool(seen.changed), 5, "the new roles")
    assert seen.changed == [Principal("alice", {"detroit": "viewer"})] and not seen.ended
    elsewhere.set_disabled("alice", True, "t")
    await wait_for(lambda: bool(seen.ended), 5, "the disable")
    assert seen.ended == [Ended("user_disabled")] and watch.checks >= 2
    elsewhere.close()
    await watch.stop()


async def test_verify_fails_closed_and_fixed_principals(service: AuthService) -> None:
    service.create_user("alice", {"windsor": "operator"}, "t", PW)
    a, _ = session_cred(service, "alice")
    who = Principal("alice", {"windsor": "operator"})
    watch = SessionWatch(service)
    assert await watch.verify(a, who) == who
    assert await watch.verify(Credential("fixed", "x", "alice"), who) == Ended("unauthenticated")
    assert await SessionWatch(None).verify(Credential("fixed", "x", "alice"), who) == who  # nothing to check
    with service.engine.begin() as c:
        c.execute(sa.text("ALTER TABLE auth_sessions RENAME TO auth_sessions_gone"))
    try:
        assert await watch.verify(a, who) == Ended("unverifiable")
    finally:
        with service.engine.begin() as c:
            c.execute(sa.text("ALTER TABLE auth_sessions_gone RENAME TO auth_sessions"))


@pytest.mark.parametrize("code", ["logged_out", "user_disabled", "token_revoked", "session_expired"])
def test_reasons_are_plain_and_short(code: str) -> None:
    text = str(Ended(code))
    assert text.startswith(f"{code}: ") and len(text.encode()) <= 120
