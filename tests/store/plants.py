"""Small plant models and sample helpers shared by the store and engine tests."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

from plantlink.model import Plant, parse_plant
from plantlink.samples import Quality, numeric_batch

S = 1_000_000
#: Monday 5 January 2026, 00:00 UTC.
MONDAY = int(datetime(2026, 1, 5, tzinfo=UTC).timestamp()) * S
GOOD, BAD = int(Quality.GOOD), int(Quality.BAD)

LINE = "s1/a1/l1"

PLANT = """
enterprise: Test
devices:
  plc: {{protocol: modbus, host: 127.0.0.1, port: 502}}
sites:
  - name: s1
    timezone: UTC
{calendar}
    areas:
      - name: a1
        lines:
          - name: l1
            downtime:
              micro_stop: 2m
              reasons:
                - {{name: Mechanical, reasons: [jam, tool broken]}}
                - {{name: Material, reasons: [no coil, bad coil, misc]}}
                - {{name: Other, reasons: [jam-other, misc]}}
            machines:
              - name: press
                states: {{faulted_if: fault, counter: strokes, window: 30s}}
                tags:
                  - {{name: fault, type: bool, source: {{device: plc, table: coil, address: 0}}}}
                  - {{name: strokes, type: int, source: {{device: plc, address: 0, type: uint32}}}}
              - name: welder
                states: {{state_tag: mode, state_map: {{10: running, 20: changeover, 30: idle}}}}
                tags:
                  - {{name: mode, type: int, source: {{device: plc, address: 2}}}}
              - name: robot
                states: {{faulted_if: alarm, state_tag: code}}
                tags:
                  - {{name: alarm, type: bool, source: {{device: plc, table: coil, address: 1}}}}
                  - {{name: code, type: int, source: {{device: plc, address: 3}}}}
              - name: gauge
                tags:
                  - {{name: size, source: {{device: plc, address: 4, type: float32}}}}
"""

SHIFTS = """    calendar:
      shifts:
        - {name: early, start: "06:00", end: "14:00", breaks: [{start: "10:00", end: "10:30"}]}
        - {name: late, start: "14:00", end: "22:00"}
"""


def plant(calendar: str = "") -> Plant:
    return parse_plant(PLANT.format(calendar=calendar), "test-plant.yaml")


def tag_ids(p: Plant) -> dict[str, int]:
    return {t.path: i + 1 for i, t in enumerate(p.tags)}


def batch(ids: Mapping[str, int], rows: Sequence[tuple[str, int, float, int]]):  # type: ignore[no-untyped-def]
    """rows: (tag path relative to the line, ts_us, value, quality)."""
    return numeric_batch([ids[f"{LINE}/{r[0]}"] for r in rows], [r[1] for r in rows], [r[2] for r in rows],
                         [r[3] for r in rows])
