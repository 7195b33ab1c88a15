"""Alarm-system performance per EEMUA 191 / ISA-18.2, from the annunciations in the journal.

- ``avg_per_10min``: annunciations per operator per 10-minute period (EEMUA 191: about 1 is acceptable,
  ISA-18.2: 1-2 is manageable). Each site has ``operators`` operators (default 1): its rate is divided by it.
- ``peak_per_10min``: the most annunciations at one site in one 10-minute period (periods aligned on the
  start of the range).
- ``flood_share``: share of 10-minute periods (per site) with more than 10 annunciations.
- ``top``: the 10 most frequent alarms (count and share of all annunciations).
- ``chattering``: alarms annunciated 3 or more times within any 60 s.
- ``stale``: alarms annunciated and still active for more than 24 h (given by the engine).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

PERIOD_US = 600_000_000
FLOOD = 10
CHATTER_COUNT, CHATTER_US = 3, 60_000_000
STALE_US = 24 * 3600 * 1_000_000


@dataclass(frozen=True)
class Performance:
    start_us: int
    end_us: int
    annunciations: int
    periods: int
    avg_per_10min: float
    peak_per_10min: int
    flood_share: float
    per_site: dict[str, dict[str, float]]
    top: list[dict[str, Any]]
    chattering: list[dict[str, Any]]
    stale: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _site_figures(ts: np.ndarray, start_us: int, periods: int, operators: int) -> dict[str, float]:
    counts = np.bincount((ts - start_us) // PERIOD_US, minlength=periods)[:periods] if ts.size \
        else np.zeros(periods, dtype=np.int64)
    return {
        "annunciations": int(ts.size),
        "operators": operators,
        "avg_per_10min": float(counts.mean() / operators) if periods else 0.0,
        "peak_per_10min": int(counts.max()) if periods else 0,
        "flood_periods": int((counts > FLOOD).sum()),
        "periods": periods,
    }


def chattering(alarms: np.ndarray, ts: np.ndarray) -> list[dict[str, Any]]:
    """Alarms with ``CHATTER_COUNT`` annunciations within ``CHATTER_US``: one vectorised pass over
    (alarm, time)-sorted events comparing each event with the one two places later."""
    if ts.size < CHATTER_COUNT:
        return []
    order = np.lexsort((ts, alarms))
    a, t = alarms[order], ts[order]
    k = CHATTER_COUNT - 1
    hit = (a[k:] == a[:-k]) & (t[k:] - t[:-k] <= CHATTER_US)
    names, counts = np.unique(a[:-k][hit], return_counts=True)
    return [{"alarm": str(n), "bursts": int(c)} for n, c in sorted(zip(names, counts, strict=True),
                                                                   key=lambda x: (-x[1], x[0]))]


def compute(events: Sequence[tuple[str, str, int, str]], start_us: int, end_us: int,
            operators: Mapping[str, int] | None = None, sites: Sequence[str] | None = None,
            stale: Sequence[dict[str, Any]] = ()) -> Performance:
    """Figures over [start_us, end_us) from (alarm, site, ts_us, priority) annunciations."""
    if end_us <= start_us:
        raise ValueError(f"reversed or empty range: {start_us} .. {end_us}")
    operators = operators or {}
    periods = -(-(end_us - start_us) // PERIOD_US)
    alarms = np.array([e[0] for e in events], dtype=object)
    site_of = np.array([e[1] for e in events], dtype=object)
    ts = np.array([e[2] for e in events], dtype=np.int64)
    keep = (ts >= start_us) & (ts < end_us)
    alarms, site_of, ts = alarms[keep], site_of[keep], ts[keep]
    all_sites = sorted(set(sites or ()) | set(site_of.tolist()))
    per_site = {s: _site_figures(ts[site_of == s], start_us, periods, max(1, operators.get(s, 1)))
                for s in all_sites}
    n_periods = sum(int(f["periods"]) for f in per_site.values())
    top_names, top_counts = np.unique(alarms, return_counts=True) if alarms.size else (np.array([]), np.array([]))
    top_order = sorted(zip(top_names.tolist(), top_counts.tolist(), strict=True), key=lambda x: (-x[1], x[0]))[:10]
    total = int(ts.size)
    return Performance(
        start_us=start_us, end_us=end_us, annunciations=total, periods=periods,
        avg_per_10min=float(np.mean([f["avg_per_10min"] for f in per_site.values()])) if per_site else 0.0,
        peak_per_10min=max((int(f["peak_per_10min"]) for f in per_site.values()), default=0),
        flood_share=(sum(int(f["flood_periods"]) for f in per_site.values()) / n_periods) if n_periods else 0.0,
        per_site=per_site,
        top=[{"alarm": a, "count": int(c), "share": c / total} for a, c in top_order],
        chattering=chattering(alarms.astype(str), ts),
        stale=list(stale),
    )
