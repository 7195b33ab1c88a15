"""``plantlink export`` and ``plantlink import``: history out of and into a data directory (registered lazily in
``plantlink.cli``: nothing here loads for ``plantlink check``).

* ``export`` reads through the same service and checks as the REST trend export (``services.export.trend``)
  and encodes with the same writers (``api.exportfmt``: CSV writer, Parquet row groups, XLSX in constant
  memory), a page of the historian at a time, to a temporary file renamed into place once complete. With
  ``--url`` it streams the server's ``/api/v1/export/trend`` to the file instead (CSV or Parquet).
* ``import`` backfills samples from CSV or Parquet (``services.backfill``): the whole file is checked first,
  then written through the historian's write path; audited.

DuckDB lets one process open the historian: on a data directory a running plantlink uses, both commands say
so and point to ``--url`` (export) or to stopping the server (import).
"""

from __future__ import annotations

import contextlib
import getpass
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from plantlink.datadir import DATA_DIR_ENV, DEFAULT_DATA_DIR

if TYPE_CHECKING:
    import pyarrow as pa

    from plantlink.client.embedded import DataDirSource
    from plantlink.services.export import Export

data_app = typer.Typer(rich_markup_mode=None, add_completion=False)
err = Console(stderr=True, emoji=False)

DataDir = Annotated[Path, typer.Option("--data-dir", "--data", envvar=DATA_DIR_ENV, show_envvar=True,
                                       help="The data directory of the plant (as for plantlink run).")]
PlantOpt = Annotated[Path | None, typer.Option(
    "--plant", help="The plant model YAML (default: the one the data directory last ran).")]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar (never shown when stderr is not a "
                                                             "terminal).")]
#: The range of one planned export: a UTC day (a long range is planned and audited as one file, read a day at a
#: time; the trend export counts its rows a day at a time too, so memory stays flat).
_WINDOW_US = 86_400_000_000
FORMATS = ("csv", "parquet", "xlsx")


def actor() -> str:
    """The audit actor of a command-line action: ``cli:<os user>``."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


def fail(message: str, code: int = 1) -> None:
    err.print(f"error: {message}", markup=False, highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def progress(total: int, label: str, quiet: bool) -> Any:
    """A rich progress bar on stderr when it is a terminal (and not ``quiet``); a no-op else."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    if quiet or not err.is_terminal:
        return _NoProgress()
    bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                   console=err, transient=True)
    bar.add_task(label, total=total or None)
    return bar


class _NoProgress:
    def __enter__(self) -> _NoProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def advance(self, task: int, advance: float = 1) -> None:
        return None


def open_data_dir(data_dir: Path, plant: Path | None, hint: str) -> DataDirSource:
    """The data directory's services in this process, or a clear error (missing, or in use by a server)."""
    from plantlink.client.embedded import DataDirInUse, DataDirSource
    from plantlink.errors import PlantlinkError

    try:
        return DataDirSource(data_dir, plant)
    except DataDirInUse:
        fail(f"{data_dir.absolute()} is in use by a running plantlink (DuckDB allows one process to open its "
             f"historian): {hint}")
    except PlantlinkError as exc:
        fail(str(exc))
    raise AssertionError("unreachable")


