"""Backfill: samples from a CSV or Parquet file into the historian, checked whole before anything is written.

Columns: ``tag`` (ISA-95 path), ``ts`` (ISO 8601 with an offset, or epoch seconds; an export's ``time_utc``
or ``time`` is taken when there is no ``ts``), ``value``, and optionally ``quality`` (good, uncertain, bad,
or a code 0-255; good when absent). The file is read a batch at a time twice: ``check`` reads it whole and
names every problem by row and column (up to ``MAX_PROBLEMS``); ``write`` reads it again and hands each batch
to the historian's write path (``Historian.write``, the recorder's), then ``flush`` makes it durable (one
DuckDB transaction per flushed buffer; a failure of the disk during the write can leave the first buffers
written, but a problem in the file never does).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from plantlink.errors import RequestError
from plantlink.historian import Historian
from plantlink.samples import SAMPLE_SCHEMA, TS_TYPE, Quality

__all__ = ["MAX_PROBLEMS", "Checked", "Problem", "TagRef", "check", "read_batches", "write"]

MAX_PROBLEMS = 20
BATCH_ROWS = 65_536
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_QUALITY = {"good": int(Quality.GOOD), "uncertain": int(Quality.UNCERTAIN), "bad": int(Quality.BAD)}
_TS_COLUMNS = ("ts", "time_utc", "time")


@dataclass(frozen=True)
class TagRef:
    id: int
    text: bool  # a text tag: values stay text


@dataclass(frozen=True)
class Problem:
    row: int  # 1 = the first data row
    column: str
    message: str

    def __str__(self) -> str:
        return f"row {self.row}, column {self.column}: {self.message}"


@dataclass
class Checked:
    rows: int = 0
    start_us: int | None = None
    end_us: int | None = None
    tags: set[str] = field(default_factory=set)
    problems: list[Problem] = field(default_factory=list)
    more_problems: int = 0


def read_batches(path: Path) -> Iterator[pa.RecordBatch]:
    """The file's rows as batches of text columns (CSV: every column read as text; Parquet: as stored)."""
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        yield from pq.ParquetFile(path).iter_batches(batch_size=BATCH_ROWS)
    elif suffix == ".csv":
        header = pacsv.open_csv(path, read_options=pacsv.ReadOptions(block_size=1 << 16))
        names = header.schema.names
        header.close()
        reader = pacsv.open_csv(path, read_options=pacsv.ReadOptions(block_size=1 << 22),
                                convert_options=pacsv.ConvertOptions(column_types=dict.fromkeys(names, pa.string()),
                                                                     strings_can_be_null=True))
        yield from reader
    else:
        raise RequestError(f"{path.name}: give a .csv or .parquet file", field="file")


def _columns(batch: pa.RecordBatch, path: Path) -> tuple[str, str | None]:
    names = batch.schema.names
    missing = [c for c in ("tag", "value") if c not in names]
    ts_col = next((c for c in _TS_COLUMNS if c in names), None)
    if missing or ts_col is None:
        raise RequestError(f"{path.name}: the columns tag, ts, value (and optionally quality) are needed; missing "
                           f"{', '.join(missing + ([] if ts_col else ['ts']))} (found {', '.join(names)})",
                           field="file")
    return ts_col, "quality" if "quality" in names else None


def _ts(v: object) -> int:
    """Epoch microseconds of an ISO 8601 time with an offset, a number of epoch seconds, or a timestamp."""
    if isinstance(v, datetime):
        if v.tzinfo is None:
            raise ValueError("a timestamp without a time zone")
        return (v - _EPOCH) // timedelta(microseconds=1)
    if isinstance(v, int | float) and not isinstance(v, bool):
        if not math.isfinite(v):
            raise ValueError(f"{v!r} is not a time")
        return round(v * 1_000_000)
    text = str(v).strip()
    try:
        return round(float(text) * 1_000_000)  # epoch seconds
    except ValueError:
        pass
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is not an ISO 8601 time nor epoch seconds") from None
    if parsed.tzinfo is None:
        raise ValueError(f"{text!r} has no time zone: add Z or an offset (+02:00)")
    return (parsed - _EPOCH) // timedelta(microseconds=1)


