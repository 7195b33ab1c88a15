"""Demo users for ``plantlink demo`` (documented in docs/security.md; demo data only, never in production)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from plantlink.errors import InvalidRequest

if TYPE_CHECKING:
    from plantlink.auth.service import AuthService

#: name -> (roles, password)
DEMO_USERS: dict[str, tuple[dict[str, str], str]] = {
    "viewer": ({"windsor": "viewer"}, "demo-viewer-pw"),
    "operator": ({"windsor": "operator"}, "demo-operator-pw"),
    "engineer": ({"windsor": "engineer"}, "demo-engineer-pw"),
    "admin": ({"*": "admin"}, "demo-admin-pw"),
    "detroit-operator": ({"detroit": "operator"}, "demo-detroit-pw"),
}


def bootstrap_demo_users(service: AuthService) -> list[str]:
    """Create the demo users that do not exist yet (existing users are left alone); returns the names created."""
    made = []
    for name, (roles, password) in DEMO_USERS.items():
        try:
            service.create_user(name, roles, actor="system:demo", password=password)
        except InvalidRequest as exc:
            if "exists already" not in str(exc):
                raise
            continue
        made.append(name)
    return made
