"""Errors of identity and access. Messages never contain a password or a token."""

from __future__ import annotations

from plantlink.errors import PlantlinkError


class AuthError(PlantlinkError):
    """A request about users, tokens or sessions that cannot be done."""


class AuthFailed(AuthError):
    """Wrong user name or password (deliberately the same message for unknown, disabled and wrong)."""

    def __init__(self) -> None:
        super().__init__("wrong user name or password")


class LockedOut(AuthError):
    """Too many failed logins for this user and client (or slowed: see ``LoginThrottle``); try again after
    ``retry_after`` seconds."""

    def __init__(self, retry_after: float):
        self.retry_after = max(1, int(retry_after + 0.999))
        super().__init__(f"too many failed logins; try again in {self.retry_after} s")


class Busy(AuthError):
    """Too many logins at once: the password checks are full; try again after ``retry_after`` seconds."""

    def __init__(self, retry_after: float):
        self.retry_after = max(1, int(retry_after + 0.999))
        super().__init__(f"too many logins at once; try again in {self.retry_after} s")


class UserNotFound(AuthError):
    def __init__(self, name: str):
        super().__init__(f"no user named {name!r}")


class InvalidRequest(AuthError):
    """A bad argument (name, role, site, password policy, token lifetime, scope wider than the creator's)."""
