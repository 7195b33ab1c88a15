"""Per-installation secret keys, generated with ``secrets`` and kept under the data directory (0600)."""

from __future__ import annotations

import logging
import os
import secrets
import stat
from pathlib import Path

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
