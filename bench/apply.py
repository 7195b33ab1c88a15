"""Model apply benchmark: the time ``plantlink apply`` takes on a running plantlink of a 10,000-tag model
(100 Modbus devices of 100 registers each, polled at 1 Hz from one real pymodbus server on loopback, in a
process of its own) when one
device changes, through the service the API calls (validate, plan, audit, historian, connector restart,
services swap). Samples flow meanwhile; the unchanged devices' samples are counted around the apply.

Figures (one JSON line each, median of ``--rounds`` applies, each changing one device's poll period back and
forth):
- apply_10000_tags_one_device: the whole apply (wall seconds).
- plan_10000_tags_one_device: the plan alone (validation + diff against the running model).
- apply_unchanged_device_longest_gap: the longest interval between two stored samples of an unchanged device's
  tag across the applies, in poll periods (1.0 = no gap), with the same figure over as long a span without
  applies (``without_applies``: the machine's own jitter) and the load average.
Run: .venv/bin/python bench/apply.py [--devices 100 --tags-per-device 100 --rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.conftest import _free_port

from plantlink.identity import Principal
from plantlink.model import parse_plant
from plantlink.runtime import Runtime
from plantlink.services import services_of

WHO = Principal("bench", {"*": "engineer"})


def model(devices: int, per: int, port: int, changed_poll: str = "1s") -> str:
    out = ["enterprise: Acme\ndevices:\n"]
    for d in range(devices):
        poll = changed_poll if d == 0 else "1s"
        out.append(f"  plc{d}: {{protocol: modbus, host: 127.0.0.1, port: {port}, poll: {poll}}}\n")
    out.append("sites:\n  - name: windsor\n    timezone: America/Toronto\n    areas:\n      - name: a\n"
               "        lines:\n          - name: l\n            machines:\n")
    for d in range(devices):
        out.append(f"              - name: m{d}\n                tags:\n")
        for t in range(per):
            out.append(f"                  - {{name: t{t}, unit: degC, source: {{device: plc{d}, address: {t}}}}}\n")
    return "".join(out)


def emit(name: str, value: float, unit: str, **extra: object) -> None:
    print(json.dumps({"name": name, "value": round(value, 4), "unit": unit, **extra}), flush=True)


SERVER = """
import asyncio, sys
from tests.servers import ModbusTestServer

async def main():
    server = ModbusTestServer(int(sys.argv[1]), registers=int(sys.argv[2]))
    await server.start()
    print("ready", flush=True)
    await asyncio.Event().wait()

asyncio.run(main())
"""


def modbus_server(port: int, registers: int) -> subprocess.Popen[str]:
    """The pymodbus server in a process of its own: plantlink's event loop is what is measured."""
    root = Path(__file__).resolve().parents[1]
    proc = subprocess.Popen([sys.executable, "-c", SERVER, str(port), str(registers)], cwd=root,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert proc.stdout is not None
    for line in proc.stdout:  # pymodbus may say something first
        if line.strip() == "ready":
            return proc
    raise SystemExit("the Modbus server did not start")


async def run(devices: int, per: int, rounds: int) -> None:
    port = _free_port()
    server = modbus_server(port, max(per, 10))
    texts = [model(devices, per, port), model(devices, per, port, "2s")]
    with tempfile.TemporaryDirectory() as tmp:
        rt = Runtime(parse_plant(texts[0], "plant.yaml"), Path(tmp) / "data", flush_interval=1.0)
        await rt.start()
        try:
            svc = services_of(rt)
            watched = "windsor/a/l/m1/t0"
            await _until(lambda: _count(rt, watched) >= 3)
            b0 = time.time()
            await asyncio.sleep(rounds * 4.0)  # the same span without applies: the machine's own jitter
            b1 = a0 = time.time()
            plans, applies = [], []
            for i in range(rounds):
                text = texts[(i + 1) % 2]
                t0 = time.perf_counter()
                await asyncio.to_thread(svc.model.plan, WHO, text, "plant.yaml")  # as the API: off the loop
                plans.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                done = await svc.model.apply(WHO, text, "plant.yaml")
                applies.append(time.perf_counter() - t0)
                assert done.applied and done.plan.devices == ("plc0",), done.plan.devices
                await asyncio.sleep(2.0)  # samples flow between applies
            a1 = time.time()
            await asyncio.sleep(3.0)  # the last samples stored
            n = devices * per
            emit(f"plan_{n}_tags_one_device", statistics.median(plans), "s", runs=[round(x, 3) for x in plans])
            emit(f"apply_{n}_tags_one_device", statistics.median(applies), "s", runs=[round(x, 3) for x in applies])
            emit("apply_unchanged_device_longest_gap", _longest_gap(rt, watched, a0, a1), "poll periods",
                 without_applies=round(_longest_gap(rt, watched, b0, b1), 3), load=round(os.getloadavg()[0], 1))
        finally:
            await rt.stop()
            server.terminate()
            server.wait(10)


def _count(rt: Runtime, path: str) -> int:
    assert rt.historian is not None
    return rt.historian.raw(rt.tag_ids[path], 0, 2**62, 10**7).num_rows


def _longest_gap(rt: Runtime, path: str, start: float, end: float) -> float:
    """The longest interval between two stored samples of ``path`` within ``[start, end]`` (the poll is 1 s)."""
    assert rt.historian is not None
    t = rt.historian.raw(rt.tag_ids[path], int(start * 1e6), int(end * 1e6), 10**7)
    ts = [x.timestamp() for x in t.column("ts").to_pylist()]
    return max((b - a for a, b in itertools.pairwise(ts)), default=0.0)


async def _until(cond, timeout: float = 120.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise SystemExit("no samples: is the Modbus server up?")
        await asyncio.sleep(0.1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=100)
    parser.add_argument("--tags-per-device", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    asyncio.run(run(args.devices, args.tags_per_device, args.rounds))


if __name__ == "__main__":
    main()
