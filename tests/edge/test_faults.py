"""Fault tests with counts, with the edge and the central as real processes (``plantlink edge``, ``plantlink
run``) and real Mosquitto brokers: a broker local to the edge (its MQTT connector reads the samples the test
publishes, each with its own time) and the central's broker (persistent, as a site's broker is).

After a restart of the central's broker during a stream, an edge kill -9 in the middle of a burst, and a
central outage (kill -9, down for ``PLANTLINK_EDGE_OUTAGE_S`` seconds, 60 by default as the issue asks), the
samples the edge produced (its queue's count of durable samples) equal the samples stored at the central, with
no duplicate (tag, ts); and every sample published while the edge was up and connected is there (an answer the
test knows by itself).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import pytest
import pytest_asyncio

from tests.connectors.mosquitto import MosquittoServer
from tests.edge.harness import T0_US, TAGS, Proc, central_yaml, count_in_dir, edge_yaml, free_port
from tests.waiting import wait_for

OUTAGE_S = float(os.environ.get("PLANTLINK_EDGE_OUTAGE_S", "60"))


class Watch:
    """The edge's retained status on the central's broker, as the central sees it."""

    def __init__(self, port: int):
        self.status: dict[str, Any] = {}
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2)
        self.client.on_message = lambda _c, _u, m: self._got(m.payload)
        self.client.on_connect = lambda c, _u, _f, _rc, _p: c.subscribe("plantlink/edge/e1/status", 1)
        self.client.connect_async("127.0.0.1", port)
        self.client.reconnect_delay_set(0.1, 0.5)
        self.client.loop_start()

    def _got(self, payload: bytes) -> None:
        self.status = json.loads(payload)

    def up(self) -> bool:
        s = self.status
        return bool(s.get("online") and s.get("connected") and s.get("devices", {}).get("local") == "connected")

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@dataclass
class Source:
    """Publishes samples k = 0, 1, ... to the edge's local broker: tag k % TAGS, time T0 + k ms, value k."""

    port: int
    next_k: int = 0
    sent: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2)
        self.client.connect("127.0.0.1", self.port)
        self.client.loop_start()

    def publish(self, n: int, per_s: float = 0.0) -> None:
        """``n`` samples, as fast as the broker takes them or at ``per_s`` (paced in this thread)."""
        start = time.monotonic()
        for i in range(n):
            k = self.next_k
            payload = json.dumps({"value": k, "ts": T0_US + k * 1000})
            self.client.publish(f"plant/t{k % TAGS}", payload, qos=1).wait_for_publish(30)
            self.sent.append(k)
            self.next_k += 1
            if per_s and (ahead := start + (i + 1) / per_s - time.monotonic()) > 0:
                time.sleep(ahead)  # pacing the source, not synchronising the test

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@dataclass
class Site:
    tmp: Path
    central_broker: MosquittoServer
    local_broker: MosquittoServer
    edge: Proc
    central: Proc
    watch: Watch
    source: Source

    @property
    def central_data(self) -> Path:
        return self.tmp / "central"

    def central_floor(self) -> int:
        try:
            state = json.loads((self.central_data / "edges-state.json").read_text())
            return max(int(v["floor"]) for k, v in state.items() if k.split("@")[0] == "e1")
        except (OSError, ValueError, KeyError):
            return 0

    async def start_central(self) -> None:
        mark = len(self.central.log.read_text()) if self.central.log.exists() else 0
        self.central.start()
        await wait_for(lambda: "edges: subscribed" in self.central.log.read_text()[mark:] or not self.central.alive(),
                       timeout=60, what="the central subscribed")
        assert self.central.alive(), self.central.output()

    async def start_edge(self) -> None:
        self.watch.status = {}
        self.edge.start()
        await wait_for(lambda: self.watch.up() or not self.edge.alive(), timeout=60, what="the edge up")
        assert self.edge.alive(), self.edge.output()

    async def settle(self, produced: int) -> dict[str, Any]:
        """Wait until the edge produced ``produced`` samples and the central stored them all; return the edge's
        last status."""
        def done() -> bool:
            s = self.watch.status
            return bool(s.get("online") and s.get("backlog_batches") == 0 and s.get("produced_rows", 0) >= produced
                        and self.central_floor() == s.get("committed_seq"))
        try:
            await wait_for(done, timeout=120, what="the edge's backlog stored at the central")
        except AssertionError as exc:  # what each side last said, to tell a stuck edge from a stuck central
            raise AssertionError(f"{exc}\nedge status: {self.watch.status}\ncentral floor: {self.central_floor()}"
                                 f"\n--- edge log ---\n{self.edge.output()[-2000:]}"
                                 f"\n--- central log ---\n{self.central.output()[-2000:]}") from None
        return dict(self.watch.status)


