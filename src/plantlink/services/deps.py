"""The narrow interfaces the services depend on (what they call of the historian, the store and the engines).

A service takes these, never the runtime: tests can hand in fakes, and a remote implementation can stand in.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import pyarrow as pa

    from plantlink.engines.states import StateChange
    from plantlink.store import DowntimeEvent, Interval, Lost, Page, Pareto


class SampleReader(Protocol):
    """What the services read of the historian."""

    def raw(self, tag_id: int, start_us: int, end_us: int, limit: int = 100_000) -> pa.Table: ...

    def raw_many(self, tag_ids: Sequence[int], start_us: int, end_us: int, limit: int = 100_000) -> pa.Table: ...

    def last_before(self, tag_id: int, before_us: int) -> pa.Table: ...

    def aggregate(self, tag_ids: Sequence[int], start_us: int, end_us: int, interval_us: int,
                  aggregates: Sequence[Any] = ...) -> pa.Table: ...

    def downsample(self, tag_id: int, start_us: int, end_us: int, n_out: int = 1000) -> pa.Table: ...


class StateRecords(Protocol):
    """What the services read of the relational store (state intervals, restarts, downtime events)."""

    def intervals(self, start_us: int, end_us: int, machines: Sequence[str] | None = None,
                  line: str | None = None, open_until: int | None = None) -> list[Interval]: ...

    def spans(self, start_us: int, end_us: int, machines: Sequence[str] | None = None,
              open_until: int | None = None) -> list[tuple[str, int, int, str]]: ...

    def cuts(self, start_us: int, end_us: int) -> list[int]: ...

    def event(self, event_id: int) -> DowntimeEvent: ...

    def downtime(self, *, start_us: int | None = None, end_us: int | None = None, limit: int = 50,
                 offset: int = 0, **filters: Any) -> Page: ...

    def losses(self, start_us: int, end_us: int, **filters: Any) -> list[Lost]: ...

    def pareto(self, by: str, start_us: int, end_us: int, line: str | None = None,
               site: str | None = None) -> Pareto: ...


class CurrentStates(Protocol):
    """The state engine's view of now: machine path -> (state, since us)."""

    def current(self) -> dict[str, tuple[str, int]]: ...


class StateSource(CurrentStates, Protocol):
    """The state engine as the services see it: the states now, and each change as it happens (the live feed)."""

    def add_listener(self, fn: Callable[[StateChange], None]) -> None: ...
