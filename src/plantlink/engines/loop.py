"""The loop every streaming engine runs: consume a lossless bus subscription, tick on a timer.

A batch or a tick that fails is logged and counted in the engine's ``errors``; it never stops the loop.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

import pyarrow as pa

from plantlink.bus import Subscription
from plantlink.tasks import cancel_and_wait

log = logging.getLogger("plantlink.engines")


class StreamingEngine(Protocol):
    errors: int

    def feed(self, batch: pa.RecordBatch) -> object: ...

    def tick(self) -> object: ...


async def consume(engine: StreamingEngine, sub: Subscription, *, name: str, tick_interval: float = 1.0) -> None:
    """Feed every batch of ``sub`` to ``engine`` (bound to its tag ids beforehand) until the subscription
    closes, ticking meanwhile."""

    async def ticker() -> None:
        while True:
            await asyncio.sleep(tick_interval)
            try:
                engine.tick()
            except Exception:
                engine.errors += 1
                log.exception("%s engine: tick failed", name)

    task = asyncio.create_task(ticker(), name=f"{name}-ticker")
    try:
        async for batch in sub:
            try:
                engine.feed(batch)
            except Exception:
                engine.errors += 1
                log.exception("%s engine could not use a batch of %d rows", name, batch.num_rows)
    finally:
        await cancel_and_wait([task], f"{name} engine")
