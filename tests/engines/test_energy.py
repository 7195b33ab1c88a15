"""The energy engine against cases worked out by hand, and against a second, dense implementation on random
data (a 1 s grid: power held from each sample, state looked up per second, summed)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from plantlink.engines.energy import (
    EnergyInputs,
    combine,
    compute,
    from_meter,
    from_power,
    split_by_state,
)

S = 1_000_000  # us per second
H = 3600 * S
NAN = float("nan")


def test_ten_kw_running_two_kw_idle_by_hand() -> None:
    """10 kW for 1 h running, then 2 kW for 0.5 h idle: 10 + 1 kWh; 100 good parts: 0.11 kWh/part in all,
    0.1 of it while producing; at 0.20 a kWh the idle energy costs 0.20."""
    prof = from_power([0, H], [10.0, 2.0], until_us=H + H // 2)
    states = [(0, H, "running"), (H, H + H // 2, "idle")]
    got = split_by_state(prof, states, 0, H + H // 2, good=100)
    assert got.by_state == pytest.approx({"running": 10.0, "idle": 1.0})
    r = compute(got, 0.20)
    assert (r.total_kwh, r.running_kwh, r.idle_kwh) == pytest.approx((11.0, 10.0, 1.0))
    assert r.kwh_per_good_part == pytest.approx(0.11) and r.running_kwh_per_good_part == pytest.approx(0.1)
    assert r.idle_share == pytest.approx(1 / 11)
    assert r.cost == pytest.approx(2.2) and r.idle_cost == pytest.approx(0.2)
    assert got.unmeasured_s == 0 and got.measured_s == 5400 and r.notes == []


def test_the_same_case_from_a_meter() -> None:
    """A kWh meter reading 500, 505, 510, 511 at 0, 0.5 h, 1 h, 1.5 h gives the same split."""
    prof = from_meter([0, H // 2, H, H + H // 2], [500.0, 505.0, 510.0, 511.0])
    got = split_by_state(prof, [(0, H, 1), (H, 2 * H, 0)], 0, H + H // 2, good=100)
    assert got.by_state == pytest.approx({"running": 10.0, "idle": 1.0})
    assert compute(got).kwh_per_good_part == pytest.approx(0.11) and compute(got).cost is None


def test_a_range_cutting_a_segment_takes_its_share() -> None:
    prof = from_meter([0, H], [0.0, 6.0])  # 6 kW on average
    got = split_by_state(prof, [(0, H, "running")], 20 * 60 * S, 30 * 60 * S)
    assert got.total_kwh == pytest.approx(1.0)


def test_meter_rollover_and_reset() -> None:
    """Wrapping at 1000: 990 -> 998 -> 3 -> 10 is 8 + 5 + 7 = 20 kWh. 100 -> 200 -> 5 is a reset (200 is in the
    lower half): 100 + 5. Without a wrap every decrease is a reset."""
    ts = [0, H, 2 * H, 3 * H]
    wrapped = from_meter(ts, [990.0, 998.0, 3.0, 10.0], wrap=1000)
    assert wrapped.kwh_in([0], [3 * H]) == pytest.approx(20.0)
    assert list(wrapped.kw) == pytest.approx([8.0, 5.0, 7.0])
    reset = from_meter(ts[:3], [100.0, 200.0, 5.0], wrap=1000)
    assert reset.kwh_in([0], [2 * H]) == pytest.approx(105.0)
    no_wrap = from_meter(ts, [990.0, 998.0, 3.0, 10.0])
    assert no_wrap.kwh_in([0], [3 * H]) == pytest.approx(8 + 3 + 7)


def test_power_gaps_are_not_integrated() -> None:
    """6 kW at 0, a bad sample at 1 h, 6 kW at 1.5 h, read up to 2 h. Without max_gap: 0-1 h and 1.5-2 h,
    9 kWh, 1800 s not measured. With max_gap 10 min: a value holds 10 min at most, 2 kWh, 6000 s not measured."""
    ts, kw = [0, H, H + H // 2], [6.0, NAN, 6.0]
    free = split_by_state(from_power(ts, kw, 2 * H), [(0, 2 * H, "running")], 0, 2 * H)
    assert free.total_kwh == pytest.approx(9.0) and free.unmeasured_s == pytest.approx(1800)
    capped = split_by_state(from_power(ts, kw, 2 * H, max_gap_us=600 * S), [(0, 2 * H, "running")], 0, 2 * H)
    assert capped.total_kwh == pytest.approx(2.0) and capped.unmeasured_s == pytest.approx(6000)
    assert any("not integrated" in n for n in compute(capped).notes)


def test_power_holds_no_value_across_a_cut() -> None:
    """plantlink stopped at 0.5 h and came back at 1 h: 6 kW from 0 to the cut, then 1 h to 2 h."""
    prof = from_power([0, H], [6.0, 6.0], 2 * H, cuts=[H // 2])
    assert prof.kwh_in([0], [2 * H]) == pytest.approx(9.0)


def test_meter_gap_is_reported_apart() -> None:
    """100, 106, bad, 118, 124 at 0..4 h: 6 + 6 kWh measured, the 12 across the bad sample reported apart."""
    prof = from_meter([0, H, 2 * H, 3 * H, 4 * H], [100.0, 106.0, NAN, 118.0, 124.0])
    got = split_by_state(prof, [(0, 4 * H, "running")], 0, 4 * H)
    assert got.total_kwh == pytest.approx(12.0) and got.gap_kwh == pytest.approx(12.0)
    assert got.unmeasured_s == pytest.approx(2 * 3600)
    timed = from_meter([0, H, 3 * H], [0.0, 5.0, 9.0], max_gap_us=90 * 60 * S)
    assert timed.kwh_in([0], [3 * H]) == pytest.approx(5.0) and timed.gap_kwh == pytest.approx(4.0)


def test_unknown_state_energy_is_in_the_total_only() -> None:
    prof = from_power([0], [4.0], 2 * H)
    got = split_by_state(prof, [(0, H, "running"), (H, H + H // 2, None)], 0, 2 * H, good=0)
    r = compute(got, 1.0)
    assert got.unknown_state_kwh == pytest.approx(4.0) and r.total_kwh == pytest.approx(8.0)
    assert r.idle_kwh == 0 and r.kwh_per_good_part is None  # no good parts: no ratio


def test_combine_sums_kwh_and_parts() -> None:
    a = EnergyInputs({"running": 10.0, "idle": 1.0}, good=100)
    b = EnergyInputs({"running": 5.0, "faulted": 2.0}, good=None)
    c = combine([a, b])
    assert c.by_state == {"running": 15.0, "idle": 1.0, "faulted": 2.0} and c.good == 100
    assert compute(c).kwh_per_good_part == pytest.approx(18 / 100)
    assert combine([b]).good is None and compute(combine([])).total_kwh == 0


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="sorted"):
        from_power([H, 0], [1.0, 1.0], 2 * H)
    with pytest.raises(ValueError, match="unknown machine state 'runing'"):
        split_by_state(from_power([0], [1.0], H), [(0, H, "runing")], 0, H)
    with pytest.raises(ValueError, match="price_per_kwh"):
        compute(EnergyInputs(), -1.0)


# -- a second implementation on random data ----------------------------------------------------------------
def _dense(ts_s: np.ndarray, kw: np.ndarray, states: list[tuple[int, int, str]], start: int, end: int,
           max_gap_s: int | None) -> dict[str, float]:
    """Per-state kWh on a 1 s grid: the power at second t is the last sample at or before t (if finite and no
    older than max_gap), the state the interval holding t; each second adds kW / 3600."""
    out: dict[str, float] = {}
    for t in range(start, end):
        i = int(np.searchsorted(ts_s, t, side="right")) - 1
        if i < 0 or not np.isfinite(kw[i]) or (max_gap_s is not None and t - ts_s[i] >= max_gap_s):
            continue
        name = next((st for s, e, st in states if s <= t < e), "unknown")
        out[name] = out.get(name, 0.0) + kw[i] / 3600
    return out


@pytest.mark.parametrize("seed", range(6))
def test_random_power_matches_a_dense_sum(seed: int) -> None:
    rng = np.random.default_rng(seed)
    ts_s = np.sort(rng.choice(np.arange(0, 3000), size=60, replace=False))
    kw = rng.uniform(0, 50, ts_s.size)
    kw[rng.random(ts_s.size) < 0.1] = np.nan
    edges = np.sort(rng.choice(np.arange(1, 3200), size=12, replace=False))
    names = ["running", "idle", "faulted", "unknown", "planned_stop"]
    states = [(int(a), int(b), names[k % len(names)]) for k, (a, b) in enumerate(itertools.pairwise(edges))]
    max_gap = None if seed % 2 else 90
    start, end = int(rng.integers(0, 500)), 3200
    prof = from_power(ts_s * S, kw, end * S, max_gap_us=None if max_gap is None else max_gap * S)
    got = split_by_state(prof, [(a * S, b * S, st) for a, b, st in states], start * S, end * S)
    want = _dense(ts_s, kw, states, start, end, max_gap)
    assert got.by_state == pytest.approx({k: v for k, v in want.items() if k != "unknown"}, rel=1e-9, abs=1e-9)
    assert got.unknown_state_kwh == pytest.approx(want.get("unknown", 0.0), rel=1e-9, abs=1e-9)


@pytest.mark.parametrize("seed", range(4))
def test_random_meter_matches_a_midpoint_sum_of_its_power(seed: int) -> None:
    """A meter (wrapping at 1000) read at random whole seconds: its kWh over random windows equal the midpoint
    sum, second by second, of the average power between readings (exact: the power steps on whole seconds)."""
    rng = np.random.default_rng(100 + seed)
    ts_s = np.sort(rng.choice(np.arange(0, 4000), size=40, replace=False)).astype(np.int64)
    reading = 900 + np.concatenate(([0.0], np.cumsum(rng.uniform(0, 20, ts_s.size - 1))))
    prof = from_meter(ts_s * S, reading % 1000, wrap=1000)
    avg = np.diff(reading) * 3600 / np.diff(ts_s)  # kW between readings
    for _ in range(5):
        a, b = sorted(int(x) for x in rng.integers(int(ts_s[0]), int(ts_s[-1]), 2))
        mid = np.arange(a, b) + 0.5
        p = avg[np.searchsorted(ts_s, mid, side="right") - 1]
        assert prof.kwh_in([a * S], [b * S]) == pytest.approx(float(p.sum()) / 3600, rel=1e-9, abs=1e-9)
