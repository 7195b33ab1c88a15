"""What ``plantlink run`` and ``plantlink demo`` do, as coroutines that tests and embedding code can call."""

from __future__ import annotations

import asyncio
import socket
import sys
from pathlib import Path
from typing import Any

from plantlink.model import Plant, parse_plant
from plantlink.runtime import Runtime


def _say(announce: bool, message: str) -> None:
    if announce:
        print(message, file=sys.stderr, flush=True)


async def _wait(duration: float) -> None:
    if duration > 0:
        await asyncio.sleep(duration)
    else:
        await asyncio.Event().wait()


async def run_plant(
    plant: Plant, data_dir: str | Path, *, duration: float = 0.0, announce: bool = True
) -> dict[str, Any]:
    """Run connectors and historian for ``plant`` until ``duration`` elapses (or forever); return the status."""
    runtime = Runtime(plant, data_dir)
    await runtime.start()
    _say(announce, f"plantlink: {len(plant.tags)} tags from {len(runtime.connectors)} devices")
    _say(announce, f"historian: {runtime.historian_path}")
    try:
        await _wait(duration)
    finally:
        await runtime.stop()
    return runtime.status()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def run_demo(
    plant_file: Path,
    data_dir: str | Path,
    *,
    duration: float = 0.0,
    speed: float = 1.0,
    seed: int = 1,
    announce: bool = True,
) -> dict[str, Any]:
    """Start the simulated plant on free loopback ports, then run plantlink against it."""
    from plantlink.sim import Simulator, plant_with_ports

    text = plant_file.read_text(encoding="utf-8")
    base = parse_plant(text, str(plant_file))
    ports = {dev: free_port() for dev in base.devices}
    plant = parse_plant(plant_with_ports(text, ports), str(plant_file))
    simulator = Simulator(plant, seed=seed, speed=speed)
    await simulator.start()
    for dev, ep in simulator.endpoints().items():
        _say(announce, f"simulator: {dev} at {ep}")
    try:
        status = await run_plant(plant, data_dir, duration=duration, announce=announce)
    finally:
        await simulator.stop()
    status["simulator"] = {"speed": speed, "seed": seed, "endpoints": simulator.endpoints()}
    return status
