"""One simulated plant (examples/demo-plant.yaml with test ``control:`` settings) and one real Runtime for the
module: Modbus TCP, OPC UA and Logix servers of the simulator on free ports (Detroit's S7 CPU is down),
connectors, historian, store."""

from __future__ import annotations

import copy
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest_asyncio
import yaml

from plantlink.identity import Principal
from plantlink.model import Plant, parse_plant
from plantlink.runtime import Runtime
from plantlink.sim import Simulator
from tests.waiting import wait_for

DEMO = Path(__file__).parents[2] / "examples" / "demo-plant.yaml"
CONV1 = "windsor/stamping/press-line-1/conveyor1"
PRESS1 = "windsor/stamping/press-line-1/press1"
CONV2 = "windsor/body-paint/body-line-1/conveyor2"
OVEN = "windsor/body-paint/body-line-1/oven1"
CNC2 = "detroit/machining/cnc-cell-2/cnc2"

#: The ``control:`` settings the tests add to the demo plant's writable tags.
CONTROLS: dict[str, dict[str, Any] | None] = {
    f"{CONV1}/speed_setpoint": {"min": 0, "max": 40, "max_step": 10, "verify_timeout": "3s", "min_interval": "200ms",
                                "interlocks": ["state in [0, 1, 2, 3, 4, 5, 6]", "press1.state >= 0"]},
    f"{CONV1}/run_command": {"allowed": [True, False]},
    f"{PRESS1}/spm_setpoint": {"min": 4, "max": 30, "verify_timeout": "4s", "min_interval": "100ms"},
    f"{CONV2}/speed_setpoint": {"min": 0, "max": 40, "interlocks": ["state == 99"]},
    f"{CONV2}/run_command": {"allowed": [True, False], "min_interval": "100ms"},
    f"{OVEN}/zone1_setpoint": {
        "min": 20, "max": 260, "max_step": 50, "role": "engineer", "verify_timeout": "3s", "min_interval": "100ms",
        "interlocks": [f'tag("{CONV2}/state") >= 0', "zone1_temperature > -50 and not (state == 99)"]},
    f"{OVEN}/zone2_setpoint": {"min": 20, "max": 260, "role": "engineer", "critical": True, "verify_timeout": "3s"},
    f"{OVEN}/zone3_setpoint": {"min": 20, "max": 260, "min_interval": "60s", "verify_timeout": "3s"},
    f"{CNC2}/run_command": {},
    # writable without a control: section (the demo plant has one; the tests take it away)
    "windsor/body-paint/body-line-1/welder1/run_command": None,
}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def plant_dicts(mb: int, ua: int, dead: int, lx: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the simulator's plant, the platform's plant): the platform also has Detroit, whose server is down."""
    data = yaml.safe_load(DEMO.read_text(encoding="utf-8"))
    devs = data["devices"]
    devs["sim-modbus"].update(port=mb, poll="200ms", timeout="2s", reconnect_min="100ms")
    devs["sim-opcua"].update(endpoint=f"opc.tcp://127.0.0.1:{ua}/plantlink/sim/", sampling_interval="100ms",
                             publishing_interval="100ms")
    devs["sim-logix"].update(port=lx, poll="200ms", timeout="2s", reconnect_min="100ms")
    devs["sim-s7-detroit"].update(port=dead, timeout="300ms", reconnect_min="100ms", reconnect_max="500ms")
    for s in data["sites"]:
        for a in s["areas"]:
            for ln in a["lines"]:
                for m in ln["machines"]:
                    for t in m["tags"]:
                        path = f"{s['name']}/{a['name']}/{ln['name']}/{m['name']}/{t['name']}"
                        if path in CONTROLS:
                            spec = CONTROLS[path]
                            if spec is None:
                                t.pop("control", None)
                            else:
                                t["control"] = spec
    served = copy.deepcopy(data)
    served["devices"]["sim-s7-detroit"]["enabled"] = False
    return served, data


def to_plant(data: dict[str, Any]) -> Plant:
    return parse_plant(yaml.safe_dump(data, sort_keys=False), "test-plant.yaml")


@dataclass
class Rig:
    sim: Simulator
    runtime: Runtime
    plant: Plant


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def rig(tmp_path_factory: Any) -> AsyncIterator[Rig]:
    served, platform = plant_dicts(free_port(), free_port(), free_port(), free_port())
    sim = Simulator(to_plant(served), seed=7, speed=1.0)
    await sim.start()
    plant = to_plant(platform)
    rt = Runtime(plant, tmp_path_factory.mktemp("control"), flush_interval=0.5)
    await rt.start()
    try:
        await wait_for(lambda: all(rt.connectors[d].health.ok for d in ("sim-modbus", "sim-opcua", "sim-logix")), 20,
                       "simulated devices connected")
        assert rt.historian is not None
        paths = [f"{CONV1}/speed_setpoint", f"{CONV1}/state", f"{PRESS1}/state", f"{OVEN}/zone1_setpoint",
                 f"{OVEN}/zone1_temperature", f"{CONV2}/state", f"{OVEN}/state"]
        await wait_for(lambda: all(r["quality"] == 192 for r in rt.latest.table([rt.tag_ids[p] for p in paths])
                                   .to_pylist()), 20, "first values of the tags under test")
        yield Rig(sim, rt, plant)
    finally:
        await rt.stop()
        await sim.stop()


ALICE = Principal("alice", {"windsor": "engineer"})
CAROL = Principal("carol", {"windsor": "engineer"})
OSCAR = Principal("oscar", {"windsor": "operator"})
VERA = Principal("vera", {"windsor": "viewer"})
ADAM = Principal("adam", {"*": "admin"})
DETROIT_OP = Principal("dora", {"detroit": "operator"})
