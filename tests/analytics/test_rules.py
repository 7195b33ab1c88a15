"""Western Electric and Nelson rules on hand-made series (centre 0, sigma 1, limits +-3) whose violating
points are known by hand, series that only just do not violate, and a plain-loop second implementation."""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import pytest

from plantlink.analytics.spc_rules import RULES, evaluate, expand
from plantlink.errors import AnalysisError


def flagged(series: list[float], rule: str) -> list[int]:
    return evaluate(series, 0.0, 1.0, -3.0, 3.0, [rule])[rule].tolist()


CASES: list[tuple[str, list[float], list[int]]] = [
    # rule 1: beyond +-3 (strict: 3.0 itself is in)
    ("we1", [0, 1, 3.5, -3.2, 2.9, 3.0], [2, 3]),
    ("n1", [0, 2.99, -3.0, 3.0], []),
    # 2 of 3 beyond 2 sigma on one side, the completing point beyond
    ("we2", [0, 2.5, 0.5, 2.1, 0, 0], [3]),
    ("we2", [0, -2.5, -2.1, 0], [2]),
    ("we2", [2.5, 0, -2.5, 0], []),         # opposite sides
    ("we2", [2.5, 0, 0, 2.5], []),          # 4 apart
    ("n5", [2.0, 2.5, 0, 2.0], []),         # 2.0 is not beyond 2
    ("n5", [2.5, 2.5, 2.5], [1, 2]),
    # 4 of 5 beyond 1 sigma on one side
    ("we3", [1.5, 1.2, 0.3, 1.1, 1.9], [4]),
    ("n6", [1.5, 1.2, 0.3, 1.1, 0.9, 1.9], []),
    ("n6", [-1.5, -1.2, -1.1, -1.9, 0], [3]),
    # 8 (WE) / 9 (Nelson) on one side of the centre
    ("we4", [0.1] * 8, [7]),
    ("we4", [0.1] * 9, [7, 8]),
    ("we4", [0.1] * 7 + [0.0] + [0.1], []),  # the centre line breaks the run
    ("we4", [-0.1] * 7 + [0.1], []),
    ("n2", [-0.2] * 9, [8]),
    ("n2", [-0.2] * 8, []),
    # 6 points steadily rising or falling
    ("n3", [0, 1, 2, 3, 4, 5], [5]),
    ("n3", [5, 4, 3, 2, 1, 0, -1], [5, 6]),
    ("n3", [0, 1, 2, 3, 4, 4], []),         # a tie breaks the trend
    ("n3", [0, 1, 2, 3, 4], []),
    # 14 points alternating up and down
    ("n4", [0.0, 1.0] * 7, [13]),
    ("n4", [0.0, 1.0] * 7 + [0.0], [13, 14]),
    ("n4", ([0.0, 1.0] * 7)[:13], []),
    ("n4", [0, 1, 0, 1, 0, 1, 1, 0, 1, 0, 1, 0, 1, 0], []),
    # 15 within 1 sigma (either side)
    ("n7", [0.5, -0.5] * 7 + [0.5], [14]),
    ("n7", [0.5, -0.5] * 7 + [1.0], []),    # 1.0 is not within 1
    # 8 beyond 1 sigma, either side
    ("n8", [1.5, -1.5] * 4, [7]),
    ("n8", [1.5, -1.5] * 3 + [1.0, 1.5], []),
]


@pytest.mark.parametrize(("rule", "series", "want"), CASES)
def test_hand_made_series(rule: str, series: list[float], want: list[int]) -> None:
    assert flagged(series, rule) == want


def test_every_rule_has_a_violating_and_a_just_clean_case() -> None:
    hit = {r for r, _, w in CASES if w}
    miss = {r for r, _, w in CASES if not w}
    aliases = {"we1": "n1", "n1": "we1", "we2": "n5", "n5": "we2", "we3": "n6", "n6": "we3"}
    for r in RULES:
        assert r in hit or aliases.get(r) in hit, r
        assert r in miss or aliases.get(r) in miss, r


def test_per_point_limits_and_sigma() -> None:
    """Zones scale with each point's sigma; rule 1 uses each point's own limits."""
    v = [0.3, 0.3, 0.1]
    sigma = [0.1, 0.1, 1.0]
    got = evaluate(v, 0.0, sigma, [-0.3, -0.3, -3], [0.29, 0.31, 3], ["we1", "we2"])
    assert got["we1"].tolist() == [0]
    assert got["we2"].tolist() == [1]  # points 0, 1 are 3 sigma out; point 2 is 0.1 sigma


def test_groups_expand_and_unknown_rules_fail() -> None:
    assert expand(["western_electric"]) == ("we1", "we2", "we3", "we4")
    assert expand(["nelson", "n1", "we4"]) == ("n1", "n2", "n3", "n4", "n5", "n6", "n7", "n8", "we4")
    with pytest.raises(AnalysisError, match="unknown rule 'n9'"):
        expand(["n9"])


def test_nan_sigma_disables_the_zone_rules() -> None:
    got = evaluate([5.0] * 10, 0.0, np.nan, 0.0, 4.0, ["nelson"])
    assert got["n1"].tolist() == list(range(10))
    assert all(got[r].size == 0 for r in ("n2", "n5", "n6", "n7", "n8"))


# -- a second implementation: plain loops, rule by rule ----------------------------------------------------
def _naive(v: list[float], rule: str) -> list[int]:
    z = v  # centre 0, sigma 1
    out = []
    for i in range(len(v)):
        def win(m: int, i: int = i) -> list[float] | None:
            return z[i - m + 1:i + 1] if i >= m - 1 else None
        ok = False
        if rule in ("we1", "n1"):
            ok = z[i] > 3 or z[i] < -3
        elif rule in ("we2", "n5", "we3", "n6"):
            k, m, b = (2, 3, 2.0) if rule in ("we2", "n5") else (4, 5, 1.0)
            w = z[max(0, i - m + 1):i + 1]
            ok = any(sum(s * x > b for x in w) >= k and s * z[i] > b for s in (1, -1))
        elif rule in ("we4", "n2"):
            w = win(8 if rule == "we4" else 9)
            ok = w is not None and (all(x > 0 for x in w) or all(x < 0 for x in w))
        elif rule == "n3":
            w = win(6)
            ok = w is not None and (all(b > a for a, b in pairwise(w)) or all(b < a for a, b in pairwise(w)))
        elif rule == "n4":
            w = win(14)
            ok = w is not None and all((w[j + 1] - w[j]) * (w[j + 2] - w[j + 1]) < 0 for j in range(12))
        elif rule == "n7":
            w = win(15)
            ok = w is not None and all(abs(x) < 1 for x in w)
        elif rule == "n8":
            w = win(8)
            ok = w is not None and all(abs(x) > 1 for x in w)
        if ok:
            out.append(i)
    return out


@pytest.mark.parametrize("seed", range(6))
def test_vectorised_rules_equal_plain_loops(seed: int) -> None:
    rng = np.random.default_rng(seed)
    scale = [0.4, 1.0, 1.6, 2.5, 1.0, 0.6][seed]
    v = np.round(rng.normal(0, scale, 400) + np.repeat(rng.normal(0, 1, 20), 20), 1)  # shifts, ties, runs
    v[50:70] = np.arange(20) * 0.1 - 1  # a trend
    v[100:120] = np.tile([0.5, -0.5], 10)  # alternation, within 1 sigma
    got = evaluate(v, 0.0, 1.0, -3.0, 3.0, ["western_electric", "nelson"])
    for rule in RULES:
        assert got[rule].tolist() == _naive(v.tolist(), rule), rule
