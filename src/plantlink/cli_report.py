"""``plantlink report``: a shift, daily or weekly report (or one over a range) of a site, area, line or machine,
as HTML or PDF, from a data directory (registered lazily in ``plantlink.cli``). The report is assembled by the
same service as the API's (``services.reports``) and written to ``FILE.part``, renamed to ``FILE`` once
complete: a refused request or a failure leaves no file. Audited (``export.report``) in the data directory's
audit trail. A data directory opened by a running server is refused (download the report from its API:
``GET /api/v1/reports``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from plantlink.cli_data import DataDir, PlantOpt, actor, err, fail, open_data_dir, write_atomic
from plantlink.datadir import DEFAULT_DATA_DIR

report_app = typer.Typer(rich_markup_mode=None, add_completion=False)


@report_app.command("report")
def report_cmd(
    scope: Annotated[str, typer.Option("--scope", help="site, site/area, site/area/line or site/area/line/machine")],
    out: Annotated[Path, typer.Option("--out", help="The file to write (written whole, or not at all).")],
    period: Annotated[str | None, typer.Option("--period", help="shift, day or week: the last one that ended "
                                                                "(before --at); or give --from and --to")] = None,
    start: Annotated[str | None, typer.Option("--from", help="Start, ISO 8601 with an offset.")] = None,
    end: Annotated[str | None, typer.Option("--to", help="End (excluded), ISO 8601 with an offset.")] = None,
    at: Annotated[str | None, typer.Option("--at", help="The periods ended by then (default: now), ISO 8601.")]
    = None,
    fmt: Annotated[str, typer.Option("--format", help="html or pdf")] = "html",
    data_dir: DataDir = DEFAULT_DATA_DIR,
    plant: PlantOpt = None,
) -> None:
    """Write a report: OEE and its factors, losses in money, the downtime Pareto, alarm-system figures (not from
    a data directory: the alarm system runs in the server), SPC capability, energy per part, machines at risk."""
    from plantlink.client.embedded import LOCAL
    from plantlink.client.select import to_us
    from plantlink.errors import PlantlinkError
    from plantlink.reports import check_format, render
    from plantlink.services.reports import audit_details

    try:
        check_format(fmt)
        if period is None and (start is None or end is None):
            fail("give --period shift|day|week, or --from and --to", 2)
        s = None if start is None else to_us(start, "from")
        e = None if end is None else to_us(end, "to")
        when = None if at is None else to_us(at, "at")
        src = open_data_dir(data_dir, plant, "download the report from the server: GET /api/v1/reports")
        try:
            found = src.services.reports.report(LOCAL, scope, period, start_us=s, end_us=e, at_us=when)
            body = render(found, fmt)
            write_atomic(out, [body])
            if src.store is not None:
                from plantlink.audit import AuditLog

                details = {**audit_details(found, fmt, len(body), "cli"), "file": str(out.absolute())}
                AuditLog(src.store.engine).record("export.report", actor(), found.site, found.scope, details)
        finally:
            src.close()
    except PlantlinkError as exc:
        fail(str(exc))
    err.print(f"{found.kind} report of {found.scope}, {found.label}: {len(body):,} bytes written to {out}",
              markup=False, highlight=False)


