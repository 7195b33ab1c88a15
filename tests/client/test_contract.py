"""The Python API's contract, run on both modes (a data directory, a real server) over the same known data
(tests/client/plantdata.py): every expected figure is written out by hand here."""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta

import polars as pl_
import pyarrow as pa
import pytest

from plantlink.client import Connection
from plantlink.errors import NotFound, QueryError
from tests.api.test_oee_downtime import APT, PBT, PQ, SQ, A, E, Q, local_us
from tests.client.plantdata import (
    DET,
    DET_TS,
    DET_VALUES,
    M1,
    SPEED,
    SPEED_TS,
    SPEED_VALUES,
    T0,
    TEMP,
    TEMP_TS,
    TEMP_VALUES,
)

START = datetime.fromtimestamp(T0 / 1e6, UTC)
END = START + timedelta(minutes=2)


def at(us: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=us)


def local(hh: int, mm: int = 0) -> datetime:
    return at(local_us(hh, mm))


def test_raw_values_and_timestamps_round_trip_exactly(pl: Connection) -> None:
    df = pl.read(TEMP, START, END)
    assert df.columns == ["tag", "ts", "value", "quality"]
    assert df.schema["ts"] == pl_.Datetime("us", "UTC")
    assert df["tag"].to_list() == [TEMP] * 12
    assert df["ts"].to_list() == [at(t) for t in TEMP_TS]  # to the microsecond
    assert df["value"].to_list() == TEMP_VALUES
    assert df["quality"].to_list() == ["good"] * 3 + ["bad", "uncertain"] + ["good"] * 7


def test_raw_range_is_half_open_and_iso_strings_work(pl: Connection) -> None:
    df = pl.read(SPEED, "2026-03-10T12:00:00Z", "2026-03-10T12:01:30Z")  # the sample at 12:01:30 is out
    assert df["ts"].to_list() == [at(t) for t in SPEED_TS[:3]]
    assert df["value"].to_list() == SPEED_VALUES[:3]
    offset = pl.read(SPEED, "2026-03-10T07:00:00-05:00", "2026-03-10T07:01:30-05:00")  # the same, in Toronto
    assert offset.equals(df)


def test_wildcards_select_by_segment_across_sites_in_the_order_asked(pl: Connection) -> None:
    assert pl.tags("windsor/a1/l1/*/temp") == [TEMP]
    assert pl.tags("*/*/*/*/temp") == [TEMP, DET]
    assert pl.tags("windsor/a1/l1/m[12]/*") == [f"{M1}/power_w", f"{M1}/count", f"{M1}/reject", TEMP,
                                                f"{M1}/recipe", "windsor/a1/l1/m2/meter_wh", "windsor/a1/l1/m2/st",
                                                SPEED]
    assert pl.tags([SPEED, "*/*/*/*/te?p", SPEED]) == [SPEED, TEMP, DET]
    df = pl.read([SPEED, "*/*/*/*/temp"], START, END)
    assert df["tag"].to_list() == [SPEED] * 4 + [TEMP] * 12 + [DET] * 2
    assert df.filter(pl_.col("tag") == DET)["value"].to_list() == DET_VALUES
    assert df.filter(pl_.col("tag") == DET)["ts"].to_list() == [at(t) for t in DET_TS]


def test_aggregates_equal_hand_computed_buckets(pl: Connection) -> None:
    df = pl.read(TEMP, START, END, every="1m", agg=["mean", "min", "max", "count"])
    assert df.columns == ["tag", "ts", "mean", "min", "max", "count"]
    assert df["ts"].to_list() == [START, START + timedelta(minutes=1)]
    # bucket 1: 20, 20.5, 21, (21.5 bad: ignored), 22 (uncertain), 22.5; bucket 2: 23 .. 25.5
    assert df["mean"].to_list() == pytest.approx([(20 + 20.5 + 21 + 22 + 22.5) / 5, (23 + 25.5) / 2])
    assert df["min"].to_list() == [20.0, 23.0] and df["max"].to_list() == [22.5, 25.5]
    assert df["count"].to_list() == [5, 6]
    # time-weighted, bucket 2 (12:01-12:02): 22.5 (the last value before it) holds 0.123456 s, 23 .. 25 hold
    # 10 s each, 25.5 from 12:01:50.123456 to the bucket's end
    twa = pl.read(TEMP, START, END, every="1m", agg="twa")["twa"].to_list()[1]
    assert twa == pytest.approx((22.5 * 0.123456 + (23 + 23.5 + 24 + 24.5 + 25) * 10 + 25.5 * 9.876544) / 60)
    default = pl.read([TEMP, SPEED], START, END, every=timedelta(minutes=2))  # agg defaults to mean
    assert default.columns == ["tag", "ts", "mean"]
    good_temps = [20, 20.5, 21, 22, 22.5, 23, 23.5, 24, 24.5, 25, 25.5]  # the bad 21.5 left out
    assert default["mean"].to_list() == pytest.approx([sum(good_temps) / 11, (1.25 + 2.5 + 3.75 + 5) / 4])


