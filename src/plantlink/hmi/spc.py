"""The SPC page of a tag (``/hmi/spc/{tag path}``): its control chart over the last hours or days, the limits
and centre lines, the points that violate a rule (in red, listed below with the rule), and the capability.

Everything comes from ``services.spc`` (the same answer as ``GET /api/v1/spc/{tag}``); a period without enough
data shows the service's reason instead of a chart.
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import Request, Response
from nicegui import ui

from plantlink.errors import NotFound, RequestError
from plantlink.hmi.guard import live_timer
from plantlink.hmi.widgets import Hmi, frame, local_time, open_object
from plantlink.identity import Principal
from plantlink.model.plant import TagInfo
from plantlink.samples import now_us
from plantlink.services.spc import SpcChart

SPANS: dict[int, str] = {3600: "last hour", 8 * 3600: "last 8 h", 86400: "last 24 h", 7 * 86400: "last 7 days"}
REFRESH_S = 30.0
RULE_WORDS = {
    "we1": "beyond a control limit", "n1": "beyond a control limit", "limits": "beyond a control limit",
    "we2": "2 of 3 beyond 2 sigma", "n5": "2 of 3 beyond 2 sigma", "we3": "4 of 5 beyond 1 sigma",
    "n6": "4 of 5 beyond 1 sigma", "we4": "8 in a row on one side", "n2": "9 in a row on one side",
    "n3": "6 in a row rising or falling", "n4": "14 in a row alternating", "n7": "15 in a row within 1 sigma",
    "n8": "8 in a row beyond 1 sigma",
}
CAPABILITY = ("cp", "cpk", "pp", "ppk", "cpm")


def _tag(h: Hmi, path: str) -> TagInfo:
    info = h.services.plant.tags.get(path.strip("/"))
    if info is None:
        raise NotFound(f"no tag {path!r} in the plant model")
    return info


async def spc_page(request: Request, path: str) -> Response | None:
    opened = open_object(request, lambda h: _tag(h, path))
    if isinstance(opened, Response):
        return opened
    principal, h, info = opened
    ui.page_title(f"SPC {info.tag.label} · plantlink")
    machine = info.path.rsplit("/", 1)[0]
    frame(principal, [(h.services.plant.enterprise, h.page("")), (info.machine, h.page("machine", machine)),
                      (f"SPC {info.tag.label}", None)])
    SpcPanel(h, principal, info).build()
    return None


class SpcPanel:
    def __init__(self, h: Hmi, principal: Principal, info: TagInfo):
        self.h, self.principal, self.info = h, principal, info
        self.span_s = 86400
        self.tz = h.view.site(info.site).timezone

    def build(self) -> None:
        with ui.element("div").classes("pl-panel w-full"):
            with ui.row().classes("items-center gap-3 w-full"):
                ui.label(f"Control chart: {self.info.path}").classes("text-lg font-semibold break-all")
                ui.select(SPANS, value=self.span_s, on_change=self._span).props('dense outlined data-testid="spc-span"')
            self.box = ui.column().classes("w-full gap-2").props('data-testid="spc"')
        live_timer(REFRESH_S, self.render)

    async def _span(self, e: Any) -> None:
        self.span_s = int(e.value)
        await self.render()

    async def render(self) -> None:
        end = now_us()
        try:
            c = await asyncio.to_thread(self.h.services.spc.chart, self.principal, self.info.path,
                                        end - self.span_s * 1_000_000, end)
        except RequestError as exc:
            self.box.clear()
            with self.box:
                ui.label(exc.message).classes("pl-muted").props('data-testid="spc-reason"')
            return
        self.box.clear()
        with self.box:
            ui.label(f"{c.kind} · {c.samples} samples · {c.ts_us.size} points · rules: "
                     f"{', '.join(c.rules) or 'none'}").classes("pl-muted text-sm")
            ui.echart(chart_options(c, self.tz)).classes("w-full").style(
                f"height: {260 * len(c.charts.charts)}px").props('data-testid="spc-chart"')
            self._capability(c)
            self._violations(c)

    def _capability(self, c: SpcChart) -> None:
        cap = c.capability
        if cap is None:
            return
        with ui.row().classes("gap-6 flex-wrap").props('data-testid="spc-capability"'):
            for key in CAPABILITY:
                v = getattr(cap, key)
                text = "—" if v is None else f"{v:.2f}"
                with ui.column().classes("gap-0").props(f'data-figure="{key}" data-value="{text}"'):
                    ui.label(text).classes("text-2xl font-semibold" + (" pl-abnormal" if v is not None and v < 1.33
                                                                       and key in ("cpk", "ppk") else ""))
                    ui.label(key.capitalize()).classes("pl-muted text-sm")

    def _violations(self, c: SpcChart) -> None:
        with ui.column().classes("gap-0 w-full").props('data-testid="spc-violations"'):
            ui.label("Rule violations").classes("font-semibold")
            if not c.violations:
                ui.label("none").classes("pl-muted text-sm")
            for v in c.violations[-200:]:
                with ui.row().classes("gap-3 text-sm").props(f'data-rule="{v.rule}" data-point="{v.point}"'):
                    ui.label(local_time(v.ts_us, self.tz, True)).classes("w-52")
                    ui.label(f"{v.chart}: {v.rule} ({RULE_WORDS.get(v.rule, v.rule)})").classes("pl-abnormal")


def _line(name: str, grid: int, xs: list[str], ys: list[float | None], **style: Any) -> dict[str, Any]:
    return {"name": name, "type": "line", "xAxisIndex": grid, "yAxisIndex": grid, "symbol": "none",
            "step": "middle", "data": [[x, y] for x, y in zip(xs, ys, strict=True)], **style}


def chart_options(c: SpcChart, tz: str) -> dict[str, Any]:
    """The ECharts option: one grid per chart (stacked), each with its points, centre line and limits, and the
    violating points as a red scatter series."""
    labels = [local_time(int(t), tz) for t in c.ts_us.tolist()]
    charts = c.charts.charts
    n = len(charts)
    grids, xaxes, yaxes, series = [], [], [], []
    bad: dict[str, set[int]] = {}
    for v in c.violations:
        bad.setdefault(v.chart, set()).add(v.point)
    for g, ch in enumerate(charts):
        top = 4 + g * 96 // n
        grids.append({"left": 60, "right": 20, "top": f"{top}%", "height": f"{96 // n - 12}%"})
        xs = labels[ch.offset:]
        xaxes.append({"type": "category", "gridIndex": g, "data": xs, "boundaryGap": False})
        yaxes.append({"type": "value", "gridIndex": g, "scale": True, "name": ch.name})

        def vals(a: Any) -> list[float | None]:
            return [None if x != x else float(x) for x in a.tolist()]  # nan -> None

        series.append({**_line(ch.name, g, xs, vals(ch.values)), "symbol": "circle", "symbolSize": 4, "step": False})
        series.append(_line(f"{ch.name} centre", g, xs, vals(ch.center), lineStyle={"type": "solid", "width": 1}))
        series.append(_line(f"{ch.name} UCL", g, xs, vals(ch.ucl), lineStyle={"type": "dashed", "color": "#c62828"}))
        if any(x == x for x in ch.lcl.tolist()):
            series.append(_line(f"{ch.name} LCL", g, xs, vals(ch.lcl),
                                lineStyle={"type": "dashed", "color": "#c62828"}))
        points = sorted(p for p in bad.get(ch.name, set()) if p >= ch.offset)
        series.append({"name": f"{ch.name} violations", "type": "scatter", "xAxisIndex": g, "yAxisIndex": g,
                       "itemStyle": {"color": "#c62828"}, "symbolSize": 9,
                       "data": [[labels[p], float(ch.values[p - ch.offset])] for p in points]})
    return {"animation": False, "tooltip": {"trigger": "axis"}, "grid": grids, "xAxis": xaxes, "yAxis": yaxes,
            "series": series}
