"""Reports against a shift worked out by hand (the OEE and energy tests' shift A of 2026-03-10, with two stops
with reasons and an SPC tag): the report's figures equal the API's for the same scope and period; the HTML and
the PDF say them (parsed back, not only written); bad scopes and periods are refused by name."""

from __future__ import annotations

import io
from collections.abc import Callable
from datetime import datetime
from html.parser import HTMLParser

import httpx
import pytest

from plantlink.errors import AnalysisError, NotFound, QueryError
from plantlink.identity import Principal
from plantlink.reports import filename, render
from plantlink.runtime import Runtime
from plantlink.services.reports import period_bounds
from tests.api.test_oee_downtime import M1, TZ, local_us
from tests.reports.cases import (
    COSTS,
    ENERGY_COST,
    KWH_PER_PART,
    LINE,
    OEE,
    PARETO,
    capability_by_hand,
    craft_report,
)

Client = Callable[..., httpx.AsyncClient]
WHO = Principal("ann", {"windsor": "viewer"})
SHIFT = (local_us(6), local_us(14))


class Page(HTMLParser):
    """The headline figures (label -> value) and each table's rows (title -> rows of cell texts)."""

    def __init__(self) -> None:
        super().__init__()
        self.figures: dict[str, str] = {}
        self.tables: dict[str, list[list[str]]] = {}
        self.svgs = 0
        self.external: list[str] = []
        self._figure: str | None = None
        self._table: str | None = None
        self._cell: list[str] | None = None
        self._div = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag in ("script", "link", "img", "iframe") or (tag == "a" and a.get("href")):
            self.external.append(tag)
        if tag == "svg":
            self.svgs += 1
        if a.get("data-figure"):
            self._figure = a["data-figure"]
        if a.get("data-table"):
            self._table = a["data-table"]
            self.tables[self._table] = []
        if tag == "tr" and self._table is not None:
            self.tables[self._table].append([])
        if tag in ("td", "th") and self._table is not None:
            self._cell = []
        if tag == "div" and self._figure is not None and a.get("class") == "v":
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None and self._table is not None:
            self.tables[self._table][-1].append("".join(self._cell).strip())
            self._cell = None
        if tag == "div" and self._figure is not None and self._cell is not None:
            self.figures[self._figure] = "".join(self._cell).strip()
            self._cell, self._figure = None, None
        if tag == "section":
            self._table = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def parse(body: bytes) -> Page:
    p = Page()
    p.feed(body.decode("utf-8"))
    return p


async def test_the_report_equals_the_services_and_the_api(client: Client, runtime: Runtime) -> None:
    await craft_report(runtime)
    r = runtime.services.reports.report(WHO, LINE, "shift", at_us=local_us(15))
    assert (r.period, r.label, r.start_us, r.end_us) == ("shift", "shift A of 2026-03-10", *SHIFT)
    assert r.oee.total.result.oee == pytest.approx(OEE)
    assert r.costs.total is not None and {k: r.costs.total[k] for k in COSTS} == pytest.approx(COSTS)  # type: ignore[literal-required]
    assert [(row.key, row.duration_s) for row in r.pareto.rows] == PARETO
    assert r.energy is not None and r.energy.result is not None
    assert r.energy.result.kwh_per_good_part == pytest.approx(KWH_PER_PART)
    assert r.energy.result.cost == pytest.approx(ENERGY_COST)
    cap = r.capability[0].capability
    assert r.capability[0].tag == f"{M1}/temp" and cap is not None
    assert (cap.cp, cap.cpk, cap.pp, cap.ppk) == pytest.approx(capability_by_hand())
    assert r.alarms is not None and r.alarms.annunciations == 1
    assert [(t["alarm"], t["count"]) for t in r.alarms.top] == [(f"{M1}/temp:hi", 1)]
    assert [(m.machine, m.downtime_s, m.stops) for m in r.at_risk] == [(M1, 3000.0, 2)]
    # the API answers the same figures for the same scope and range
    c = client("ann:windsor=viewer")
    q = f"start={SHIFT[0] // 1000}&end={SHIFT[1] // 1000}"
    oee = (await c.get(f"/api/v1/oee?scope={LINE}&{q}")).json()
    costs = (await c.get(f"/api/v1/lines/costs?line={LINE}&{q}")).json()
    pareto = (await c.get(f"/api/v1/downtime/pareto?line={LINE}&{q}")).json()
    energy = (await c.get(f"/api/v1/energy?scope={LINE}&{q}")).json()
    cap_api = (await c.get(f"/api/v1/spc/{M1}/temp?{q}")).json()["capability"]
    assert oee["oee"] == r.oee.total.result.oee and oee["availability"] == r.oee.total.result.availability
    assert costs["total"] == r.costs.total["total"] and costs["quality_loss"] == r.costs.total["quality_loss"]
    assert [(x["key"], x["duration_s"]) for x in pareto["rows"]] == [(x.key, x.duration_s) for x in r.pareto.rows]
    assert energy["kwh_per_good_part"] == r.energy.result.kwh_per_good_part
    assert (cap_api["cp"], cap_api["cpk"], cap_api["ppk"]) == (cap.cp, cap.cpk, cap.ppk)
    alarms = (await c.get(f"/api/v1/alarms/performance?site=windsor&{q}")).json()
    assert alarms["annunciations"] == r.alarms.annunciations and alarms["top"] == r.alarms.top
    assert alarms["avg_per_10min"] == r.alarms.avg_per_10min


