"""Run rules for control charts: Western Electric 1-4 and Nelson 1-8, vectorised over the whole series.

Each rule returns the indices of the points that *complete* a violating pattern (the last point of the
window). Zones are in units of the per-point standard error: ``z = (value - center) / sigma``. Conventions
(docs/analytics.md): "beyond" and "more than" are strict (a point exactly on 2 sigma is not beyond 2 sigma); a point on
the centre line is on neither side and breaks a run; in the "k of m" rules the completing point is itself one
of the k, and the first points count as a shorter window (2 points beyond 2 sigma at the start violate "2 of
3"). Rules 1 (beyond the limits) compare with the chart's own limits, so a clipped lower limit (p, u) or a
time-varying one (EWMA) is honoured.

=====  ==========  ===================================================================
rule   also        pattern
=====  ==========  ===================================================================
we1    n1          one point beyond a control limit
we2    n5          2 of 3 consecutive points beyond 2 sigma on the same side
we3    n6          4 of 5 consecutive points beyond 1 sigma on the same side
we4                8 consecutive points on the same side of the centre line
n2                 9 consecutive points on the same side of the centre line
n3                 6 consecutive points steadily increasing or decreasing (5 rising or falling steps)
n4                 14 consecutive points alternating up and down (13 steps, each turning)
n7                 15 consecutive points within 1 sigma of the centre line (either side)
n8                 8 consecutive points beyond 1 sigma, on either side
=====  ==========  ===================================================================
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np
import numpy.typing as npt

from plantlink.analytics.names import GROUPS, LIMIT_RULES, RULES, expand

__all__ = ["GROUPS", "LIMIT_RULES", "RULES", "evaluate", "expand"]

Floats = npt.NDArray[np.float64]
Bools = npt.NDArray[np.bool_]
Ints = npt.NDArray[np.int64]


def window_count(mask: Bools, width: int) -> Ints:
    """How many of the ``width`` points ending at each index are set (near the start: of the points so far, so
    "2 of 3" already holds at the second point)."""
    c = np.concatenate(([0], np.cumsum(mask, dtype=np.int64)))
    i = np.arange(1, mask.size + 1)
    out: Ints = c[i] - c[np.maximum(0, i - width)]
    return out


def run_end(mask: Bools, length: int) -> Bools:
    """Indices where the last ``length`` points are all set."""
    out: Bools = window_count(mask, length) == length
    return out


def _k_of_m(z: Floats, k: int, m: int, beyond: float) -> Bools:
    out = np.zeros(z.size, dtype=bool)
    for side in (1.0, -1.0):
        hit = side * z > beyond
        out |= (window_count(hit, m) >= k) & hit
    return out


def _same_side(z: Floats, length: int) -> Bools:
    return run_end(z > 0, length) | run_end(z < 0, length)


def _trend(values: Floats, points: int) -> Bools:
    d = np.diff(values)
    out = np.zeros(values.size, dtype=bool)
    out[1:] = run_end(d > 0, points - 1) | run_end(d < 0, points - 1)
    return out


def _alternating(values: Floats, points: int) -> Bools:
    d = np.diff(values)
    turns = d[1:] * d[:-1] < 0  # turns[j]: step j+1 reverses step j; steps j, j+1 join points j..j+2
    out = np.zeros(values.size, dtype=bool)
    out[2:] = run_end(turns, points - 2)
    return out


def _beyond_limits(v: Floats, lcl: Floats, ucl: Floats) -> Bools:
    return (v > ucl) | (v < lcl)  # a nan limit (none) never compares true


Series = tuple[Floats, Floats, Floats, Floats]  # values, z, lcl, ucl
_RULES: dict[str, Callable[[Series], Bools]] = {
    "we1": lambda s: _beyond_limits(s[0], s[2], s[3]),
    "we2": lambda s: _k_of_m(s[1], 2, 3, 2.0),
    "we3": lambda s: _k_of_m(s[1], 4, 5, 1.0),
    "we4": lambda s: _same_side(s[1], 8),
    "n1": lambda s: _beyond_limits(s[0], s[2], s[3]),
    "n2": lambda s: _same_side(s[1], 9),
    "n3": lambda s: _trend(s[0], 6),
    "n4": lambda s: _alternating(s[0], 14),
    "n5": lambda s: _k_of_m(s[1], 2, 3, 2.0),
    "n6": lambda s: _k_of_m(s[1], 4, 5, 1.0),
    "n7": lambda s: run_end(np.abs(s[1]) < 1.0, 15),
    "n8": lambda s: run_end(np.abs(s[1]) > 1.0, 8),
}
if tuple(_RULES) != RULES:  # pragma: no cover  (the names the model checks are the rules evaluated)
    raise RuntimeError("plantlink.analytics.names.RULES differs from the rules spc_rules evaluates")


def evaluate(values: npt.ArrayLike, center: npt.ArrayLike, sigma: npt.ArrayLike, lcl: npt.ArrayLike,
             ucl: npt.ArrayLike, rules: Iterable[str] = ("western_electric",)) -> dict[str, Ints]:
    """Per rule asked for (groups expanded), the sorted indices of the points that violate it (possibly none).
    ``center``, ``sigma``, ``lcl`` and ``ucl`` are scalars or per point; a ``nan`` sigma disables the zone
    rules for that point (an R chart has no zones)."""
    v = np.asarray(values, dtype=np.float64)
    shape = v.shape

    def per(a: npt.ArrayLike) -> Floats:
        return np.broadcast_to(np.asarray(a, dtype=np.float64), shape)

    with np.errstate(invalid="ignore", divide="ignore"):
        z = (v - per(center)) / per(sigma)
    s: Series = (v, z, per(lcl), per(ucl))
    with np.errstate(invalid="ignore"):
        return {r: np.flatnonzero(_RULES[r](s)).astype(np.int64) for r in expand(rules)}
