"""``plantlink export`` and ``plantlink import`` on a real data directory (written through a real Runtime):
round trips of values and instants (offsets included), problems named by row and column, dry run and
all-or-nothing, the audit records, and the clear error on a data directory a running server holds."""

from __future__ import annotations

import csv
import subprocess
import sys
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from plantlink.audit import AuditLog
from plantlink.cli import app
from plantlink.store import Store, default_url
from tests.api.xlsxread import read_xlsx
from tests.client.plantdata import M1, TEMP, TEMP_TS, TEMP_VALUES, running_server

runner = CliRunner()
SPEED = "windsor/a1/l1/m2/speed"
#: An April day with no sample in the known contents; times written at +02:00.
PLUS2 = timezone(timedelta(hours=2))
APRIL = [datetime(2026, 4, 1, 10, 0, 0, 250_000, PLUS2) + timedelta(seconds=7 * k) for k in range(30)]
APRIL_VALUES = [round(100.0 - 3.25 * k, 2) for k in range(30)]
RANGE = ["--from", "2026-04-01T00:00:00Z", "--to", "2026-04-02T00:00:00Z"]


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "plantlink.cli", *args], capture_output=True, text=True,
                          timeout=120, check=False)


def _write_csv(path: Path, rows: list[list[str]]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["tag", "ts", "value", "quality"])
        w.writerows(rows)
    return path


def _april_csv(path: Path) -> Path:
    rows = [[TEMP, t.isoformat(), repr(v), "good"] for t, v in zip(APRIL, APRIL_VALUES, strict=True)]
    rows[5][3] = "uncertain"
    return _write_csv(path, rows)


def _export(data_dir: Path, out: Path, fmt: str, tags: str = TEMP, rng: list[str] = RANGE) -> str:
    res = runner.invoke(app, ["export", "--data", str(data_dir), "--tags", tags, *rng, "--format", fmt,
                              "--out", str(out)])
    assert res.exit_code == 0, res.output
    return res.output