async def test_html_says_the_figures(client: Client, runtime: Runtime) -> None:
    await craft_report(runtime)
    r = await client("ann:windsor=viewer").get(f"/api/v1/reports?scope={LINE}&period=shift"
                                                f"&at={local_us(15) // 1000}&format=html")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/html")
    assert 'filename="report-windsor-a1-l1-shift-2026-03-10.html"' in r.headers["content-disposition"]
    page = parse(r.content)
    assert page.external == [] and page.svgs == 4  # self-contained: four inline charts, nothing fetched
    assert page.figures["OEE"] == "84.9 %" and page.figures["Availability"] == "95.2 %"
    assert page.figures["Performance"] == "90.0 %" and page.figures["Quality"] == "99.0 %"
    assert page.figures["Cost of losses"] == "2,508.00 CAD"
    assert page.figures["Top loss"] == "performance (0.67 h)"  # 2400 s
    assert page.figures["Top reason"] == "No blanks (0.50 h)"
    assert page.figures["kWh per good part"] == f"{KWH_PER_PART:.3f}"
    losses = page.tables["Losses in money"]
    assert losses[1] == [M1, "1,200.00 CAD", "1,200.00 CAD", "108.00 CAD", "2,508.00 CAD"]
    pareto = page.tables[f"Downtime Pareto ({LINE})"]
    assert [row[0] for row in pareto[1:]] == ["No blanks", "Jam"]
    assert [row[3] for row in pareto[1:]] == ["0.50 h", "0.33 h"] and pareto[1][4] == "60.0 %"
    cp, cpk, pp, ppk = capability_by_hand()
    assert page.tables["SPC capability"][1][:5] == [f"{M1}/temp", f"{cp:.2f}", f"{cpk:.2f}", f"{pp:.2f}", f"{ppk:.2f}"]
    assert page.tables["Machines at risk"][1][:4] == [M1, "84.9 %", "0.83 h", "2"]
    assert page.tables["Energy"][-1][-1] == f"{ENERGY_COST:,.2f} CAD"
    alarms = dict(tuple(row) for row in page.tables["Alarm system (EEMUA 191), site windsor"][1:])
    assert alarms["Annunciations"] == "1" and alarms["Per hour"] == "0.1"  # 1 in 8 h
    assert alarms[f"Top: {M1}/temp:hi"] == "1 (100.0 %)" and alarms["Flood share (>10 per 10 min)"] == "0.0 %"


async def test_pdf_says_the_figures(client: Client, runtime: Runtime) -> None:
    from pypdf import PdfReader

    await craft_report(runtime)
    r = await client("ann:windsor=viewer").get(f"/api/v1/reports?scope={LINE}&period=shift"
                                                f"&at={local_us(15) // 1000}&format=pdf")
    assert r.status_code == 200 and r.headers["content-type"] == "application/pdf"
    reader = PdfReader(io.BytesIO(r.content))
    text = "\n".join(p.extract_text() for p in reader.pages)
    assert "Line report: windsor/a1/l1" in text and "shift A of 2026-03-10" in text
    assert "OEE 84.9 %" in text and "Cost of losses 2,508.00 CAD" in text
    assert f"{M1} 1,200.00 CAD 1,200.00 CAD 108.00 CAD 2,508.00 CAD" in text
    assert text.index("No blanks Material 1 0.50 h") < text.index("Jam Mechanical 1 0.33 h")
    assert sum(len(p.images) for p in reader.pages) == 4  # the charts
    # audited as an export
    log = runtime.audit
    assert log is not None
    found = [rec for rec in log.query(kind="export.report") if rec.details.get("format") == "pdf"]
    assert found and found[0].actor == "ann" and found[0].target == LINE and found[0].site == "windsor"


async def test_refusals_name_the_scope_and_the_period(client: Client, runtime: Runtime) -> None:
    await craft_report(runtime)
    svc = runtime.services.reports
    with pytest.raises(NotFound, match="windsor/a1/nope") as e1:
        svc.report(WHO, "windsor/a1/nope", "shift")
    assert e1.value.field == "line"
    with pytest.raises(QueryError, match="period must be one of") as e2:
        svc.report(WHO, LINE, "month")
    assert e2.value.field == "period"
    with pytest.raises(AnalysisError, match=r"no data for windsor/a1/l1 in 2026-02-01") as e3:
        svc.report(WHO, LINE, "day", at_us=int(datetime(2026, 2, 2, 12, tzinfo=TZ).timestamp()) * 1_000_000)
    assert e3.value.field == "period"
    c = client("bob:detroit=viewer")
    assert (await c.get(f"/api/v1/reports?scope={LINE}&period=shift")).status_code == 403
    bad = (await client().get(f"/api/v1/reports?scope={LINE}&period=shift&format=docx")).json()["error"]
    assert bad["field"] == "format"
    both = (await client().get(f"/api/v1/reports?scope={LINE}&period=day&start=0&end=1000")).json()["error"]
    assert both["field"] == "period"


