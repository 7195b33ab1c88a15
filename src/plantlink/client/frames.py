"""What both modes answer (the API's JSON, the trend export's Arrow table) as DataFrames: polars by default,
pandas or Arrow on request. One converter for both modes, so their frames cannot differ."""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from typing import Any

import pyarrow as pa

from plantlink.errors import QueryError
from plantlink.model.production import STATES

FORMATS = ("polars", "pandas", "arrow")
_ISO = "%Y-%m-%dT%H:%M:%S%.fZ"


def polars() -> Any:
    try:
        import polars as pl
    except ImportError:
        raise ImportError("plantlink's Python API answers polars DataFrames: pip install 'plantlink[data]' "
                          "(or pip install polars)") from None
    return pl


def check_format(fmt: str) -> None:
    if fmt not in FORMATS:
        raise QueryError(f"format must be one of {list(FORMATS)}, got {fmt!r}", field="format")


def output(df: Any, fmt: str) -> Any:
    """``df`` as asked: polars (as is), pandas (only if installed) or a pyarrow Table."""
    if fmt == "arrow":
        return df.to_arrow()
    if fmt == "pandas":
        try:
            importlib.import_module("pandas")
        except ImportError:
            raise ImportError("format='pandas' needs pandas, which is not installed: pip install pandas, or use "
                              "the default polars DataFrame (df.to_pandas() later) or format='arrow'") from None
        return df.to_pandas()
    return df


def _times(pl: Any, values: Sequence[str | None], name: str) -> Any:
    return pl.Series(name, list(values), dtype=pl.String).str.to_datetime(_ISO, time_unit="us", time_zone="UTC")


#: Raw samples as both modes hand them over: the trend export's typed rows (``services.export.typed_batch``),
#: which the remote mode reads as an Arrow stream and the embedded mode builds from the same historian reads.
RAW_SCHEMA = pa.schema([("tag", pa.string()), ("ts", pa.timestamp("us", tz="UTC")), ("value", pa.float64()),
                        ("quality", pa.string())])


def raw(tables: Sequence[pa.Table]) -> Any:
    """Raw samples (``RAW_SCHEMA`` tables) as a DataFrame ``tag, ts, value, quality``."""
    pl = polars()
    t = pa.concat_tables(tables) if tables else RAW_SCHEMA.empty_table()
    return pl.from_arrow(t)


def aggregated(answers: Sequence[dict[str, Any]], aggregates: Sequence[str]) -> Any:
    """``/history/aggregate`` answers as ``tag, ts`` (bucket start) and one column per aggregate."""
    pl = polars()
    frames = []
    for ans in answers:
        for s in ans["series"]:
            cols: dict[str, Any] = {"tag": pl.Series("tag", [s["tag"]] * len(s["bucket"]), dtype=pl.String),
                                    "ts": _times(pl, s["bucket"], "ts")}
            for a in aggregates:
                col = pl.Series(a, s[a], dtype=pl.Float64)  # JSON numbers (count too)
                cols[a] = col.cast(pl.Int64) if a == "count" else col
            frames.append(pl.DataFrame(cols))
    if not frames:
        return pl.DataFrame(schema={"tag": pl.String, "ts": pl.Datetime("us", "UTC"),
                                    **{a: pl.Int64 if a == "count" else pl.Float64 for a in aggregates}})
    return pl.concat(frames)


def latest(rows: Sequence[dict[str, Any]]) -> Any:
    """``/values`` rows as ``tag, ts, value, quality, unit`` (``text`` too when a text tag is among them)."""
    pl = polars()
    cols: dict[str, Any] = {
        "tag": pl.Series("tag", [r["tag"] for r in rows], dtype=pl.String),
        "ts": _times(pl, [r["ts"] for r in rows], "ts"),
        "value": pl.Series("value", [r.get("value") for r in rows], dtype=pl.Float64),
        "quality": pl.Series("quality", [r["quality"] for r in rows], dtype=pl.String),
        "unit": pl.Series("unit", [r["unit"] for r in rows], dtype=pl.String)}
    if any("text" in r for r in rows):
        cols["text"] = pl.Series("text", [r.get("text") for r in rows], dtype=pl.String)
    return pl.DataFrame(cols)


def states(machine: str, items: Sequence[dict[str, Any]]) -> Any:
    """State intervals as ``machine, state, start, end, duration_s, shift, end_reason``."""
    pl = polars()
    return pl.DataFrame({
        "machine": pl.Series("machine", [machine] * len(items), dtype=pl.String),
        "state": pl.Series("state", [i["state"] for i in items], dtype=pl.String),
        "start": _times(pl, [i["start"] for i in items], "start"),
        "end": _times(pl, [i["end"] for i in items], "end"),
        "duration_s": pl.Series("duration_s", [i["duration_s"] for i in items], dtype=pl.Float64),
        "shift": pl.Series("shift", [i["shift"] for i in items], dtype=pl.String),
        "end_reason": pl.Series("end_reason", [i["end_reason"] for i in items], dtype=pl.String)})


OEE_COLUMNS = ("scope", "kind", "start", "end", "oee", "availability", "effectiveness", "quality_rate",
               "availability_loss_s", "performance_loss_s", "quality_loss_s", "fully_productive_s", "produced",
               "good", "scrap", "top_loss", "top_reason", "data_problem")


