"""``plantlink users ...`` and ``plantlink audit ...``: typer sub-apps (registered in plantlink.cli).

They administer an existing data directory and never create one: a directory that does not exist or holds no
store (the SQLite default, without ``--store-url``) is an error naming it. Passwords are never taken as
command-line arguments (shell history): they are generated and printed once, or read from stdin with
``--password-stdin``. Token secrets are printed once, at creation.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from plantlink.auth.records import parse_roles
from plantlink.auth.service import AuthService, cli_actor
from plantlink.auth.settings import AuthSettings
from plantlink.cli_options import data_dir_option, store_url_option
from plantlink.datadir import DEFAULT_DATA_DIR, missing_data_dir
from plantlink.errors import AuthError, PlantlinkError

users_app = typer.Typer(help="Manage users, their roles per site, and API tokens.", no_args_is_help=True,
                        rich_markup_mode=None)
token_app = typer.Typer(help="API tokens for scripts: create (secret shown once), list, revoke.", no_args_is_help=True,
                        rich_markup_mode=None)
audit_app = typer.Typer(help="The hash-chained audit trail: verify it, export it.", no_args_is_help=True,
                        rich_markup_mode=None)
users_app.add_typer(token_app, name="token")

DataDir = Annotated[Path, data_dir_option("The plantlink data directory (holds the store and keys); never created.")]
StoreUrl = Annotated[str | None, store_url_option()]
RoleOpt = Annotated[list[str], typer.Option("--role", metavar="SITE=ROLE", help="ROLE is viewer, operator, "
                                           "engineer or admin; SITE '*' = every site. Repeat for several sites.")]
PwStdin = Annotated[bool, typer.Option("--password-stdin", help="Read the password from stdin instead of "
                                                                "generating one.")]
DEFAULT_DIR = DEFAULT_DATA_DIR
#: the settings the commands use (argon2 cost, password policy, token lifetimes)
SETTINGS = AuthSettings()


@contextmanager
def _service(data_dir: Path, store_url: str | None) -> Iterator[AuthService]:
    missing = missing_data_dir(data_dir, store_url)
    if missing is not None:  # opening it would create it, and report an empty store
        typer.echo(f"error: {missing}", err=True)
        raise typer.Exit(1)
    try:
        svc = AuthService.open(data_dir, store_url, SETTINGS)
    except PlantlinkError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    try:
        yield svc
    except PlantlinkError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    finally:
        svc.close()


def _read_password() -> str:
    return sys.stdin.readline().rstrip("\r\n")


def _when(us: int | None) -> str:
    return "-" if us is None else datetime.fromtimestamp(us / 1e6, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _roles(roles: dict[str, str]) -> str:
    return ",".join(f"{s}={r}" for s, r in sorted(roles.items())) or "-"


@users_app.command("add")
def add(name: str, role: RoleOpt, password_stdin: PwStdin = False, data_dir: DataDir = DEFAULT_DIR,
        store_url: StoreUrl = None) -> None:
    """Create a user with roles per site; prints a generated password once (or reads one from stdin)."""
    with _service(data_dir, store_url) as svc:
        pw = _read_password() if password_stdin else None
        user, generated = svc.create_user(name, dict(parse_roles(role)), cli_actor(), pw)
        typer.echo(f"created user {user.name} ({_roles(dict(user.roles))})")
        if generated:
            typer.echo(f"password (shown once): {generated}")


@users_app.command("list")
def list_users(as_json: Annotated[bool, typer.Option("--json", help="One JSON object per user.")] = False,
               data_dir: DataDir = DEFAULT_DIR, store_url: StoreUrl = None) -> None:
    """List users with their roles and state."""
    with _service(data_dir, store_url) as svc:
        for u in svc.users():
            if as_json:
                typer.echo(json.dumps({"name": u.name, "roles": u.roles, "disabled": u.disabled,
                                       "created_us": u.created_us}))
            else:
                state = "disabled" if u.disabled else "active"
                typer.echo(f"{u.name:<24} {state:<9} {_roles(dict(u.roles))}")


@users_app.command("roles")
def set_roles(name: str, role: RoleOpt, data_dir: DataDir = DEFAULT_DIR, store_url: StoreUrl = None) -> None:
    """Replace a user's roles (a running server applies them to open pages and streams within a second)."""
    with _service(data_dir, store_url) as svc:
        user = svc.set_roles(name, dict(parse_roles(role)), cli_actor())
        typer.echo(f"{user.name}: {_roles(dict(user.roles))}")


