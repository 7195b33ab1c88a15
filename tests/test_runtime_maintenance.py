"""The runtime's own schedule: historian retention and 1-hour rollups run without anyone calling them, off the
event loop; their counters, and the recorder's, are in the runtime status."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np

from plantlink.historian.duckdb.hourly import HOUR_US
from plantlink.maintenance import MaintenanceSettings
from plantlink.model import parse_plant
from plantlink.runtime import Runtime
from plantlink.samples import now_us, numeric_batch
from plantlink.wal import WalSettings
from tests.plants import plant_yaml
from tests.waiting import wait_for

PLANT = plant_yaml(devices="plc: {protocol: modbus, host: 127.0.0.1, port: 1502, enabled: false}", machines="""
    - name: m1
      states: {state_tag: mode}
      tags:
        - {name: mode, type: int, source: {device: plc, address: 0}}
        - {name: temp, source: {device: plc, address: 1}}
""")
DAY_US = 86_400_000_000


async def test_retention_and_hourly_rollups_run_on_their_own_schedule(tmp_path: Path) -> None:
    rt = Runtime(parse_plant(PLANT, "plant.yaml"), tmp_path, wal=WalSettings(enabled=False),
                 maintenance=MaintenanceSettings(retention_interval_s=0.05, rollup_interval_s=0.05))
    await rt.start()
    try:
        assert rt.historian is not None and rt.maintenance is not None
        temp = rt.tag_ids["s1/a1/l1/m1/temp"]
        now = now_us()
        old = now - 500 * DAY_US  # beyond the default raw retention (400 days)
        recent = now - 3 * HOUR_US - np.arange(0, 3600, 10, dtype=np.int64) * 1_000_000
        rt.historian.write(numeric_batch(np.full(5, temp), old + np.arange(5) * 1_000_000, np.ones(5), 192))
        rt.historian.write(numeric_batch(np.full(recent.size, temp), recent, np.arange(recent.size) * 1.0, 192))
        await asyncio.to_thread(rt.historian.flush)
        await wait_for(lambda: rt.maintenance is not None and rt.maintenance.deleted_rows >= 5
                       and rt.maintenance.rolled_up > 0, timeout=30.0, what="retention and rollups ran")
        assert rt.historian.raw(temp, old - 1, old + 10_000_000).num_rows == 0
        assert rt.historian.raw(temp, int(recent.min()), now).num_rows == recent.size
        start = int(recent.min()) - int(recent.min()) % HOUR_US
        hours = rt.historian.aggregate([temp], start, start + 3 * HOUR_US, HOUR_US, ["count"])
        assert sum(hours.column("count").to_pylist()) == recent.size
        status = rt.status()
        assert status["maintenance"]["runs"]["retention"] >= 1 and status["maintenance"]["errors"] == 0
        assert status["recorder"]["threaded"] is True and status["recorder"]["failed"] == 0
    finally:
        await rt.stop()
    assert rt.recorder is not None and rt.recorder.status()["waiting"] == 0  # the stop drained the outbox
