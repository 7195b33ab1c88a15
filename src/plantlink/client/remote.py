"""Remote mode: a running plantlink's REST API (``/api/v1``) with a bearer API token, over httpx.

Raw samples come from the trend export as an Arrow IPC stream (``/api/v1/export/trend?format=arrow``: streamed
by the server batch by batch and read as it comes, one site per request, audited there as ``export.trend`` with
``format`` ``arrow``; a server without it is asked for Parquet); the rest from the JSON routes. An error
answer (the API's one envelope, ``{"error": {"status", "code", "message", "field"}}``) is raised as the
``plantlink.errors`` class of its status; a server that cannot be reached as ``ServerUnreachable``."""

from __future__ import annotations

import io
import ssl
from collections.abc import Iterator, Sequence
from typing import Any

import httpx
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.ipc as ipc
import pyarrow.parquet as pq

from plantlink.api.timefmt import iso
from plantlink.client.frames import RAW_SCHEMA
from plantlink.errors import (
    AccessDenied,
    Conflict,
    InvalidValue,
    NotFound,
    PlantlinkError,
    QueryError,
    RequestError,
    Unauthenticated,
    Unavailable,
)

_BY_STATUS: dict[int, type[PlantlinkError]] = {400: QueryError, 401: Unauthenticated, 403: AccessDenied,
                                               404: NotFound, 409: Conflict, 422: InvalidValue, 503: Unavailable}


class ServerUnreachable(Unavailable):
    """No answer from the server (refused, timed out, TLS failed)."""


class RemoteError(PlantlinkError):
    """An error answer of a status no other class names (e.g. 429, 500): ``status`` and ``code`` as answered."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None):
        super().__init__(message, field)
        self.status, self.code = status, code


def error_of(r: httpx.Response) -> PlantlinkError:
    """The exception an error answer stands for, with the server's message (and correlation id)."""
    try:
        body = r.json()["error"]
        code, message, field = str(body.get("code")), str(body.get("message")), body.get("field")
        if body.get("id"):
            message += f" (correlation id {body['id']})"
    except (ValueError, KeyError, TypeError, AttributeError):
        code, message, field = "http", f"HTTP {r.status_code}: {r.text[:200]}", None
    cls = _BY_STATUS.get(r.status_code)
    if r.status_code == 400 and code != "bad_query":
        cls = RequestError
    err: PlantlinkError = cls(f"{message} [{r.request.method} {r.request.url.path}]", field) if cls \
        else RemoteError(r.status_code, code, message, field)
    err.code = code
    if r.status_code == 401:
        err.args = (f"{err.args[0]}: check the token given to plantlink.connect(url, token=...)",)
    return err


_READ = 1 << 20


class _Chunks(io.RawIOBase):
    """A readable file over an iterator of byte chunks (an HTTP body as it arrives)."""

    def __init__(self, chunks: Iterator[bytes]):
        super().__init__()
        self._chunks, self._left = chunks, memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        while not self._left:
            nxt = next(self._chunks, None)
            if nxt is None:
                return 0
            self._left = memoryview(nxt)
        n = min(len(b), len(self._left))
        b[:n] = self._left[:n]
        self._left = self._left[n:]
        return n