@pytest_asyncio.fixture
async def site(tmp_path: Path) -> AsyncIterator[Site]:
    async with make_site(tmp_path) as s:
        yield s


@contextlib.asynccontextmanager
async def make_site(tmp_path: Path, max_queued: int = 0, edge_extra: str = "") -> AsyncIterator[Site]:
    """``max_queued``: the central broker's queue limit per client (0: none); ``edge_extra``: more edge settings."""
    for d in ("cb", "lb"):
        (tmp_path / d).mkdir()
    cb = MosquittoServer(free_port(), tmp_path / "cb", persistence=True, max_queued=max_queued)
    lb = MosquittoServer(free_port(), tmp_path / "lb")
    await cb.start()
    await lb.start()
    (tmp_path / "edge.yaml").write_text(edge_yaml(cb.port, lb.port, extra=edge_extra))
    (tmp_path / "central.yaml").write_text(central_yaml(cb.port))
    edge = Proc(["edge", str(tmp_path / "edge.yaml"), "--data-dir", str(tmp_path / "edge")], tmp_path / "edge.log")
    central = Proc(["run", str(tmp_path / "central.yaml"), "--data-dir", str(tmp_path / "central"), "--no-api"],
                   tmp_path / "central.log")
    s = Site(tmp_path, cb, lb, edge, central, Watch(cb.port), Source(lb.port))
    try:
        yield s
    finally:
        s.source.close()
        s.watch.close()
        for p in (edge, central):
            if p.alive():
                p.stop()
        await lb.stop()
        await cb.stop()


def stored_after_stop(site: Site) -> tuple[int, int]:
    assert site.central.stop() == 0, site.central.output()
    return count_in_dir(site.central_data)


@pytest.fixture
def in_thread() -> Iterator[list[threading.Thread]]:
    threads: list[threading.Thread] = []
    yield threads
    for t in threads:
        t.join(120)


@pytest.mark.timeout(600)  # two edge starts and a central, as processes, on a loaded machine
async def test_edge_kill9_in_the_middle_of_a_burst_loses_and_duplicates_nothing(
        site: Site, in_thread: list[threading.Thread]) -> None:
    await site.start_central()
    await site.start_edge()
    burst = threading.Thread(target=site.source.publish, args=(4000, 2000.0))
    in_thread.append(burst)
    burst.start()
    await wait_for(lambda: (site.watch.status.get("produced_rows") or 0) >= 800, timeout=60,
                   what="the burst under way at the edge")
    site.edge.kill9()
    await asyncio.to_thread(burst.join, 120)
    await site.start_edge()  # the queue's backlog of the killed run is forwarded first
    base = site.watch.status["produced_rows"]  # what the killed run's queue held: acknowledged and waiting
    assert base >= 800
    first_after = site.source.next_k
    await asyncio.to_thread(site.source.publish, 1000)
    status = await site.settle(base + 1000)
    rows, distinct = stored_after_stop(site)
    assert status["produced_rows"] == base + 1000
    assert (rows, distinct) == (status["produced_rows"], status["produced_rows"])
    assert status["dropped_rows"] == 0 and status["refused_rows"] == 0
    assert await asyncio.to_thread(_values_present, site.central_data, range(first_after, site.source.next_k))


