"""The connector interface: one small lifecycle (construct = validate, start, write, stop).

A connector serves one device and all the points (tags) that read from it. It emits columnar batches
(``plantlink.samples``) into a sink; it never blocks the sink's caller and never raises out of its
background tasks: a device that is down marks its points bad and reports it in ``health``. Every batch goes
through ``emit``, which checks it (``plantlink.connectors.guard``: timestamps ahead of the clock, values that
are not numbers) before the sink sees it.
"""

from __future__ import annotations

import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, ClassVar

import pyarrow as pa
from pydantic import BaseModel

from plantlink.connectors.guard import SampleGuard
from plantlink.connectors.plugin import ConnectorPlugin, PointIssue
from plantlink.errors import ConnectorError
from plantlink.model.schema import Tag
from plantlink.model.types import DEFAULT_CLOCK_SKEW

__all__ = ["BatchSink", "ConnectionLost", "Connector", "ConnectorPlugin", "DeviceHealth", "DeviceState", "Point",
           "PointIssue"]

log = logging.getLogger("plantlink.connectors")

class ConnectionLost(ConnectorError):
    """A device connection (Modbus, S7) is unusable (closed, or a request went unanswered): reconnect."""


#: Where a connector delivers its batches. Must return quickly (the bus queues; it never does I/O inline).
BatchSink = Callable[[pa.RecordBatch], None]


@dataclass(frozen=True)
class Point:
    """One tag bound to its device: the id the historian knows it by, its path, its model and source."""

    tag_id: int
    path: str
    tag: Tag
    source: BaseModel


class DeviceState(StrEnum):
    CONNECTING = "connecting"
    CONNECTED = "connected"
    RECONNECTING = "reconnecting"
    DOWN = "down"
    STOPPED = "stopped"


@dataclass
class DeviceHealth:
    """What a person needs to know about a device: is it talking, since when, and if not, why."""

    device: str
    protocol: str
    state: DeviceState = DeviceState.CONNECTING
    last_error: str | None = None
    since: float = field(default_factory=time.time)
    samples: int = 0
    errors: int = 0
    reconnects: int = 0
    #: Samples stamped more than the device's clock_skew ahead of this server (stored at arrival, uncertain).
    future_timestamps: int = 0
    #: The last such device timestamp (seconds since the epoch), as the device sent it.
    last_future_timestamp: float | None = None
    #: Samples whose value was NaN, infinite or missing while the device called it good or uncertain.
    bad_values: int = 0
    #: Replies that break the protocol (another function code, a wrong length): their points are bad.
    invalid_replies: int = 0
    #: Modbus exception replies (illegal address, device failure, ...): their points are bad.
    exception_replies: int = 0
    #: A connector's own figures (shown with the others), and problems a person should see although the device
    #: is connected (each a reason of the health report: the MQTT connector's Sparkplug metrics not made tags).
    extra: dict[str, Any] = field(default_factory=dict)
    issues: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.state == DeviceState.CONNECTED

    def set_state(self, state: DeviceState, error: str | None = None) -> None:
        """Change state; log only on good-to-bad and bad-to-good transitions."""
        was_ok = self.ok
        if error is not None:
            self.last_error = error
            self.errors += 1
        if state == self.state:
            return
        self.state = state
        self.since = time.time()
        if was_ok and not self.ok and state != DeviceState.STOPPED:
            log.warning("device %s (%s) is %s: %s", self.device, self.protocol, state.value, error)
        elif not was_ok and self.ok:
            log.info("device %s (%s) is connected", self.device, self.protocol)
            if self.last_error is not None:
                self.reconnects += 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "device": self.device,
            "protocol": self.protocol,
            "status": self.state.value,
            "last_error": self.last_error,
            "since": self.since,
            "samples": self.samples,
            "errors": self.errors,
            "reconnects": self.reconnects,
            "future_timestamps": self.future_timestamps,
            "last_future_timestamp": self.last_future_timestamp,
            "bad_values": self.bad_values,
            "invalid_replies": self.invalid_replies,
            "exception_replies": self.exception_replies,
            **self.extra,
            **({"issues": list(self.issues)} if self.issues else {}),
        }


class Connector(ABC):
    """Base class of every connector. Subclasses implement ``start``, ``stop`` and optionally ``write``."""

    protocol: ClassVar[str] = ""
    #: The data directory of the running plant, set by the runtime before ``start``: where a connector keeps
    #: what must outlive a restart (OPC UA: certificates). None when the connector runs without one.
    data_dir: Path | None = None

    def __init__(self, device_id: str, config: BaseModel, points: Sequence[Point], sink: BatchSink):
        self.device_id = device_id
        self.config = config
        self.points = list(points)
        self.sink = sink
        self.health = DeviceHealth(device=device_id, protocol=self.protocol)
        skew = float(getattr(config, "clock_skew", DEFAULT_CLOCK_SKEW))
        self.guard = SampleGuard(device_id, self.health, skew, {p.tag_id: p.path for p in self.points})

    def emit(self, batch: pa.RecordBatch) -> None:
        """Check a batch (``SampleGuard``), hand it to the sink and count it."""
        if batch.num_rows:
            batch = self.guard.check(batch)
            self.health.samples += batch.num_rows
            self.sink(batch)

    @abstractmethod
    async def start(self) -> None:
        """Start background work and return at once; a device that is down must not make this fail."""

    @abstractmethod
    async def stop(self) -> None:
        """Stop background work and close connections."""

    def rebind(self, points: Sequence[Point]) -> bool:
        """Take a changed model's points while running (a plan that only added or removed tags of this device);
        False (the default) when the connector cannot: it is restarted with them instead."""
        return False

    async def write(self, point: Point, value: Any) -> None:
        """Write ``value`` to ``point`` on the device (used by the control path)."""
        raise NotImplementedError(f"{self.protocol} connector does not support writes")
