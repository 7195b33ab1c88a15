"""A step of an apply that fails puts the old model back (connectors, tag ids, historian renames, services);
and a model edited with ``was:`` then started (not applied) keeps the renamed tag's history too."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from plantlink.identity import Principal
from plantlink.model import parse_plant
from plantlink.runtime import Runtime
from plantlink.samples import Quality, now_us, numeric_batch
from plantlink.services import services_of
from tests.conftest import _free_port
from tests.plants import plant_yaml
from tests.servers import ModbusTestServer
from tests.waiting import wait_for

ENGINEER = Principal("erin", {"*": "engineer"})
M = "s1/a1/l1/m/"


def model(port: int, rename: bool = False, poll: str = "200ms") -> str:
    name = "name: t2, was: t" if rename else "name: t"
    return plant_yaml(devices=f"plc: {{protocol: modbus, host: 127.0.0.1, port: {port}, poll: {poll}}}",
                      machines=f"""
    - name: m
      tags:
        - {{{name}, source: {{device: plc, address: 0}}}}
    """)


async def test_a_failing_connector_start_puts_the_old_model_back(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    server = ModbusTestServer(_free_port())
    await server.start()
    rt = Runtime(parse_plant(model(server.port)), tmp_path / "data", flush_interval=0.1)
    await rt.start()
    try:
        await wait_for(lambda: rt.connectors["plc"].health.ok, 30, "connected")
        svc = services_of(rt)
        before, t_id = svc.model.info().digest, rt.tag_ids[M + "t"]
        real = rt.build_connectors
        calls: list[Any] = []

        def failing(only: set[str] | None = None) -> Any:
            calls.append(only)
            if len(calls) == 1:  # the new model's connector
                raise RuntimeError("no such driver (test)")
            return real(only)

        monkeypatch.setattr(rt, "build_connectors", failing)
        with pytest.raises(RuntimeError, match="test"):
            await svc.model.apply(ENGINEER, model(server.port, rename=True, poll="300ms"))
        assert rt.model.digest() == before and services_of(rt).model.info().digest == before
        assert rt.tag_ids[M + "t"] == t_id and M + "t2" not in rt.tag_ids
        assert rt.historian is not None and M + "t" in rt.historian.tags().column("path").to_pylist()
        assert len(calls) == 2 and rt.connectors["plc"] is not None  # the old connector started again
        n = rt.historian.raw(t_id, 0, 2**62, 10**6).num_rows
        await wait_for(lambda: rt.historian.raw(t_id, 0, 2**62, 10**6).num_rows > n, 30, "samples again")  # type: ignore[union-attr]
        assert rt.audit is not None
        assert [r.kind for r in rt.audit.query(kind="model.")] == ["model.apply", "model.apply_failed"]
    finally:
        await rt.stop()
        await server.stop()


async def test_a_model_edited_with_was_and_started_keeps_the_history(tmp_path: Path) -> None:
    plain = model(1).replace("poll: 200ms", "poll: 200ms, enabled: false")
    rt = Runtime(parse_plant(plain), tmp_path / "data", flush_interval=0.1)
    await rt.start()
    t_id = rt.tag_ids[M + "t"]
    rt.ingest(numeric_batch([t_id], now_us(), [4.0], Quality.GOOD))
    await wait_for(lambda: rt.model.has_history(M + "t"), 30, "t stored")
    await rt.stop()
    rt = Runtime(parse_plant(plain.replace("name: t,", "name: t2, was: t,")), tmp_path / "data")
    await rt.start()
    try:
        assert rt.tag_ids[M + "t2"] == t_id and rt.model.has_history(M + "t2")
    finally:
        await rt.stop()