@pytest.mark.timeout(600)
@pytest.mark.parametrize("how", ["stop", "kill"])
async def test_a_broker_restart_during_a_stream_loses_and_duplicates_nothing(
        site: Site, in_thread: list[threading.Thread], how: str) -> None:
    """``stop``: the broker saves its sessions and queued messages; ``kill``: a crash, where it saves nothing
    (neither the central's session, nor the batches it acknowledged to the edge, nor the retained markers)."""
    await site.start_central()
    await site.start_edge()
    stream = threading.Thread(target=site.source.publish, args=(3000, 500.0))  # 6 s at 500 samples/s
    in_thread.append(stream)
    stream.start()
    await wait_for(lambda: (site.watch.status.get("produced_rows") or 0) >= 500, timeout=60,
                   what="the stream under way at the edge")
    site.central.pause()  # the central stalls: the broker holds batches it acknowledged to the edge
    queued = site.watch.status.get("committed_seq") or 0
    await wait_for(lambda: (site.watch.status.get("committed_seq") or 0) >= queued + 20, timeout=60,
                   what="batches forwarded to the broker while the central stalls")
    await (site.central_broker.stop() if how == "stop" else site.central_broker.kill())
    site.central.pause(False)
    await wait_for(lambda: site.source.next_k >= 1500 or not stream.is_alive(), timeout=60,
                   what="more samples while the broker is down")
    await site.central_broker.start()
    await asyncio.to_thread(stream.join, 120)
    status = await site.settle(site.source.next_k)
    rows, distinct = stored_after_stop(site)
    n = site.source.next_k
    assert (rows, distinct) == (n, n) == (status["produced_rows"],) * 2  # the edge was up all along: every sample
    assert status["dropped_rows"] == 0


@pytest.mark.timeout(600)
async def test_batches_a_broker_drops_are_sent_again(tmp_path: Path, in_thread: list[threading.Thread]) -> None:
    """A broker that acknowledges batches and then drops them (its queue for a stalled central is full): the
    central's stored floor stops short of what the broker took, and the edge sends them again."""
    async with make_site(tmp_path, max_queued=5, edge_extra="resend_after: 3s, inflight: 4") as site:
        await site.start_central()
        await site.start_edge()
        await asyncio.to_thread(site.source.publish, 200)
        await site.settle(200)
        site.central.pause()  # the broker queues for the central: 5, then drops the rest (it acknowledged them)
        stream = threading.Thread(target=site.source.publish, args=(1000, 500.0))
        in_thread.append(stream)
        stream.start()
        await asyncio.to_thread(stream.join, 120)
        committed = site.watch.status.get("committed_seq") or 0
        await wait_for(lambda: (site.watch.status.get("broker_seq") or 0) >= committed, timeout=60,
                       what="the broker acknowledged every batch (and dropped most)")
        site.central.pause(False)
        status = await site.settle(1200)
        assert status["resends"] >= 1, status  # it was the resend that delivered them
        rows, distinct = stored_after_stop(site)
        assert (rows, distinct) == (1200, 1200) == (status["produced_rows"],) * 2


@pytest.mark.timeout(OUTAGE_S + 600)  # the outage itself, then starts and the drain on a loaded machine
async def test_a_central_outage_loses_and_duplicates_nothing(site: Site, in_thread: list[threading.Thread]) -> None:
    await site.start_central()
    await site.start_edge()
    await asyncio.to_thread(site.source.publish, 500)
    site.central.kill9()
    outage_end = time.monotonic() + OUTAGE_S
    stream = threading.Thread(target=site.source.publish, args=(int(OUTAGE_S * 100), 100.0))  # 100 samples/s
    in_thread.append(stream)
    stream.start()
    await asyncio.to_thread(stream.join, OUTAGE_S + 120)
    assert time.monotonic() >= outage_end - 2.0
    await site.start_central()
    await asyncio.to_thread(site.source.publish, 500)
    status = await site.settle(site.source.next_k)
    rows, distinct = stored_after_stop(site)
    n = site.source.next_k
    assert (rows, distinct) == (n, n) == (status["produced_rows"],) * 2  # the edge was up all along: every sample
    assert status["dropped_rows"] == 0


def _values_present(data_dir: Path, ks: range) -> bool:
    from plantlink.historian import open_historian

    h = open_historian("duckdb", path=data_dir / "historian.duckdb")
    try:
        ids = [int(i) for i in h.tags().column("tag_id").to_pylist()]
        t = h.raw_many(ids, T0_US - 10**9, T0_US + 10**14, limit=10**8)
        values = {int(v) for v in t.column("value").to_pylist()}
    finally:
        h.close()
    missing = [k for k in ks if k not in values]
    assert not missing, f"{len(missing)} samples published while the edge was up are missing: {missing[:10]}"
    return True
