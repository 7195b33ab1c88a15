"""The edge's forwarder to a NATS JetStream central (``edge: {nats: {url: nats://..., site: ...}}``): batches from
the disk queue into the stream ``PLANTLINK_SAMPLES`` (docs/scale-out.md), in order.

Up to ``inflight`` batches are published at once, each with its message id (``<site>.<edge>@<epoch>:<seq>``, so
JetStream drops a batch sent again after a lost acknowledgement) and each acknowledged by JetStream once stored;
the queue's cursor then moves over the longest acknowledged prefix. A failure (NATS down, no stream yet, a
timeout) ends the connection: what is not acknowledged stays in the queue and is sent again from the cursor on
the next one, after a backoff. The edge's status (the queue's figures) goes every ``status_interval`` to the core
NATS subject ``plantlink.status.<site>.<edge>`` (not stored: for whoever listens).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable
from typing import Any

from plantlink.edge.payload import PathTable
from plantlink.edge.queue import EdgeQueue
from plantlink.ingest.stream import publish_batch, token
from plantlink.model.edge import EdgeSettings
from plantlink.tasks import cancel_and_wait

log = logging.getLogger("plantlink.edge.forward")

RECONNECT_S = (0.2, 0.5, 1.0, 2.0, 5.0)


class NatsForwarder:
    def __init__(self, settings: EdgeSettings, queue: EdgeQueue, paths: PathTable,
                 extra_status: Callable[[], dict[str, Any]] | None = None):
        assert settings.nats is not None, "the NATS forwarder needs nats: {url: ..., site: ...}"
        self.settings, self.nats = settings, settings.nats
        self.queue, self.paths = queue, paths
        self.extra_status = extra_status or dict
        self.status_subject = f"plantlink.status.{token(self.nats.site)}.{token(settings.name)}"
        self.connected = False
        self.connects = 0
        self.sent_batches = 0
        self.duplicates = 0  # batches JetStream already had (a resend after a lost acknowledgement)
        self.last_error: str | None = None
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._nc: Any = None

    def wake(self) -> None:
        self._wake.set()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="edge-forwarder-nats")

    async def stop(self) -> None:
        await cancel_and_wait([self._task], "edge forwarder (NATS)")
        nc, self._nc = self._nc, None
        if nc is not None:
            with contextlib.suppress(Exception):
                if self.connected:
                    await nc.publish(self.status_subject, json.dumps(self.status(online=False)).encode())
                await asyncio.wait_for(nc.close(), 5)
        self.connected = False

    async def _run(self) -> None:
        failures = 0
        while True:
            try:
                await self._session()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # NATS down, no stream, a timeout, a bug: resend from the queue's cursor
                self.last_error = f"{type(exc).__name__}: {exc}"
                failures += 1
            else:
                failures = 0
            await self._close()
            if failures == 1 or failures % 30 == 0:
                log.warning("edge %s: NATS %s: %s; %d samples wait in the queue", self.settings.name, self.nats.url,
                            self.last_error, self.queue.backlog_rows)
            await asyncio.sleep(RECONNECT_S[min(failures, len(RECONNECT_S) - 1)])

    async def _close(self) -> None:
        nc, self._nc = self._nc, None
        self.connected = False
        if nc is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(nc.close(), 5)

    async def _session(self) -> None:
        import nats

        self._nc = nc = await nats.connect(self.nats.url, connect_timeout=2, allow_reconnect=False,
                                           name=f"plantlink-edge-{self.settings.name}")
        js = nc.jetstream()
        self.connected, self.last_error = True, None
        self.connects += 1
        log.info("edge %s: connected to %s; forwarding from batch %d", self.settings.name, self.nats.url,
                 self.queue.acked_seq + 1)
        next_status = 0.0
        while nc.is_connected:
            if time.monotonic() >= next_status:
                await nc.publish(self.status_subject, json.dumps(self.status()).encode())
                next_status = time.monotonic() + self.settings.status_interval
            if not await self._send_window(js):
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), max(0.05, next_status - time.monotonic()))
        raise OSError("connection lost")

    async def _send_window(self, js: Any) -> bool:
        """Publish the next ``inflight`` batches at once; move the cursor over the acknowledged prefix. False when
        the queue had nothing to send; raises (after moving the cursor) when one failed."""
        items = self.queue.read(self.queue.acked_seq, self.settings.inflight)
        if not items:
            return False
        name, epoch, site = self.settings.name, self.queue.epoch, self.nats.site
        results = await asyncio.gather(
            *(publish_batch(js, site, name, seq, self.paths.encode(name, seq, batch, epoch), epoch)
              for seq, batch in items), return_exceptions=True)
        for (seq, _batch), res in zip(items, results, strict=True):
            if isinstance(res, BaseException):
                raise res
            self.duplicates += not res
            self.queue.confirm(seq)
            self.sent_batches += 1
        return True

    def status(self, online: bool = True) -> dict[str, Any]:
        return {"online": online, "edge": self.settings.name, "site": self.nats.site, "ts": time.time(),
                "connected": self.connected, "duplicates": self.duplicates,
                "alarm_at": self.settings.queue.alarm_at, "when_full": self.settings.queue.when_full,
                **self.queue.status(), **self.extra_status()}
