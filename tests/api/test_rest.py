"""REST routes against a real Runtime: happy paths, error envelopes, authentication and per-site access."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import httpx
import numpy as np

from plantlink.runtime import Runtime
from plantlink.samples import now_us, numeric_batch, text_batch
from tests.api.conftest import settle

Client = Callable[..., httpx.AsyncClient]
TEMP = "windsor/a1/l1/m1/temp"
D_TEMP = "detroit/d1/l2/m3/temp"
HOUR_US = 3600 * 1_000_000


def iso(us: int) -> str:
    return datetime.fromtimestamp(us / 1e6, UTC).isoformat()


def assert_error(r: httpx.Response, status: int, field: str | None) -> dict[str, object]:
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert err["status"] == status
    assert err.get("field") == field, err
    assert err["message"]
    return dict(err)


async def publish_series(rt: Runtime, path: str, ts_us: np.ndarray, values: np.ndarray, quality: int = 192) -> None:
    rt.bus.publish(numeric_batch(np.full(ts_us.size, rt.tag_ids[path]), ts_us, values, quality))
    await settle(rt)


async def test_every_route_needs_a_principal(client: Client) -> None:
    anon = client(None)
    spec = (await anon.get("/openapi.json")).json()
    gets = [p for p, ops in spec["paths"].items() if p.startswith("/api/v1") and "get" in ops]
    assert len(gets) >= 15
    for path in gets:
        url = path.replace("{ref}", TEMP).replace("{event_id}", "1")
        r = await anon.get(url)
        assert_error(r, 401, None)
        assert r.json()["error"]["code"] == "unauthenticated"
    r = await anon.put("/api/v1/downtime/1/reason", json={"reason": "Jam"})
    assert r.status_code == 401


async def test_openapi_has_summaries(client: Client) -> None:
    spec = (await client(None).get("/openapi.json")).json()
    for path, ops in spec["paths"].items():
        if path.startswith("/api/v1"):
            for op in ops.values():
                assert op.get("summary"), path


async def test_hierarchy_shows_only_viewable_sites(client: Client, runtime: Runtime) -> None:
    full = (await client("root:*=admin").get("/api/v1/hierarchy")).json()
    assert full["enterprise"] == "Test Co"
    assert [s["name"] for s in full["sites"]] == ["windsor", "detroit"]
    m1 = full["sites"][0]["areas"][0]["lines"][0]["machines"][0]
    assert m1["path"] == "windsor/a1/l1/m1" and m1["has_production"] and not m1["has_states"]
    assert {t["path"]: t["id"] for t in m1["tags"]} == {
        p: i for p, i in runtime.tag_ids.items() if p.startswith("windsor/a1/l1/m1/")}
    only = (await client("ann:windsor=viewer").get("/api/v1/hierarchy?tags=false")).json()
    assert [s["name"] for s in only["sites"]] == ["windsor"]
    assert "tags" not in only["sites"][0]["areas"][0]["lines"][0]["machines"][0]
    nobody = (await client("bob:elsewhere=admin").get("/api/v1/hierarchy")).json()
    assert nobody["sites"] == []


async def test_other_site_is_forbidden_by_path_and_unknown_by_id(client: Client, runtime: Runtime) -> None:
    ann = client("ann:windsor=viewer")
    assert_error(await ann.get(f"/api/v1/tags/{D_TEMP}"), 403, "site")
    r = await ann.get(f"/api/v1/tags/{runtime.tag_ids[D_TEMP]}")
    assert_error(r, 404, "tag")
    assert "detroit" not in r.text  # an id of another site's tag leaks nothing
    assert_error(await ann.get(f"/api/v1/values?tag={D_TEMP}"), 403, "site")
    assert_error(await ann.get("/api/v1/states?site=detroit"), 403, "site")
    assert_error(await ann.get("/api/v1/downtime?site=detroit"), 403, "site")
    assert_error(await ann.get("/api/v1/history/raw?tag=" + D_TEMP), 403, "site")
    assert_error(await ann.get("/api/v1/oee?scope=detroit/d1/l2"), 403, "site")
    assert_error(await ann.get("/api/v1/lines/bottleneck?line=detroit/d1/l2"), 403, "site")
    listed = (await ann.get("/api/v1/tags?limit=1000")).json()
    assert listed["total"] == 6 and all(t["path"].startswith("windsor/") for t in listed["items"])
    assert (await ann.get(f"/api/v1/tags/{TEMP}")).status_code == 200


async def test_tags_pagination_and_bounds(client: Client, runtime: Runtime) -> None:
    c = client()
    first = (await c.get("/api/v1/tags?limit=3")).json()
    rest = (await c.get("/api/v1/tags?limit=3&offset=3")).json()
    assert first["total"] == rest["total"] == len(runtime.tag_ids) == 8
    paths = [t["path"] for t in first["items"] + rest["items"]]
    assert paths == list(runtime.tag_ids)[:6]
    assert (await c.get("/api/v1/tags?offset=100")).json()["items"] == []
    assert (await c.get("/api/v1/tags")).json()["limit"] == 100
    assert_error(await c.get("/api/v1/tags?limit=0"), 422, "limit")
    assert_error(await c.get("/api/v1/tags?limit=1001"), 422, "limit")
    assert_error(await c.get("/api/v1/tags?offset=-1"), 422, "offset")
    assert_error(await c.get("/api/v1/tags?limit=abc"), 422, "limit")
    under = (await c.get("/api/v1/tags?prefix=detroit/d1/l2/m3")).json()
    assert [t["name"] for t in under["items"]] == ["st", "temp"]


async def test_latest_values_numbers_text_quality(client: Client, runtime: Runtime) -> None:
    t = now_us()
    ids = runtime.tag_ids
    runtime.bus.publish(numeric_batch([ids[TEMP], ids["windsor/a1/l1/m2/speed"]], t, [21.25, 3.5], [192, 64]))
    runtime.bus.publish(text_batch([ids["windsor/a1/l1/m1/recipe"]], t + 5, ["AB-12"], 192))
    runtime.bus.publish(numeric_batch([ids["windsor/a1/l1/m1/count"]], t, [float("nan")], 0))
    await settle(runtime)
    r = await client().get(f"/api/v1/values?tag={TEMP},windsor/a1/l1/m1/recipe&tag=windsor/a1/l1/m2/speed"
                           f"&tag={ids['windsor/a1/l1/m1/count']}")
    assert r.status_code == 200, r.text
    vals = r.json()["values"]
    assert [v["tag"] for v in vals] == [TEMP, "windsor/a1/l1/m1/recipe", "windsor/a1/l1/m2/speed",
                                        "windsor/a1/l1/m1/count"]
    assert vals[0] == {"tag": TEMP, "id": ids[TEMP], "unit": "degC", "value": 21.25, "quality": "good",
                       "ts": datetime.fromtimestamp(t / 1e6, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                       "ts_ms": t // 1000}
    assert vals[1]["text"] == "AB-12" and "value" not in vals[1] and vals[1]["ts_ms"] == (t + 5) // 1000
    assert vals[2]["value"] == 3.5 and vals[2]["quality"] == "uncertain" and vals[2]["unit"] == "m/min"
    assert vals[3]["value"] is None and vals[3]["quality"] == "bad"
    r = await client().get("/api/v1/values?tag=windsor/a1/l1/m1/nope")
    err = assert_error(r, 404, "tags")
    assert "windsor/a1/l1/m1/nope" in str(err["message"])
    assert_error(await client().get("/api/v1/values"), 400, "tags")
    assert_error(await client().get("/api/v1/tags/no/such/tag"), 404, "tag")


async def test_raw_history_paging_and_range_errors(client: Client, runtime: Runtime) -> None:
    t0 = (now_us() - HOUR_US) // 1_000_000 * 1_000_000
    ts = t0 + np.arange(50, dtype=np.int64) * 1_000_000
    await publish_series(runtime, TEMP, ts, np.arange(50) * 0.5)
    c = client()
    r = await c.get(f"/api/v1/history/raw?tag={TEMP}&start={iso(t0)}&end={(t0 + 60_000_000) // 1000}")
    body = r.json()
    assert r.status_code == 200 and body["count"] == 50 and body["next_start"] is None
    assert body["value"] == (np.arange(50) * 0.5).tolist()
    assert body["ts_ms"] == (ts // 1000).tolist() and body["quality"] == ["good"] * 50
    part = (await c.get(f"/api/v1/history/raw?tag={TEMP}&start={t0 // 1000}&end={(t0 + HOUR_US) // 1000}"
                        "&limit=10")).json()
    assert part["count"] == 10 and part["value"] == (np.arange(10) * 0.5).tolist()
    assert part["next_start"]["ts_ms"] == (ts[9] + 1) // 1000
    nxt = (await c.get(f"/api/v1/history/raw?tag={TEMP}&start={part['next_start']['ts']}"
                       f"&end={(t0 + HOUR_US) // 1000}&limit=10")).json()
    assert nxt["value"][0] == 5.0
    start, end = t0 // 1000, (t0 + HOUR_US) // 1000
    assert_error(await c.get(f"/api/v1/history/raw?tag={TEMP}&start={end}&end={start}"), 400, "end")
    assert_error(await c.get(f"/api/v1/history/raw?tag={TEMP}&start=yesterday&end={end}"), 400, "start")
    assert_error(await c.get(f"/api/v1/history/raw?tag={TEMP}&start=2026-01-01T00:00:00&end={end}"), 400, "start")
    assert_error(await c.get(f"/api/v1/history/raw?tag={TEMP}&start={start}&end=2026-13-01T00:00Z"), 400, "end")
    too_long = start - 40 * 86400 * 1000
    assert_error(await c.get(f"/api/v1/history/raw?tag={TEMP}&start={too_long}&end={end}"), 400, "end")
    assert_error(await c.get(f"/api/v1/history/raw?tag={TEMP}&start={start}&end={end}&limit=2000000"), 400, "limit")
    err = assert_error(await c.get(f"/api/v1/history/raw?tag=nope/tag&start={start}&end={end}"), 404, "tag")
    assert "nope/tag" in str(err["message"])


async def test_aggregate_and_downsample(client: Client, runtime: Runtime) -> None:
    t0 = (now_us() - 2 * HOUR_US) // 60_000_000 * 60_000_000  # aligned to a minute: buckets are aligned
    ts = t0 + np.arange(120, dtype=np.int64) * 1_000_000
    vals = np.sin(np.arange(120) / 7.0) * 10
    await publish_series(runtime, TEMP, ts, vals)
    c = client()
    start, end = t0 // 1000, (t0 + 120_000_000) // 1000
    r = await c.get(f"/api/v1/history/aggregate?tag={TEMP}&start={start}&end={end}&interval=60s"
                    "&aggregates=min,max,mean,count")
    assert r.status_code == 200, r.text
    s = r.json()["series"][0]
    assert s["bucket_ms"] == [start, start + 60_000]
    np.testing.assert_allclose(s["mean"], [vals[:60].mean(), vals[60:].mean()], rtol=1e-9)
    np.testing.assert_allclose(s["min"], [vals[:60].min(), vals[60:].min()])
    assert s["count"] == [60, 60] and set(s) >= {"min", "max", "mean", "count"} and "twa" not in s
    bare = await c.get(f"/api/v1/history/aggregate?tag={TEMP}&start={start}&end={end}&interval=60&aggregates=count")
    assert bare.status_code == 200 and bare.json()["interval_ms"] == 60_000  # seconds, as in the YAML
    assert_error(await c.get(f"/api/v1/history/aggregate?tag={TEMP}&interval=1m&aggregates=median"), 400,
                 "aggregates")
    assert_error(await c.get(f"/api/v1/history/aggregate?tag={TEMP}&interval=soon"), 400, "interval")
    assert_error(await c.get(f"/api/v1/history/aggregate?tag={TEMP}&interval=1ms"), 400, "interval")
    assert_error(await c.get("/api/v1/history/aggregate?interval=1m"), 400, "tags")
    ds = (await c.get(f"/api/v1/history/downsample?tag={TEMP}&start={start}&end={end}&n=20")).json()
    assert 5 <= ds["count"] <= 22
    assert max(ds["value"]) == vals.max() and min(ds["value"]) == vals.min()
    assert ds["ts_ms"] == sorted(ds["ts_ms"]) and set(ds["ts_ms"]) <= set((ts // 1000).tolist())
    assert_error(await c.get(f"/api/v1/history/downsample?tag={TEMP}&n=2"), 400, "n")
    assert_error(await c.get(f"/api/v1/history/downsample?tag={TEMP}&n=20000"), 400, "n")


async def test_states_now_and_timeline(client: Client, runtime: Runtime) -> None:
    st = runtime.tag_ids["detroit/d1/l2/m3/st"]
    t = now_us()
    runtime.bus.publish(numeric_batch([st], t, [1.0], 192))
    await settle(runtime)
    c = client("dee:detroit=viewer")
    states = (await c.get("/api/v1/states")).json()["states"]
    assert [(s["machine"], s["state"]) for s in states] == [("detroit/d1/l2/m3", "running")]
    assert states[0]["since_ms"] == t // 1000
    tl = (await c.get("/api/v1/states/timeline?machine=detroit/d1/l2/m3")).json()
    assert [i["state"] for i in tl["items"]] == ["unknown", "running"]
    assert tl["items"][1]["start_ms"] == t // 1000 and tl["items"][0]["end_ms"] == t // 1000
    assert [i["end_reason"] for i in tl["items"]] == ["change", None]  # the open one has not ended
    assert tl["total"] == 2
    one = (await c.get("/api/v1/states/timeline?machine=detroit/d1/l2/m3&limit=1&offset=1")).json()
    assert [i["state"] for i in one["items"]] == ["running"]
    assert_error(await c.get("/api/v1/states/timeline?machine=detroit/d1/l2/zz"), 404, "machine")
    assert_error(await c.get("/api/v1/states?line=windsor/a1/l1"), 403, "site")