# -- export --------------------------------------------------------------------------------------------------
@data_app.command("export")
def export_cmd(
    start: Annotated[str, typer.Option("--from", help="Start, ISO 8601 with an offset (2026-01-01T00:00:00Z).")],
    end: Annotated[str, typer.Option("--to", help="End (excluded), ISO 8601 with an offset.")],
    out: Annotated[Path, typer.Option("--out", help="The file to write (replaced once complete).")],
    fmt: Annotated[str, typer.Option("--format", help="csv, parquet or xlsx (xlsx: at most 1,048,575 rows).")]
    = "csv",
    tags: Annotated[str | None, typer.Option("--tags", help="Tag paths or patterns (site/area/line/machine/tag, * "
                                                            "and ? per segment), comma-separated.")] = None,
    data_dir: DataDir = DEFAULT_DATA_DIR,
    plant: PlantOpt = None,
    url: Annotated[str | None, typer.Option("--url", help="Export from a running server (http(s)://host:port) "
                                                          "instead of a data directory (csv or parquet).")] = None,
    token: Annotated[str | None, typer.Option("--token", envvar="PLANTLINK_TOKEN", show_envvar=True,
                                              help="API token for --url.")] = None,
    quiet: Quiet = False,
    what: Annotated[str, typer.Option("--what", help="trend (raw samples of --tags) or energy (the energy table of "
                                                     "--scope: kWh by state, per good part, idle kWh and cost)")]
    = "trend",
    scope: Annotated[str | None, typer.Option("--scope", help="--what energy: a site, area, line or machine path."
                                              )] = None,
    by: Annotated[str, typer.Option("--by", help="--what energy: machine (each machine, then the scope) or shift "
                                                 "(the scope in each shift)")] = "machine",
) -> None:
    """Export the raw samples of tags over any range to CSV, Parquet or XLSX, in constant memory; or, with
    --what energy, the energy table of a scope (CSV or XLSX).

    Columns: tag, time (site time with its offset), time_utc, value, quality: the REST trend export's. The range
    is exported a UTC day at a time (within a day, tag after tag in time order, site after site), into the one
    file. Audited (export.trend, export.energy) in the data directory's audit trail (or the server's with --url)."""
    from plantlink.client.select import select, time_range
    from plantlink.errors import PlantlinkError

    if fmt not in FORMATS:
        fail(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}", 2)
    if what == "energy":
        _energy_cmd(scope, start, end, out, fmt, by, data_dir, plant, url, token, tags)
        return
    if what != "trend":
        fail(f"--what must be trend or energy, got {what!r}", 2)
    if tags is None:
        fail("--tags is needed: the tags whose samples to export (or --what energy --scope PATH)", 2)
    assert tags is not None
    patterns = [t for t in (p.strip() for p in tags.split(",")) if t]
    try:
        start_us, end_us = time_range(start, end)
        if url is not None:
            rows = _export_remote(url, token, patterns, start_us, end_us, fmt, out, quiet)
        else:
            src = open_data_dir(data_dir, plant, "export from the server with --url http://host:port --token T")
            try:
                paths = _numeric(src, patterns, select(patterns, src.tag_paths()))
                rows = _export_local(src, paths, start_us, end_us, fmt, out, quiet)
            finally:
                src.close()
    except PlantlinkError as exc:
        fail(str(exc))
    counted = "about " if url is not None else ""  # the server's count (x-export-rows), not the rows sent
    err.print(f"{counted}{rows} rows written to {out}", markup=False, highlight=False)


def _numeric(src: DataDirSource, patterns: list[str], paths: list[str]) -> list[str]:
    """``paths`` without the text tags a wildcard matched (a text tag named in full stays: the export refuses
    it, naming it)."""
    named = {p.strip("/") for p in patterns}
    tags = src.services.plant.tags
    kept = [p for p in paths if p in named or tags[p].tag.type not in ("string", "text", "str")]
    if len(kept) < len(paths):
        err.print(f"skipping {len(paths) - len(kept)} text tag(s) the patterns match (a trend export holds numbers)",
                  markup=False, highlight=False)
    if not kept:
        fail("the patterns match only text tags: a trend export holds numeric tags")
    return kept


def plan(src: DataDirSource, paths: list[str], start_us: int, end_us: int) -> list[Export]:
    """The trend exports that make up the file: per UTC day of the range, per site, per 100 tags (in each,
    tag after tag in time order)."""
    from plantlink.client.embedded import LOCAL
    from plantlink.services import export as ex
    from plantlink.services.history import MAX_SERIES

    svc = src.services
    by_site: dict[str, list[str]] = {}
    for p in paths:
        by_site.setdefault(svc.plant.tags[p].site, []).append(p)
    parts, lo = [], start_us
    while lo < end_us:
        hi = min(lo - lo % _WINDOW_US + _WINDOW_US, end_us)
        for site_paths in by_site.values():
            for i in range(0, len(site_paths), MAX_SERIES):
                parts.append(ex.trend(svc, LOCAL, site_paths[i:i + MAX_SERIES], lo, hi))
        lo = hi
    return parts


def _export_local(src: DataDirSource, paths: list[str], start_us: int, end_us: int, fmt: str, out: Path,
                  quiet: bool) -> int:
    from plantlink.api.exportfmt import encode
    from plantlink.services import export as ex

    parts = plan(src, paths, start_us, end_us)
    total = sum(p.rows for p in parts)
    if fmt == "xlsx" and total + 1 > ex.XLSX_MAX_ROWS:
        fail(f"about {total} rows do not fit in an XLSX sheet (at most {ex.XLSX_MAX_ROWS - 1}): use csv or parquet")
    counted = [0]

    def batches(bar: Any) -> Iterator[pa.RecordBatch]:
        for part in parts:
            for b in part.batches():
                counted[0] += b.num_rows
                bar.advance(0, b.num_rows)
                yield b

    complete = False
    try:
        with progress(total, f"export {out.name}", quiet) as bar:
            write_atomic(out, encode(fmt, batches(bar), ex.TREND_SCHEMA))
        complete = True
    finally:
        _audit_export(src, parts, fmt, counted[0], complete, out)
    return counted[0]


