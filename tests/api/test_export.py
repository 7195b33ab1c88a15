"""Exports (issue 10, item 11): the files read back (CSV and Parquet with pyarrow, XLSX with zipfile) hold what
the historian's own raw read and the JSON API answer; the size is said before; rights and the audit record."""

from __future__ import annotations

import io
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import httpx
import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from plantlink.errors import QueryError
from plantlink.runtime import Runtime
from plantlink.samples import numeric_batch
from plantlink.services import export as ex
from tests.api.conftest import settle
from tests.api.test_oee_downtime import M1, TZ, craft_shift, local_us, stop_then_run
from tests.api.xlsxread import read_xlsx

Client = Callable[..., httpx.AsyncClient]
TEMP = f"{M1}/temp"
N = 500


async def seed_temp(rt: Runtime) -> tuple[int, int]:
    """N samples of m1/temp, one a second from 06:00 local on 2026-03-10, every seventh bad, one NaN."""
    t0 = local_us(6)
    ts = t0 + np.arange(N, dtype=np.int64) * 1_000_000
    values = np.sin(np.arange(N) / 10.0) * 50 + 20
    values[3] = np.nan
    quality = np.where(np.arange(N) % 7 == 0, 0, 192)
    rt.bus.publish(numeric_batch([rt.tag_ids[TEMP]] * N, ts, values, quality))
    await settle(rt)
    return t0, t0 + N * 1_000_000


def _ms(us: int) -> int:
    return us // 1000


def _local(us: int) -> str:
    """Independent of the export's pyarrow formatting: Python's own zone arithmetic."""
    return datetime.fromtimestamp(us / 1e6, TZ).isoformat(timespec="microseconds")


def read_csv(data: bytes) -> pa.Table:
    """The CSV with its time and text columns read as text (not parsed into timestamps)."""
    names = data.split(b"\n", 1)[0].decode().replace('"', "").split(",")
    text = {n: pa.string() for n in names if n.split("_")[0] in TEXT_COLUMNS}
    return pacsv.read_csv(io.BytesIO(data), convert_options=pacsv.ConvertOptions(column_types=text))


TEXT_COLUMNS = {"time", "start", "end", "day", "shift", "comment", "name", "reason", "key", "group"}


