"""Identity and access: users with roles per site, argon2 passwords, browser sessions with CSRF protection,
API tokens, login rate limiting, the deny-by-default ``AuthMiddleware``, TLS helpers and an SSO seam.

    service = AuthService(store.engine, data_dir)      # or AuthService.open(data_dir) (opens the store)
    service.ensure_admin()                              # first run: prints admin's password once, to stderr
    install_auth(app, service)                          # middleware + /login + /api/v1/auth/{login,logout,me}
"""

from plantlink.auth.demo import DEMO_USERS, bootstrap_demo_users
from plantlink.auth.middleware import AuthMiddleware
from plantlink.auth.records import NewSession, NewToken, TokenInfo, User, parse_roles
from plantlink.auth.routes import install_auth
from plantlink.auth.service import AuthService, cli_actor
from plantlink.auth.settings import AuthSettings
from plantlink.auth.tls import self_signed, ssl_context, tls_args, uvicorn_ssl_args
from plantlink.errors import AuthError, AuthFailed, InvalidRequest, LockedOut, UserNotFound

__all__ = [
    "DEMO_USERS",
    "AuthError",
    "AuthFailed",
    "AuthMiddleware",
    "AuthService",
    "AuthSettings",
    "InvalidRequest",
    "LockedOut",
    "NewSession",
    "NewToken",
    "TokenInfo",
    "User",
    "UserNotFound",
    "bootstrap_demo_users",
    "cli_actor",
    "install_auth",
    "parse_roles",
    "self_signed",
    "ssl_context",
    "tls_args",
    "uvicorn_ssl_args",
]
