"""EEMUA 191 figures on hand-made annunciation lists, computed by hand."""

from __future__ import annotations

import pytest

from plantlink.engines.alarms.performance import compute

S = 1_000_000
P = 600 * S  # one 10-minute period


def test_rates_peak_flood_top_and_chattering_by_hand() -> None:
    ev = [(f"a{i}", "s1", 5 * S + i * S, "low") for i in range(11)]  # 11 in period 0: a flood
    ev += [("x", "s1", P + 10 * S, "high"), ("x", "s1", P + 40 * S, "high"), ("x", "s1", P + 70 * S, "high")]
    ev += [("y", "s1", 2 * P, "low"), ("y", "s1", 2 * P + 30 * S, "low"), ("y", "s1", 2 * P + 61 * S, "low")]
    ev += [("z", "s2", 3 * P + 1, "low")]
    got = compute(ev, 0, 4 * P, operators={"s1": 2})
    s1, s2 = got.per_site["s1"], got.per_site["s2"]
    assert got.periods == 4 and got.annunciations == 18
    assert s1["annunciations"] == 17 and s1["peak_per_10min"] == 11
    assert s1["avg_per_10min"] == pytest.approx(17 / 4 / 2)  # per operator: 2 at s1
    assert s2["avg_per_10min"] == pytest.approx(1 / 4)
    assert got.avg_per_10min == pytest.approx((17 / 8 + 1 / 4) / 2)
    assert got.peak_per_10min == 11
    assert got.flood_share == pytest.approx(1 / 8)  # one of 4 + 4 site-periods above 10
    assert got.top[0] == {"alarm": "x", "count": 3, "share": 3 / 18}
    assert [t["alarm"] for t in got.top[:2]] == ["x", "y"] and len(got.top) == 10
    # x: 3 within 60 s (10, 40, 70 -> 60 s span); y: 0, 30, 61 -> 61 s: not chattering
    assert got.chattering == [{"alarm": "x", "bursts": 1}]


def test_outside_events_are_ignored_and_ranges_checked() -> None:
    got = compute([("a", "s1", -1, "low"), ("a", "s1", P, "low")], 0, P, sites=["s1", "s9"])
    assert got.annunciations == 0 and got.per_site["s9"]["periods"] == 1 and got.flood_share == 0
    with pytest.raises(ValueError, match="reversed"):
        compute([], 10, 10)
