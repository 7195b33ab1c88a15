"""Who is calling: the one definition of roles, of the caller protocol and of an authenticated principal.

A principal has a role per site (``*`` = every site); roles are ranked ``viewer < operator < engineer < admin``
and a higher role may do everything a lower one may. The API's authentication (``plantlink.auth``) makes a
``Principal``; the plant index, the alarm service and the control path need only a ``Caller`` (a name and
``can``), which a ``Principal`` is.

Plain Python: no web framework, no store.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final, Literal, Protocol, get_args

Role = Literal["viewer", "operator", "engineer", "admin"]
#: The roles a write to a device may require (``write.role`` of a tag in the plant model).
WriteRole = Literal["operator", "engineer", "admin"]
#: Every role, lowest first.
ROLES: Final[tuple[Role, ...]] = get_args(Role)
ROLE_RANK: Final[Mapping[str, int]] = {r: i for i, r in enumerate(ROLES)}
#: The site key of a role held at every site.
ALL_SITES: Final = "*"


class Caller(Protocol):
    """What the services need of whoever calls them (a ``Principal`` is one)."""

    @property
    def name(self) -> str: ...

    def can(self, site: str, role: Role) -> bool: ...


@dataclass(frozen=True)
class Principal:
    """An authenticated user or API token, with a role per site (``*`` = every site)."""

    name: str
    roles: dict[str, Role] = field(default_factory=dict)
    kind: Literal["session", "token", "display"] = "session"
    token_id: str | None = None
    #: a display principal (``plantlink.auth.display``): the site or line whose wallboards it may show
    scope: str | None = None

    def role_at(self, site: str) -> Role | None:
        return self.roles.get(site) or self.roles.get(ALL_SITES)

    def can(self, site: str, role: Role) -> bool:
        have = self.role_at(site)
        return have is not None and ROLE_RANK[have] >= ROLE_RANK[role]

    def sites(self, known: list[str], role: Role = "viewer") -> list[str]:
        """The sites among ``known`` where this principal has at least ``role``."""
        return [s for s in known if self.can(s, role)]
