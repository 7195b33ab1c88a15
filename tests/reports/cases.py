"""The report tests' plant and data: the OEE and energy tests' shift worked out by hand (tests/api), with two
downtime events with reasons and an SPC tag with specification limits."""

from __future__ import annotations

import numpy as np

from plantlink.runtime import Runtime
from plantlink.samples import numeric_batch
from tests.api.conftest import settle
from tests.api.test_energy import ENERGY_PLANT, GQ, IDLE, PRICE, RUN, craft_power
from tests.api.test_oee_downtime import M1, local_us

LINE = "windsor/a1/l1"
_TEMP = "                  - {name: temp, unit: degC, source: {device: plc, address: 4, type: float32}}\n"
REPORT_PLANT = ENERGY_PLANT.replace(
    _TEMP, _TEMP.replace("type: float32}}",
                         "type: float32},\n                     spc: {chart: imr, lsl: 10, usl: 30},\n"
                         "                     alarms: [{name: hi, type: hi, limit: 21.8, priority: high}]}"))
assert REPORT_PLANT != ENERGY_PLANT
#: m1's temperatures in shift A (one every 20 min from 06:10): known mean and moving ranges; one above the hi alarm's
#: limit 21.8 (22.0 at 07:30): one annunciation.
TEMPS = [20.0, 21.0, 19.0, 20.5, 22.0, 18.5, 20.0, 21.5, 19.5, 20.0, 20.5, 19.0, 21.0, 20.0, 20.0, 19.5, 20.5,
         21.0, 19.0, 20.0, 20.5, 19.5, 20.0, 20.0]
#: By hand (tests/api/test_oee_downtime.py): OEE 0.8485714, losses 1200 + 1200 + 108 = 2508 CAD.
OEE = 0.8485714286
COSTS = {"availability_loss": 1200.0, "performance_loss": 1200.0, "quality_loss": 108.0, "total": 2508.0}
KWH_PER_PART = (RUN + IDLE) / GQ
ENERGY_COST = (RUN + IDLE) * PRICE
#: The stops of the shift: idle 10:00-10:30 "No blanks" (1800 s), faulted 12:00-12:20 "Jam" (1200 s).
PARETO = [("No blanks", 1800.0), ("Jam", 1200.0)]


def capability_by_hand() -> tuple[float, float, float, float]:
    """Cp, Cpk (sigma within = mean moving range / d2, d2 = 2 / sqrt(pi) = 1.128 for n = 2) and Pp, Ppk (sample
    sigma) of TEMPS in [10, 30]."""
    x = np.array(TEMPS)
    sw = float(np.mean(np.abs(np.diff(x)))) / (2 / np.sqrt(np.pi))
    so, mu = float(np.std(x, ddof=1)), float(np.mean(x))
    return 20 / (6 * sw), min(30 - mu, mu - 10) / (3 * sw), 20 / (6 * so), min(30 - mu, mu - 10) / (3 * so)


async def craft_report(rt: Runtime) -> None:
    """Shift A of 2026-03-10 as the OEE and energy tests craft it, plus two stops with reasons and the SPC tag."""
    await craft_power(rt)
    assert rt.store is not None
    for (h, m), (h2, m2), state, group, reason in [((10, 0), (10, 30), "idle", "Material", "No blanks"),
                                                    ((12, 0), (12, 20), "faulted", "Mechanical", "Jam")]:
        ev = rt.store.open_event(M1, LINE, "windsor", local_us(h, m), state, "A")
        rt.store.close_event(ev, local_us(h2, m2), state, False)
        rt.store.set_reason(ev, group, reason, "test", local_us(h2, m2))
    tid = rt.tag_ids[f"{M1}/temp"]
    at = [local_us(6, 10) + k * 20 * 60_000_000 for k in range(len(TEMPS))]
    rt.bus.publish(numeric_batch([tid] * len(TEMPS), at, TEMPS, 192))
    await settle(rt)