async def _get(c: httpx.AsyncClient, path: str, **params: Any) -> httpx.Response:
    r = await c.get(f"{path}?{urlencode(params, doseq=True)}")
    assert r.status_code == 200, r.text
    return r


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
async def test_trend_file_holds_the_historians_raw_samples(client: Client, runtime: Runtime, fmt: str,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ex, "PAGE", 37)  # many pages and slices: the file is stitched from them
    monkeypatch.setattr(ex, "SLICE_US", 120 * 1_000_000)
    s, e = await seed_temp(runtime)
    r = await _get(client("ann:windsor=viewer"), "/api/v1/export/trend", tag=TEMP, start=_ms(s), end=_ms(e),
                   format=fmt)
    if fmt == "csv":
        assert r.headers["content-type"].startswith("text/csv")
        got = read_csv(r.content)
    else:
        got = pq.read_table(io.BytesIO(r.content))
    assert runtime.historian is not None
    raw = runtime.historian.raw(runtime.tag_ids[TEMP], s, e, 10_000)
    assert got.num_rows == raw.num_rows == N
    ts = raw.column("ts").cast("int64").to_pylist()
    assert got.column("time_utc").to_pylist() == [
        datetime.fromtimestamp(t / 1e6, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ") for t in ts]
    assert got.column("time").to_pylist() == [_local(t) for t in ts]
    assert got.column("time").to_pylist()[0] == "2026-03-10T06:00:00.000000-04:00"
    want = raw.column("value").to_numpy(zero_copy_only=False)
    np.testing.assert_array_equal(got.column("value").to_numpy(zero_copy_only=False), want)
    q = raw.column("quality").to_pylist()
    assert got.column("quality").to_pylist() == ["good" if x >= 192 else "bad" for x in q]
    assert set(got.column("tag").to_pylist()) == {TEMP}
    name = r.headers["content-disposition"]
    assert name == (f'attachment; filename="plantlink-trend-windsor_a1_l1_m1_temp-20260310T060000-0400-'
                    f'20260310T060820-0400.{fmt}"')


async def test_trend_as_an_arrow_stream_holds_the_raw_samples_typed(client: Client, runtime: Runtime,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ex, "PAGE", 37)  # many pages and slices: many record batches in one stream
    monkeypatch.setattr(ex, "SLICE_US", 120 * 1_000_000)
    s, e = await seed_temp(runtime)
    speed = "windsor/a1/l1/m2/speed"
    runtime.bus.publish(numeric_batch([runtime.tag_ids[speed]] * 2, [s + 7, s + 1_000_007], [-1.5, 2.5], 64))
    await settle(runtime)
    r = await _get(client("ann:windsor=viewer"), "/api/v1/export/trend", tag=f"{TEMP},{speed}", start=_ms(s),
                   end=_ms(e), format="arrow")
    assert r.headers["content-type"] == "application/vnd.apache.arrow.stream"
    assert r.headers["content-disposition"].endswith('.arrows"')
    reader = pa.ipc.open_stream(r.content)
    batches = list(reader)
    assert len(batches) > 10  # streamed batch by batch
    got = pa.Table.from_batches(batches, reader.schema)
    assert got.schema.names == ["tag", "ts", "value", "quality"] and got.schema.field("ts").type == pa.timestamp(
        "us", tz="UTC")
    assert reader.schema.metadata == {b"site_timezone": b"America/Toronto"}
    assert runtime.historian is not None
    raw = runtime.historian.raw(runtime.tag_ids[TEMP], s, e, 10_000)
    assert got.num_rows == N + 2 and got.column("tag").to_pylist() == [TEMP] * N + [speed] * 2
    ts = got.column("ts").cast(pa.int64()).to_pylist()
    assert ts == [*raw.column("ts").cast(pa.int64()).to_pylist(), s + 7, s + 1_000_007]  # to the microsecond
    np.testing.assert_array_equal(got.column("value").to_numpy(zero_copy_only=False)[:N],
                                  raw.column("value").to_numpy(zero_copy_only=False))  # NaN included
    assert got.column("value").to_pylist()[N:] == [-1.5, 2.5]
    q = raw.column("quality").to_pylist()
    assert got.column("quality").to_pylist() == ["good" if x >= 192 else "bad" for x in q] + ["uncertain"] * 2


async def test_a_format_a_kind_does_not_offer_is_400_with_the_envelope(client: Client, runtime: Runtime) -> None:
    c = client("ann:windsor=viewer")
    for path, params in [("trend", {"tag": TEMP, "format": "feather"}), ("oee", {"scope": M1, "format": "arrow"}),
                         ("trend", {"tag": TEMP, "format": "ARROW", "dry_run": "true"})]:
        r = await c.get(f"/api/v1/export/{path}?{urlencode(params)}")
        assert r.status_code == 400, (path, r.text)
        err = r.json()["error"]
        assert (err["status"], err["code"], err["field"]) == (400, "bad_query", "format"), err
        assert "arrow" in err["message"] or path == "oee"


async def test_the_size_is_said_before_and_the_export_is_audited(client: Client, runtime: Runtime) -> None:
    s, e = await seed_temp(runtime)
    c = client("ann:windsor=viewer")
    size = (await _get(c, "/api/v1/export/trend", tag=TEMP, start=_ms(s), end=_ms(e), dry_run="true")).json()
    good = N - len(range(0, N, 7)) - 1  # the historian counts good and uncertain finite samples
    assert (size["rows"], size["rows_exact"], size["confirm"]) == (good, False, False)
    assert size["bytes_estimate"] > 0 and size["filename"].endswith(".csv")
    r = await _get(c, "/api/v1/export/trend", tag=TEMP, start=_ms(s), end=_ms(e), format="parquet")
    assert int(r.headers["x-export-rows"]) == good
    assert runtime.audit is not None
    found = list(runtime.audit.query(kind="export.trend", actor="ann", newest_first=True, limit=5))
    assert len(found) == 1  # the dry run is not an export
    d = found[0].details
    assert (found[0].site, found[0].target) == ("windsor", TEMP)
    assert (d["format"], d["rows"], d["complete"], d["start_us"], d["end_us"]) == ("parquet", N, True, s, e)
    monkey = ex.CONFIRM_ROWS
    try:  # over the threshold: the page must ask first
        ex.CONFIRM_ROWS = 10
        size = (await _get(c, "/api/v1/export/trend", tag=TEMP, start=_ms(s), end=_ms(e), dry_run="1")).json()
        assert size["confirm"] is True
    finally:
        ex.CONFIRM_ROWS = monkey


async def test_oee_by_shift_xlsx_matches_the_oee_api(client: Client, runtime: Runtime) -> None:
    await craft_shift(runtime)
    c = client("ann:windsor=viewer")
    s, e = _ms(local_us(0)), _ms(local_us(0, day=11))
    r = await _get(c, "/api/v1/export/oee", scope=M1, start=s, end=e, by="shift", format="xlsx")
    assert r.headers["content-type"].startswith("application/vnd.openxmlformats")
    rows = read_xlsx(r.content)
    head, body = rows[0], [dict(zip(rows[0], x, strict=False)) for x in rows[1:]]
    assert head[:4] == ["name", "scope", "shift", "day"] and "oee" in head
    shifts = (await _get(c, "/api/v1/oee/shifts", scope=M1, start=s, end=e)).json()["shifts"]
    assert len(body) == len(shifts) == 1
    for row, want in zip(body, shifts, strict=True):
        assert (row["shift"], row["day"], row["name"]) == (want["shift"], want["day"], f"{want['day']} A")
        for key in ("availability", "effectiveness", "quality_rate", "oee"):
            assert row[key] == pytest.approx(want[key])
        assert (row["produced"], row["good"], row["scrap"]) == (want["inputs"]["pq"], want["inputs"]["gq"],
                                                                want["inputs"]["sq"])
        assert row["start"] == "2026-03-10T06:00:00.000000-04:00" and row["start_utc"] == want["start"][:-1] + "Z"


async def test_oee_by_machine_csv_matches_the_oee_api(client: Client, runtime: Runtime) -> None:
    await craft_shift(runtime)
    c = client("ann:windsor=viewer")
    s, e = _ms(local_us(6)), _ms(local_us(14))
    got = read_csv((await _get(c, "/api/v1/export/oee", scope="windsor/a1/l1", start=s, end=e)).content)
    want = (await _get(c, "/api/v1/oee", scope="windsor/a1/l1", start=s, end=e)).json()
    assert got.column("scope").to_pylist() == [m["machine"] for m in want["machines"]] + ["windsor/a1/l1"]
    assert got.column("oee").to_pylist() == pytest.approx([m["oee"] for m in want["machines"]] + [want["oee"]])


async def test_downtime_and_pareto_match_the_api(client: Client, runtime: Runtime) -> None:
    fault_at = await stop_then_run(runtime)
    op = client("olga:detroit=operator")
    page = (await op.get("/api/v1/downtime?line=detroit/d1/l2")).json()
    ev = page["items"][0]
    body = {"reason": "Jam", "comment": "=cmd|' /C calc'!A0"}
    assert (await op.put(f"/api/v1/downtime/{ev['id']}/reason", json=body)).status_code == 200
    viewer = client("vic:detroit=viewer")
    q = {"line": "detroit/d1/l2", "start": fault_at // 1000 - 60_000, "end": fault_at // 1000 + 60_000}
    listed = (await _get(viewer, "/api/v1/downtime", **q)).json()["items"]
    got = read_csv((await _get(viewer, "/api/v1/export/downtime", **q)).content)
    assert got.column("id").to_pylist() == [x["id"] for x in listed] and got.num_rows >= 1
    assert got.column("state").to_pylist() == [x["state"] for x in listed]
    first = got.slice(0, 1).to_pylist()[0] if got.column("id")[0].as_py() == ev["id"] else None
    assert first is not None and first["comment"] == "'=cmd|' /C calc'!A0"  # a formula stays text
    rows = read_xlsx((await _get(viewer, "/api/v1/export/downtime", **q, format="xlsx")).content)
    assert [int(x[0]) for x in rows[1:]] == [x["id"] for x in listed]
    pareto = (await _get(viewer, "/api/v1/downtime/pareto", **q)).json()["rows"]
    prow = read_xlsx((await _get(viewer, "/api/v1/export/pareto", **q, format="xlsx")).content)
    assert [(x[0], x[2], x[3]) for x in prow[1:]] == [(p["key"], p["count"], pytest.approx(p["duration_s"]))
                                                      for p in pareto]


async def test_rights_and_bad_input(client: Client, runtime: Runtime) -> None:
    s, e = await seed_temp(runtime)
    stranger = client("dee:detroit=admin")
    for path, params in [("trend", {"tag": TEMP}), ("oee", {"scope": M1}), ("downtime", {"line": "windsor/a1/l1"}),
                         ("pareto", {"line": "windsor/a1/l1"})]:
        r = await stranger.get(f"/api/v1/export/{path}?{urlencode(params | {'start': _ms(s), 'end': _ms(e)})}")
        assert r.status_code == 403, (path, r.text)
        assert "error" in r.json()
    c = client("ann:windsor=viewer")
    err = (await c.get(f"/api/v1/export/trend?tag={TEMP}&format=xlsx")).json()["error"]
    assert err["field"] == "format" and "csv" in err["message"]
    err = (await c.get(f"/api/v1/export/trend?tag={M1}/recipe")).json()["error"]
    assert err["field"] == "tags" and "text tag" in err["message"]
    err = (await c.get(f"/api/v1/export/trend?tag={TEMP}&tag=detroit/d1/l2/m3/temp")).json()["error"]
    assert err["status"] in (400, 403)
    with pytest.raises(QueryError, match=r"do not fit in an XLSX sheet.*CSV"):
        ex.check_format("downtime", "xlsx", ex.XLSX_MAX_ROWS)
    ex.check_format("downtime", "xlsx", ex.XLSX_MAX_ROWS - 1)


async def test_samples_at_a_page_edge_all_arrive_once(client: Client, runtime: Runtime,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ex, "PAGE", 4)
    t0 = local_us(6)
    # pages of 4: the first ends at t0+3, which the second reads again. Three samples written at t0+3: the
    # historian keeps the last one written (a time written again replaces the earlier sample)
    ts = [t0, t0 + 1, t0 + 2, t0 + 3, t0 + 3, t0 + 3, t0 + 4, t0 + 5]
    rt = runtime
    rt.bus.publish(numeric_batch([rt.tag_ids[TEMP]] * len(ts), ts, [float(i) for i in range(len(ts))], 192))
    await settle(rt)
    assert rt.historian is not None
    raw = rt.historian.raw(rt.tag_ids[TEMP], t0, t0 + 1000, 100)
    r = await _get(client("ann:windsor=viewer"), "/api/v1/export/trend", tag=TEMP, start=_ms(t0), end=_ms(t0) + 1)
    got = read_csv(r.content)
    assert raw.column("value").to_pylist() == [0.0, 1.0, 2.0, 5.0, 6.0, 7.0]
    assert got.column("value").to_pylist() == raw.column("value").to_pylist()
