"""Engines per site in ``plantlink ingest``: the owner of a site runs its machine states, downtime and alarms over
the shared PostgreSQL store; a clean stop hands them over; the next owner resumes from the store."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import nats
import pytest
import sqlalchemy as sa

from plantlink.edge.payload import PathTable
from plantlink.ingest.stream import ensure_stream, publish_batch
from plantlink.ingest.worker import IngestWorker
from plantlink.model import load_plant, site_plant
from plantlink.samples import now_us, numeric_batch
from plantlink.store import Store
from plantlink.store.alarm_repo import AlarmStore
from plantlink.store.tables import state_intervals
from tests.edge.harness import Proc
from tests.ingest.natsserver import NatsServer
from tests.ingest.test_worker import settings
from tests.plants import plant_yaml, site_yaml
from tests.store.conftest import pg_url  # noqa: F401  (the fixture: a fresh PostgreSQL database)
from tests.waiting import wait_for

pytestmark = pytest.mark.service

SITES = ("sA", "sB")
MACHINE = "sA/a1/l1/m1"
ALARM = f"{MACHINE}/temp:high"
MACHINES = """- name: m1
  states: {state_tag: st}
  tags:
    - {name: st, source: {device: plc, address: 0}}
    - {name: temp, source: {device: plc, address: 1}, alarms: [{name: high, type: hi, limit: 80}]}
"""


def write_plant(directory: Path) -> Any:
    path = directory / "plant.yaml"
    sites = "".join(site_yaml(MACHINES, site=s) for s in SITES)
    path.write_text(plant_yaml("plc: {protocol: modbus, host: 127.0.0.1, port: 1, enabled: false}", sites=sites))
    return load_plant(path)


async def send(js: Any, seq: int, state: int, temp: float) -> int:
    """One edge batch of site sA: its machine's state (index in STATES) and temperature, now."""
    table = PathTable({1: f"{MACHINE}/st", 2: f"{MACHINE}/temp"})
    t = now_us()
    batch = numeric_batch([1, 2], [t, t], [float(state), temp], 192)
    assert await publish_batch(js, "sA", "e1", seq, table.encode("e1", seq, batch, epoch="ep1"), epoch="ep1")
    return t


def intervals(store: Store) -> list[Any]:
    """The machine's interval rows as stored (a query's clipping would hide an interval of no length)."""
    with store.engine.connect() as c:
        rows = c.execute(sa.select(state_intervals).where(state_intervals.c.machine == MACHINE)).all()
    return sorted(rows, key=lambda iv: (iv.start_us, iv.id))


def alarm_state(store: Store) -> str | None:
    got = [s.state for s in AlarmStore(store.engine).saved_states() if s.alarm == ALARM]
    return got[0] if got else None


def test_site_plant_keeps_one_site(tmp_path: Path) -> None:
    p = site_plant(write_plant(tmp_path), "sB")
    assert [s.name for s in p.sites] == ["sB"]
    assert {t.site for t in p.all_tags} == {"sB"} and [m for m, _ in p.machines()] == ["sB/a1/l1/m1"]


async def test_the_site_owner_runs_the_engines_and_hands_them_over(nats_server: NatsServer, tmp_path: Path,
                                                                   pg_url: str) -> None:  # noqa: F811
    plant = write_plant(tmp_path)
    s1, s2 = settings(nats_server, "w1"), settings(nats_server, "w2")
    s1.store_url = s2.store_url = pg_url
    w1, w2 = IngestWorker(plant, tmp_path / "w1", s1), IngestWorker(plant, tmp_path / "w2", s2)
    store = Store.open(pg_url)
    nc = await nats.connect(nats_server.url)
    js = nc.jetstream()
    await ensure_stream(js)
    try:
        await w1.start()
        await wait_for(lambda: w1.engines is not None and "sA" in w1.engines.running, what="w1 runs site sA")
        t1 = await send(js, 1, 1, 90.0)  # running, temperature above its limit
        await wait_for(lambda: any(iv.state == "running" for iv in intervals(store)) and alarm_state(store)
                       == "unack_active", what="w1's engines recorded the state and the alarm")
        await w2.start()
        await w1.stop()  # a clean stop: sA's engines close their intervals, then its lease is deleted
        assert w1.engines is not None and [t.how for t in w1.engines.tenures if t.site == "sA"] == ["handover"]
        await wait_for(lambda: w2.engines is not None and "sA" in w2.engines.running, what="w2 runs site sA")
        t2 = await send(js, 2, 4, 50.0)  # faulted; the temperature back below its limit
        await wait_for(lambda: any(iv.state == "faulted" for iv in intervals(store)) and alarm_state(store)
                       == "rtn_unack", what="w2's engines went on from w1's")
    finally:
        await w1.stop()
        await w2.stop()
        await nc.close()
    ivs = intervals(store)
    store.close()
    assert w1.engines is not None and w2.engines is not None
    (a,), (b,) = ([t for t in w.engines.tenures if t.site == "sA"] for w in (w1, w2))
    assert a.end_us is not None and b.end_us is not None
    assert a.end_us <= b.start_us  # never two owners running the site's engines
    for iv in ivs:  # every interval within one owner's tenure: written by one worker
        assert iv.end_us is not None and iv.end_reason in ("change", "stop")
        assert (a.start_us <= iv.start_us and iv.end_us <= a.end_us) or (b.start_us <= iv.start_us
                                                                        and iv.end_us <= b.end_us), iv
    assert len({iv.start_us for iv in ivs}) == len(ivs)  # no interval twice
    gaps = [(x.end_us, y.start_us) for x, y in itertools.pairwise(ivs) if x.end_us != y.start_us]
    assert gaps == [(a.end_us, b.start_us)]  # contiguous but for the handover; never overlapping
    states = [(iv.state, iv.end_reason) for iv in ivs]
    assert ("running", "stop") in states and ("faulted", "stop") in states
    assert next(iv for iv in ivs if iv.state == "running").start_us == t1
    assert next(iv for iv in ivs if iv.state == "faulted").start_us == t2


