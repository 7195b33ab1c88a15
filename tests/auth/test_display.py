"""Display tokens (plantlink.auth.display) at the service: what a token stands for, what refuses it (garbled,
wrong secret, revoked, expired), the scope rules, the live check that ends wallboards, and the audit."""

from __future__ import annotations

import pytest

from plantlink.auth import AuthService
from plantlink.auth.display import may_show
from plantlink.auth.live import Credential, Ended, check
from plantlink.errors import InvalidRequest
from tests.auth.conftest import Clock

US = 1_000_000
LINE = "windsor/stamping/press-line-1"


def test_a_display_token_stands_for_a_confined_viewer(service: AuthService) -> None:
    made = service.displays.create("press TV", "windsor", LINE, actor="ada")
    assert made.secret.startswith(f"pld_{made.info.id}_") and "pld_" not in repr(made)
    p = service.displays.principal(made.secret)
    assert p is not None
    assert (p.name, p.kind, p.roles, p.scope, p.token_id) == ("display:press TV", "display", {"windsor": "viewer"},
                                                              LINE, made.info.id)
    assert may_show(p, LINE) and not may_show(p, "windsor/stamping/press-line-10")
    assert not may_show(p, "windsor/body-paint/body-line-1")
    site = service.displays.principal(service.displays.create("hall", "windsor", None, actor="ada").secret)
    assert site is not None and may_show(site, LINE) and not may_show(site, "detroit/machining/cnc-cell-2")
    assert service.token_principal(made.secret) is None  # not an API token


def test_what_refuses_a_display_token(service: AuthService, clock: Clock) -> None:
    made = service.displays.create("TV", "windsor", None, actor="ada", days=1)
    token_id = made.info.id
    for bad in ("", "pld_", f"pld_{token_id}", f"pld_{token_id}_wrong", made.secret.replace("pld_", "plk_"),
                f"pld_{'0' * 16}_{made.secret.split('_', 2)[2]}"):
        assert service.displays.principal(bad) is None, bad
    cred = Credential("display", token_id, "display:TV")
    assert check(service.engine, service.settings, [cred], int(clock() * US))[cred] == service.displays.principal(
        made.secret)
    clock.advance(86400 + 1)
    assert service.displays.principal(made.secret) is None
    assert check(service.engine, service.settings, [cred], int(clock() * US))[cred] == Ended("display_expired")
    other = service.displays.create("TV2", "windsor", None, actor="ada")
    ended: list[str] = []
    service.add_listener(lambda change: ended.append(f"{change.kind}:{change.key}:{change.reason}"))
    service.displays.revoke(other.info.id, actor="ada")
    assert ended == [f"display:{other.info.id}:display_revoked"]
    assert service.displays.principal(other.secret) is None
    gone = Credential("display", other.info.id, "display:TV2")
    assert check(service.engine, service.settings, [gone], int(clock() * US))[gone] == Ended("display_revoked")
    assert service.displays.get(other.info.id).state(int(clock() * US)) == "revoked"


@pytest.mark.parametrize(("name", "site", "line", "why"), [
    ("", "windsor", None, "name"), ("TV", "*", None, "one site"), ("TV", "bad site!", None, "invalid site"),
    ("TV", "windsor", "detroit/machining/cnc-cell-2", "not a line of site"),
])
def test_bad_display_tokens_are_refused_with_why(service: AuthService, name: str, site: str, line: str | None,
                                                 why: str) -> None:
    with pytest.raises(InvalidRequest, match=why):
        service.displays.create(name, site, line, actor="ada")
    with pytest.raises(InvalidRequest, match="lifetime"):
        service.displays.create("TV", "windsor", None, actor="ada", days=0)


def test_display_tokens_are_audited(service: AuthService) -> None:
    made = service.displays.create("TV", "windsor", LINE, actor="ada")
    assert service.displays.exchange(made.secret, "10.0.0.9") is not None
    assert service.displays.exchange("pld_garbled", "10.0.0.9") is None
    service.displays.revoke(made.info.id, actor="ada")
    got = [(r.kind, r.actor, r.site, r.target, r.details.get("client")) for r in service.audit.query()
           if r.kind.startswith("auth.display")]
    assert got == [("auth.display_created", "ada", "windsor", LINE, None),
                   ("auth.display_used", "display:TV", "windsor", LINE, "10.0.0.9"),
                   ("auth.display_revoked", "ada", "windsor", LINE, None)]
