"""OEE, costs and per-shift figures against a case computed by hand; downtime reasons round trip; Pareto."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime
from zoneinfo import ZoneInfo

import httpx
import pytest

from plantlink.api import queries
from plantlink.identity import Principal
from plantlink.runtime import Runtime
from plantlink.samples import now_us, numeric_batch
from tests.api.conftest import settle

Client = Callable[..., httpx.AsyncClient]
M1 = "windsor/a1/l1/m1"
TZ = ZoneInfo("America/Toronto")


def local_us(hh: int, mm: int = 0, day: int = 10) -> int:
    return int(datetime(2026, 3, day, hh, mm, tzinfo=TZ).timestamp()) * 1_000_000


async def craft_shift(rt: Runtime) -> None:
    """Shift A (06:00-14:00, break 10:00-10:30) on 2026-03-10: the by-hand case of the test below."""
    assert rt.store is not None
    timeline = [((6, 0), "running"), ((7, 0), "planned_stop"), ((7, 30), "running"), ((10, 0), "idle"),
                ((10, 30), "running"), ((12, 0), "faulted"), ((12, 20), "running")]
    for (hh, mm), state in timeline:
        rt.store.open_interval(M1, "windsor/a1/l1", state, local_us(hh, mm), "A")
    rt.store.close_interval(M1, local_us(14))
    count, reject = rt.tag_ids[f"{M1}/count"], rt.tag_ids[f"{M1}/reject"]
    at = [local_us(5, 59), local_us(9), local_us(13, 59), local_us(14, 30)]
    rt.bus.publish(numeric_batch([count] * 4, at, [1000, 3000, 6400, 7000], 192))
    rt.bus.publish(numeric_batch([reject] * 4, at, [10, 30, 64, 80], 192))
    await settle(rt)


# By hand: planned = 8 h - 0.5 h break = 27000 s; planned_stop 07:00-07:30 in planned time -> PBT 25200 s.
# APT = running in planned time = 3600 + 9000 + 5400 + 6000 = 24000 s (the idle break is not planned).
# PQ = 6400 - 1000 = 5400, SQ = 64 - 10 = 54, GQ = 5346; PRI = 4 s.
PBT, APT, PQ, SQ = 25200.0, 24000.0, 5400.0, 54.0
A, E, Q = APT / PBT, 4 * PQ / APT, (PQ - SQ) / PQ


async def test_oee_machine_by_hand(client: Client, runtime: Runtime) -> None:
    await craft_shift(runtime)
    start, end = local_us(6) // 1000, local_us(14) // 1000
    r = await client("ann:windsor=viewer").get(f"/api/v1/oee?scope={M1}&start={start}&end={end}")
    assert r.status_code == 200, r.text
    o = r.json()
    assert o["kind"] == "machine" and o["inputs"]["pbt_s"] == PBT and o["inputs"]["apt_s"] == APT
    assert (o["inputs"]["pq"], o["inputs"]["sq"], o["inputs"]["gq"]) == (PQ, SQ, PQ - SQ)
    assert o["availability"] == pytest.approx(0.9523809524)
    assert o["effectiveness"] == pytest.approx(0.9) and o["quality_rate"] == pytest.approx(0.99)
    assert o["oee"] == pytest.approx(A * E * Q) and o["oee"] == pytest.approx(0.8485714286)
    assert o["losses_s"] == pytest.approx({"availability": 1200.0, "performance": 2400.0, "quality": 216.0})
    line = (await client().get(f"/api/v1/oee?scope=windsor/a1/l1&start={start}&end={end}")).json()
    assert line["kind"] == "line" and line["oee"] == pytest.approx(o["oee"])  # m2 has no counters
    assert [m["machine"] for m in line["machines"]] == [M1]
    # the same figures through the service layer, as the HMI calls it
    who = Principal("hmi", {"windsor": "viewer"})
    direct = queries.oee(runtime, who, M1, local_us(6), local_us(14))
    assert direct["oee"] == pytest.approx(o["oee"])


async def test_oee_per_shift_and_costs(client: Client, runtime: Runtime) -> None:
    await craft_shift(runtime)
    c = client()
    day = (await c.get(f"/api/v1/oee/shifts?scope={M1}&start={local_us(0) // 1000}"
                       f"&end={local_us(0, day=11) // 1000}")).json()["shifts"]
    assert [(s["shift"], s["day"], s["start_ms"]) for s in day] == [("A", "2026-03-10", local_us(6) // 1000)]
    assert day[0]["oee"] == pytest.approx(A * E * Q)
    costs = (await c.get(f"/api/v1/lines/costs?line=windsor/a1/l1&start={local_us(6) // 1000}"
                         f"&end={local_us(14) // 1000}")).json()
    # 1200 s down x 3600 CAD/h; (24000 - 4 x 5400) / 4 = 600 parts not made x 2; 54 scrap x 2
    assert costs["currency"] == "CAD"
    assert costs["availability_loss"] == pytest.approx(1200.0)
    assert costs["performance_loss"] == pytest.approx(1200.0)
    assert costs["quality_loss"] == pytest.approx(108.0) and costs["total"] == pytest.approx(2508.0)
    assert [m["machine"] for m in costs["machines"]] == [M1]


async def test_parts_counted_while_the_device_was_down_are_reported_not_in_oee(client: Client,
                                                                               runtime: Runtime) -> None:
    """2026-03-11, shift A: the device dropped out 09:00-10:45 (a bad sample; states unknown) while it kept
    counting: 2000 -> 12000. Those 10 000 parts had no run time: they are reported, not in PQ."""
    assert runtime.store is not None
    for (hh, mm), state in [((6, 0), "running"), ((9, 0), "unknown"), ((10, 45), "running")]:
        runtime.store.open_interval(M1, "windsor/a1/l1", state, local_us(hh, mm, day=11), "A")
    runtime.store.close_interval(M1, local_us(14, day=11))
    count, reject = runtime.tag_ids[f"{M1}/count"], runtime.tag_ids[f"{M1}/reject"]
    at = [local_us(h, m, day=11) for h, m in [(6, 0), (8, 0), (9, 0), (10, 45), (13, 59)]]
    nan = float("nan")
    runtime.bus.publish(numeric_batch([count] * 5, at, [1000, 2000, nan, 12000, 13000], [192, 192, 0, 192, 192]))
    runtime.bus.publish(numeric_batch([reject] * 5, at, [5, 6, nan, 26, 27], [192, 192, 0, 192, 192]))
    await settle(runtime)
    start, end = local_us(6, day=11) // 1000, local_us(14, day=11) // 1000
    o = (await client().get(f"/api/v1/oee?scope={M1}&start={start}&end={end}")).json()
    # PBT: 8 h - 30 min break - unknown 09:00-10:45 outside the break (75 min) = 22500 s; APT the same
    assert (o["inputs"]["pbt_s"], o["inputs"]["apt_s"]) == (22500.0, 22500.0)
    assert (o["inputs"]["pq"], o["inputs"]["sq"], o["inputs"]["gq"]) == (2000.0, 2.0, 1998.0)
    assert o["unattributed"] == {"produced": 10000.0, "good": 9980.0, "scrap": 20.0, "counter_resets": 0.0}
    assert o["effectiveness"] == pytest.approx(4 * 2000 / 22500) and o["data_problem"] is False
    assert o["warnings"] == [] and "10000 unit(s) were counted across gaps" in o["notes"][0]
    line = (await client().get(f"/api/v1/oee?scope=windsor/a1/l1&start={start}&end={end}")).json()
    assert line["unattributed"]["produced"] == 10000.0 and line["machines"][0]["unattributed"]["produced"] == 10000


async def test_live_oee_today_and_overview(client: Client, runtime: Runtime) -> None:
    c = client("ann:windsor=viewer")
    today = (await c.get(f"/api/v1/oee?scope={M1}&period=today")).json()
    assert today["period"] == "today"
    midnight = datetime.fromtimestamp(now_us() / 1e6, TZ).replace(hour=0, minute=0, second=0, microsecond=0)
    assert today["start_ms"] == int(midnight.timestamp()) * 1000
    shift = (await c.get(f"/api/v1/oee?scope={M1}&period=shift")).json()
    assert shift["start_ms"] >= today["start_ms"]
    over = (await c.get("/api/v1/overview")).json()
    assert [s["site"] for s in over["sites"]] == ["windsor"]
    machines = {m["machine"]: m for m in over["sites"][0]["lines"][0]["machines"]}
    assert set(machines) == {M1, "windsor/a1/l1/m2"}
    assert machines[M1]["parts_today"] == 0.0 and machines["windsor/a1/l1/m2"]["parts_today"] is None
    assert machines["windsor/a1/l1/m2"]["state"] is not None
    err = (await c.get(f"/api/v1/oee?scope={M1}&period=week")).json()["error"]
    assert err["field"] == "period"


async def stop_then_run(rt: Runtime) -> int:
    """m3 (detroit, always planned): running, faulted for 0.5 s, running again. Returns the fault's start."""
    st = rt.tag_ids["detroit/d1/l2/m3/st"]
    t = now_us()
    rt.bus.publish(numeric_batch([st, st, st], [t, t + 500_000, t + 1_000_000], [1, 4, 1], 192))
    await settle(rt)
    return t + 500_000


