"""Password hashing (argon2id via argon2-cffi) and generation."""

from __future__ import annotations

import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from plantlink.auth.settings import AuthSettings
from plantlink.errors import InvalidRequest

MAX_PASSWORD_LENGTH = 1024


class Passwords:
    """Hash and verify passwords. ``verify`` costs the same whether the user exists or not: callers verify
    against ``dummy_hash`` when there is no user, so unknown users are not told apart by time."""

    def __init__(self, settings: AuthSettings):
        self._hasher = PasswordHasher(time_cost=settings.argon2_time_cost, memory_cost=settings.argon2_memory_kib,
                                      parallelism=settings.argon2_parallelism)
        self.min_length = settings.min_password_length
        self._dummy: str | None = None

    @property
    def dummy_hash(self) -> str:
        """A hash of a random password with the same cost, verified in place of an unknown user's."""
        if self._dummy is None:
            self._dummy = self._hasher.hash(secrets.token_urlsafe(24))
        return self._dummy

    def hash(self, password: str) -> str:
        self.check_policy(password)
        return self._hasher.hash(password)

    def verify(self, stored_hash: str, password: str) -> bool:
        """True when ``password`` matches; never raises for a wrong password or a damaged hash."""
        if len(password) > MAX_PASSWORD_LENGTH:
            password = password[:MAX_PASSWORD_LENGTH]  # still verified (same cost), and fails
            stored_hash = self.dummy_hash
        try:
            return bool(self._hasher.verify(stored_hash, password))
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, stored_hash: str) -> bool:
        try:
            return bool(self._hasher.check_needs_rehash(stored_hash))
        except InvalidHashError:
            return True

    def check_policy(self, password: str) -> None:
        if len(password) < self.min_length:
            raise InvalidRequest(f"a password needs at least {self.min_length} characters")
        if len(password) > MAX_PASSWORD_LENGTH:
            raise InvalidRequest(f"a password has at most {MAX_PASSWORD_LENGTH} characters")
        if password.strip() != password or not password.isprintable():
            raise InvalidRequest("a password must not start or end with spaces nor contain control characters")


def generate_password() -> str:
    """A random password of 20 URL-safe characters (120 bits)."""
    return secrets.token_urlsafe(15)
