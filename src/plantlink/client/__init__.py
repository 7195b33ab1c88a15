"""The Python API for data people: ``plantlink.connect(...)`` then ``read``, ``latest``, ``states``, ``oee``,
``energy``, ``downtime`` as DataFrames, the same calls on a data directory (embedded) or a running server
(remote). See docs/python-api.md."""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import TYPE_CHECKING

from plantlink.client.connection import Connection

if TYPE_CHECKING:
    from plantlink.model import Plant

__all__ = ["Connection", "connect"]


def connect(where: str | Path, *, token: str | None = None, plant: str | Path | Plant | None = None,
            verify: bool | str | ssl.SSLContext = True, timeout: float = 60.0) -> Connection:
    """A connection to a plant's data.

    ``where``: an ``http://`` or ``https://`` URL of a running plantlink (``token``: an API token, sent as a
    bearer; ``verify``: False, a CA bundle path (or the server's self-signed certificate) or an
    ``ssl.SSLContext``), or a data directory as
    ``plantlink run``/``demo`` create it (``plant``: its plant model file, by default the one last loaded
    there). Close it when done (``with plantlink.connect(...) as pl:``)."""
    text = str(where)
    if text.startswith(("http://", "https://")):
        from plantlink.client.remote import HttpSource

        if plant is not None:
            raise TypeError("plant= is for a data directory; a server knows its own plant model")
        return Connection(HttpSource(text, token, verify=verify, timeout=timeout))
    if token is not None:
        raise TypeError(f"token= is for a server URL (http:// or https://), not a data directory ({text})")
    from plantlink.client.embedded import DataDirSource

    return Connection(DataDirSource(where, plant))