@users_app.command("disable")
def disable(name: str, data_dir: DataDir = DEFAULT_DIR, store_url: StoreUrl = None) -> None:
    """Disable a user: sessions end at once and API tokens stop working; a running server closes the user's open
    HMI pages and API streams within a second."""
    with _service(data_dir, store_url) as svc:
        typer.echo(f"disabled {svc.set_disabled(name, True, cli_actor()).name}")


@users_app.command("enable")
def enable(name: str, data_dir: DataDir = DEFAULT_DIR, store_url: StoreUrl = None) -> None:
    """Enable a disabled user again."""
    with _service(data_dir, store_url) as svc:
        typer.echo(f"enabled {svc.set_disabled(name, False, cli_actor()).name}")


@users_app.command("reset-password")
def reset_password(name: str, password_stdin: PwStdin = False, data_dir: DataDir = DEFAULT_DIR,
                   store_url: StoreUrl = None) -> None:
    """Set a new password (generated and printed once, or read from stdin); the user's sessions end."""
    with _service(data_dir, store_url) as svc:
        generated = svc.reset_password(name, cli_actor(), _read_password() if password_stdin else None)
        typer.echo(f"password of {name} reset")
        if generated:
            typer.echo(f"password (shown once): {generated}")


@users_app.command("unlock")
def unlock(name: str,
           address: Annotated[str | None, typer.Option(help="Only logins from this address (default: every "
                                                           "address).")] = None,
           data_dir: DataDir = DEFAULT_DIR, store_url: StoreUrl = None) -> None:
    """Clear a user's login back-off and slowing after failed logins (audited as auth.unlocked)."""
    with _service(data_dir, store_url) as svc:
        cleared = svc.unlock(name, cli_actor(), address)
        where = f" from {address}" if address else ""
        typer.echo(f"unlocked {name.strip().lower()}{where}: {cleared} throttle record(s) reset")


@users_app.command("lockouts")
def lockouts(user: Annotated[str | None, typer.Option(help="Only this user name.")] = None,
             data_dir: DataDir = DEFAULT_DIR, store_url: StoreUrl = None) -> None:
    """List login throttle records with failures or a block: per user and address, per user, per address."""
    with _service(data_dir, store_url) as svc:
        now = svc._now_us()
        for r in svc.throttle.state(user, active_only=True):
            what = f"{r.user or '*'} from {r.address or '*'}"
            wait = max(0, r.blocked_until_us - now) / 1e6
            blocked = f"waits {wait:.0f} s" if wait > 0 else "not blocked"
            typer.echo(f"{what:<48} {r.failures:>5} failure(s)  {blocked}  last failure {_when(r.last_failure_us)}")


@token_app.command("create")
def token_create(user: str, name: Annotated[str, typer.Option("--name", help="What the token is for.")],
                 role: Annotated[list[str] | None, typer.Option(
                     "--role", metavar="SITE=ROLE", help="Default: the user's roles; never more than the user "
                                                         "holds.")] = None,
                 days: Annotated[float | None, typer.Option(help="Lifetime in days (default 90).")] = None,
                 data_dir: DataDir = DEFAULT_DIR, store_url: StoreUrl = None) -> None:
    """Create an API token for USER; prints the secret once (send it as 'Authorization: Bearer <secret>')."""
    with _service(data_dir, store_url) as svc:
        roles: dict[str, str] | None = dict(parse_roles(role)) if role else None
        new = svc.create_token(user, name, roles, cli_actor(), days)
        typer.echo(f"token {new.info.id} for {new.info.user} ({_roles(dict(new.info.roles))}), "
                   f"expires {_when(new.info.expires_us)}")
        typer.echo(f"secret (shown once): {new.secret}")


