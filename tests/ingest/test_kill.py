"""Two ``plantlink ingest`` subprocesses; one is killed (SIGKILL) mid-stream: its site moves to the other, its
unacknowledged batches are redelivered there, nothing is lost and nothing is stored twice in a historian."""

from __future__ import annotations

import asyncio
import json
import signal
from pathlib import Path
from typing import Any

import nats
import pytest

from plantlink.ingest.stream import STREAM, consumer_name, ensure_stream
from plantlink.ingest.worker import STATUS_FILE
from tests.edge.harness import Proc
from tests.ingest.natsserver import NatsServer
from tests.ingest.rig import ROWS, SITES, count_dir, publish, write_plant
from tests.waiting import wait_for

pytestmark = pytest.mark.service

BATCH = 4


def status(data_dir: Path) -> dict[str, Any]:
    try:
        return dict(json.loads((data_dir / STATUS_FILE).read_text()))
    except (OSError, ValueError):
        return {}


def owned(data_dir: Path) -> set[str]:
    return {s for s, v in status(data_dir).get("sites", {}).items() if v["owned"]}


def worker(name: str, plant: Path, server: NatsServer, tmp: Path) -> Proc:
    return Proc(["ingest", str(plant), "--nats", server.url, "--data-dir", str(tmp / name), "--worker", name,
                 "--ack-wait", "1", "--lease-ttl", "3", "--batch", str(BATCH)], tmp / f"{name}.log")


async def freeze_holding_batches(w: Proc, js: Any, site: str) -> None:
    """SIGSTOP ``w`` at a moment it holds delivered, unacknowledged batches of ``site`` (a pull request of a
    frozen worker is still served: the next batch published goes to it). Frozen between an acknowledgement and
    its next fetch it holds none: let it run a moment and freeze it again."""
    assert w.proc is not None
    for _ in range(20):
        w.proc.send_signal(signal.SIGSTOP)
        for _ in range(50):
            if (await js.consumer_info(STREAM, consumer_name(site))).num_ack_pending > 0:
                return
            await asyncio.sleep(0.02)
        w.proc.send_signal(signal.SIGCONT)
        await asyncio.sleep(0.05)
    raise AssertionError("the worker never held an unacknowledged batch")


async def test_a_killed_worker_s_site_and_unacked_batches_move_to_the_other(nats_server: NatsServer,
                                                                         tmp_path: Path) -> None:
    plant = write_plant(tmp_path)
    w1, w2 = worker("w1", plant, nats_server, tmp_path), worker("w2", plant, nats_server, tmp_path)
    nc = await nats.connect(nats_server.url)
    js = nc.jetstream()
    await ensure_stream(js)
    n = 0  # batches published per site
    stop = asyncio.Event()
    try:
        w1.start()
        w2.start()
        await wait_for(lambda: len(owned(tmp_path / "w1")) == len(owned(tmp_path / "w2")) == 1, timeout=40,
                       what="one site each")
        victim = next(iter(owned(tmp_path / "w1")))

        async def publisher() -> None:  # batches keep coming until the site moved: the kill is mid-stream
            nonlocal n
            while not stop.is_set():
                for s in SITES:
                    await publish(js, s, range(n, n + 1))
                n += 1
                await asyncio.sleep(0.02)

        pub = asyncio.create_task(publisher())
        await wait_for(lambda: status(tmp_path / "w1")["sites"][victim]["rows"] > 0, what="w1 storing")
        await freeze_holding_batches(w1, js, victim)
        w1.kill9()
        await wait_for(lambda: owned(tmp_path / "w2") == set(SITES), what="w2 took the dead worker's site")
        stop.set()
        await pub

        async def drained() -> bool:
            infos = [await js.consumer_info(STREAM, consumer_name(s)) for s in SITES]
            return all(i.num_ack_pending == 0 and i.num_pending == 0 for i in infos)

        await wait_for(drained, what="every batch stored and acknowledged")
        redelivered = status(tmp_path / "w2")["sites"][victim]["redelivered"]
        assert redelivered > 0  # what w1 held unacknowledged went to w2
        assert w2.stop() == 0, w2.output()
    finally:
        await nc.close()
        for w in (w1, w2):
            if w.alive():
                w.stop()
    (r1, p1), (r2, p2) = count_dir(tmp_path / "w1"), count_dir(tmp_path / "w2")
    assert r1 == len(p1) and r2 == len(p2)  # no (tag, time) twice in a historian
    assert len(p1 | p2) == 2 * n * ROWS  # nothing lost
    # in two historians: only a batch stored by w1 and killed before its acknowledgement (at most one fetch)
    both = len(p1 & p2)
    assert both <= BATCH * ROWS, both
    print(f"redelivered to w2: {redelivered} batches; in both historians: {both} samples")