def write_atomic(out: Path, chunks: Iterable[bytes]) -> None:
    """Write ``chunks`` to ``out`` through a temporary file next to it, renamed once complete."""
    tmp = out.with_name(f".{out.name}.part")
    try:
        with open(tmp, "wb") as f:
            for chunk in chunks:
                f.write(chunk)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, out)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def _audit_export(src: DataDirSource, parts: list[Export], fmt: str, rows: int, complete: bool, out: Path) -> None:
    from plantlink.audit import AuditLog

    if src.store is None or not parts:
        return
    first = parts[0]
    details = {"format": fmt, "rows": rows, "complete": complete, "start_us": min(p.start_us for p in parts),
               "end_us": max(p.end_us for p in parts), "tags": sorted({t for p in parts for t in p.details["tags"]}),
               "file": str(out.absolute()), "via": "cli"}
    AuditLog(src.store.engine).record("export.trend", actor(), first.site, first.scope, details)


def _export_remote(url: str, token: str | None, patterns: list[str], start_us: int, end_us: int, fmt: str,
                   out: Path, quiet: bool) -> int:
    """Stream the server's trend export (one request: one site, at most 100 tags) to ``out``."""
    from plantlink.client.remote import HttpSource
    from plantlink.client.select import select

    if fmt == "xlsx":
        fail("--url exports csv or parquet (the server's trend export); export xlsx from the data directory")
    src = HttpSource(url, token, timeout=300.0)
    try:
        paths = select(patterns, src.tag_paths())
    finally:
        src.close()
    return _stream_remote(url, token, "trend", {"tag": paths}, start_us, end_us, fmt, out, quiet)


def _stream_remote(url: str, token: str | None, kind: str, what: dict[str, Any], start_us: int, end_us: int,
                   fmt: str, out: Path, quiet: bool) -> int:
    """Stream the server's ``/api/v1/export/<kind>`` to ``out``; the rows it counted (``x-export-rows``)."""
    import httpx

    from plantlink.client.remote import HttpSource, ServerUnreachable, error_of
    from plantlink.samples import iso_us

    src = HttpSource(url, token, timeout=300.0)
    try:
        params = {**what, "start": iso_us(start_us), "end": iso_us(end_us), "format": fmt}
        try:
            with src.http.stream("GET", f"/api/v1/export/{kind}", params=params) as r:
                if r.status_code >= 400:
                    r.read()
                    raise error_of(r)
                total = int(r.headers.get("x-export-rows", "0"))
                with progress(total, f"export {out.name}", quiet) as bar:
                    write_atomic(out, _tick(r.iter_bytes(1 << 20), bar, total))
                return total
        except httpx.HTTPError as exc:
            raise ServerUnreachable(f"cannot export from {src.where} ({type(exc).__name__}: {exc})") from exc
    finally:
        src.close()


def _tick(chunks: Iterable[bytes], bar: Any, total: int) -> Iterator[bytes]:
    """Pass ``chunks`` on, advancing the bar by an estimate (bytes over 100 per row)."""
    for c in chunks:
        bar.advance(0, min(len(c) / 100, total))
        yield c


def _energy_cmd(scope: str | None, start: str, end: str, out: Path, fmt: str, by: str, data_dir: Path,
                plant: Path | None, url: str | None, token: str | None, tags: str | None) -> None:
    """``export --what energy``: the energy table of a scope (``services.export.energy``), from the data
    directory or the server (``/api/v1/export/energy``)."""
    from plantlink.client.select import time_range
    from plantlink.errors import PlantlinkError

    if scope is None or tags is not None:
        fail("--what energy takes --scope PATH (a site, area, line or machine), not --tags", 2)
    assert scope is not None
    if fmt not in ("csv", "xlsx"):
        fail(f"--what energy exports csv or xlsx, got {fmt!r}", 2)
    try:
        start_us, end_us = time_range(start, end)
        if url is not None:
            rows = _stream_remote(url, token, "energy", {"scope": scope, "by": by}, start_us, end_us, fmt, out, True)
        else:
            rows = _energy_local(data_dir, plant, scope, start_us, end_us, by, fmt, out)
    except PlantlinkError as exc:
        fail(str(exc))
    err.print(f"{rows} rows written to {out}", markup=False, highlight=False)


