"""``plantlink ingest`` workers in process against a real nats-server: stored once, shared, NATS restarted."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import nats
import pytest

from plantlink.ingest.lease import Leases
from plantlink.ingest.stream import STREAM, ConsumerSettings, consumer_name, ensure_stream
from plantlink.ingest.worker import IngestSettings, IngestWorker
from plantlink.tasks import cancel_and_wait
from tests.ingest.natsserver import NatsServer
from tests.ingest.rig import ROWS, SITES, count_dir, payload, plant, publish
from tests.waiting import patience, wait_for

pytestmark = pytest.mark.service


def settings(server: NatsServer, name: str) -> IngestSettings:
    return IngestSettings(url=server.url, worker=name, lease_ttl=3.0,
                          consumer=ConsumerSettings(ack_wait=1.0, max_ack_pending=8))


def stored(w: IngestWorker) -> int:
    return sum(c.rows for c in w.counts.values())


async def drained(js: Any) -> bool:
    """Every site consumer has delivered everything and has nothing unacknowledged."""
    infos = [await js.consumer_info(STREAM, consumer_name(s)) for s in SITES]
    return all(i.num_ack_pending == 0 and i.num_pending == 0 for i in infos)


async def test_batches_are_stored_once_and_acknowledged(nats_server: NatsServer, tmp_path: Path) -> None:
    nc = await nats.connect(nats_server.url)
    js = nc.jetstream()
    await ensure_stream(js)
    n = 12
    new = [await publish(js, s, range(n)) for s in SITES]
    assert new == [n, n]
    assert await publish(js, SITES[0], range(3)) == 0  # the same message ids again: JetStream drops them
    # a resend without a message id (as an MQTT edge's): in the stream twice, stored once
    await js.publish(f"plantlink.samples.{SITES[1]}.e1.batch", payload(SITES[1], 0))
    acquired: list[str] = []

    async def on_acquire(site: str) -> None:
        acquired.append(site)

    w = IngestWorker(plant(tmp_path), tmp_path / "w1", settings(nats_server, "w1"), on_acquire=on_acquire)
    await w.start()
    try:
        await wait_for(lambda: stored(w) == 2 * n * ROWS + ROWS, what="every batch stored")

        await wait_for(lambda: drained(js), what="every message acknowledged")
        st = w.status()
        assert st["nats"]["connected"] is True
        assert {s for s, v in st["sites"].items() if v["owned"]} == set(SITES) == set(acquired)
    finally:
        await w.stop()
        await nc.close()
    rows, pairs = count_dir(tmp_path / "w1")
    assert rows == len(pairs) == 2 * n * ROWS


async def test_two_workers_share_the_sites_and_store_everything_once(nats_server: NatsServer,
                                                                    tmp_path: Path) -> None:
    p = plant(tmp_path)
    w1 = IngestWorker(p, tmp_path / "w1", settings(nats_server, "w1"))
    w2 = IngestWorker(p, tmp_path / "w2", settings(nats_server, "w2"))
    await w1.start()
    await wait_for(lambda: w1.leases is not None and len(w1.leases.held) == 2, what="w1 owns both sites")
    await w2.start()
    overlaps: list[str] = []

    def balanced() -> bool:
        for s in SITES:  # checked on every poll: never two owners acting for one site
            if all(w.leases is not None and w.leases.valid(s) for w in (w1, w2)):
                overlaps.append(s)
        return all(w.leases is not None and len(w.leases.held) == 1 for w in (w1, w2))

    nc = await nats.connect(nats_server.url)
    js = nc.jetstream()
    n = 10
    try:
        await wait_for(balanced, what="one site each")
        for s in SITES:
            await publish(js, s, range(n))
        # drained: every batch stored and acknowledged (a batch redelivered after a slow ack on a loaded
        # machine is stored again by its site's owner: the write counters may pass the total, the rows not)
        await wait_for(lambda: drained(js), what="every batch stored and acknowledged")
        balanced()
    finally:
        await nc.close()
        await w1.stop()
        await w2.stop()
    assert overlaps == []
    (r1, p1), (r2, p2) = count_dir(tmp_path / "w1"), count_dir(tmp_path / "w2")
    assert r1 == r2 == n * ROWS  # one site each, every sample once
    assert len(p1 | p2) == 2 * n * ROWS and not p1 & p2


async def test_nats_restarted_mid_stream_the_worker_reconnects_and_catches_up(nats_server: NatsServer,
                                                                               tmp_path: Path) -> None:
    nc = await nats.connect(nats_server.url, max_reconnect_attempts=-1, reconnect_time_wait=0.2)
    js = nc.jetstream()
    await ensure_stream(js)
    n = 40
    for s in SITES:
        await publish(js, s, range(n))
    w = IngestWorker(plant(tmp_path), tmp_path / "w1", settings(nats_server, "w1"))
    seen: list[dict[str, Any]] = []
    await w.start()
    try:
        await wait_for(lambda: stored(w) > 0, what="the first batches stored")
        await nats_server.stop()
        await wait_for(lambda: not w.status()["nats"]["connected"], what="health shows NATS down")
        seen.append(w.status())
        await nats_server.start()
        await wait_for(lambda: w.status()["nats"]["connected"], what="health shows NATS back")
        for s in SITES:  # the publishers' second half, after the outage
            await publish(js, s, range(n, 2 * n))
        await wait_for(lambda: drained(js), what="caught up: every batch stored and acknowledged")
    finally:
        await w.stop()
        await nc.close()
    assert seen[0]["nats"]["last_error"]
    rows, pairs = count_dir(tmp_path / "w1")
    assert rows == len(pairs) == 2 * 2 * n * ROWS


async def test_a_failed_store_is_not_acknowledged_and_is_stored_once_on_redelivery(nats_server: NatsServer,
                                                                                    tmp_path: Path) -> None:
    calls: list[str] = []

    def on_stored(site: str, batches: list[Any]) -> None:
        calls.append(site)
        if len(calls) == 1:
            raise RuntimeError("the first fetch fails after its flush, before its acknowledgement")

    nc = await nats.connect(nats_server.url)
    js = nc.jetstream()
    await ensure_stream(js)
    n = 5
    await publish(js, SITES[0], range(n))
    w = IngestWorker(plant(tmp_path), tmp_path / "w1", settings(nats_server, "w1"), on_stored=on_stored)
    await w.start()
    try:
        await wait_for(lambda: len(calls) >= 2 and drained(js), what="redelivered, stored and acknowledged")
        assert w.counts[SITES[0]].redelivered > 0 and w.status()["nats"]["last_error"]
    finally:
        await w.stop()
        await nc.close()
    rows, pairs = count_dir(tmp_path / "w1")
    assert rows == len(pairs) == n * ROWS


async def test_a_worker_whose_lease_loop_swallows_a_cancellation_still_stops(nats_server: NatsServer,
                                                                             tmp_path: Path,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """Python 3.11's ``asyncio.wait_for`` (under nats-py's requests) drops a cancellation that arrives as the
    reply does: the lease loop then goes on as if nothing happened. ``stop`` must end anyway (it hung, once in
    CI, after a NATS restart)."""
    trapped = asyncio.Event()
    swallowed: list[bool] = []
    announce = Leases.announce

    async def announce_then_swallow(self: Leases) -> None:
        await announce(self)
        if not swallowed:
            trapped.set()
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                swallowed.append(True)  # returns as if the reply had come: the cancellation is gone

    monkeypatch.setattr(Leases, "announce", announce_then_swallow)
    w = IngestWorker(plant(tmp_path), tmp_path / "w1", settings(nats_server, "w1"))
    await w.start()
    await wait_for(trapped.is_set, what="the lease loop waits in a request")
    stopping = asyncio.create_task(w.stop())
    done, _ = await asyncio.wait({stopping}, timeout=patience(20))  # cancel_and_wait cancels again after 1 s
    if not done:  # (a second cancellation of stop() itself gets through)
        await cancel_and_wait([stopping], "the test's stop")
    assert done, "stop() hangs on a lease loop that swallowed its cancellation"
    assert swallowed == [True]
    assert all(t.done() for t in asyncio.all_tasks() if t.get_name().startswith("ingest"))
