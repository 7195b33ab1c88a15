"""Plant models, counting and processes for the edge-to-central tests.

The edge's data: ``TAGS`` tags with sources on an MQTT device. In-process tests drive ``EdgeNode.ingest`` with
``burst`` batches (the device disabled); subprocess tests publish messages with a JSON time to a broker local to
the edge (``plant/{tag}``), which the edge's MQTT connector reads. A sample's (tag, time) is unique, so the
central's count of distinct (tag, ts) must equal its count of rows (no duplicates) and the edge's produced count.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from plantlink.historian import open_historian
from plantlink.historian.base import Historian
from plantlink.samples import numeric_batch
from tests.plants import plant_yaml

TAGS = 4
#: An hour ago, to the second: samples must be within the historian's raw retention (a central that restarts runs
#: retention at once, and samples of years ago would be deleted then)
T0_US = (time.time_ns() // 10**9 - 3600) * 10**6


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _machines() -> str:
    tags = "\n".join(f"    - {{name: t{i}, source: {{device: local, topic: plant/t{i}, timestamp_field: /ts, "
                     f"timestamp_unit: us}}}}" for i in range(TAGS))
    return f"- name: m1\n  tags:\n{tags}\n"


def edge_yaml(central_port: int, local_port: int, *, enabled: bool = True, queue: str = "",
              name: str = "e1", broker: str = "", extra: str = "") -> str:
    """``broker``: the central broker's settings as a YAML flow mapping (default: plain MQTT on ``central_port``);
    ``extra``: more of the edge's settings (``key: value, ...``)."""
    device = (f"local: {{protocol: mqtt, host: 127.0.0.1, port: {local_port}, reconnect_min: 100ms, "
              f"reconnect_max: 500ms, enabled: {str(enabled).lower()}}}")
    q = f", queue: {{{queue}}}" if queue else ""
    return (plant_yaml(device, _machines()) +
            f"edge: {{name: {name}, central: {broker or f'{{mqtt: mqtt://127.0.0.1:{central_port}}}'}, "
            f"status_interval: 200ms{q}{', ' + extra if extra else ''}}}\n")


def central_yaml(central_port: int, client_id: str = "central-test", broker: str = "") -> str:
    device = "local: {protocol: mqtt, host: 127.0.0.1, port: 1, enabled: false}"
    return (plant_yaml(device, _machines()) +
            f"edges: {{broker: {broker or f'{{mqtt: mqtt://127.0.0.1:{central_port}}}'}, client_id: {client_id}, "
            "expected: [e1]}\n")


def burst(start: int, n: int) -> pa.RecordBatch:
    """Samples ``start .. start+n-1`` (sample k: tag k % TAGS + 1, at T0 + k ms, value k) in the edge's tag ids."""
    k = np.arange(start, start + n)
    return numeric_batch((k % TAGS + 1).astype(np.uint32), T0_US + k * 1000, k.astype(np.float64), 192)


def count_samples(h: Historian, tag_ids: list[int]) -> tuple[int, int]:
    """(rows, distinct (tag, ts)) stored for ``tag_ids`` around T0."""
    t = h.raw_many(tag_ids, T0_US - 10**9, T0_US + 10**14, limit=10**8)
    pairs = set(zip(t.column("tag_id").to_pylist(), t.column("ts").cast(pa.int64()).to_pylist(), strict=True))
    return t.num_rows, len(pairs)


def count_in_dir(data_dir: Path) -> tuple[int, int]:
    """The same, from a stopped central's data directory."""
    h = open_historian("duckdb", path=data_dir / "historian.duckdb")
    try:
        ids = [int(i) for i in h.tags().column("tag_id").to_pylist()]
        return count_samples(h, ids)
    finally:
        h.close()


class Proc:
    """``plantlink <command> FILE --data-dir DIR`` as a subprocess, its output in ``log``."""

    def __init__(self, args: list[str], log: Path):
        self.args, self.log = args, log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", "plantlink.cli", *self.args], stdout=out,
                                         stderr=out, env=env)

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)
        self.proc = None

    def pause(self, paused: bool = True) -> None:
        """SIGSTOP (a process stalled: a disk that hangs, a swap storm) or SIGCONT."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP if paused else signal.SIGCONT)

    def stop(self) -> int:
        if self.proc is None:
            return 0
        self.proc.send_signal(signal.SIGCONT)  # a paused process would not see the SIGTERM
        self.proc.send_signal(signal.SIGTERM)
        rc = self.proc.wait(60)
        self.proc = None
        return rc

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]


def status_of(payload: bytes) -> dict[str, Any]:
    import json

    return dict(json.loads(payload))