def test_periods_in_site_time(runtime: Runtime) -> None:
    p = runtime.services.periods
    # at 15:00 on Tuesday 2026-03-10 (Toronto): shift A that day, the Monday, the week before
    assert period_bounds(p, "windsor", "shift", local_us(15)) == (*SHIFT, "shift A of 2026-03-10")
    assert period_bounds(p, "windsor", "shift", local_us(13)) == (local_us(6, day=9), local_us(14, day=9),
                                                                  "shift A of 2026-03-09")
    assert period_bounds(p, "windsor", "day", local_us(15)) == (local_us(0, day=9), local_us(0, day=10), "2026-03-09")
    # 2026-03-08 was the DST change in Toronto: that week has 167 hours
    s, e, label = period_bounds(p, "windsor", "week", local_us(15))
    assert (s, e, label) == (local_us(0, day=2), local_us(0, day=9), "week of 2026-03-02")
    assert (e - s) / 3.6e9 == 167


async def test_machine_scope_and_filename(runtime: Runtime) -> None:
    await craft_report(runtime)
    r = runtime.services.reports.report(WHO, M1, start_us=SHIFT[0], end_us=SHIFT[1])
    assert r.period == "custom" and r.kind == "machine" and r.pareto_of == LINE
    assert r.costs.total is not None and r.costs.total["total"] == pytest.approx(COSTS["total"])
    assert filename(r, "pdf") == "report-windsor-a1-l1-m1-custom-2026-03-10.pdf"
    assert b"Machine report: windsor/a1/l1/m1" in render(r, "html")


async def test_site_and_area_scopes(runtime: Runtime) -> None:
    """A site sums its lines' costs (one currency here) and takes the site's Pareto; the figures are the line's
    (the site's only machines with counters and stops are the line's)."""
    await craft_report(runtime)
    for scope in ("windsor", "windsor/a1"):
        r = runtime.services.reports.report(WHO, scope, start_us=SHIFT[0], end_us=SHIFT[1])
        assert r.kind == ("site" if scope == "windsor" else "area") and r.pareto_of == "windsor"
        assert r.oee.total.result.oee == pytest.approx(OEE)
        assert r.costs.total is not None and r.costs.total["total"] == pytest.approx(COSTS["total"])
        assert [(row.key, row.duration_s) for row in r.pareto.rows] == PARETO
        assert f"{r.kind.capitalize()} report: {scope}".encode() in render(r, "html")


def test_machines_at_risk_rank_standing_alarms_first() -> None:
    from plantlink.engines.alarms.performance import Performance
    from plantlink.engines.oee import OeeInputs
    from plantlink.services.kpi import Figures, OeeReport
    from plantlink.services.reports import _at_risk
    from plantlink.store.records import Pareto, ParetoRow, Totals

    def fig(apt: float) -> Figures:
        return Figures.of(OeeInputs(pbt_s=1000.0, apt_s=apt, pri_s=1.0, pq=apt, gq=apt, sq=0.0))

    a, b, c = (f"s/a/l/{m}" for m in "abc")
    oee = OeeReport("s/a/l", "line", 0, 1, fig(700.0), ((a, fig(900.0)), (b, fig(500.0)), (c, fig(1000.0))))
    rows = [ParetoRow(b, None, 3, 500.0, 0.8, 0.8), ParetoRow(a, None, 1, 100.0, 0.2, 1.0)]
    pareto = Pareto("machine", 0, 1, rows, Totals(), Totals(), Totals())
    perf = Performance(0, 1, 0, 1, 0.0, 0, 0.0, {}, [], [], stale=[{"machine": c, "name": "door open"}])
    found = _at_risk(oee, pareto, perf, {a, b, c})
    assert [(m.machine, m.downtime_s, m.stops, m.standing_alarms) for m in found] == [
        (c, 0.0, 0, ("door open",)), (b, 500.0, 3, ()), (a, 100.0, 1, ())]
    assert [m.oee for m in found] == pytest.approx([1.0, 0.5, 0.9])


async def test_a_machine_without_counters_has_its_stops_and_energy(runtime: Runtime) -> None:
    from tests.api.test_energy import M2, craft_meter

    await craft_report(runtime)
    await craft_meter(runtime)  # m2: a Wh meter, running 06:00-08:00 (7 kWh) and idle 08:00-11:00 (1 kWh)
    r = runtime.services.reports.report(WHO, M2, start_us=SHIFT[0], end_us=SHIFT[1])
    assert r.oee.total.result.oee is None and f"Machine {M2} has no production counters: no OEE." in r.notes
    assert r.energy is not None and r.energy.result is not None and r.energy.result.total_kwh == pytest.approx(8.0)
    assert r.costs.lines == () and r.costs.total is None  # its line's costs have no entry for it
    page = parse(render(r, "html"))
    assert page.figures["OEE"] == "\u2013" and page.tables["Energy"][1][:2] == [M2, "8.00"]
