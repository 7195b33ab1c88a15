"""The one small client the ClickHouse historian talks through: clickhouse-connect, to a server over HTTP
(``clickhouse://user:password@host:8123``, ``clickhouses://`` for TLS) or in this process through its
``chdb://`` mode (the ClickHouse engine from the ``chdb`` package: ``chdb:///a/directory``).

Every failure comes back as a ``HistorianError`` that names the URL without its password and says what to
do. A server that is down or unreachable is tried again with a doubling backoff before that error.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

import pyarrow as pa

from plantlink.errors import HistorianError

log = logging.getLogger("plantlink.historian")

#: In-process engines by directory, each with the lock its queries take: chDB runs one engine per process,
#: shared by every historian in it.
_CHDB: dict[str, tuple[Any, threading.Lock]] = {}
_CHDB_LOCK = threading.Lock()


#: Every table's sorting key lies within one partition (a (tag, time) in one day), so ``FINAL`` need not merge
#: across partitions: it works on each in parallel.
SETTINGS = {"do_not_merge_across_partitions_select_final": 1}


def redact(url: str) -> str:
    """``url`` without its password (what error messages and logs show)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    user = f"{parts.username}:***@" if parts.username else "***@"
    return urlunsplit((parts.scheme, user + host, parts.path, parts.query, parts.fragment))


def is_in_process(url: str) -> bool:
    return url.startswith("chdb:")


@dataclass
class Retry:
    """How often and how patiently a server that cannot be reached is tried again."""

    attempts: int = 5
    first_wait_s: float = 0.2
    max_wait_s: float = 5.0


class Client:
    """Commands, Arrow queries and Arrow inserts against one ClickHouse (a server or the in-process engine)."""

    def __init__(self, url: str, retry: Retry | None = None, connect_timeout_s: float = 10.0,
                 settings: dict[str, object] | None = None):
        self.url = url
        self.settings = settings or {}
        self.shown = redact(url)
        self.retry = retry or Retry()
        self.in_process = is_in_process(url)
        self._timeout = connect_timeout_s
        self._client: Any = None
        # the in-process engine takes one query at a time; an HTTP client without a session id takes several
        self._lock: Any = contextlib.nullcontext()

    def open(self) -> None:
        try:
            import clickhouse_connect  # noqa: F401  (optional extra: plantlink[clickhouse])
        except ImportError as exc:
            raise HistorianError("the ClickHouse historian needs clickhouse-connect (and chdb for chdb:// URLs): "
                                 "pip install 'plantlink[clickhouse]'") from exc
        self._client = self._with_retry(self._connect)

    def _connect(self) -> Any:
        import clickhouse_connect

        if self.in_process:
            path = urlsplit(self.url).path or "memory"
            with _CHDB_LOCK:
                if path not in _CHDB:
                    _CHDB[path] = (clickhouse_connect.get_client(dsn=f"chdb://{path}", settings=dict(SETTINGS)),
                                   threading.Lock())
                client, self._lock = _CHDB[path]
                return client
        parts = urlsplit(self.url)
        if parts.scheme not in ("clickhouse", "clickhouses", "http", "https"):
            raise HistorianError(f"historian URL {self.shown}: use clickhouse://user:password@host:8123 "
                                 "(clickhouses:// for TLS) or chdb:///a/directory")
        secure = parts.scheme in ("clickhouses", "https")
        return clickhouse_connect.get_client(
            host=parts.hostname or "localhost", port=parts.port or (8443 if secure else 8123),
            username=unquote(parts.username or "default"), password=unquote(parts.password or ""),
            secure=secure, connect_timeout=self._timeout, autogenerate_session_id=False,
            settings={**SETTINGS, **self.settings})

    def close(self) -> None:
        client, self._client = self._client, None
        if client is not None and not self.in_process:  # the in-process engine stays for the process
            client.close()

    def command(self, sql: str) -> Any:
        return self._run(lambda c: c.command(sql), sql)

    def arrow(self, sql: str) -> pa.Table:
        return self._run(lambda c: c.query_arrow(sql, use_strings=True), sql)

    def insert(self, table: str, data: pa.Table) -> None:
        if data.num_rows:
            self._run(lambda c: c.insert_arrow(table, data), f"INSERT INTO {table}")

    def _run(self, call: Any, sql: str) -> Any:
        if self._client is None:
            raise HistorianError(f"the ClickHouse historian at {self.shown} is not open")

        def once() -> Any:
            with self._lock:
                return call(self._client)

        return self._with_retry(once, sql)

    def _with_retry(self, call: Any, sql: str = "") -> Any:
        wait = self.retry.first_wait_s
        for attempt in range(1, self.retry.attempts + 1):
            try:
                return call()
            except HistorianError:
                raise
            except Exception as exc:
                if not _unreachable(exc) or attempt == self.retry.attempts:
                    raise self._explain(exc, sql) from exc
                log.warning("historian: ClickHouse at %s unreachable (attempt %d of %d), again in %.1f s: %s",
                            self.shown, attempt, self.retry.attempts, wait, _first_line(exc))
                time.sleep(wait)
                wait = min(wait * 2, self.retry.max_wait_s)
        raise AssertionError("unreachable")

    def _explain(self, exc: Exception, sql: str) -> HistorianError:
        text = _first_line(exc)
        where = f"ClickHouse at {self.shown}"
        if _unreachable(exc):
            return HistorianError(f"{where} cannot be reached after {self.retry.attempts} attempts ({text}): "
                                  "start it, or check the host, the port and the firewall")
        if "AUTHENTICATION_FAILED" in text or "Code: 516" in text or "password is incorrect" in text:
            return HistorianError(f"{where} refused the user name or password: set the right ones in the URL")
        if "UNKNOWN_DATABASE" in text or "Code: 81" in text:
            return HistorianError(f"{where}: the database does not exist: create it (CREATE DATABASE name) or "
                                  "name an existing one in the URL")
        return HistorianError(f"{where} failed{' on ' + sql.split()[0] if sql else ''}: {text}")


def _unreachable(exc: Exception) -> bool:
    from clickhouse_connect.driver.exceptions import OperationalError

    return isinstance(exc, OperationalError | ConnectionError | TimeoutError)


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__
