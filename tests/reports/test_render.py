"""Rendering on its own: names from the plant model are text, never markup (HTML escaped, in the tables and in
the charts' SVG), and a PDF prints any of them (DejaVu Sans)."""

from __future__ import annotations

import io

from plantlink.reports.html import render_html
from plantlink.reports.pdf import render_pdf
from plantlink.reports.view import Table, View

HOSTILE = '<script>alert("x")</script> & <img src=x onerror=y>'
UMLAUTS = "\u00d6lwechsel \u2013 Z\u00fcndung"  # an O with umlaut, an en dash, a u with umlaut


def hostile_view() -> View:
    return View(title=f"Line report: {HOSTILE}", subtitle="shift A of 2026-03-10", generated="now",
                headline=(("Top reason", HOSTILE),),
                tables=(Table("Downtime Pareto", ("Reason", "Lost"), ((HOSTILE, "0.50 h"), (UMLAUTS, "0.1 h"))),),
                notes=(HOSTILE,), factors=(("OEE", 0.5),), pareto=((HOSTILE, 0.5), (UMLAUTS, 0.1)))


def test_names_are_escaped_in_the_html_and_its_charts() -> None:
    html = render_html(hostile_view()).decode("utf-8")
    assert "<script" not in html and "<img" not in html and "onerror=y>" not in html
    assert html.count("&lt;script&gt;") >= 4  # title, headline, table, note (and the chart's label)
    assert UMLAUTS in html


def test_a_pdf_prints_any_name() -> None:
    from pypdf import PdfReader

    text = "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(render_pdf(hostile_view()))).pages)
    assert UMLAUTS in text and '<script>alert("x")</script>' in text