async def test_downtime_reason_round_trip(client: Client, runtime: Runtime) -> None:
    fault_at = await stop_then_run(runtime)
    op = client("olga:detroit=operator")
    page = (await op.get("/api/v1/downtime?line=detroit/d1/l2&state=faulted")).json()
    assert page["total"] == 1
    ev = page["items"][0]
    assert ev["start_ms"] == fault_at // 1000 and ev["duration_s"] == pytest.approx(0.5) and ev["reason"] is None
    r = await op.put(f"/api/v1/downtime/{ev['id']}/reason", json={"reason": "Jam", "comment": "blank stuck"})
    assert r.status_code == 200, r.text
    assert (r.json()["reason"], r.json()["reason_group"], r.json()["reason_by"]) == ("Jam", "Mechanical", "olga")
    again = (await op.get(f"/api/v1/downtime/{ev['id']}")).json()
    assert again["reason"] == "Jam" and again["comment"] == "blank stuck"
    q = f"line=detroit/d1/l2&start={fault_at // 1000 - 1000}&end={fault_at // 1000 + 10_000}"
    pareto = (await op.get(f"/api/v1/downtime/pareto?{q}")).json()
    assert [(row["key"], row["count"]) for row in pareto["rows"]] == [("Jam", 1)]
    assert pareto["rows"][0]["duration_s"] == pytest.approx(0.5)
    bad = (await op.put(f"/api/v1/downtime/{ev['id']}/reason", json={"reason": "Coffee"})).json()["error"]
    assert bad["status"] == 400 and bad["field"] == "reason" and "Robot fault" in bad["message"]
    viewer = client("vic:detroit=viewer")
    assert (await viewer.put(f"/api/v1/downtime/{ev['id']}/reason", json={"reason": "Jam"})).status_code == 403
    stranger = client("sam:windsor=operator")
    r = await stranger.put(f"/api/v1/downtime/{ev['id']}/reason", json={"reason": "Jam"})
    assert r.status_code == 404 and "detroit" not in r.text
    assert (await stranger.get(f"/api/v1/downtime/{ev['id']}")).status_code == 404
    assert (await op.put("/api/v1/downtime/99999/reason", json={"reason": "Jam"})).status_code == 404
    cleared = (await op.put(f"/api/v1/downtime/{ev['id']}/reason", json={"reason": None})).json()
    assert cleared["reason"] is None


