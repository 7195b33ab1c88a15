"""Single sign-on seam (OIDC / SAML / LDAP): NOT IMPLEMENTED, only the interface a provider plugs into.

A provider authenticates the person outside plantlink (authorization-code flow with PKCE for OIDC) and hands
back verified claims; a ``ClaimsMapper`` turns them into a plantlink user name and roles per site. The web
layer would then open a normal session for that identity (audited as ``auth.login`` with method ``oidc``),
so everything downstream (middleware, CSRF, roles, audit) stays the same. See docs/security.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from plantlink.identity import ROLE_RANK, Role


@dataclass(frozen=True)
class ExternalIdentity:
    name: str
    roles: dict[str, Role]
    claims: Mapping[str, Any] = field(default_factory=dict, repr=False)


class IdentityProvider(Protocol):
    """An external identity provider (e.g. an OIDC issuer)."""

    def authorization_url(self, state: str, nonce: str, redirect_uri: str, code_challenge: str) -> str:
        """Where to send the browser to log in."""
        ...

    def exchange(self, code: str, redirect_uri: str, code_verifier: str, nonce: str) -> Mapping[str, Any]:
        """Redeem the code; return the ID token's claims after checking signature, issuer, audience, expiry
        and nonce."""
        ...


class ClaimsMapper(Protocol):
    def map(self, claims: Mapping[str, Any]) -> ExternalIdentity | None:
        """The plantlink identity of these claims, or None (not allowed in)."""
        ...


@dataclass(frozen=True)
class GroupRoleMapper:
    """Map group membership to roles: ``{"plant-windsor-ops": ("windsor", "operator")}``. The highest role per
    site wins; someone in no mapped group gets None (denied)."""

    groups: Mapping[str, tuple[str, Role]]
    name_claim: str = "preferred_username"
    groups_claim: str = "groups"

    def map(self, claims: Mapping[str, Any]) -> ExternalIdentity | None:
        name = claims.get(self.name_claim)
        if not isinstance(name, str) or not name:
            return None
        roles: dict[str, Role] = {}
        for group in claims.get(self.groups_claim) or []:
            if group in self.groups:
                site, role = self.groups[group]
                if site not in roles or ROLE_RANK[role] > ROLE_RANK[roles[site]]:
                    roles[site] = role
        return ExternalIdentity(name, roles, claims) if roles else None