def _quality(v: object) -> int:
    if v is None or v == "":
        return int(Quality.GOOD)
    text = str(v).strip().lower()
    if text in _QUALITY:
        return _QUALITY[text]
    try:
        code = int(text)
    except ValueError:
        raise ValueError(f"{v!r} is not a quality (good, uncertain, bad or 0-255)") from None
    if not 0 <= code <= 255:
        raise ValueError(f"{code} is not a quality code (0-255)")
    return code


def _value(v: object, text: bool) -> float | str | None:
    if v is None or (isinstance(v, str) and v.strip() == ""):
        return None
    if text:
        return str(v)
    if isinstance(v, bool):
        raise ValueError(f"{v!r} is not a number (a numeric tag)")
    try:
        return float(v)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValueError(f"{v!r} is not a number (a numeric tag)") from None


def _rows(path: Path, tags: Mapping[str, TagRef], on_problem: Callable[[Problem], None]
          ) -> Iterator[tuple[int, list[tuple[TagRef, int, float | str | None, int]]]]:
    """Per batch: its row count and its good rows (tag, ts, value, quality); problems go to ``on_problem``."""
    row = 0
    for batch in read_batches(path):
        ts_col, q_col = _columns(batch, path)
        cols = [batch.column(c).to_pylist() for c in ("tag", ts_col, "value")]
        quality = batch.column(q_col).to_pylist() if q_col else [None] * batch.num_rows
        good = []
        for tag, ts, value, q in zip(*cols, quality, strict=True):
            row += 1
            ref = tags.get(str(tag).strip().strip("/")) if tag is not None else None
            if ref is None:
                on_problem(Problem(row, "tag", f"no tag {tag!r} in the plant model"))
                continue
            parsed = _parse(row, (ts_col, ts), value, (q_col or "quality", q), ref, on_problem)
            if parsed is None:
                continue
            good.append((ref, *parsed))
        yield batch.num_rows, good


def _parse(row: int, ts: tuple[str, object], value: object, quality: tuple[str, object], ref: TagRef,
           on_problem: Callable[[Problem], None]) -> tuple[int, float | str | None, int] | None:
    """(ts, value, quality) of a row, or None after naming its first problem."""
    column = ts[0]
    try:
        t = _ts(ts[1])
        column = "value"
        v = _value(value, ref.text)
        column = quality[0]
        q = _quality(quality[1])
    except ValueError as exc:
        on_problem(Problem(row, column, str(exc)))
        return None
    return t, v, q


def check(path: Path, tags: Mapping[str, TagRef], progress: Callable[[int], None] = lambda n: None) -> Checked:
    """Read the whole file; its rows, range, tags and problems (none written)."""
    out = Checked()
    names = {r.id: p for p, r in tags.items()}

    def problem(p: Problem) -> None:
        if len(out.problems) < MAX_PROBLEMS:
            out.problems.append(p)
        else:
            out.more_problems += 1

    for n, good in _rows(path, tags, problem):
        out.rows += n
        if good:
            ts = [g[1] for g in good]
            lo, hi = min(ts), max(ts)
            out.start_us = lo if out.start_us is None else min(out.start_us, lo)
            out.end_us = hi if out.end_us is None else max(out.end_us, hi)
            out.tags |= {names[g[0].id] for g in good}
        progress(n)
    return out


def write(path: Path, tags: Mapping[str, TagRef], historian: Historian,
          progress: Callable[[int], None] = lambda n: None) -> int:
    """Write a checked file's rows through ``historian.write``, then ``flush`` (durable on return)."""
    def refuse(p: Problem) -> None:
        raise RequestError(f"{path.name} changed since it was checked: {p}", field="file")

    written = 0
    for n, good in _rows(path, tags, refuse):
        if good:
            historian.write(_batch(good))
            written += len(good)
        progress(n)
    historian.flush()
    return written


def _batch(good: list[tuple[TagRef, int, float | str | None, int]]) -> pa.RecordBatch:
    values = [None if g[0].text else g[2] for g in good]
    texts = [g[2] if g[0].text else None for g in good]
    return pa.record_batch([pa.array(np.array([g[0].id for g in good], dtype=np.uint32)),
                            pa.array(np.array([g[1] for g in good], dtype=np.int64)).cast(TS_TYPE),
                            pa.array(values, pa.float64()), pa.array(np.array([g[3] for g in good], dtype=np.uint8)),
                            pa.array(texts, pa.string())], schema=SAMPLE_SCHEMA)
