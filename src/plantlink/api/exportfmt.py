"""File formats of the exports: record batches in, byte chunks out, one batch at a time (constant memory).

* CSV (``pyarrow.csv.CSVWriter``): a header, then each batch as it comes. Text that a spreadsheet would read as
  a formula (``=``, ``+``, ``-``, ``@``...) gets a leading quote, as the audit export does.
* Parquet (``pyarrow.parquet.ParquetWriter``): one row group per batch, sent once written; the footer last.
* Arrow (``pyarrow.ipc`` stream format): one record batch per batch, sent as written; typed columns (times
  as timestamps), so a program reads it without parsing text.
* XLSX (``xlsxwriter`` in ``constant_memory`` mode: each row goes to a temporary file as it is written, never a
  whole sheet in memory; openpyxl would hold it). A ZIP has its directory at the end, so the workbook is
  finished on disk, then sent in chunks and deleted.
"""

from __future__ import annotations

import io
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.ipc as ipc
import pyarrow.parquet as pq
import xlsxwriter

MEDIA = {"csv": "text/csv; charset=utf-8", "parquet": "application/vnd.apache.parquet",
         "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
         "arrow": "application/vnd.apache.arrow.stream"}
CHUNK = 1 << 20
_FORMULA = r"^[=+\-@\t\r]"


class _Sink(io.RawIOBase):
    """A write-only file whose bytes are taken out as they come (``take``)."""

    def __init__(self) -> None:
        super().__init__()
        self._parts: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, b: Any) -> int:
        data = bytes(b)
        self._parts.append(data)
        return len(data)

    def take(self) -> bytes:
        out, self._parts = b"".join(self._parts), []
        return out


class Counter:
    """Counts the rows that went out (for the audit record)."""

    def __init__(self) -> None:
        self.rows = 0

    def __call__(self, batches: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for b in batches:
            self.rows += b.num_rows
            yield b


def encode(fmt: str, batches: Iterable[pa.RecordBatch], schema: pa.Schema) -> Iterator[bytes]:
    """The file's bytes in chunks (``schema``: the columns, written even when there is no row)."""
    if fmt == "csv":
        return _csv(batches, schema)
    if fmt == "parquet":
        return _parquet(batches, schema)
    if fmt == "xlsx":
        return _xlsx(batches, schema)
    if fmt == "arrow":
        return _arrow(batches, schema)
    raise ValueError(f"unknown format {fmt!r}")


def _safe(batch: pa.RecordBatch) -> pa.RecordBatch:
    cols = []
    for col in batch.columns:
        if pa.types.is_string(col.type):
            col = pc.if_else(pc.match_substring_regex(col, _FORMULA), pc.binary_join_element_wise("'", col, ""), col)
        cols.append(col)
    return pa.record_batch(cols, names=batch.schema.names)


def _csv(batches: Iterable[pa.RecordBatch], schema: pa.Schema) -> Iterator[bytes]:
    sink = _Sink()
    writer = pacsv.CSVWriter(sink, schema)
    for b in batches:
        writer.write_batch(_safe(b))
        yield sink.take()
    writer.close()
    yield sink.take()


def _written(make: Callable[[Any, pa.Schema], Any], batches: Iterable[pa.RecordBatch], schema: pa.Schema
             ) -> Iterator[bytes]:
    """What a pyarrow writer (``make(sink, schema)``) writes of ``batches``, a batch at a time."""
    sink = _Sink()
    writer = make(sink, schema)
    for b in batches:
        writer.write_batch(b)
        yield sink.take()
    writer.close()
    yield sink.take()


def _parquet(batches: Iterable[pa.RecordBatch], schema: pa.Schema) -> Iterator[bytes]:
    return _written(pq.ParquetWriter, batches, schema)


def _arrow(batches: Iterable[pa.RecordBatch], schema: pa.Schema) -> Iterator[bytes]:
    return _written(ipc.new_stream, batches, schema)


def _xlsx(batches: Iterable[pa.RecordBatch], schema: pa.Schema) -> Iterator[bytes]:
    fd, path = tempfile.mkstemp(suffix=".xlsx", prefix="plantlink-export-")
    os.close(fd)
    try:
        book = xlsxwriter.Workbook(path, {"constant_memory": True, "nan_inf_to_errors": True})
        sheet = book.add_worksheet("export")
        bold = book.add_format({"bold": True})
        for c, name in enumerate(schema.names):
            sheet.write_string(0, c, name, bold)
        row = 1
        for b in batches:
            for values in zip(*(col.to_pylist() for col in b.columns), strict=True):
                _xlsx_row(sheet, row, values)
                row += 1
        book.close()
        with open(path, "rb") as f:
            while chunk := f.read(CHUNK):
                yield chunk
    finally:
        os.unlink(path)


def _xlsx_row(sheet: Any, row: int, values: tuple[Any, ...]) -> None:
    for c, v in enumerate(values):
        if v is None:
            continue
        if isinstance(v, bool):
            sheet.write_boolean(row, c, v)
        elif isinstance(v, int | float):
            sheet.write_number(row, c, v)
        else:  # never a formula: text stays text
            sheet.write_string(row, c, str(v))
