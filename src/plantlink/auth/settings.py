"""``AuthSettings``: the knobs of authentication, with safe defaults."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class AuthSettings:
    #: failed logins of one user name (known or not) before it is locked for ``lockout_s``
    max_failures: int = 5
    #: failed logins from one client address before it is locked for ``lockout_s``
    max_failures_per_ip: int = 20
    #: failures older than this are forgotten
    failure_window_s: float = 900.0
    lockout_s: float = 900.0
    #: a session ends this long after login, or after this long without a request
    session_ttl_s: float = 12 * 3600.0
    session_idle_s: float = 2 * 3600.0
    token_default_days: float = 90.0
    token_max_days: float = 366.0
    min_password_length: int = 10
    #: Secure flag on cookies: True/False, or None = when the request came over HTTPS
    secure_cookies: bool | None = None
    cookie_name: str = "plantlink_session"
    csrf_cookie_name: str = "plantlink_csrf"
    csrf_header: str = "x-csrf-token"
    #: argon2id cost (RFC 9106 "second recommended option" by default); tests lower it
    argon2_time_cost: int = 3
    argon2_memory_kib: int = 65536
    argon2_parallelism: int = 4
    #: last-used times of tokens and sessions are written at most this often
    touch_interval_s: float = 60.0
