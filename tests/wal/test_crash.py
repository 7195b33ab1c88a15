"""``kill -9`` during ingest: every sample a live client was shown is in the historian after a restart.

A real ``plantlink run`` child process polls a Modbus server (in this test's event loop) every 20 ms for 20
registers (1,000 samples/s); a live client on ``/api/v1/stream`` records every value it is shown (tag path,
timestamp in ms), snapshots included. Mid-burst the child is killed with SIGKILL, then started again on the
same data directory; ten rounds. A last run stops cleanly; then the test opens the historian itself and
counts, per round, the samples shown but missing, and checks that no sample is stored twice (a batch
replayed twice would be).
"""

from __future__ import annotations

import asyncio
import json
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import websockets

from plantlink.auth import AuthService, AuthSettings
from plantlink.historian import default_path
from plantlink.historian.duckdb import DuckDBHistorian
from tests.servers import ModbusTestServer

ROUNDS = 10
TAGS = 20
MACHINE = "s1/a1/l1/m1"
URL_LINE = re.compile(r"open (https?://\S+)/ in a browser")
REPLAYED = re.compile(r"write-ahead log: replayed \d+ batches \((\d+) samples\)")


def plant_yaml(port: int) -> str:
    lines = [
        "enterprise: Crash",
        "devices:",
        f"  plc: {{protocol: modbus, host: 127.0.0.1, port: {port}, poll: 20ms, timeout: 2s}}",
        "sites:",
        "  - name: s1",
        "    timezone: UTC",
        "    areas:",
        "      - name: a1",
        "        lines:",
        "          - name: l1",
        "            machines:",
        "              - name: m1",
        "                tags:",
    ]
    lines += [f"                  - {{name: t{i}, source: {{device: plc, address: {i}}}}}" for i in range(TAGS)]
    return "\n".join(lines) + "\n"


def make_token(data_dir: Path) -> str:
    svc = AuthService.open(data_dir, None, AuthSettings())
    try:
        svc.create_user("crash-viewer", {"*": "viewer"}, actor="test:setup")
        return svc.create_token("crash-viewer", "crash test", None, "test:setup").secret
    finally:
        svc.close()


class Child:
    """``plantlink run`` in a child process; stderr goes to a file (read for the URL, shown on failure)."""

    def __init__(self, plant: Path, data_dir: Path, log: Path, *extra: str):
        self.log = log
        self.err = log.open("w", encoding="utf-8")
        self.out = log.with_suffix(".out").open("w", encoding="utf-8")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "plantlink.cli", "run", str(plant), "--data-dir", str(data_dir), *extra],
            stdin=subprocess.DEVNULL, stdout=self.out, stderr=self.err)

    async def url(self, timeout: float = 120.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            m = URL_LINE.search(self.log.read_text(encoding="utf-8", errors="replace"))
            if m:
                return m.group(1)
            assert self.proc.poll() is None, f"plantlink exited early:\n{self.tail()}"
            await asyncio.sleep(0.1)
        raise AssertionError(f"plantlink did not serve within {timeout}s:\n{self.tail()}")

    def tail(self) -> str:
        return "\n".join(self.log.read_text(encoding="utf-8", errors="replace").splitlines()[-40:])

    def replayed(self) -> int:
        """Samples this run replayed from the log at start (from its log line)."""
        return sum(int(n) for n in REPLAYED.findall(self.log.read_text(encoding="utf-8", errors="replace")))

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)
        self.err.close()
        self.out.close()


async def watch_and_kill(child: Child, token: str, shown: set[tuple[str, int]], min_messages: int) -> int:
    """Record every value the stream shows; SIGKILL the child once ``min_messages`` live value messages came;
    keep recording until the socket closes. Returns the live value messages received."""
    ws_url = (await child.url()).replace("http", "ws", 1) + "/api/v1/stream"
    live = 0
    async with websockets.connect(ws_url, additional_headers={"Authorization": f"Bearer {token}"},
                                  max_size=2**24) as ws:
        await ws.send(json.dumps({"subscribe": {"machines": [MACHINE]}}))
        try:
            while True:
                msg = json.loads(await asyncio.wait_for(ws.recv(), 30))
                if msg["type"] != "values":
                    continue
                shown.update((v["tag"], v["ts_ms"]) for v in msg["values"])
                if not msg.get("snapshot"):
                    live += 1
                    if live == min_messages:
                        await asyncio.to_thread(child.kill)  # mid-burst: samples flow every 20 ms
        except websockets.ConnectionClosed:
            pass
    return live


def stored(data_dir: Path) -> tuple[set[tuple[str, int]], int]:
    """What the historian holds: the set of (tag path, ts in ms), and how many rows (duplicates count twice)."""
    h = DuckDBHistorian(default_path(data_dir))
    h.open()
    try:
        paths = dict(zip(h.tags().column("tag_id").to_pylist(), h.tags().column("path").to_pylist(), strict=True))
        out: set[tuple[str, int]] = set()
        rows = 0
        for tid, path in paths.items():
            t = h.raw(tid, 0, 2**62, limit=10_000_000)
            ts = t.column("ts").cast("int64").to_pylist()
            rows += len(ts)
            out.update((path, us // 1000) for us in ts)
        return out, rows
    finally:
        h.close()


@pytest.mark.timeout(420)
async def test_sigkill_mid_burst_loses_nothing_shown_live(tmp_path: Path, free_port: Callable[[], int]) -> None:
    server = ModbusTestServer(free_port(), registers=TAGS)
    await server.start()
    data_dir = tmp_path / "data"
    plant = tmp_path / "plant.yaml"
    plant.write_text(plant_yaml(server.port), encoding="utf-8")
    token = make_token(data_dir)
    shown: list[set[tuple[str, int]]] = []
    replayed = 0
    try:
        for k in range(ROUNDS):
            child = Child(plant, data_dir, tmp_path / f"round{k}.log", "--port", "0")
            try:
                seen: set[tuple[str, int]] = set()
                live = await watch_and_kill(child, token, seen, min_messages=20 + 7 * k)
                assert live >= 20, f"round {k}: only {live} live messages:\n{child.tail()}"
                shown.append(seen)
            finally:
                child.kill()
            replayed += child.replayed()
        last = Child(plant, data_dir, tmp_path / "last.log", "--no-api", "--duration", "1", "--json")
        assert await asyncio.to_thread(last.proc.wait, 120) == 0, last.tail()
        last.kill()
    finally:
        await server.stop()
    have, rows = await asyncio.to_thread(stored, data_dir)
    missing = [len(s - have) for s in shown]
    assert missing == [0] * ROUNDS, f"samples shown live but not stored, per kill: {missing}"
    assert rows == len(have), f"{rows - len(have)} samples stored twice"
    replayed += last.replayed()
    assert replayed > 0  # the kills did leave samples that only the log held
    wal = json.loads((tmp_path / "last.out").read_text(encoding="utf-8"))["wal"]
    assert wal["committed_batches"] > 0 and wal["fsync_p99_ms"] is not None and wal["refused_batches"] == 0
