"""GET /api/v1/energy against a shift worked out by hand (the OEE test's shift, with a power tag following
the states), per shift, per line, and its refusals (403, 404, 400, a machine without an energy tag)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest

from plantlink.api import energy as encode
from plantlink.identity import Principal
from plantlink.model import parse_plant
from plantlink.runtime import Runtime
from plantlink.samples import numeric_batch
from tests.api.conftest import PLANT, settle
from tests.api.test_oee_downtime import M1, craft_shift, local_us

Client = Callable[..., httpx.AsyncClient]
_M1 = "                production: {produced: count, reject: reject, ideal_cycle_time: 4s}\n"
_M2 = "                states: {state_tag: st}\n                tags:\n"
_IN = "                  - "
ENERGY_PLANT = PLANT.replace(
    "costs: {currency: CAD, downtime_per_hour: 3600, margin_per_part: 2.0}",
    "costs: {currency: CAD, downtime_per_hour: 3600, margin_per_part: 2.0, energy_per_kwh: 0.15}",
).replace(
    _M1 + "                tags:\n",
    _M1 + "                energy: {power: power_w}\n                tags:\n"
    + _IN + "{name: power_w, unit: W, source: {device: plc, address: 30, type: float32}}\n",
).replace(
    _M2,
    _M2.replace("tags:", "energy: {meter: meter_wh, meter_wrap: 100000}\n                tags:")
    + _IN + "{name: meter_wh, unit: Wh, source: {device: plc, address: 40, type: float32}}\n",
    1,  # m2 only (m3 of detroit has the same lines)
)
assert ENERGY_PLANT.count("energy:") == 2 and "energy_per_kwh" in ENERGY_PLANT
M2 = "windsor/a1/l1/m2"


@pytest.fixture
async def runtime(tmp_path: Path) -> AsyncIterator[Runtime]:
    rt = Runtime(parse_plant(ENERGY_PLANT, "test-plant.yaml"), tmp_path / "data", flush_interval=0.2)
    await rt.start()
    try:
        yield rt
    finally:
        await rt.stop()


async def craft_power(rt: Runtime) -> None:
    """10 kW while running, 2 kW otherwise (in W, as the tag's unit says), 0 after the shift."""
    await craft_shift(rt)
    at = [(6, 0), (7, 0), (7, 30), (10, 0), (10, 30), (12, 0), (12, 20), (14, 0)]
    watts = [10e3, 2e3, 10e3, 2e3, 10e3, 2e3, 10e3, 0.0]
    tid = rt.tag_ids[f"{M1}/power_w"]
    rt.bus.publish(numeric_batch([tid] * len(at), [local_us(h, m) for h, m in at], watts, 192))
    await settle(rt)


async def craft_meter(rt: Runtime) -> None:
    """m2's Wh meter wraps at 100000: 99000 at 06:00, 4000 at 07:00 (+5 kWh), 6000 at 08:00 (+2), a bad
    sample at 09:00, 9000 at 10:00 (+3 across the bad sample: unattributed), 10000 at 11:00 (+1). Running
    06:00-08:00, idle 08:00-11:00: 7 kWh running, 1 kWh idle, 3 kWh apart, 2 h + 3 h not measured."""
    assert rt.store is not None
    rt.store.open_interval(M2, "windsor/a1/l1", "running", local_us(6), "A")
    rt.store.open_interval(M2, "windsor/a1/l1", "idle", local_us(8), "A")
    rt.store.close_interval(M2, local_us(11))
    tid = rt.tag_ids[f"{M2}/meter_wh"]
    good = [(6, 99000.0), (7, 4000.0), (8, 6000.0), (10, 9000.0), (11, 10000.0)]
    rt.bus.publish(numeric_batch([tid] * len(good), [local_us(h) for h, _ in good], [v for _, v in good], 192))
    rt.bus.publish(numeric_batch([tid], [local_us(9)], [7000.0], 0))
    await settle(rt)


# By hand, 06:00-14:00: running 1 h + 2.5 h + 1.5 h + 1 h 40 min = 6 h 40 min at 10 kW = 66.667 kWh;
# planned_stop 07:00-07:30, idle 10:00-10:30 at 2 kW = 1 kWh each, faulted 12:00-12:20 = 0.667 kWh.
# Good parts (the OEE test's GQ): 5346. Price 0.15 CAD/kWh.
RUN, IDLE = 200 / 3, 1.0 + 1.0 + 2 / 3
GQ, PRICE = 5346.0, 0.15


async def test_machine_energy_by_hand(client: Client, runtime: Runtime) -> None:
    await craft_power(runtime)
    r = await client("ann:windsor=viewer").get(
        f"/api/v1/energy?scope={M1}&start={local_us(6) // 1000}&end={local_us(14) // 1000}")
    assert r.status_code == 200, r.text
    e = r.json()
    assert e["kind"] == "machine" and e["currency"] == "CAD" and e["without_energy"] == []
    assert e["kwh_by_state"] == pytest.approx({"faulted": 2 / 3, "idle": 1.0, "planned_stop": 1.0, "running": RUN})
    assert (e["running_kwh"], e["idle_kwh"], e["total_kwh"]) == pytest.approx((RUN, IDLE, RUN + IDLE))
    assert e["good_parts"] == GQ and e["kwh_per_good_part"] == pytest.approx((RUN + IDLE) / GQ)
    assert e["running_kwh_per_good_part"] == pytest.approx(RUN / GQ)
    assert e["idle_cost"] == pytest.approx(IDLE * PRICE) and e["cost"] == pytest.approx((RUN + IDLE) * PRICE)
    assert e["unmeasured_s"] == 0 and e["unknown_state_kwh"] == 0
    # the service layer gives the same figures
    direct = encode.energy(runtime, Principal("hmi", {"windsor": "viewer"}), M1, local_us(6), local_us(14))
    assert direct["total_kwh"] == pytest.approx(e["total_kwh"])


async def test_meter_rollover_and_gap_through_the_historian(client: Client, runtime: Runtime) -> None:
    await craft_meter(runtime)
    e = (await client().get(f"/api/v1/energy?scope={M2}&start={local_us(6) // 1000}&end={local_us(14) // 1000}"
                            )).json()
    assert e["kwh_by_state"] == pytest.approx({"running": 7.0, "idle": 1.0})
    assert e["unattributed_kwh"] == pytest.approx(3.0) and e["unmeasured_s"] == pytest.approx(5 * 3600)
    assert e["good_parts"] is None and e["kwh_per_good_part"] is None  # m2 has no production counters
    assert e["idle_cost"] == pytest.approx(0.15) and any("across gaps" in n for n in e["notes"])


async def test_per_shift_and_line(client: Client, runtime: Runtime) -> None:
    await craft_power(runtime)
    await craft_meter(runtime)
    day = f"start={local_us(0) // 1000}&end={local_us(0, day=11) // 1000}"
    e = (await client().get(f"/api/v1/energy?scope={M1}&{day}&by=shift")).json()
    assert [(s["shift"], s["day"]) for s in e["shifts"]] == [("A", "2026-03-10")]
    assert e["shifts"][0]["total_kwh"] == pytest.approx(RUN + IDLE) and e["total_kwh"] == pytest.approx(RUN + IDLE)
    assert e["unmeasured_s"] == pytest.approx(6 * 3600)  # no reading before 06:00 (0 kW after 14:00 is a reading)
    line = (await client().get(f"/api/v1/energy?scope=windsor/a1/l1&{day}")).json()
    assert line["kind"] == "line" and line["without_energy"] == []
    assert [m["machine"] for m in line["machines"]] == [M1, M2] and line["idle_kwh"] == pytest.approx(IDLE + 1)
    assert line["total_kwh"] == pytest.approx(RUN + IDLE + 8) and line["currency"] == "CAD"
    # m2 has no counters: its 8 kWh are in the line's kWh, not in the line's kWh per part
    # over the day the OEE counts the parts of 14:30 too: GQ = (7000 - 1000) - (80 - 10)
    assert line["good_parts"] == 5930 and line["kwh_per_good_part"] == pytest.approx((RUN + IDLE) / 5930)
    assert "shifts" not in line


async def test_refusals_and_a_scope_without_energy(client: Client, runtime: Runtime) -> None:
    rng = f"start={local_us(6) // 1000}&end={local_us(14) // 1000}"
    other = await client("bob:detroit=viewer").get(f"/api/v1/energy?scope={M1}&{rng}")
    assert other.status_code == 403
    unknown = await client().get(f"/api/v1/energy?scope=windsor/a1/l1/nope&{rng}")
    assert unknown.status_code == 404
    none = await client().get(f"/api/v1/energy?scope=detroit/d1/l2/m3&{rng}")
    assert none.status_code == 404 and "no energy tag" in none.text
    backwards = await client().get(f"/api/v1/energy?scope={M1}&start={local_us(14) // 1000}&end={local_us(6) // 1000}")
    assert backwards.status_code == 400
    by = await client().get(f"/api/v1/energy?scope={M1}&{rng}&by=week")
    assert by.status_code == 400 and "by must be" in by.text
    detroit = (await client().get(f"/api/v1/energy?scope=detroit&{rng}")).json()
    assert detroit["total_kwh"] is None and detroit["kwh_per_good_part"] is None
    assert detroit["without_energy"] == ["detroit/d1/l2/m3"] and detroit["machines"] == []


async def test_a_power_held_for_days_before_the_range_is_integrated(client: Client, runtime: Runtime) -> None:
    """5 kW read once at 02:00 two days before, then nothing: [04:00, 06:00) on the 10th holds 10 kWh (state
    unknown: no interval). A bad sample at 05:00 on the 10th ends it there: [05:30, 06:00) is not measured."""
    tid = runtime.tag_ids[f"{M1}/power_w"]
    runtime.bus.publish(numeric_batch([tid], [local_us(2, day=8)], [5e3], 192))
    await settle(runtime)

    async def get(a: int, b: int) -> dict[str, object]:
        r = await client().get(f"/api/v1/energy?scope={M1}&start={a // 1000}&end={b // 1000}")
        assert r.status_code == 200, r.text
        out: dict[str, object] = r.json()
        return out

    held = await get(local_us(4), local_us(6))
    assert held["total_kwh"] == pytest.approx(10.0) and held["unknown_state_kwh"] == pytest.approx(10.0)
    assert held["unmeasured_s"] == 0
    runtime.bus.publish(numeric_batch([tid], [local_us(5)], [1e3], 0))
    await settle(runtime)
    after_bad = await get(local_us(5, 30), local_us(6))
    assert after_bad["total_kwh"] == 0 and after_bad["unmeasured_s"] == pytest.approx(1800)
    assert (await get(local_us(4), local_us(6)))["total_kwh"] == pytest.approx(5.0)


async def test_the_energy_export_holds_the_apis_figures(client: Client, runtime: Runtime) -> None:
    import io

    import pyarrow.csv as pacsv

    from tests.api.xlsxread import read_xlsx

    await craft_power(runtime)
    await craft_meter(runtime)
    c = client("ann:windsor=viewer")
    rng = f"start={local_us(6) // 1000}&end={local_us(14) // 1000}"
    r = await c.get(f"/api/v1/export/energy?scope=windsor/a1/l1&{rng}")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    text = {k: "string" for k in ("start", "start_utc", "end", "end_utc", "shift", "day", "currency")}
    t = pacsv.read_csv(io.BytesIO(r.content), convert_options=pacsv.ConvertOptions(column_types=text)).to_pylist()
    assert [row["scope"] for row in t] == [M1, M2, "windsor/a1/l1"] and [row["name"] for row in t] == [
        "m1", "m2", "l1"]
    m1, m2, line = t
    assert (m1["total_kwh"], m1["kwh_running"], m1["kwh_idle"], m1["kwh_faulted"]) == pytest.approx(
        (RUN + IDLE, RUN, 1.0, 2 / 3))
    assert m1["kwh_per_good_part"] == pytest.approx((RUN + IDLE) / GQ) and m1["good_parts"] == GQ
    assert (m1["idle_cost"], m1["currency"]) == (pytest.approx(IDLE * PRICE), "CAD")
    assert (m2["unattributed_kwh"], m2["kwh_per_good_part"], m2["kwh_starved"]) == (pytest.approx(3.0), None, 0.0)
    assert line["total_kwh"] == pytest.approx(RUN + IDLE + 8) and line["start"] == "2026-03-10T06:00:00.000000-04:00"
    day = f"start={local_us(0) // 1000}&end={local_us(0, day=11) // 1000}"
    r = await c.get(f"/api/v1/export/energy?scope={M1}&{day}&by=shift&format=xlsx")
    rows = read_xlsx(r.content)
    got = [dict(zip(rows[0], row, strict=False)) for row in rows[1:]]
    assert [(g["name"], g["shift"], g["day"]) for g in got] == [("2026-03-10 A", "A", "2026-03-10")]
    assert got[0]["total_kwh"] == pytest.approx(RUN + IDLE)
    audit = runtime.audit
    assert audit is not None
    found = list(audit.query(kind="export.energy", actor="ann", newest_first=True, limit=5))
    assert [f.details["by"] for f in found] == ["shift", "machine"] and found[0].details["format"] == "xlsx"
    bad = await c.get(f"/api/v1/export/energy?scope={M1}&{rng}&by=day")
    assert bad.status_code == 400 and bad.json()["error"]["field"] == "by"
    none = await c.get(f"/api/v1/export/energy?scope=windsor/a1/l1/nope&{rng}")
    assert none.status_code == 404