def _energy_local(data_dir: Path, plant: Path | None, scope: str, start_us: int, end_us: int, by: str, fmt: str,
                  out: Path) -> int:
    from plantlink.api.exportfmt import encode
    from plantlink.audit import AuditLog
    from plantlink.client.embedded import LOCAL
    from plantlink.services import export as ex

    src = open_data_dir(data_dir, plant, "export from the server with --url http://host:port --token T")
    try:
        found = ex.energy(src.services, LOCAL, scope, start_us, end_us, by)
        ex.check_format(found.kind, fmt, found.rows)
        complete = False
        try:
            write_atomic(out, encode(fmt, found.batches(), found.schema))
            complete = True
        finally:
            if src.store is not None:
                details = {"format": fmt, "rows": found.rows, "complete": complete, "start_us": start_us,
                           "end_us": end_us, "by": by, "file": str(out.absolute()), "via": "cli"}
                AuditLog(src.store.engine).record("export.energy", actor(), found.site, found.scope, details)
        return found.rows
    finally:
        src.close()


# -- import --------------------------------------------------------------------------------------------------
@data_app.command("import")
def import_cmd(
    file: Annotated[Path, typer.Argument(help="A .csv or .parquet file: columns tag, ts (ISO 8601 with an offset, "
                                              "or epoch seconds), value, optionally quality.")],
    data_dir: DataDir = DEFAULT_DATA_DIR,
    plant: PlantOpt = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Check the whole file, write nothing.")] = False,
    quiet: Quiet = False,
) -> None:
    """Backfill history from a file: the whole file is checked first (every problem named by row and column,
    nothing written if there is one), then written through the historian's write path, durable when the
    command returns. Stop the server first (the historian is open in one process at a time). Audited
    (history.import: file, rows, range)."""
    from plantlink.errors import PlantlinkError
    from plantlink.samples import iso_us
    from plantlink.services import backfill

    if not file.is_file():
        fail(f"{file}: no such file")
    src = open_data_dir(data_dir, plant, "stop it (the import writes to the historian), then import")
    try:
        tags = _tag_refs(src)
        with progress(0, f"check {file.name}", quiet) as bar:  # rows unknown until read
            checked = backfill.check(file, tags, lambda n: bar.advance(0, n))
        if checked.problems:
            for p in checked.problems:
                err.print(f"error {file.name}: {p}", markup=False, highlight=False, soft_wrap=True)
            more = f" (and {checked.more_problems} more)" if checked.more_problems else ""
            fail(f"{len(checked.problems) + checked.more_problems} problem(s){more} in {file.name}: nothing written")
        span = f"{iso_us(checked.start_us)} to {iso_us(checked.end_us)}" if checked.rows else "no rows"
        if dry_run:
            err.print(f"{file.name}: {checked.rows} rows of {len(checked.tags)} tag(s), {span}: OK (dry run, "
                      "nothing written)", markup=False, highlight=False)
            return
        with progress(checked.rows, f"import {file.name}", quiet) as bar:
            written = backfill.write(file, tags, src.historian, lambda n: bar.advance(0, n))
        _audit_import(src, file, written, checked)
    except PlantlinkError as exc:
        fail(str(exc))
    finally:
        src.close()
    err.print(f"{written} rows imported from {file.name} ({span})", markup=False, highlight=False)


def _tag_refs(src: DataDirSource) -> dict[str, Any]:
    from plantlink.historian import TagMeta
    from plantlink.services.backfill import TagRef

    infos = src.services.plant.tags
    ids = src.historian.register_tags([TagMeta(p, i.tag.unit, i.tag.type) for p, i in infos.items()])
    return {p: TagRef(ids[p], i.tag.type in ("string", "text", "str")) for p, i in infos.items()}


def _audit_import(src: DataDirSource, file: Path, rows: int, checked: Any) -> None:
    from plantlink.audit import AuditLog

    if src.store is None:
        return
    tags = sorted(checked.tags)
    sites = sorted({t.split("/", 1)[0] for t in tags})
    details = {"file": str(file.absolute()), "rows": rows, "start_us": checked.start_us,
               "end_us": checked.end_us, "tags": tags[:1000], "tag_count": len(tags)}
    AuditLog(src.store.engine).record("history.import", actor(), sites[0] if len(sites) == 1 else None,
                                      file.name, details)