def _oee_row(scope: str, kind: str, rep: dict[str, Any], fig: dict[str, Any]) -> dict[str, Any]:
    inputs, losses = fig["inputs"], fig["losses_s"]
    return {"scope": scope, "kind": kind, "start": rep["start"], "end": rep["end"], "oee": fig["oee"],
            "availability": fig["availability"], "effectiveness": fig["effectiveness"],
            "quality_rate": fig["quality_rate"], "availability_loss_s": losses["availability"],
            "performance_loss_s": losses["performance"], "quality_loss_s": losses["quality"],
            "fully_productive_s": fig["fully_productive_s"], "produced": inputs["pq"], "good": inputs["gq"],
            "scrap": inputs["sq"], "top_loss": (fig["top_loss"] or {}).get("kind"),
            "top_reason": (fig["top_reason"] or {}).get("reason"), "data_problem": fig["data_problem"]}


def oee(rep: dict[str, Any]) -> Any:
    """An ``/oee`` answer: the scope's row first, then one row per machine (``kind`` "machine")."""
    pl = polars()
    rows = [_oee_row(rep["scope"], rep["kind"], rep, rep)]
    rows += [_oee_row(m["machine"], "machine", rep, m) for m in rep.get("machines", [])]
    schema = {c: pl.Float64 for c in OEE_COLUMNS}
    schema.update({c: pl.String for c in ("scope", "kind", "start", "end", "top_loss", "top_reason",
                                          "data_problem")})
    df = pl.DataFrame(rows, schema=schema)
    return df.with_columns(pl.col("start").str.to_datetime(_ISO, time_unit="us", time_zone="UTC"),
                           pl.col("end").str.to_datetime(_ISO, time_unit="us", time_zone="UTC"))


#: One ``kwh_<state>`` column per machine state.
ENERGY_STATES = STATES
ENERGY_COLUMNS = ("scope", "kind", "shift", "day", "start", "end", "total_kwh", "running_kwh", "idle_kwh",
                  "idle_share", "kwh_per_good_part", "running_kwh_per_good_part", "good_parts", "cost", "idle_cost",
                  "currency", "unattributed_kwh", "unknown_state_kwh", "measured_s", "unmeasured_s",
                  *(f"kwh_{s}" for s in ENERGY_STATES))
_ENERGY_TEXT = ("scope", "kind", "shift", "day", "start", "end", "currency")


def _energy_row(scope: str, kind: str, rep: dict[str, Any], fig: dict[str, Any]) -> dict[str, Any]:
    row = {c: fig.get(c) for c in ENERGY_COLUMNS}
    by_state = fig.get("kwh_by_state")
    row.update(scope=scope, kind=kind, shift=rep.get("shift"), day=rep.get("day"), start=rep["start"],
               end=rep["end"], unattributed_kwh=fig.get("unattributed_kwh"),
               **{f"kwh_{s}": None if by_state is None else by_state.get(s, 0.0) for s in ENERGY_STATES})
    return row


def energy(rep: dict[str, Any], by: str | None = None) -> Any:
    """An ``/energy`` answer: the scope's row first, then one row per machine (``kind`` "machine"); with
    ``by="shift"`` one row of the scope per shift instead (``shift``, ``day``). Figures are null where nothing
    of the scope has an energy tag; ``kwh_<state>`` is 0.0 for a state the range did not hold."""
    pl = polars()
    if by == "shift":
        rows = [_energy_row(s["scope"], s["kind"], s, s) for s in rep["shifts"]]
    else:
        rows = [_energy_row(rep["scope"], rep["kind"], rep, rep)]
        rows += [_energy_row(m["machine"], "machine", rep, m) for m in rep.get("machines", [])]
    schema = {c: pl.String if c in _ENERGY_TEXT else pl.Float64 for c in ENERGY_COLUMNS}
    df = pl.DataFrame(rows, schema=schema)
    return df.with_columns(pl.col("start").str.to_datetime(_ISO, time_unit="us", time_zone="UTC"),
                           pl.col("end").str.to_datetime(_ISO, time_unit="us", time_zone="UTC"))


DOWNTIME_COLUMNS = ("id", "site", "line", "machine", "state", "start", "end", "duration_s", "micro", "shift",
                    "reason", "reason_group", "comment")


def downtime(items: Sequence[dict[str, Any]]) -> Any:
    """Downtime events (newest first) as ``id, site, line, machine, state, start, end, duration_s, micro,
    shift, reason, reason_group, comment``; an open event has no ``end`` (its duration runs to now)."""
    pl = polars()
    rows = [{c: ev.get(c) for c in DOWNTIME_COLUMNS} for ev in items]
    schema = {c: pl.String for c in DOWNTIME_COLUMNS}
    schema.update(id=pl.Int64, duration_s=pl.Float64, micro=pl.Boolean)
    df = pl.DataFrame(rows, schema=schema)
    return df.with_columns(pl.col("start").str.to_datetime(_ISO, time_unit="us", time_zone="UTC"),
                           pl.col("end").str.to_datetime(_ISO, time_unit="us", time_zone="UTC"))