@token_app.command("list")
def token_list(user: Annotated[str | None, typer.Option(help="Only this user's tokens.")] = None,
               data_dir: DataDir = DEFAULT_DIR, store_url: StoreUrl = None) -> None:
    """List tokens (never their secrets)."""
    with _service(data_dir, store_url) as svc:
        for t in svc.tokens(user):
            state = "revoked" if t.revoked_us else "expired" if t.expires_us <= svc._now_us() else "active"
            typer.echo(f"{t.id} {t.user:<16} {t.name:<20} {state:<8} {_roles(dict(t.roles))} "
                       f"expires {_when(t.expires_us)} last used {_when(t.last_used_us)}")


@token_app.command("revoke")
def token_revoke(token_id: str, data_dir: DataDir = DEFAULT_DIR, store_url: StoreUrl = None) -> None:
    """Revoke a token by id (it stops working at once; a running server closes its open streams within a second)."""
    with _service(data_dir, store_url) as svc:
        t = svc.revoke_token(token_id, cli_actor())
        typer.echo(f"revoked token {t.id} of {t.user}")


@audit_app.command("verify")
def verify(data_dir: DataDir = DEFAULT_DIR, store_url: StoreUrl = None) -> None:
    """Check the audit trail's hash chain; exit 1 and name the first bad row when it was tampered with."""
    with _service(data_dir, store_url) as svc:
        res = svc.audit.verify()
    if res.ok:
        typer.echo(f"audit trail OK: {res.checked} records")
        return
    typer.echo(f"audit trail BROKEN at id {res.first_bad_id}: {res.reason} ({res.checked} records good before)",
               err=True)
    raise typer.Exit(1)


def _time_us(value: str | None, what: str) -> int | None:
    if value is None:
        return None
    try:
        t = datetime.fromisoformat(value)
    except ValueError:
        raise AuthError(f"--{what}: not an ISO 8601 time: {value!r}") from None
    return int((t if t.tzinfo else t.replace(tzinfo=UTC)).timestamp() * 1_000_000)


class ExportFormat(StrEnum):
    csv = "csv"


@audit_app.command("export")
def export(fmt: Annotated[ExportFormat, typer.Option("--format", help="Output format.")] = ExportFormat.csv,
           _csv: Annotated[bool, typer.Option("--csv", hidden=True, help="Same as --format csv.")] = False,
           out: Annotated[Path | None, typer.Option(help="Write to this file instead of stdout.")] = None,
           since: Annotated[str | None, typer.Option(help="From this ISO time (UTC if no offset).")] = None,
           until: Annotated[str | None, typer.Option(help="Before this ISO time.")] = None,
           actor: Annotated[str | None, typer.Option(help="Only this actor.")] = None,
           kind: Annotated[str | None, typer.Option(help="Only this kind, or a prefix ending in '.' (auth.).")] = None,
           site: Annotated[str | None, typer.Option(help="Only this site.")] = None,
           data_dir: DataDir = DEFAULT_DIR, store_url: StoreUrl = None) -> None:
    """Export audit records as CSV (spreadsheet-safe: no formula injection)."""
    with _service(data_dir, store_url) as svc:
        lines = svc.audit.export_csv(start_us=_time_us(since, "since"), end_us=_time_us(until, "until"),
                                     actor=actor, kind=kind, site=site)
        if out is None:
            for line in lines:
                sys.stdout.write(line)
            sys.stdout.flush()
        else:
            with out.open("w", encoding="utf-8", newline="") as f:
                f.writelines(lines)