def _rows(path: Path) -> list[dict[str, object]]:
    if path.suffix == ".parquet":
        return pq.read_table(path).to_pylist()
    with open(path, encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _utc(t: datetime) -> str:  # the export's time_utc, computed independently of plantlink
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def test_export_reads_the_known_samples_in_both_times(data_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "temp.csv"
    _export(data_dir, out, "csv", rng=["--from", "2026-03-10T12:00:00+00:00", "--to", "2026-03-10T13:00:00Z"])
    rows = _rows(out)
    assert [float(str(r["value"])) for r in rows] == TEMP_VALUES
    want = [datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=us) for us in TEMP_TS]
    assert [r["time_utc"] for r in rows] == [_utc(t) for t in want]
    # the site is in Toronto: 2026-03-10 is after the DST change (UTC-4)
    assert rows[0]["time"] == want[0].astimezone(timezone(timedelta(hours=-4))).isoformat()
    assert [r["quality"] for r in rows][3:5] == ["bad", "uncertain"]


def test_import_then_export_round_trips_values_and_instants(data_dir: Path, tmp_path: Path) -> None:
    src = _april_csv(tmp_path / "april.csv")
    res = runner.invoke(app, ["import", str(src), "--data", str(data_dir)])
    assert res.exit_code == 0, res.output
    assert "30 rows imported" in res.output
    for fmt in ("csv", "parquet"):
        out = tmp_path / f"back.{fmt}"
        _export(data_dir, out, fmt)
        rows = _rows(out)
        assert [r["time_utc"] for r in rows] == [_utc(t) for t in APRIL]  # +02:00 read as the same instants
        assert [float(str(r["value"])) for r in rows] == APRIL_VALUES
        assert [r["quality"] for r in rows].count("uncertain") == 1 and rows[5]["quality"] == "uncertain"
    # the exported file imports again (its time_utc column), onto another tag's same instants: same values
    back = _rows(tmp_path / "back.csv")
    again = _write_csv(tmp_path / "again.csv", [[SPEED, str(r["time"]), str(r["value"]), str(r["quality"])]
                                                for r in back])
    assert runner.invoke(app, ["import", str(again), "--data", str(data_dir)]).exit_code == 0
    out = tmp_path / "speed.parquet"
    _export(data_dir, out, "parquet", tags=SPEED)
    assert [(r["time_utc"], r["value"]) for r in _rows(out)] == [(_utc(t), v) for t, v in
                                                                  zip(APRIL, APRIL_VALUES, strict=True)]


def test_epoch_seconds_and_xlsx(data_dir: Path, tmp_path: Path) -> None:
    t = datetime(2026, 4, 1, 12, 0, tzinfo=UTC)
    src = _write_csv(tmp_path / "epoch.csv", [[TEMP, str(t.timestamp() + 1.5), "42.5", ""]])
    assert runner.invoke(app, ["import", str(src), "--data", str(data_dir)]).exit_code == 0
    out = tmp_path / "one.xlsx"
    _export(data_dir, out, "xlsx")
    rows = read_xlsx(out.read_bytes())
    assert rows[0] == ["tag", "time", "time_utc", "value", "quality"]
    assert rows[1][2:] == ["2026-04-01T12:00:01.500000Z", 42.5, "good"]


def test_problems_are_named_by_row_and_column_and_nothing_is_written(data_dir: Path, tmp_path: Path) -> None:
    good = [[TEMP, t.isoformat(), "1.0", "good"] for t in APRIL]
    bad = [*good[:10], ["windsor/a1/l1/m1/nope", APRIL[10].isoformat(), "1", "good"],
           [TEMP, "2026-04-01T10:00:00", "1", "good"],
           [TEMP, APRIL[12].isoformat(), "hot", "good"],
           [TEMP, "yesterday", "1", "good"],
           [TEMP, APRIL[14].isoformat(), "1", "superb"], *good[15:]]
    src = _write_csv(tmp_path / "bad.csv", bad)
    res = runner.invoke(app, ["import", str(src), "--data", str(data_dir)])
    assert res.exit_code == 1
    text = " ".join(res.output.split())
    assert "row 11, column tag: no tag 'windsor/a1/l1/m1/nope'" in text
    assert "row 12, column ts: '2026-04-01T10:00:00' has no time zone" in text
    assert "row 13, column value: 'hot' is not a number" in text
    assert "row 14, column ts: 'yesterday' is not an ISO 8601 time" in text
    assert "row 15, column quality: 'superb' is not a quality" in text
    assert "5 problem(s) in bad.csv: nothing written" in text
    out = tmp_path / "none.csv"
    _export(data_dir, out, "csv")  # all or nothing: the 25 good rows were not written either
    assert _rows(out) == []


def test_dry_run_writes_nothing(data_dir: Path, tmp_path: Path) -> None:
    src = _april_csv(tmp_path / "april.csv")
    res = runner.invoke(app, ["import", str(src), "--data", str(data_dir), "--dry-run"])
    assert res.exit_code == 0, res.output
    assert "30 rows of 1 tag(s)" in " ".join(res.output.split())
    out = tmp_path / "none.parquet"
    _export(data_dir, out, "parquet")
    assert _rows(out) == []


def test_import_and_export_are_audited(data_dir: Path, tmp_path: Path) -> None:
    src = _april_csv(tmp_path / "april.csv")
    assert runner.invoke(app, ["import", str(src), "--data", str(data_dir)]).exit_code == 0
    _export(data_dir, tmp_path / "out.csv", "csv")
    store = Store.open(default_url(data_dir))
    try:
        log = AuditLog(store.engine)
        imp = next(log.query(kind="history.import", newest_first=True, limit=1))
        exp = next(log.query(kind="export.trend", newest_first=True, limit=1))
        assert log.verify().ok
    finally:
        store.close()
    first_us = (APRIL[0] - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)
    last_us = (APRIL[-1] - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)
    assert imp.actor.startswith("cli") and imp.target == "april.csv" and imp.site == "windsor"
    assert imp.details["file"] == str(src.absolute()) and imp.details["rows"] == 30
    assert (imp.details["start_us"], imp.details["end_us"]) == (first_us, last_us)
    assert exp.details["rows"] == 30 and exp.details["complete"] and exp.details["tags"] == [TEMP]


def test_a_running_server_holds_the_data_dir_export_with_url(tmp_path: Path) -> None:
    from tests.client.plantdata import plant_file

    model = plant_file(tmp_path / "model")
    with running_server(tmp_path / "data", model) as server:
        # DuckDB's lock is between processes: the commands run in another one, as from a shell
        res = _cli("export", "--data", str(server.data_dir), "--tags", TEMP, *RANGE, "--out", str(tmp_path / "x.csv"))
        assert res.returncode == 1, res.stderr
        assert "in use by a running plantlink" in res.stderr and "--url" in res.stderr
        assert not (tmp_path / "x.csv").exists()
        res = _cli("import", str(_april_csv(tmp_path / "a.csv")), "--data", str(server.data_dir))
        assert res.returncode == 1 and "in use by a running plantlink" in res.stderr, res.stderr
        out = tmp_path / "remote.csv"
        res = runner.invoke(app, ["export", "--url", server.url, "--token", server.token,
                                  "--tags", "windsor/*/*/m1/temp", "--from", "2026-03-10T12:00:00Z",
                                  "--to", "2026-03-10T13:00:00Z", "--out", str(out)])
        assert res.exit_code == 0, res.output
        assert [float(str(r["value"])) for r in _rows(out)] == TEMP_VALUES
        res = runner.invoke(app, ["export", "--url", server.url, "--token", "wrong", "--tags", TEMP, *RANGE,
                                  "--out", str(tmp_path / "no.csv")])
        assert res.exit_code == 1 and not (tmp_path / "no.csv").exists()
        energy = tmp_path / "energy-remote.csv"
        res = runner.invoke(app, ["export", "--url", server.url, "--token", server.token, "--what", "energy",
                                  "--scope", "windsor/a1/l1", *SHIFT, "--out", str(energy)])
        assert res.exit_code == 0, res.output
        assert [r["scope"] for r in _rows(energy)] == [f"{M1}", "windsor/a1/l1/m2", "windsor/a1/l1"]


#: The shift of the known contents (tests/api/test_energy, by hand): m1's power and m2's meter, 06:00-14:00 local
SHIFT = ["--from", "2026-03-10T06:00:00-04:00", "--to", "2026-03-10T14:00:00-04:00"]


def test_the_energy_table_exports_by_machine_and_by_shift(data_dir: Path, tmp_path: Path) -> None:
    run, idle, gq = 200 / 3, 1.0 + 1.0 + 2 / 3, 5346.0
    out = tmp_path / "energy.csv"
    res = runner.invoke(app, ["export", "--data", str(data_dir), "--what", "energy", "--scope", "windsor/a1/l1",
                              *SHIFT, "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "3 rows written" in res.output
    rows = _rows(out)
    assert [r["scope"] for r in rows] == [M1, "windsor/a1/l1/m2", "windsor/a1/l1"]
    m1, m2, line = rows
    assert float(str(m1["total_kwh"])) == pytest.approx(run + idle) and float(str(m1["kwh_idle"])) == 1.0
    assert float(str(m1["kwh_per_good_part"])) == pytest.approx((run + idle) / gq)
    assert float(str(m1["idle_cost"])) == pytest.approx(idle * 0.15) and m1["currency"] == "CAD"
    assert float(str(m2["unattributed_kwh"])) == 3.0 and m2["kwh_per_good_part"] == ""
    assert float(str(line["total_kwh"])) == pytest.approx(run + idle + 8)
    xlsx = tmp_path / "shifts.xlsx"
    res = runner.invoke(app, ["export", "--data", str(data_dir), "--what", "energy", "--scope", M1, "--by", "shift",
                              "--from", "2026-03-10T00:00:00-04:00", "--to", "2026-03-11T00:00:00-04:00",
                              "--format", "xlsx", "--out", str(xlsx)])
    assert res.exit_code == 0, res.output
    sheet = read_xlsx(xlsx.read_bytes())
    got = [dict(zip(sheet[0], r, strict=False)) for r in sheet[1:]]
    assert [(g["shift"], g["day"]) for g in got] == [("A", "2026-03-10")]
    assert got[0]["total_kwh"] == pytest.approx(run + idle)
    store = Store.open(default_url(data_dir))
    try:
        found = [(e.details["by"], e.details["format"]) for e in AuditLog(store.engine).query(
            kind="export.energy", newest_first=True, limit=5)]
    finally:
        store.close()
    assert found == [("shift", "xlsx"), ("machine", "csv")]
    for args, says in [(["--what", "energy", "--tags", TEMP], "--scope"), (["--what", "energy", "--scope", M1,
                                                                             "--format", "parquet"], "csv or xlsx"),
                       (["--what", "power"], "--what must be"), ([], "--tags is needed"),
                       (["--what", "energy", "--scope", "windsor/a1/l1/nope"], "nope")]:
        res = runner.invoke(app, ["export", "--data", str(data_dir), *args, *SHIFT, "--out", str(tmp_path / "x")])
        assert res.exit_code != 0 and says in res.output, (args, res.output)


def test_parquet_import_with_typed_columns_and_an_exported_file(data_dir: Path, tmp_path: Path) -> None:
    import pyarrow as pa

    src = tmp_path / "typed.parquet"
    pq.write_table(pa.table({"tag": [SPEED] * 30, "ts": pa.array(APRIL, pa.timestamp("us", tz="Europe/Paris")),
                             "value": APRIL_VALUES, "quality": [192] * 30}), src)
    res = runner.invoke(app, ["import", str(src), "--data", str(data_dir)])
    assert res.exit_code == 0, res.output
    out = tmp_path / "speed.parquet"
    _export(data_dir, out, "parquet", tags=SPEED)
    assert [(r["time_utc"], r["value"]) for r in _rows(out)] == [(_utc(t), v) for t, v in
                                                                  zip(APRIL, APRIL_VALUES, strict=True)]
    # an export file checks as it is (its time_utc column): the same rows and range
    res = runner.invoke(app, ["import", str(out), "--data", str(data_dir), "--dry-run"])
    text = " ".join(res.output.split())
    assert res.exit_code == 0 and "30 rows of 1 tag(s)" in text, res.output
    assert f"{APRIL[0].astimezone(UTC).isoformat()} to {APRIL[-1].astimezone(UTC).isoformat()}" in text