def test_latest(pl: Connection) -> None:
    df = pl.latest(["*/*/*/*/temp", SPEED])
    assert df.columns[:4] == ["tag", "ts", "value", "quality"]
    assert df["tag"].to_list() == [TEMP, DET, SPEED]
    assert df["value"].to_list() == [TEMP_VALUES[-1], DET_VALUES[-1], SPEED_VALUES[-1]]
    assert df["ts"].to_list() == [at(TEMP_TS[-1]), at(DET_TS[-1]), at(SPEED_TS[-1])]
    assert df["quality"].to_list() == ["good"] * 3 and df["unit"].to_list() == ["degC", "degC", "m/min"]
    never = pl.latest("windsor/a1/l1/m2/st").row(0, named=True)  # a tag without any sample
    assert never["tag"] == "windsor/a1/l1/m2/st" and never["ts"] is None and never["value"] is None


def test_states_are_the_machine_timeline(pl: Connection) -> None:
    df = pl.states(M1, local(6), local(14))
    assert df["state"].to_list() == ["running", "planned_stop", "running", "idle", "running", "faulted", "running"]
    assert df["start"].to_list() == [local(6), local(7), local(7, 30), local(10), local(10, 30), local(12),
                                     local(12, 20)]
    assert df["end"].to_list()[-1] == local(14)
    assert df["duration_s"].to_list() == [3600.0, 1800.0, 9000.0, 1800.0, 5400.0, 1200.0, 6000.0]
    assert set(df["machine"].to_list()) == {M1} and set(df["shift"].to_list()) == {"A"}


def test_oee_by_hand(pl: Connection) -> None:
    df = pl.oee(M1, local(6), local(14))
    assert df.height == 1
    row = df.row(0, named=True)
    assert (row["scope"], row["kind"], row["start"], row["end"]) == (M1, "machine", local(6), local(14))
    assert (row["produced"], row["scrap"], row["good"]) == (PQ, SQ, PQ - SQ)
    assert row["availability"] == pytest.approx(APT / PBT) and row["effectiveness"] == pytest.approx(E)
    assert row["quality_rate"] == pytest.approx(Q) and row["oee"] == pytest.approx(A * E * Q)
    assert (row["availability_loss_s"], row["performance_loss_s"], row["quality_loss_s"]) == pytest.approx(
        (1200.0, 2400.0, 216.0))
    line = pl.oee("windsor/a1/l1", local(6), local(14))
    assert line["scope"].to_list() == ["windsor/a1/l1", M1] and line["kind"].to_list() == ["line", "machine"]
    assert line["oee"].to_list() == pytest.approx([A * E * Q] * 2)  # m2 has no counters


def test_energy_by_hand(pl: Connection) -> None:
    # m1, 06:00-14:00 (tests/api/test_energy): 10 kW running 6 h 40 min, 2 kW over 1 h 50 min of other states
    run, idle, gq, price = 200 / 3, 1.0 + 1.0 + 2 / 3, 5346.0, 0.15
    df = pl.energy(M1, local(6), local(14))
    assert df.columns[:6] == ["scope", "kind", "shift", "day", "start", "end"] and df.height == 1
    row = df.row(0, named=True)
    assert (row["scope"], row["kind"], row["start"], row["end"]) == (M1, "machine", local(6), local(14))
    assert (row["total_kwh"], row["running_kwh"], row["idle_kwh"]) == pytest.approx((run + idle, run, idle))
    assert (row["kwh_running"], row["kwh_idle"], row["kwh_planned_stop"], row["kwh_faulted"]) == pytest.approx(
        (run, 1.0, 1.0, 2 / 3))
    assert row["kwh_starved"] == 0.0 and row["good_parts"] == gq and row["currency"] == "CAD"
    assert row["kwh_per_good_part"] == pytest.approx((run + idle) / gq)
    assert (row["cost"], row["idle_cost"]) == pytest.approx(((run + idle) * price, idle * price))
    # the line: m2's meter adds 7 kWh running, 1 idle, 3 across a bad reading (apart); no counters on m2
    line = pl.energy("windsor/a1/l1", local(6), local(14))
    assert line["scope"].to_list() == ["windsor/a1/l1", M1, "windsor/a1/l1/m2"]
    assert line["kind"].to_list() == ["line", "machine", "machine"]
    assert line["total_kwh"].to_list() == pytest.approx([run + idle + 8, run + idle, 8.0])
    assert line["unattributed_kwh"].to_list() == pytest.approx([3.0, 0.0, 3.0])
    assert line["kwh_per_good_part"][0] == pytest.approx((run + idle) / gq) and line["good_parts"][2] is None
    shifts = pl.energy(M1, local(0), local(23), by="shift")
    assert shifts.select("shift", "day").rows() == [("A", "2026-03-10")]
    assert shifts["total_kwh"][0] == pytest.approx(run + idle) and shifts["start"][0] == local(6)
    none = pl.energy("detroit", local(6), local(14))
    assert none.height == 1 and none["total_kwh"][0] is None and none["kwh_idle"][0] is None
    with pytest.raises(NotFound, match="no energy tag"):
        pl.energy("detroit/d1/l2/m3", local(6), local(14))
    with pytest.raises(QueryError, match="by must be"):
        pl.energy(M1, local(6), local(14), by="week")
    assert isinstance(pl.energy(M1, local(6), local(14), format="arrow"), pa.Table)


