"""The cost of losses, on the worked example of docs/oee.md and edge cases."""

from __future__ import annotations

from pathlib import Path

import pytest

from plantlink.engines.costs import losses
from plantlink.engines.oee import OeeInputs, combine, compute
from plantlink.model.production import Costs
from tests.engines.test_oee import example_inputs

DOC = Path(__file__).resolve().parents[2] / "docs" / "oee.md"
EXAMPLE_COSTS = Costs(currency="CAD", downtime_per_hour=1200.0, margin_per_part=3.5)


def test_worked_example() -> None:
    inputs = example_inputs()
    cost = losses(compute(inputs), inputs, EXAMPLE_COSTS)
    # 2520 s of fault = 0.7 h x 1200 = 840
    assert cost["downtime_h"] == pytest.approx(0.7)
    assert cost["availability_loss"] == pytest.approx(840.0)
    # performance loss 1980 s / PRI 12 s = 165 parts not made x 3.50 = 577.50
    assert cost["parts_not_made"] == pytest.approx(165.0)
    assert cost["performance_loss"] == pytest.approx(577.5)
    # 45 scrap x 3.50 = 157.50
    assert (cost["scrap_parts"], cost["quality_loss"]) == (45, pytest.approx(157.5))
    assert cost["total"] == pytest.approx(840 + 577.5 + 157.5)
    assert cost["currency"] == "CAD"
    doc = DOC.read_text(encoding="utf-8")
    for figure in ("840.00", "577.50", "157.50", "1 575.00 CAD", "165 parts"):
        assert figure in doc, f"docs/oee.md does not show {figure}"


def test_effectiveness_above_one_costs_nothing() -> None:
    inputs = OeeInputs(pbt_s=3600, apt_s=1800, pri_s=20, pq=100, gq=100, sq=0)  # E = 2000 / 1800
    cost = losses(compute(inputs), inputs, EXAMPLE_COSTS)
    assert cost["performance_loss"] == 0 and cost["parts_not_made"] == 0
    assert cost["availability_loss"] == pytest.approx(0.5 * 1200)
    assert cost["total"] == pytest.approx(600)


def test_zero_pri_and_zero_costs() -> None:
    inputs = OeeInputs(pbt_s=3600, apt_s=3600, pri_s=0, pq=0, gq=0, sq=0)
    cost = losses(compute(inputs), inputs, Costs())
    assert cost == {
        "availability_loss": 0.0,
        "performance_loss": 0.0,
        "quality_loss": 0.0,
        "total": 0.0,
        "currency": "USD",
        "downtime_h": 0.0,
        "parts_not_made": 0.0,
        "scrap_parts": 0,
    }


def test_combined_inputs_use_the_weighted_pri() -> None:
    # A: PRI 10 s, 100 parts in 1200 s running (200 s lost); B: PRI 2 s, 300 parts in 800 s (200 s lost)
    # combined: APT 2000, sum PRI x PQ = 1000 + 600 = 1600, performance loss 400 s, PRI = 1600 / 400 = 4 s
    # -> 100 parts not made at the mean rate
    a = OeeInputs(pbt_s=1200, apt_s=1200, pri_s=10, pq=100, gq=100, sq=0)
    b = OeeInputs(pbt_s=800, apt_s=800, pri_s=2, pq=300, gq=290, sq=10)
    total = combine([a, b])
    cost = losses(compute(total), total, Costs(margin_per_part=2.0))
    assert total.pri_s == 4
    assert cost["parts_not_made"] == pytest.approx(100)
    assert cost["total"] == pytest.approx(100 * 2.0 + 10 * 2.0)
