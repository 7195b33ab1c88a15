"""The HMI and the API give identical figures (issue 9): for every period the HMI offers and every scope of the
demo plant (seeded with hours of history, simulated live), what the HMI's pages render from
(``plantlink.hmi.data``) equals what ``/api/v1`` answers over HTTP: OEE, availability, effectiveness, quality,
parts, the three losses, the top loss, the top reason, the cost of losses, the bottleneck and the downtime
Pareto."""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from plantlink.hmi import data
from plantlink.hmi.data import PERIODS, Kpi, PlantView
from plantlink.samples import now_us
from tests.hmi.conftest import PRINCIPALS
from tests.hmi.harness import PRINCIPAL_HEADER, HmiServer

ADMIN = PRINCIPALS["admin"]


@pytest.fixture(scope="module")
def api(server: HmiServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, headers={PRINCIPAL_HEADER: "admin"}, timeout=60) as c:
        yield c


@pytest.fixture(scope="module")
def view(server: HmiServer) -> PlantView:
    from plantlink.hmi.widgets import hmi

    return hmi().view  # what the pages render from


@pytest.fixture(scope="module")
def until() -> int:
    """A moment 10 s ago (whole milliseconds): what arrived before it is stored, so both sides see the same."""
    return (now_us() - 10_000_000) // 1000 * 1000


def _get(api: httpx.Client, path: str, **params: Any) -> Any:
    r = api.get(path, params=params)
    assert r.status_code == 200, r.text
    return r.json()


def _same(k: Kpi | None, found: dict[str, Any], what: str) -> None:
    assert k is not None, what
    r = k.result
    mine = {"oee": r.oee, "availability": r.availability, "effectiveness": r.effectiveness,
            "quality_rate": r.quality_rate, "parts": k.parts, "data_problem": r.data_problem,
            "losses_s": {"availability": r.availability_loss_s, "performance": r.performance_loss_s,
                         "quality": r.quality_loss_s},
            "top_loss": None if k.top_loss is None else {"kind": k.top_loss.kind, "seconds": k.top_loss.seconds},
            "top_reason": None if k.top_reason is None else {"reason": k.top_reason.reason,
                                                             "seconds": k.top_reason.seconds}}
    theirs = {key: found[key] for key in mine if key != "parts"} | {"parts": found["inputs"]["pq"]}
    assert _clean(mine) == _clean(theirs), what


def _clean(obj: Any) -> Any:
    """NaN as None (JSON has no NaN), for an exact comparison of everything else."""
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, float) and math.isnan(obj):
        return None
    return obj


@pytest.mark.parametrize("period", list(PERIODS))
def test_hmi_and_api_give_the_same_figures(view: PlantView, api: httpx.Client, until: int, period: str) -> None:
    compared, reasons = 0, 0
    for site in view.sites:
        start, end = view.period(site.name, period, until)
        window = {"start": start // 1000, "end": end // 1000}
        site_costs: dict[str, float] = {}
        for ln in site.lines:
            kpis = data.line_kpis(view, ln, start, end, ADMIN)  # the line page and the overview's tiles
            line = _get(api, "/api/v1/oee", scope=ln.path, **window)
            _same(kpis[ln.path], line, f"{period} {ln.path}")
            assert {m["machine"] for m in line["machines"]} == {p for p, k in kpis.items() if k and p != ln.path}
            for m in line["machines"]:
                _same(kpis[m["machine"]], m, f"{period} {m['machine']} (in its line)")
                alone = _get(api, "/api/v1/oee", scope=m["machine"], **window)
                _same(kpis[m["machine"]], alone, f"{period} {m['machine']}")
                compared += 1
                reasons += alone["top_reason"] is not None
            cost = kpis[ln.path].cost  # type: ignore[union-attr]
            money = _get(api, "/api/v1/lines/costs", line=ln.path, **window)
            assert cost is not None and {k: money[k] for k in cost} == cost, f"{period} {ln.path} costs"
            site_costs[cost["currency"]] = site_costs.get(cost["currency"], 0.0) + cost["total"]
            analysis = data.bottleneck_of(view, ADMIN, ln.path, start, end)
            assert analysis is not None
            mine_bn = json.loads(json.dumps(dataclasses.asdict(analysis)))  # as JSON has them (lists, not tuples)
            theirs_bn = _get(api, "/api/v1/lines/bottleneck", line=ln.path, **window)
            assert {k: theirs_bn[k] for k in mine_bn} == _clean(mine_bn), f"{period} {ln.path} bottleneck"
            for by in ("reason", "machine", "shift"):
                mine = data.pareto(view.services, ADMIN, ln.path, by, start, end)
                theirs = _get(api, "/api/v1/downtime/pareto", line=ln.path, by=by, **window)
                assert {k: theirs[k] for k in mine} == mine, f"{period} {ln.path} pareto by {by}"
        # the site: the overview adds its lines' losses; the API's site OEE combines the same machines
        whole = _get(api, "/api/v1/oee", scope=site.name, **window)
        assert {m["machine"] for m in whole["machines"]} == {
            m.path for ln in site.lines for m in ln.machines if m.model.production is not None}
        assert site_costs and all(v >= 0 for v in site_costs.values())
    assert compared >= 5  # every machine with production counters, in both sites
    if period in ("8h", "24h", "7d"):  # they hold the seeded hours, with their stops
        assert reasons >= 5


def test_the_live_periods_start_where_the_hmi_starts_them(view: PlantView, api: httpx.Client) -> None:
    for site in view.sites:
        for period in ("today", "shift"):
            before = view.period(site.name, period)[0]
            found = _get(api, "/api/v1/oee", scope=site.name, period=period)
            after = view.period(site.name, period)[0]
            assert found["start_ms"] in (before // 1000, after // 1000), (site.name, period)