def test_downtime_events_newest_first(pl: Connection) -> None:
    df = pl.downtime(M1, local(6), local(14))
    assert df["state"].to_list() == ["faulted", "planned_stop"]
    assert df["start"].to_list() == [local(12), local(7)] and df["end"].to_list() == [local(12, 20), local(7, 30)]
    assert df["duration_s"].to_list() == [1200.0, 1800.0]
    assert set(df["machine"].to_list()) == {M1} and set(df["line"].to_list()) == {"windsor/a1/l1"}
    assert pl.downtime("windsor/a1/l1", local(6), local(14))["id"].to_list() == df["id"].to_list()
    assert pl.downtime("detroit", local(6), local(14)).height == 0


def test_formats(pl: Connection) -> None:
    t = pl.read(TEMP, START, END, format="arrow")
    assert isinstance(t, pa.Table) and t.column("value").to_pylist() == TEMP_VALUES
    with pytest.raises(QueryError, match="format must be one of"):
        pl.read(TEMP, START, END, format="excel")


def test_pandas_only_when_installed(pl: Connection, monkeypatch: pytest.MonkeyPatch) -> None:
    try:
        import pandas  # noqa: F401
    except ImportError:
        pass
    else:  # installed: its frame, then as if it were not
        assert list(pl.latest(SPEED, format="pandas")["value"]) == [5.0]
        monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(ImportError, match="format='pandas' needs pandas"):
        pl.latest(SPEED, format="pandas")


@pytest.mark.parametrize(("tags", "message"), [
    ("windsor/a1/l1/m1/nope", "no tag 'windsor/a1/l1/m1/nope'"),
    ("windsor/*/temp", "no tag matches the pattern 'windsor/\\*/temp'"),
    (["*/*/*/*/temp", "x/*/*/*/*"], "no tag matches the pattern 'x/\\*/\\*/\\*/\\*'"),
])
def test_a_tag_or_pattern_matching_nothing_is_named(pl: Connection, tags: object, message: str) -> None:
    with pytest.raises(NotFound, match=message):
        pl.read(tags, START, END)  # type: ignore[arg-type]
    with pytest.raises(NotFound, match=message):
        pl.latest(tags)  # type: ignore[arg-type]


def test_bad_times_and_arguments(pl: Connection) -> None:
    with pytest.raises(QueryError, match=r"end .* must be after start") as e:
        pl.read(TEMP, END, START)
    assert e.value.field == "end"
    with pytest.raises(QueryError, match="no time zone"):
        pl.read(TEMP, datetime(2026, 3, 10, 12), END)
    with pytest.raises(QueryError, match="not an ISO 8601 time"):
        pl.read(TEMP, "yesterday", END)
    with pytest.raises(QueryError, match="not a duration"):
        pl.read(TEMP, START, END, every="often")
    with pytest.raises(QueryError, match="unknown aggregate"):
        pl.read(TEMP, START, END, every="1m", agg="median")
    with pytest.raises(QueryError, match="agg needs every"):
        pl.read(TEMP, START, END, agg="mean")
    with pytest.raises(QueryError, match="text tag"):  # the services' own check, through both modes
        pl.read(f"{M1}/recipe", START, END)
    with pytest.raises(QueryError, match="give a site, a line"):
        pl.downtime("windsor/a1", START, END)
    with pytest.raises(NotFound):  # the services' answer for an unknown machine
        pl.states("windsor/a1/l1/m9", START, END)