class HttpSource:
    def __init__(self, url: str, token: str | None, *, verify: bool | str | ssl.SSLContext = True,
                 timeout: float = 60.0):
        self.where = url.rstrip("/")
        headers = {"authorization": f"Bearer {token}"} if token else {}
        if isinstance(verify, str):  # a CA bundle (or the server's own self-signed certificate)
            verify = ssl.create_default_context(cafile=verify)
        self.http = httpx.Client(base_url=self.where, headers=headers, verify=verify, timeout=timeout)
        self._arrow = True

    def close(self) -> None:
        self.http.close()

    def _get(self, path: str, params: dict[str, Any]) -> httpx.Response:
        try:
            r = self.http.get(path, params={k: v for k, v in params.items() if v is not None})
        except httpx.HTTPError as exc:
            raise ServerUnreachable(f"cannot reach plantlink at {self.where} ({type(exc).__name__}: {exc}); is "
                                    "the server running, and the URL right?") from exc
        if r.status_code >= 400:
            raise error_of(r)
        return r

    def _json(self, path: str, **params: Any) -> dict[str, Any]:
        out: dict[str, Any] = self._get(path, params).json()
        return out

    # -- what the REST API answers -------------------------------------------------------------------------
    def tag_paths(self) -> list[str]:
        out: list[str] = []
        while True:
            page = self._json("/api/v1/tags", limit=1000, offset=len(out))
            out += [t["path"] for t in page["items"]]
            if not page["items"] or len(out) >= page["total"]:
                return out

    def trend(self, paths: Sequence[str], start_us: int, end_us: int) -> pa.Table:
        params = {"tag": list(paths), "start": iso(start_us), "end": iso(end_us)}
        if self._arrow:
            try:
                return self._arrow_trend(params)
            except QueryError as exc:
                if exc.field != "format":
                    raise
                self._arrow = False  # a server before the Arrow export: Parquet from now on
        r = self._get("/api/v1/export/trend", params | {"format": "parquet"})
        t = pq.read_table(io.BytesIO(r.content))
        return pa.table([t.column("tag"), pc.cast(t.column("time_utc"), pa.timestamp("us", tz="UTC")),
                         t.column("value").cast(pa.float64()), t.column("quality")], schema=RAW_SCHEMA)

    def _arrow_trend(self, params: dict[str, Any]) -> pa.Table:
        """The trend export as an Arrow IPC stream, decoded batch by batch as the bytes arrive."""
        try:
            with self.http.stream("GET", "/api/v1/export/trend", params=params | {"format": "arrow"}) as r:
                if r.status_code >= 400:
                    r.read()
                    raise error_of(r)
                reader = ipc.open_stream(io.BufferedReader(_Chunks(r.iter_bytes(_READ)), _READ))
                t = reader.read_all()
        except httpx.HTTPError as exc:
            raise ServerUnreachable(f"the trend export from {self.where} broke off ({type(exc).__name__}: {exc})"
                                    ) from exc
        return pa.table([t.column(f.name) for f in RAW_SCHEMA], schema=RAW_SCHEMA)

    def aggregate(self, paths: Sequence[str], start_us: int, end_us: int, interval_us: int,
                  aggregates: Sequence[str]) -> dict[str, Any]:
        return self._json("/api/v1/history/aggregate", tag=list(paths), start=iso(start_us), end=iso(end_us),
                          interval=f"{interval_us // 1000}ms", aggregates=",".join(aggregates))

    def latest(self, paths: Sequence[str]) -> list[dict[str, Any]]:
        values: list[dict[str, Any]] = self._json("/api/v1/values", tag=list(paths))["values"]
        return values

    def timeline(self, machine: str, start_us: int, end_us: int, limit: int, offset: int) -> dict[str, Any]:
        return self._json("/api/v1/states/timeline", machine=machine, start=iso(start_us), end=iso(end_us),
                          limit=limit, offset=offset)

    def oee(self, scope: str, start_us: int, end_us: int) -> dict[str, Any]:
        return self._json("/api/v1/oee", scope=scope, start=iso(start_us), end=iso(end_us))

    def energy(self, scope: str, start_us: int, end_us: int, by: str | None) -> dict[str, Any]:
        return self._json("/api/v1/energy", scope=scope, start=iso(start_us), end=iso(end_us), by=by)

    def downtime(self, where: dict[str, str], start_us: int, end_us: int, limit: int, offset: int
                 ) -> dict[str, Any]:
        return self._json("/api/v1/downtime", **where, start=iso(start_us), end=iso(end_us), limit=limit,
                          offset=offset)
