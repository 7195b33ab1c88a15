"""Table-driven Modbus cases: each folder of ``modbus_cases`` is a plant model, what the server holds, and
the values (or the configuration error) expected. The connector reads a real pymodbus server."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from plantlink.connectors.modbus import ModbusConnector
from plantlink.errors import ConfigError
from plantlink.model import parse_plant
from plantlink.samples import Quality
from tests.connectors.modbus_cases import Collector, SimServer, points_of

HERE = Path(__file__).parent / "modbus_cases"
CASES = sorted(p for p in HERE.iterdir() if (p / "plant.yaml").is_file())


def test_cases_are_found() -> None:
    assert len(CASES) >= 10
    for case in CASES:
        assert (case / "expected.yaml").is_file() != (case / "expected_error.txt").is_file(), case.name


@pytest.mark.parametrize("case", CASES, ids=lambda p: p.name)
async def test_case(case: Path, free_port: Callable[[], int], caplog: pytest.LogCaptureFixture) -> None:
    port = free_port()
    text = (case / "plant.yaml").read_text().replace("${PORT}", str(port))
    error = case / "expected_error.txt"
    if error.is_file():
        with pytest.raises(ConfigError) as info:
            parse_plant(text, str(case / "plant.yaml"))
        assert error.read_text().strip() in str(info.value)
        return
    plant = parse_plant(text, str(case / "plant.yaml"))
    expected: dict[str, Any] = yaml.safe_load((case / "expected.yaml").read_text())
    server = await SimServer(port, yaml.safe_load((case / "registers.yaml").read_text())).start()
    sink = Collector()
    conns, ids = [], {}
    for dev_id, dev in plant.devices.items():
        pts = points_of(plant, dev_id, first_id=len(ids) + 1)
        ids.update({p.path: p.tag_id for p in pts})
        conns.append(ModbusConnector(dev_id, dev.config, pts, sink))
    try:
        for c in conns:
            await c.start()
        want = [ids[path] for path in expected["tags"]]
        for _ in range(150):  # until every expected tag has been sampled at least twice (<= 3 s)
            await asyncio.sleep(0.02)
            counts = sink.counts()
            if all(counts.get(t, 0) >= 2 for t in want):
                break
        health = [c.health.to_dict() for c in conns]  # before stop() marks them stopped
    finally:
        for c in conns:
            await c.stop()
        await server.stop()
    latest = sink.latest()
    for path, exp in expected["tags"].items():
        assert ids[path] in latest, f"{path}: no sample"
        value, quality = latest[ids[path]]
        want_q = Quality[exp.get("quality", "good").upper()]
        assert quality == want_q, f"{path}: quality {quality}, expected {want_q.name}"
        if "value" in exp:
            assert _same(value, exp["value"]), f"{path}: {value!r} != {exp['value']!r}"
        elif want_q == Quality.BAD and not isinstance(value, str):
            assert value is None or math.isnan(value)
    _check_health(expected.get("health", {}), health, caplog.text)


def _same(got: Any, want: Any) -> bool:
    if isinstance(want, str):
        return bool(got == want)
    return bool(got == pytest.approx(float(want), rel=1e-12, abs=1e-12))


def _check_health(exp: dict[str, Any], health: list[Any], log_text: str) -> None:
    if "state" in exp:
        assert all(h["status"] == exp["state"] for h in health), health
    for needle in exp.get("log_contains", []):
        assert needle in log_text, f"{needle!r} not logged"
    if exp.get("log_contains"):
        assert any(h["last_error"] for h in health)
