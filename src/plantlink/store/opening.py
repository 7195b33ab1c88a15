"""Why a store cannot be opened, in one clear error: the URL without its password and what to do.

``open_error(url, exc)`` turns what the driver said when connecting (or migrating) into a ``StoreOpenError``
(wrong credentials, no such database, ...) or a ``StoreUnavailable`` (the server does not answer: trying again
later may work). ``newer_schema(url, revision, head)`` is the error for a database that a newer plantlink
migrated past what this version knows.
"""

from __future__ import annotations

import re

import sqlalchemy as sa

from plantlink.errors import StoreOpenError, StoreUnavailable

WHERE = "--store-url (or PLANTLINK_STORE_URL)"
#: what the server or driver says (lower case) -> (the problem, what to do); the first match wins
_CREDENTIALS = ("password authentication failed", "no password supplied", "authentication failed",
                "no pg_hba.conf entry", "peer authentication failed")
_UNREACHABLE = ("connection refused", "timeout expired", "timed out", "could not translate host name",
                "failed to resolve host", "name or service not known", "no route to host", "network is unreachable",
                "server closed the connection", "the database system is starting up",
                "the database system is shutting down", "no such file or directory", "could not connect",
                "connection reset")


def safe(url: sa.URL) -> str:
    """The URL as text, its password masked (``***``)."""
    return url.render_as_string(hide_password=True)


def mask(text: str) -> str:
    """``text`` (a URL that may not parse) with any password after ``//user:`` masked."""
    return re.sub(r"(//[^/@:]*:)[^@/]*@", r"\1***@", text)


def first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip()
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return lines[0] if lines else type(exc).__name__


def open_error(url: sa.URL, exc: BaseException) -> StoreOpenError:
    """The error to raise for ``exc``, met while opening the store at ``url``."""
    where, said = safe(url), first_line(exc)
    low = said.lower()
    head = f"cannot open the store at {where}"
    if 'database "' in low and "does not exist" in low:
        return StoreOpenError(f"{head}: the database {url.database!r} does not exist ({said}): create it "
                              f"(createdb -O {url.username or 'USER'} {url.database}) or give the right "
                              f"database in {WHERE}", where)
    if ('role "' in low and "does not exist" in low) or any(s in low for s in _CREDENTIALS):
        return StoreOpenError(f"{head}: the server refused the user or password ({said}): check the user and "
                              f"password (in {WHERE}, or ~/.pgpass) and the server's pg_hba.conf", where)
    if "permission denied" in low:
        return StoreOpenError(f"{head}: the user may not create the store's tables ({said}): grant it CREATE on "
                              "the database's schema (or make it the database's owner)", where)
    if any(s in low for s in _UNREACHABLE):
        return StoreUnavailable(f"{head}: the server does not answer ({said}): start it, or check the host and "
                                f"port in {WHERE}; then start plantlink again", where)
    return StoreOpenError(f"{head}: {said}", where)


def unavailable(exc: BaseException) -> bool:
    """``exc`` says the store's server does not answer (down, unreachable, the connection lost): the same
    statement may work once it is back, unlike a refused row."""
    if not isinstance(exc, sa.exc.DBAPIError):
        return False
    if exc.connection_invalidated:
        return True
    low = first_line(exc).lower()
    return isinstance(exc, sa.exc.OperationalError | sa.exc.InterfaceError) and any(s in low for s in _UNREACHABLE)


def newer_schema(url: sa.URL, revision: str, head: str) -> StoreOpenError:
    where = safe(url)
    return StoreOpenError(f"cannot open the store at {where}: its schema is at revision {revision!r}, which a "
                          f"newer plantlink wrote (this one knows up to {head!r}): run that newer plantlink, or "
                          f"give another database in {WHERE}", where)
