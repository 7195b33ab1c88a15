"""The historian: stores sample batches and answers time-series queries. See ``base`` for the interface."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from plantlink import plugins
from plantlink.historian.base import AGGREGATES, Historian, Retention, SqlAnswer, TagMeta


def open_historian(backend: str, **options: Any) -> Historian:
    """Create a historian backend by plugin name (``duckdb``, ``clickhouse``) and open it."""
    factory = plugins.load(plugins.HISTORIANS, backend)
    h: Historian = factory(**options)
    h.open()
    return h


def default_path(data_dir: str | Path) -> Path:
    return Path(data_dir) / "historian.duckdb"


#: URL schemes of the ClickHouse backend: a server over HTTP(S), or the engine in this process
CLICKHOUSE_SCHEMES = ("clickhouse", "clickhouses", "chdb")


def historian_target(spec: str, data_dir: str | Path) -> tuple[str, dict[str, Any], str]:
    """What ``historian:`` (the plant model) or ``--historian`` names: (plugin name, its options, where it is
    as people read it, without a password). ``duckdb``: the file in the data directory; ``clickhouse``: the
    in-process ClickHouse engine in the data directory; ``clickhouse://user:password@host:8123/database``
    (``clickhouses://`` for TLS, ``chdb:///dir``): that ClickHouse. Another plugin name gets the DuckDB path."""
    scheme, sep, _ = spec.partition("://")
    if sep and scheme in CLICKHOUSE_SCHEMES:
        from plantlink.historian.clickhouse.client import redact

        options: dict[str, Any] = {"url": spec}
        parts = urlsplit(spec)
        if scheme != "chdb" and parts.path.strip("/"):  # clickhouse://.../database
            options = {"url": urlunsplit(parts._replace(path="")), "database": parts.path.strip("/")}
        return "clickhouse", options, redact(spec)
    if spec == "clickhouse":
        url = f"chdb://{Path(data_dir).absolute() / 'clickhouse'}"
        return "clickhouse", {"url": url}, url
    return spec, {"path": default_path(data_dir)}, str(default_path(data_dir))


__all__ = ["AGGREGATES", "Historian", "Retention", "SqlAnswer", "TagMeta", "default_path", "historian_target",
           "open_historian"]
