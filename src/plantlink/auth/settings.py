"""``AuthSettings``: the knobs of authentication, with safe defaults."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class AuthSettings:
    # -- login throttling (docs/security.md "Login throttling"); the state lives in the store ---------------
    #: a (user, address) pair: this many failures in a row are free; then each failure blocks the pair for
    #: ``pair_backoff_s``, doubling per further failure up to ``pair_backoff_max_s``. A success clears it;
    #: so does ``pair_forget_s`` without a failure.
    pair_free_failures: int = 5
    pair_backoff_s: float = 30.0
    pair_backoff_max_s: float = 900.0
    pair_forget_s: float = 3600.0
    #: one user name from every address: past ``user_slow_after`` failures within ``slow_window_s``, logins of
    #: that user from addresses it never logged in from are slowed to one per ``user_slow_interval_s``
    #: (never refused for longer)
    user_slow_after: int = 50
    user_slow_interval_s: float = 10.0
    #: one address for every name (password spraying): the same, past ``address_slow_after`` failures
    address_slow_after: int = 20
    address_slow_interval_s: float = 5.0
    slow_window_s: float = 900.0
    #: an address from which the user logged in within this time is known: only the pair's back-off applies
    known_address_s: float = 30 * 86400.0
    #: password checks (whole logins) run on this many threads (0: half the CPUs, 1 to 4), with at most
    #: ``login_queue`` waiting; more logins at once are answered 503 at once (argon2 takes ``argon2_memory_kib``
    #: and ``argon2_parallelism`` threads a check)
    login_workers: int = 0
    login_queue: int = 32
    #: a refused login (429 locked or slowed, 503 busy) is answered after this long: a client that retries as
    #: soon as it is answered (a flood, a script) then costs the server little
    refusal_delay_s: float = 1.0
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
