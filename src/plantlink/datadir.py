"""The data directory: one default for every command, and private (directories 0700, files 0600).

It holds the relational store (password hashes, sessions, the audit trail), the historian, keys and TLS keys.
Every command defaults to ``./plantlink-data`` (``DEFAULT_DATA_DIR``), or to ``$PLANTLINK_DATA_DIR`` when set;
``--data-dir`` overrides both. ``missing_data_dir()`` says why a command that only reads or administers must
not open a directory (it would create it).
``private_umask()`` makes everything this process creates private; ``secure_data_dir(path)`` creates the
directory 0700 and tightens what an older version (or another tool) left readable by others.
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path

log = logging.getLogger(__name__)
PRIVATE_UMASK = 0o077
#: the environment variable that replaces the default data directory of every command
DATA_DIR_ENV = "PLANTLINK_DATA_DIR"
DEFAULT_DATA_DIR = Path("plantlink-data")
#: the embedded store's file under the data directory (plantlink.store.default_url)
STORE_FILE = "plantlink.sqlite"
#: the environment variable that names the relational store (``postgresql+psycopg://user@host/db``) for every
#: command, instead of the SQLite file under the data directory; ``--store-url`` overrides it
STORE_URL_ENV = "PLANTLINK_STORE_URL"


def missing_data_dir(data_dir: Path, store_url: str | None = None) -> str | None:
    """Why ``data_dir`` cannot be administered (it does not exist, or holds no store while no ``store_url``
    names one), naming the directory and how to give another; None when it can."""
    where = data_dir.absolute()
    if not data_dir.is_dir():
        problem = f"no plantlink data directory at {where}"
    elif store_url is None and not (data_dir / STORE_FILE).is_file():
        problem = f"{where} holds no plantlink store ({STORE_FILE})"
    else:
        return None
    return (f"{problem}: give the data directory of your plant (plantlink run) or demo (plantlink demo) with "
            f"--data-dir DIR or {DATA_DIR_ENV}=DIR")


def private_umask() -> int:
    """Set the process's umask to 077 (files 0600, directories 0700 from now on); returns the previous one."""
    return os.umask(PRIVATE_UMASK)


@contextlib.contextmanager
def private_files() -> Iterator[None]:
    """``private_umask()`` for the duration of the block, then the previous umask again."""
    previous = private_umask()
    try:
        yield
    finally:
        os.umask(previous)


def secure_data_dir(path: str | Path) -> int:
    """Create ``path`` (0700) or tighten it and everything under it: no access for group and others (symbolic
    links are left alone). Returns how many entries were tightened (logged)."""
    root = Path(path)
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    tightened = _tighten(root)
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            tightened += _tighten(Path(dirpath) / name)
    if tightened:
        log.warning("data directory %s: %d file(s) or folder(s) were readable by others; now private (0600/0700)",
                    root, tightened)
    return tightened


def _tighten(p: Path) -> int:
    try:
        st = p.lstat()
    except FileNotFoundError:  # removed meanwhile (e.g. a journal file)
        return 0
    if stat.S_ISLNK(st.st_mode) or not stat.S_IMODE(st.st_mode) & 0o077:
        return 0
    with contextlib.suppress(FileNotFoundError):
        os.chmod(p, stat.S_IMODE(st.st_mode) & 0o700)
    return 1
