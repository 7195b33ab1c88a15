"""The bus interface: publish batches, subscribe to them. In-process first; MQTT and NATS later."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator

import pyarrow as pa


class Subscription(ABC):
    """A consumer's view of the bus: an async iterator of batches, closed by ``close()``."""

    name: str
    dropped: int

    @abstractmethod
    def __aiter__(self) -> AsyncIterator[pa.RecordBatch]: ...

    @abstractmethod
    def pending(self) -> int:
        """Batches queued and not yet consumed."""

    @abstractmethod
    def close(self) -> None: ...


class Bus(ABC):
    @abstractmethod
    def publish(self, batch: pa.RecordBatch) -> None:
        """Queue a batch for every subscriber; never blocks, never does I/O inline."""

    @abstractmethod
    def subscribe(self, name: str, maxsize: int = 0) -> Subscription:
        """Subscribe to every batch. ``maxsize=0``: lossless (unbounded); otherwise the oldest batch is
        dropped when the subscriber falls behind (for live views, never for storage)."""

    def backlog_bytes(self) -> int:
        """Bytes of batches held in memory for the slowest lossless subscriber (what the write-ahead log bounds by
        holding delivery on disk); 0 for a bus that does not hold batches in this process."""
        return 0

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release resources."""
