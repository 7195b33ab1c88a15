"""Rendering of reports (``plantlink.services.reports``) as HTML and PDF, with charts.

``render(report, fmt)`` returns the file's bytes; ``filename(report, fmt)`` its name. Jinja2, matplotlib and
fpdf2 (the ``reports`` extra) are imported when a report is rendered, never before.
"""

from __future__ import annotations

import re

from plantlink.errors import QueryError
from plantlink.services.reports import Report

__all__ = ["FORMATS", "MEDIA", "filename", "render"]

FORMATS = ("html", "pdf")
MEDIA = {"html": "text/html; charset=utf-8", "pdf": "application/pdf"}


def check_format(fmt: str) -> None:
    if fmt not in FORMATS:
        raise QueryError(f"format must be one of {list(FORMATS)}, got {fmt!r}", field="format")


def render(report: Report, fmt: str) -> bytes:
    """The report as ``fmt`` (html or pdf)."""
    check_format(fmt)
    from plantlink.reports.view import view

    v = view(report)
    if fmt == "html":
        from plantlink.reports.html import render_html

        return render_html(v)
    from plantlink.reports.pdf import render_pdf

    return render_pdf(v)


def filename(report: Report, fmt: str) -> str:
    """``report-<scope>-<period>-<start date>.<fmt>``, safe characters only."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    day = datetime.fromtimestamp(report.start_us / 1e6, ZoneInfo(report.timezone)).strftime("%Y-%m-%d")
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", f"report-{report.scope.replace('/', '-')}-{report.period}-{day}")
    return f"{stem}.{fmt}"
