"""What the control path needs of the running system, and nothing more (not the runtime).

``Runtime`` builds one ``ControlWiring`` for its ``ControlService``; a test or an embedding builds it from
its own parts (``ControlWiring.of(runtime)`` takes them from a started runtime).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import pyarrow as pa

from plantlink.connectors.base import Connector
from plantlink.model import Plant


class LatestSource(Protocol):
    """The latest sample of tags (``services.latest.LatestValues``): ``tag_id``, ``ts``, ``value``,
    ``quality``, ``text`` per id, in the order asked."""

    def table(self, tag_ids: Sequence[int]) -> pa.Table: ...


class MetaStore(Protocol):
    """Where the per-site control switch is kept (the relational store)."""

    def get_meta(self, key: str) -> int | None: ...

    def set_meta(self, key: str, value: int) -> None: ...


@dataclass(frozen=True)
class ControlWiring:
    plant: Plant
    tag_ids: Mapping[str, int]
    latest: LatestSource
    #: The running connectors by device id (they start after the control service is built).
    connectors: Callable[[], Mapping[str, Connector]]
    #: The store keeping the site switches, when there is one.
    meta: Callable[[], MetaStore | None]

    @classmethod
    def of(cls, runtime: Any) -> ControlWiring:
        """The wiring of a started runtime (its parts looked up when used)."""
        return cls(runtime.plant, runtime.tag_ids, runtime.latest, lambda: runtime.connectors, lambda: runtime.store)