async def test_an_owner_that_dies_leaves_intervals_the_next_owner_closes_as_a_crash(
        nats_server: NatsServer, tmp_path: Path, pg_url: str) -> None:  # noqa: F811
    plant = write_plant(tmp_path)
    s1, s2 = settings(nats_server, "w1"), settings(nats_server, "w2")
    s1.store_url = s2.store_url = pg_url
    w1, w2 = IngestWorker(plant, tmp_path / "w1", s1), IngestWorker(plant, tmp_path / "w2", s2)
    store = Store.open(pg_url)
    nc = await nats.connect(nats_server.url)
    js = nc.jetstream()
    await ensure_stream(js)
    try:
        await w1.start()
        await wait_for(lambda: w1.engines is not None and "sA" in w1.engines.running, what="w1 runs site sA")
        await send(js, 1, 1, 90.0)
        await wait_for(lambda: alarm_state(store) == "unack_active", what="w1's engines recorded the alarm")
        await w2.start()
        w1.connected = False  # as if it died: stopped without releasing its leases or closing its engines
        await w1.stop()
        await wait_for(lambda: w2.engines is not None and "sA" in w2.engines.running, timeout=30,
                       what="w2 took sA once w1's lease expired")
        t2 = await send(js, 2, 4, 50.0)
        await wait_for(lambda: alarm_state(store) == "rtn_unack", what="w2 went on from the stored alarm state")
    finally:
        await w1.stop()
        await w2.stop()
        await nc.close()
    ivs = intervals(store)
    last = store.get_meta("states.last_us.sA")
    store.close()
    assert w2.engines is not None
    (b,) = [t for t in w2.engines.tenures if t.site == "sA"]
    crashed = [iv for iv in ivs if iv.end_reason == "crash"]
    # w1's open interval, closed by w2 at the site's last known time (w1's last heartbeat: here its start)
    assert [iv.state for iv in crashed] == ["running"]
    assert crashed[0].start_us <= crashed[0].end_us <= b.start_us
    assert all(iv.start_us >= b.start_us for iv in ivs if iv.start_us > crashed[0].start_us)
    assert next(iv for iv in ivs if iv.state == "faulted").start_us == t2 and last is not None


async def test_plantlink_ingest_with_a_store_runs_the_engines(nats_server: NatsServer, tmp_path: Path,
                                                              pg_url: str) -> None:  # noqa: F811
    write_plant(tmp_path)
    w = Proc(["ingest", str(tmp_path / "plant.yaml"), "--nats", nats_server.url, "--data-dir", str(tmp_path / "w"),
              "--worker", "w", "--ack-wait", "1", "--lease-ttl", "3", "--store-url", pg_url], tmp_path / "w.log")
    store = Store.open(pg_url)
    nc = await nats.connect(nats_server.url)
    js = nc.jetstream()
    await ensure_stream(js)
    w.start()
    try:
        await send(js, 1, 1, 90.0)
        await wait_for(lambda: any(iv.state == "running" for iv in intervals(store)) and alarm_state(store)
                       == "unack_active", what="the subprocess's engines recorded the state and the alarm")
        assert w.stop() == 0  # SIGTERM: a clean stop, the site handed over
        assert [iv.end_reason for iv in intervals(store) if iv.state == "running"] == ["stop"]
    finally:
        w.stop()
        await nc.close()
        store.close()