async def test_downtime_pagination_and_site_rules(client: Client, runtime: Runtime) -> None:
    await stop_then_run(runtime)
    await asyncio.sleep(0)
    c = client()
    everything = (await c.get("/api/v1/downtime?limit=1")).json()
    assert everything["limit"] == 1 and len(everything["items"]) == 1 and everything["total"] >= 2
    assert (await c.get("/api/v1/downtime?limit=1001")).status_code == 422
    assert (await c.get("/api/v1/downtime?offset=-5")).status_code == 422
    only = (await client("dee:detroit=viewer").get("/api/v1/downtime")).json()
    assert only["total"] >= 1 and {e["site"] for e in only["items"]} == {"detroit"}
    two = client("two:detroit=viewer,windsor=viewer")
    assert (await two.get("/api/v1/downtime")).status_code == 200  # both sites are all the sites
    err = (await c.get("/api/v1/downtime/pareto?by=colour&line=detroit/d1/l2")).json()["error"]
    assert err["field"] == "by"
    bn = (await c.get("/api/v1/lines/bottleneck?line=detroit/d1/l2")).json()
    assert bn["line"] == "detroit/d1/l2" and bn["ranking"] == ["detroit/d1/l2/m3"]


async def test_planned_time_without_data_is_not_an_availability_loss(client: Client, runtime: Runtime) -> None:
    """The next day's shift has no state data (plantlink was not running): it is left out of PBT, so a range
    spanning both days gives the by-hand figures of the first day alone; the second day alone has no PBT."""
    await craft_shift(runtime)
    start, end = local_us(6) // 1000, local_us(14, day=11) // 1000
    o = (await client("ann:windsor=viewer").get(f"/api/v1/oee?scope={M1}&start={start}&end={end}")).json()
    assert o["inputs"]["pbt_s"] == PBT and o["inputs"]["apt_s"] == APT
    assert o["availability"] == pytest.approx(A)
    alone = (await client("ann:windsor=viewer").get(
        f"/api/v1/oee?scope={M1}&start={local_us(6, day=11) // 1000}&end={end}")).json()
    assert alone["inputs"]["pbt_s"] == 0 and alone["availability"] is None
