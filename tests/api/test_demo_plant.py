"""The API over the simulated demo plant: the simulator on free ports, connectors, historian, engines."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import websockets

from plantlink.api.server import serve
from plantlink.model import parse_plant
from plantlink.runtime import Runtime
from plantlink.sim import Simulator, plant_with_ports
from tests.api.conftest import install_header_auth, principal_header
from tests.waiting import wait_for

DEMO = Path(__file__).resolve().parents[2] / "examples" / "demo-plant.yaml"
PRESS = "windsor/stamping/press-line-1/press1"


async def test_demo_plant_rest_and_stream(tmp_path: Path, free_port: Callable[[], int]) -> None:
    text = DEMO.read_text(encoding="utf-8")
    base = parse_plant(text, str(DEMO))
    plant = parse_plant(plant_with_ports(text, {d: free_port() for d in base.devices}), str(DEMO))
    sim = Simulator(plant, seed=3, speed=1.0)
    await sim.start()
    rt = Runtime(plant, tmp_path, flush_interval=0.2)
    await rt.start()
    server = await serve(rt, "127.0.0.1", 0, app_hook=install_header_auth)
    try:
        headers = principal_header("ann:windsor=viewer")
        async with httpx.AsyncClient(base_url=server.url, headers=headers) as c:
            tree = (await c.get("/api/v1/hierarchy")).json()
            assert [s["name"] for s in tree["sites"]] == ["windsor"]
            async with websockets.connect(f"ws://127.0.0.1:{server.port}/api/v1/stream",
                                          additional_headers=headers) as ws:
                await ws.send(json.dumps({"subscribe": {"machines": [PRESS], "states": True}}))
                seen: set[str] = set()
                while f"{PRESS}/tonnage" not in seen:
                    msg = json.loads(await asyncio.wait_for(ws.recv(), 10))
                    if msg["type"] == "values":
                        assert all(v["tag"].startswith(PRESS + "/") for v in msg["values"])
                        seen.update(v["tag"] for v in msg["values"])
            vals = (await c.get(f"/api/v1/values?tag={PRESS}/tonnage,{PRESS}/part_number")).json()["values"]
            assert vals[0]["unit"] == "t" and vals[0]["quality"] == "good" and isinstance(vals[0]["value"], float)
            assert isinstance(vals[1].get("text"), str)
            states = (await c.get("/api/v1/states")).json()["states"]
            expect = {p for p, m in plant.machines() if p.startswith("windsor/") and m.states is not None}
            assert {s["machine"] for s in states} == expect
            over = (await c.get("/api/v1/overview")).json()
            assert [ln["line"] for ln in over["sites"][0]["lines"]][:1] == ["windsor/stamping/press-line-1"]
            async def energy_so_far() -> dict[str, Any] | None:
                got = (await c.get("/api/v1/energy?scope=windsor/stamping/press-line-1")).json()
                return got if got["total_kwh"] else None  # two power samples recorded: some energy

            energy = await wait_for(energy_so_far, 60.0, "the line's energy above zero", step=0.5)
            assert [m["machine"] for m in energy["machines"]] == [PRESS, "windsor/stamping/press-line-1/conveyor1"]
            assert energy["without_energy"] == [] and energy["currency"] == "CAD" and energy["total_kwh"] > 0
            r = await c.get("/api/v1/oee?scope=detroit")
            assert r.status_code == 403
    finally:
        await server.stop()
        await rt.stop()
        await sim.stop()
