"""A small plant with one alarm of each kind, and helpers to feed it samples."""

from __future__ import annotations

from collections.abc import Sequence

import pyarrow as pa

from plantlink.model import Plant, parse_plant
from plantlink.samples import Quality, numeric_batch
from tests.plants import plant_yaml, site_yaml

S = 1_000_000
T0 = 1_767_600_000 * S  # 2026-01-05 08:00 UTC
GOOD, BAD = int(Quality.GOOD), int(Quality.BAD)
M = "s1/a1/l1/oven"
M2 = "s2/a1/l1/press"

PLANT = plant_yaml(
    devices="plc: {protocol: modbus, host: 127.0.0.1, port: 502}",
    sites=site_yaml("""
        - name: oven
          tags:
            - name: temp
              source: {device: plc, address: 0, type: float32}
              alarms:
                - {name: hihi, type: hihi, limit: 250, priority: critical, message: Oven far too hot,
                   response: Stop the burner}
                - {name: hi, type: hi, limit: 200, deadband: 5, on_delay: 2s, off_delay: 1s, priority: high}
                - {name: lo, type: lo, limit: 50, deadband: 5, priority: low, suppress_when_state: [planned_stop]}
                - {name: dev, type: deviation, setpoint: temp_sp, limit: 20, deadband: 2}
                - {name: ramp, type: rate, limit: 10, priority: low}
                - {name: comm, type: comm, on_delay: 5s, priority: high}
            - name: temp_sp
              source: {device: plc, address: 2, type: float32}
            - name: door
              type: bool
              source: {device: plc, table: coil, address: 0}
              alarms:
                - {name: open, type: discrete, latched: true, priority: medium}
        """) + site_yaml("""
        - name: press
          tags:
            - name: force
              source: {device: plc, address: 10, type: float32}
              alarms:
                - {name: hi, type: hi, limit: 100}
        """, site="s2"),
)


def plant(text: str = PLANT) -> Plant:
    return parse_plant(text, "alarm-plant.yaml")


def tag_ids(p: Plant) -> dict[str, int]:
    return {t.path: i + 1 for i, t in enumerate(p.tags)}


def batch(ids: dict[str, int], rows: Sequence[tuple[str, int, float, int]]) -> pa.RecordBatch:
    """rows: (tag path, ts_us, value, quality)."""
    return numeric_batch([ids[r[0]] for r in rows], [r[1] for r in rows], [r[2] for r in rows],
                         [r[3] for r in rows])
