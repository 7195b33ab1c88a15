"""Capability indices on a hand-computed tiny example, one-sided specs, and generated data of known sigma."""

from __future__ import annotations

import math

import numpy as np
import pytest

from plantlink.analytics import spc
from plantlink.analytics.capability import capability
from plantlink.errors import AnalysisError


def test_tiny_example_by_hand() -> None:
    """values 9, 10, 11, 10, 10: mean 10, s = sqrt(2 / 4) = 0.70711; sigma_within 0.5; LSL 8, USL 13,
    target 10.5: Cp = 5 / 3, Cpu = 3 / 1.5, Cpl = 2 / 1.5, Pp = 5 / 4.24264, Ppu = 3 / 2.12132,
    Ppl = 2 / 2.12132, Cpm = 5 / (6 sqrt(0.5 + 0.25))."""
    c = capability([9, 10, 11, 10, 10], 0.5, lsl=8, usl=13, target=10.5)
    assert (c.n, c.mean) == (5, 10.0)
    assert c.sigma_overall == pytest.approx(0.707107, abs=1e-6)
    assert (c.cp, c.cpu, c.cpl, c.cpk) == pytest.approx((1.666667, 2.0, 1.333333, 1.333333), abs=1e-6)
    assert (c.pp, c.ppu, c.ppl, c.ppk) == pytest.approx((1.178511, 1.414214, 0.942809, 0.942809), abs=1e-6)
    assert c.cpm == pytest.approx(0.962250, abs=1e-6)


def test_one_sided_specs() -> None:
    up = capability([9, 10, 11, 10, 10], 0.5, usl=13)
    assert up.cp is None and up.pp is None and up.cpl is None and up.cpm is None
    assert up.cpk == pytest.approx(2.0) and up.ppk == pytest.approx(1.414214, abs=1e-6)
    low = capability([9, 10, 11, 10, 10], 0.5, lsl=8)
    assert low.cpk == pytest.approx(1.333333, abs=1e-6) and low.cpu is None


def test_generated_data_of_known_sigma() -> None:
    """N(10, 1), n = 200 000, LSL 7, USL 14: Pp = Cp = 7 / 6, Ppk = Cpk = min(4, 3) / 3 = 1. Standard errors:
    of s about sigma / sqrt(2n) = 0.0016 (relative), of the mean 1 / sqrt(n) = 0.0022; 0.01 is over 4 of them."""
    x = np.random.default_rng(7).normal(10.0, 1.0, 200_000)
    within = spc.xbar_r(spc.every(x, 5)).sigma_within
    c = capability(x, within, lsl=7, usl=14)
    assert c.pp == pytest.approx(7 / 6, abs=0.01) and c.ppk == pytest.approx(1.0, abs=0.01)
    assert c.cp == pytest.approx(7 / 6, abs=0.01) and c.cpk == pytest.approx(1.0, abs=0.01)


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"values": [1, 2, 3], "sigma_within": 1.0}, "needs a specification limit"),
    ({"values": [1, 2, 3], "sigma_within": 1.0, "lsl": 5, "usl": 5}, "below usl"),
    ({"values": [4, 4, 4], "sigma_within": 1.0, "usl": 5}, "no variation"),
    ({"values": [1, 2, 3], "sigma_within": 0.0, "usl": 5}, "no variation"),
    ({"values": [1], "sigma_within": 1.0, "usl": 5}, "at least 2"),
    ({"values": [1, math.inf], "sigma_within": 1.0, "usl": 5}, "finite"),
])
def test_bad_input(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(AnalysisError, match=match):
        capability(**kwargs)  # type: ignore[arg-type]
