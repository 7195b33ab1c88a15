"""Per-installation secret keys, generated with ``secrets``: in the relational store (``shared_key``: every API
process on one store reads the same key) or under the data directory (``load_or_create_key``, 0600)."""

from __future__ import annotations

import logging
import os
import secrets
import stat
import time
from pathlib import Path

import sqlalchemy as sa

from plantlink.errors import AuthError

log = logging.getLogger(__name__)
KEY_DIR = "secrets"


def secrets_dir(data_dir: str | Path) -> Path:
    d = Path(data_dir) / KEY_DIR
    d.mkdir(parents=True, exist_ok=True)
    os.chmod(d, 0o700)
    return d


def load_or_create_key(data_dir: str | Path, name: str, nbytes: int = 32) -> bytes:
    """The key ``name`` of this installation: read it, or create it (random, mode 0600) on first use."""
    path = secrets_dir(data_dir) / name
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _read(path, nbytes)
    with os.fdopen(fd, "wb") as f:
        f.write(secrets.token_bytes(nbytes))
        f.flush()
        os.fsync(f.fileno())
    return _read(path, nbytes)


def write_secret_file(data_dir: str | Path, name: str, text: str) -> Path:
    """Write ``text`` to ``secrets/<name>`` under the data directory, readable only by this user (0600)."""
    path = secrets_dir(data_dir) / name
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        os.fchmod(f.fileno(), 0o600)
        f.write(text)
    return path


def _read(path: Path, nbytes: int) -> bytes:
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        log.warning("key file %s was readable by others (mode %o); restricting it to 0600", path, mode)
        os.chmod(path, 0o600)
    key = path.read_bytes()
    if len(key) < nbytes:
        raise AuthError(f"key file {path} is damaged ({len(key)} bytes, expected {nbytes}); delete it to make "
                        "a new one (every session then ends)")
    return key


def shared_key(engine: sa.Engine, data_dir: str | Path, name: str, nbytes: int = 32) -> bytes:
    """The key ``name`` of every process on the store ``engine`` (table ``auth_keys``): read it, or create it once.
    A store without the key adopts this data directory's ``secrets/<name>`` when there is one (so the sessions
    and CSRF tokens of an installation that kept its key in a file stay valid), else a new random key. Two
    processes creating it at once: one insert wins, both read the winner's key."""
    from plantlink.store.auth_tables import auth_keys

    found = _stored_key(engine, name)
    if found is not None:
        return _checked(found, name, nbytes)
    path = Path(data_dir) / KEY_DIR / name
    key = _read(path, nbytes) if path.is_file() else secrets.token_bytes(nbytes)
    try:
        with engine.begin() as c:
            c.execute(sa.insert(auth_keys).values(name=name, secret=key, created_us=time.time_ns() // 1000))
        log.info("key %s kept in the store (%s)", name, "from " + str(path) if path.is_file() else "new")
    except sa.exc.IntegrityError:  # another process created it first: use that one
        pass
    stored = _stored_key(engine, name)
    if stored is None:
        raise AuthError(f"the store did not keep the key {name!r}")
    return _checked(stored, name, nbytes)


def _stored_key(engine: sa.Engine, name: str) -> bytes | None:
    from plantlink.store.auth_tables import auth_keys

    with engine.connect() as c:
        row = c.execute(sa.select(auth_keys.c.secret).where(auth_keys.c.name == name)).first()
    return bytes(row[0]) if row is not None else None


def _checked(key: bytes, name: str, nbytes: int) -> bytes:
    if len(key) < nbytes:
        raise AuthError(f"the store's key {name!r} is damaged ({len(key)} bytes, expected {nbytes})")
    return key
