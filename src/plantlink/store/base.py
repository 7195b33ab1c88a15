"""``Store``: the relational store's one entry point. SQLite embedded by default, PostgreSQL by URL.

Every method runs in its own short transaction; nothing above this package speaks SQL.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from plantlink.datadir import STORE_FILE
from plantlink.errors import StoreOpenError
from plantlink.store import downtime, intervals, migrate, runs, trends
from plantlink.store.opening import first_line, mask, open_error, safe
from plantlink.store.pareto import pareto
from plantlink.store.records import END_STOP, DowntimeEvent, EndReason, Interval, Lost, Page, Pareto, Run
from plantlink.store.trends import Annotation, TrendView


def default_url(data_dir: str | Path) -> str:
    """The embedded SQLite database under the data directory."""
    return f"sqlite:///{Path(data_dir) / STORE_FILE}"


#: how long a connection to a PostgreSQL server may take (unless the URL says ``?connect_timeout=``)
CONNECT_TIMEOUT_S = 10
#: how long ``Store.status()`` answers from its last check
STATUS_EVERY_S = 2.0


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=5000")
    cur.close()


def _engine(url: str) -> sa.Engine:
    try:
        u = sa.make_url(url)
    except (sa.exc.ArgumentError, ValueError):  # ValueError: a port that is not a number
        raise StoreOpenError(f"invalid store URL {mask(url)!r}: give dialect+driver://user@host/database, e.g. "
                             "postgresql+psycopg://plantlink@db.example/plantlink", mask(url)) from None
    if u.get_backend_name() == "sqlite" and u.database not in (None, "", ":memory:"):
        Path(u.database).parent.mkdir(parents=True, exist_ok=True)
    try:
        # READ COMMITTED on PostgreSQL whatever the server's default: the audit chain's appenders read the head
        # that the previous one committed (see plantlink.store.locks)
        extra: dict[str, Any] = {} if u.get_backend_name() == "sqlite" else {"isolation_level": "READ COMMITTED"}
        if u.get_backend_name() == "postgresql" and "connect_timeout" not in u.query:
            extra["connect_args"] = {"connect_timeout": CONNECT_TIMEOUT_S}  # a server that is gone: not 2 minutes
        engine = sa.create_engine(u, pool_pre_ping=u.get_backend_name() != "sqlite", **extra)
    except (ImportError, sa.exc.ArgumentError) as exc:
        raise StoreOpenError(f"cannot use store URL {safe(u)}: {exc}", safe(u)) from None
    if u.get_backend_name() == "sqlite":
        sa.event.listen(engine, "connect", _sqlite_pragmas)
    return engine


class Store:
    """Repository of state intervals and downtime events. Build it with ``Store.open(url)``."""

    def __init__(self, engine: sa.Engine):
        self.engine = engine
        self._status: dict[str, Any] | None = None
        self._status_at = 0.0
        self._down_since: float | None = None

    @classmethod
    def open(cls, url: str) -> Store:
        """Connect and upgrade the schema to the newest revision. ``StoreUnavailable`` when the server does not
        answer, ``StoreOpenError`` when it refuses (credentials, no database, a newer schema): each names the URL
        without its password and what to do."""
        engine = _engine(url)
        try:
            migrate.upgrade(engine)
        except StoreOpenError:
            engine.dispose()
            raise
        except sa.exc.DBAPIError as exc:
            engine.dispose()
            raise open_error(engine.url, exc) from None
        return cls(engine)

    def close(self) -> None:
        self.engine.dispose()

    @property
    def revision(self) -> str | None:
        return migrate.current(self.engine)

    def status(self) -> dict[str, Any]:
        """What the health report shows of the store: its backend, its URL without the password, and whether it
        answers (checked at most every ``STATUS_EVERY_S``): ``reachable``, ``last_error``, ``down_since``."""
        now = time.monotonic()
        if self._status is not None and now - self._status_at < STATUS_EVERY_S:
            return self._status
        error = None
        try:
            with self.engine.connect() as c:
                c.execute(sa.text("SELECT 1"))
        except sa.exc.DBAPIError as exc:
            error = first_line(exc)
        if error is None:
            self._down_since = None
        elif self._down_since is None:
            self._down_since = time.time()
        self._status = {"backend": self.engine.dialect.name, "url": safe(self.engine.url), "reachable": not error,
                        "last_error": error, "down_since": self._down_since}
        self._status_at = now
        return self._status

    # -- state intervals -------------------------------------------------------------------------
    def open_interval(self, machine: str, line: str, state: str, start_us: int, shift: str | None = None,
                      meta: dict[str, int] | None = None) -> int:
        """Close the machine's open interval at ``start_us`` and open a new one; returns its id. ``meta`` keys
        are set in the same transaction (one commit instead of two)."""
        with self.engine.begin() as c:
            iid = intervals.open_interval(c, machine, line, state, start_us, shift)
            for key, value in (meta or {}).items():
                intervals.set_meta(c, key, value)
            return iid

    def close_interval(self, machine: str, end_us: int, reason: EndReason = END_STOP) -> int:
        """Close the machine's open interval at ``end_us``: a clean stop unless ``reason`` says otherwise."""
        with self.engine.begin() as c:
            return intervals.close_interval(c, machine, end_us, reason)

    def open_intervals(self) -> list[Interval]:
        with self.engine.connect() as c:
            return intervals.open_intervals(c)

    def intervals(self, start_us: int, end_us: int, machines: Sequence[str] | None = None,
                  line: str | None = None, open_until: int | None = None) -> list[Interval]:
        """Intervals overlapping [start_us, end_us), clipped to it; open ones end at ``open_until``."""
        with self.engine.connect() as c:
            return intervals.query(c, start_us, end_us, machines, line, open_until)

    def spans(self, start_us: int, end_us: int, machines: Sequence[str] | None = None,
              open_until: int | None = None) -> list[tuple[str, int, int, str]]:
        """(machine, start, end, state) of :meth:`intervals`: the light read for figures over weeks."""
        with self.engine.connect() as c:
            return intervals.spans(c, start_us, end_us, machines, open_until)

    def get_meta(self, key: str) -> int | None:
        with self.engine.connect() as c:
            return intervals.get_meta(c, key)

    def set_meta(self, key: str, value: int) -> None:
        with self.engine.begin() as c:
            intervals.set_meta(c, key, value)

    # -- runs --------------------------------------------------------------------------------------
    def begin_run(self, start_us: int, last_known_us: int | None) -> tuple[int, list[Run]]:
        """Close runs a crash left open (at the last known time), open one at ``start_us``; returns its id and
        the runs closed."""
        with self.engine.begin() as c:
            return runs.begin(c, start_us, last_known_us)

    def end_run(self, run_id: int, end_us: int) -> None:
        with self.engine.begin() as c:
            runs.end(c, run_id, end_us)

    def runs(self, start_us: int, end_us: int) -> list[Run]:
        """Runs overlapping ``[start_us, end_us)``, oldest first."""
        with self.engine.connect() as c:
            return runs.listing(c, start_us, end_us)

    def cuts(self, start_us: int, end_us: int) -> list[int]:
        """Instants in the range that counter samples are not continuous across: restarts (see ``store.runs``)."""
        with self.engine.connect() as c:
            return runs.cuts(c, start_us, end_us)

    # -- downtime events -------------------------------------------------------------------------
    def open_event(self, machine: str, line: str, site: str, start_us: int, state: str,
                   shift: str | None = None) -> int:
        with self.engine.begin() as c:
            return downtime.open_event(c, machine, line, site, start_us, state, shift)

    def close_event(self, event_id: int, end_us: int, state: str, micro: bool,
                    reason: EndReason = "change") -> DowntimeEvent:
        with self.engine.begin() as c:
            return downtime.close_event(c, event_id, end_us, state, micro, reason)

    def delete_event(self, event_id: int) -> None:
        """Remove an event (the downtime engine drops stops that lasted no time)."""
        with self.engine.begin() as c:
            downtime.delete(c, event_id)

    def mark_micro(self, event_ids: list[int], micro: bool) -> None:
        """Set the micro-stop flag of events (the pieces of one stop cut at shift changes)."""
        with self.engine.begin() as c:
            downtime.mark_micro(c, event_ids, micro)

    def event(self, event_id: int) -> DowntimeEvent:
        with self.engine.connect() as c:
            return downtime.get(c, event_id)

    def open_events(self) -> list[DowntimeEvent]:
        with self.engine.connect() as c:
            return downtime.open_events(c)

    def downtime(self, *, start_us: int | None = None, end_us: int | None = None, limit: int = 50,
                 offset: int = 0, **filters: Any) -> Page:
        """Events overlapping the range, newest first; filters: machine, line, site, state, micro, shift,
        has_reason."""
        with self.engine.connect() as c:
            return downtime.page(c, start_us=start_us, end_us=end_us, limit=limit, offset=offset, **filters)

    def losses(self, start_us: int, end_us: int, **filters: Any) -> list[Lost]:
        """What the events overlapping the range lost, oldest first, in one query (filters as :meth:`downtime`)."""
        with self.engine.connect() as c:
            return downtime.losses(c, start_us, end_us, **filters)

    def set_reason(self, event_id: int, group: str | None, reason: str | None, by: str, at_us: int,
                   comment: str | None = None) -> DowntimeEvent:
        with self.engine.begin() as c:
            return downtime.set_reason(c, event_id, group, reason, by, at_us, comment)

    def pareto(self, by: str, start_us: int, end_us: int, line: str | None = None,
               site: str | None = None) -> Pareto:
        with self.engine.connect() as c:
            return pareto(c, by, start_us, end_us, line, site)

    # -- trend annotations and saved views ---------------------------------------------------------
    def add_annotation(self, a: Annotation) -> Annotation:
        with self.engine.begin() as c:
            return trends.add_annotation(c, a)

    def annotation(self, annotation_id: int) -> Annotation:
        with self.engine.connect() as c:
            return trends.get_annotation(c, annotation_id)

    def annotations(self, machine: str, start_us: int, end_us: int, limit: int = 1000) -> list[Annotation]:
        with self.engine.connect() as c:
            return trends.list_annotations(c, machine, start_us, end_us, limit)

    def delete_annotation(self, annotation_id: int) -> None:
        with self.engine.begin() as c:
            trends.delete_annotation(c, annotation_id)

    def add_view(self, v: TrendView) -> TrendView:
        with self.engine.begin() as c:
            return trends.add_view(c, v)

    def view(self, view_id: int) -> TrendView:
        with self.engine.connect() as c:
            return trends.get_view(c, view_id)

    def views(self, owner: str, shared_sites: Sequence[str], machine: str | None = None) -> list[TrendView]:
        with self.engine.connect() as c:
            return trends.views(c, owner, shared_sites, machine)

    def delete_view(self, view_id: int) -> None:
        with self.engine.begin() as c:
            trends.delete_view(c, view_id)
