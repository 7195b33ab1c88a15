"""Process capability and performance: Cp, Cpk (within-subgroup sigma), Pp, Ppk (overall sample sigma), Cpm.

Formulas (Montgomery 8.2; AIAG SPC manual): Cp = (USL - LSL) / 6 sigma_w, Cpu = (USL - μ) / 3 sigma_w, Cpl = (μ - LSL) /
3 sigma_w, Cpk = min(Cpu, Cpl); Pp, Ppu, Ppl, Ppk the same with the overall sample standard deviation s (n - 1); Cpm
= (USL - LSL) / 6 sqrt(s² + (μ - T)²) when a target T is given. With one specification limit only the one-sided
indices exist (Cp and Pp are ``None``; Cpk = Cpu or Cpl). sigma_w comes from the chart: R̄/d2, S̄/c4 or MR̄/1.128.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from plantlink.errors import AnalysisError


@dataclass(frozen=True)
class Capability:
    n: int
    mean: float
    sigma_within: float
    sigma_overall: float
    lsl: float | None
    usl: float | None
    target: float | None
    cp: float | None
    cpu: float | None
    cpl: float | None
    cpk: float
    pp: float | None
    ppu: float | None
    ppl: float | None
    ppk: float
    cpm: float | None


def _sides(mean: float, sigma: float, lsl: float | None, usl: float | None
           ) -> tuple[float | None, float | None, float | None, float]:
    both = lsl is not None and usl is not None
    whole = (usl - lsl) / (6 * sigma) if both else None  # type: ignore[operator]
    upper = (usl - mean) / (3 * sigma) if usl is not None else None
    lower = (mean - lsl) / (3 * sigma) if lsl is not None else None
    return whole, upper, lower, min(x for x in (upper, lower) if x is not None)


def capability(values: npt.ArrayLike, sigma_within: float, lsl: float | None = None, usl: float | None = None,
               target: float | None = None) -> Capability:
    """Indices of ``values`` against the specification limits (at least one of ``lsl`` and ``usl``)."""
    if lsl is None and usl is None:
        raise AnalysisError("capability needs a specification limit: set lsl, usl or both", "spec")
    if lsl is not None and usl is not None and not lsl < usl:
        raise AnalysisError(f"lsl ({lsl}) must be below usl ({usl})", "spec")
    x = np.asarray(values, dtype=np.float64)
    if x.size < 2 or not np.all(np.isfinite(x)):
        raise AnalysisError(f"capability needs at least 2 finite values, got {x.size}", "values")
    mean, s = float(x.mean()), float(x.std(ddof=1))
    if not s > 0 or not sigma_within > 0 or not math.isfinite(sigma_within):
        raise AnalysisError("no variation: the standard deviation is 0, capability is undefined", "values")
    cp, cpu, cpl, cpk = _sides(mean, sigma_within, lsl, usl)
    pp, ppu, ppl, ppk = _sides(mean, s, lsl, usl)
    cpm = None
    if target is not None and lsl is not None and usl is not None:
        cpm = (usl - lsl) / (6 * math.sqrt(s * s + (mean - target) ** 2))
    return Capability(int(x.size), mean, float(sigma_within), s, lsl, usl, target, cp, cpu, cpl, cpk, pp, ppu, ppl,
                      ppk, cpm)
