"""OEE per ISO 22400-2, with the worked example of docs/oee.md reproduced from states, calendar and counters."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from plantlink.engines.calendar import PlannedTime
from plantlink.engines.oee import Gaps, OeeInputs, combine, compute, inputs_from_states
from plantlink.model.production import STATES, Calendar

DOC = Path(__file__).resolve().parents[2] / "docs" / "oee.md"
NAN = float("nan")


def local(h: int, mi: int = 0) -> int:
    """Tuesday 2024-03-12 in Toronto (EDT, UTC-4): local h:mi is (h+4):mi UTC."""
    return int(datetime(2024, 3, 12, h + 4, mi, tzinfo=UTC).timestamp()) * 10**6


# ---- the worked example of docs/oee.md ---------------------------------------------------------------

EXAMPLE_CALENDAR = Calendar.model_validate(
    {
        "shifts": [
            {
                "name": "day",
                "start": "06:00",
                "end": "14:00",
                "breaks": [{"start": "09:00", "end": "09:15"}, {"start": "11:30", "end": "12:00"}],
            }
        ]
    }
)
EXAMPLE_PLANNED = PlannedTime(EXAMPLE_CALENDAR, "America/Toronto")
EXAMPLE_STATES: list[tuple[int, int, str | int | None]] = [
    (local(5), local(6), "planned_stop"),
    (local(6), local(9), "running"),
    (local(9), local(9, 15), "planned_stop"),
    (local(9, 15), local(10, 5), "running"),
    (local(10, 5), local(10, 47), "faulted"),
    (local(10, 47), local(11, 30), "running"),
    (local(11, 30), local(12), "planned_stop"),
    (local(12), local(14), "running"),
    (local(14), local(15), "planned_stop"),
]
# 16-bit produced counter: rolls over between 12:30 and 13:58
EXAMPLE_PRODUCED = (
    np.array([local(5, 50), local(6), local(8), local(9), local(9, 15), local(10, 5), local(10, 47),
              local(11, 30), local(12), local(12, 30), local(13, 58), local(14, 5)], dtype=np.int64),
    np.array([64000, 64000, 64550, 64820, 64820, 65050, 65050, 65300, 65300, 65300, 264, 264]),
)  # fmt: skip
EXAMPLE_REJECT = (
    np.array([local(5, 50), local(10, 5), local(13, 58)], dtype=np.int64),
    np.array([1000, 1020, 1045], dtype=np.float64),
)


def example_inputs() -> OeeInputs:
    return inputs_from_states(
        EXAMPLE_STATES,
        EXAMPLE_PLANNED,
        local(6),
        local(14),
        pri_s=12.0,
        produced=EXAMPLE_PRODUCED,
        reject=EXAMPLE_REJECT,
        counter_max=65535,
    )


def test_worked_example_inputs() -> None:
    inputs = example_inputs()
    # PBT: 8 h - 15 min - 30 min = 7 h 15 min = 26100 s
    assert inputs.pbt_s == 26100
    # APT: running 06:00-09:00 (180 min), 09:15-10:05 (50), 10:47-11:30 (43), 12:00-14:00 (120) = 393 min
    assert inputs.apt_s == 393 * 60 == 23580
    # PQ: 550 + 270 + 0 + 230 + 0 + 250 + 0 + 0 + (264 + 65536 - 65300 = 500, a rollover) = 1800
    assert inputs.pq == 1800
    # SQ: reject 1000 -> 1020 (10:05, from the sample before the range) -> 1045 = 45; GQ = 1800 - 45
    assert (inputs.sq, inputs.gq) == (45, 1755)


def test_worked_example_kpis_match_the_doc() -> None:
    result = compute(example_inputs())
    assert result.availability == pytest.approx(23580 / 26100, rel=1e-12)
    assert result.effectiveness == pytest.approx(12 * 1800 / 23580, rel=1e-12)
    assert result.quality_rate == pytest.approx(1755 / 1800, rel=1e-12)
    assert result.oee == pytest.approx(12 * 1755 / 26100, rel=1e-12)  # A x E x QR = PRI x GQ / PBT
    assert result.availability_loss_s == 2520  # the 42 min fault
    assert result.performance_loss_s == 23580 - 21600 == 1980
    assert result.quality_loss_s == 12 * 45 == 540
    assert result.fully_productive_s == 21060 == 26100 - 2520 - 1980 - 540
    assert result.warnings == []
    # the figures as the doc prints them
    doc = DOC.read_text(encoding="utf-8")
    assert result.availability is not None and result.effectiveness is not None
    assert result.quality_rate is not None and result.oee is not None
    for figure in (
        f"{result.availability:.2%}",
        f"{result.effectiveness:.2%}",
        f"{result.quality_rate:.2%}",
        f"{result.oee:.2%}",
        "26 100 s",
        "23 580 s",
        "1 800",
        "1 755",
    ):
        assert figure.replace("%", " %") in doc, f"docs/oee.md does not show {figure}"


def test_states_as_codes_give_the_same_apt() -> None:
    coded = [(s, e, STATES.index(state)) for s, e, state in EXAMPLE_STATES if isinstance(state, str)]
    inputs = inputs_from_states(
        coded, EXAMPLE_PLANNED, local(6), local(14), pri_s=12.0, produced=EXAMPLE_PRODUCED, reject=EXAMPLE_REJECT,
        counter_max=65535,
    )  # fmt: skip
    assert inputs.apt_s == 23580


def test_range_that_cuts_the_shift() -> None:
    # 10:00-11:00: no break, PBT 3600 s; running 10:00-10:05 and 10:47-11:00 = 18 min
    # PQ: 10:05 (+230) and 10:47 (+0); reject at 10:05 counts 20 measured from 05:50
    inputs = inputs_from_states(
        EXAMPLE_STATES, EXAMPLE_PLANNED, local(10), local(11), pri_s=12.0, produced=EXAMPLE_PRODUCED,
        reject=EXAMPLE_REJECT, counter_max=65535,
    )  # fmt: skip
    assert (inputs.pbt_s, inputs.apt_s, inputs.pq, inputs.sq, inputs.gq) == (3600, 1080, 230, 20, 210)


def test_running_outside_planned_time_is_not_apt() -> None:
    # running through the 09:00-09:15 break and after the shift until 15:00: neither counts
    states: list[tuple[int, int, str | int | None]] = [(local(8), local(15), "running"), (local(7), local(8), None)]
    inputs = inputs_from_states(
        states, EXAMPLE_PLANNED, local(6), local(14), pri_s=12.0, produced=EXAMPLE_PRODUCED, reject=EXAMPLE_REJECT,
        counter_max=65535,
    )  # fmt: skip
    # 08:00-09:00 (60) + 09:15-11:30 (135) + 12:00-14:00 (120) = 315 min
    assert inputs.apt_s == 315 * 60


def test_good_counter_and_errors() -> None:
    good = (EXAMPLE_REJECT[0], np.array([0, 1000, 1755], dtype=np.float64))
    inputs = inputs_from_states(
        EXAMPLE_STATES, EXAMPLE_PLANNED, local(6), local(14), pri_s=12.0, produced=EXAMPLE_PRODUCED, good=good,
        counter_max=65535,
    )  # fmt: skip
    assert (inputs.gq, inputs.sq) == (1755, 45)  # SQ = PQ - GQ
    with pytest.raises(ValueError, match="unknown machine state 'runing'"):
        inputs_from_states([(local(6), local(7), "runing")], EXAMPLE_PLANNED, local(6), local(14), pri_s=12.0,
                           produced=EXAMPLE_PRODUCED, good=good)  # fmt: skip
    with pytest.raises(ValueError, match="good or a reject counter"):
        inputs_from_states(EXAMPLE_STATES, EXAMPLE_PLANNED, local(6), local(14), pri_s=12.0, produced=EXAMPLE_PRODUCED)


# ---- compute and combine -------------------------------------------------------------------------------


def test_zero_denominators_give_none() -> None:
    nothing = compute(OeeInputs(pbt_s=0, apt_s=0, pri_s=10, pq=0, gq=0, sq=0))
    assert (nothing.availability, nothing.effectiveness, nothing.quality_rate, nothing.oee) == (None, None, None, None)
    assert (nothing.availability_loss_s, nothing.performance_loss_s, nothing.quality_loss_s) == (0, 0, 0)
    # planned but never ran: A = 0, E and QR undefined, so OEE is None
    idle = compute(OeeInputs(pbt_s=3600, apt_s=0, pri_s=10, pq=0, gq=0, sq=0))
    assert (idle.availability, idle.effectiveness, idle.oee, idle.availability_loss_s) == (0.0, None, None, 3600)
    # ran but produced nothing: E = 0, QR undefined
    empty = compute(OeeInputs(pbt_s=3600, apt_s=1800, pri_s=10, pq=0, gq=0, sq=0))
    assert (empty.availability, empty.effectiveness, empty.quality_rate) == (0.5, 0.0, None)


def test_effectiveness_above_one_is_flagged_not_clamped() -> None:
    # PRI 20 s but 100 parts in 1800 s: E = 2000 / 1800
    result = compute(OeeInputs(pbt_s=1800, apt_s=1800, pri_s=20, pq=100, gq=100, sq=0))
    assert result.effectiveness == pytest.approx(2000 / 1800)
    assert result.performance_loss_s == -200
    assert len(result.warnings) == 1 and "effectiveness 1.111 exceeds 1" in result.warnings[0]
    assert result.data_problem
    assert not compute(OeeInputs(pbt_s=1800, apt_s=1800, pri_s=18, pq=100, gq=100, sq=0)).data_problem  # E = 1
    # availability and quality rate above 1 are data problems too
    assert compute(OeeInputs(pbt_s=100, apt_s=200, pri_s=1, pq=100, gq=100, sq=0)).data_problem
    assert compute(OeeInputs(pbt_s=100, apt_s=100, pri_s=1, pq=10, gq=20, sq=0)).data_problem
    assert not compute(OeeInputs(pbt_s=0, apt_s=0, pri_s=1, pq=0, gq=0, sq=0)).data_problem


def test_parts_counted_across_a_restart_are_reported_not_in_oee() -> None:
    # plantlink ran 06:00-08:00 (a clean stop at 08:00) and again from 10:47; the press kept counting
    # meanwhile: 64550 -> 65050 while nobody watched. No run time was counted for those parts.
    states: list[tuple[int, int, str | int | None]] = [
        (local(6), local(8), "running"), (local(10, 47), local(11, 30), "running")]
    ts = np.array([local(6), local(8), local(10, 47), local(11, 30)], dtype=np.int64)
    produced = (ts, np.array([64000, 64550, 65050, 65300]))
    reject = (ts, np.array([1000, 1010, 1020, 1025]))
    inputs = inputs_from_states(states, EXAMPLE_PLANNED, local(6), local(14), pri_s=12.0, produced=produced,
                                reject=reject, counter_max=65535, gaps=Gaps(cuts=[local(8)]))
    assert (inputs.pq, inputs.sq, inputs.gq) == (550 + 250, 10 + 5, 800 - 15)
    assert (inputs.gap_pq, inputs.gap_sq, inputs.gap_gq, inputs.gap_resets) == (500, 10, 490, 0)
    result = compute(inputs)
    assert result.effectiveness == pytest.approx(12 * 800 / (163 * 60)) and not result.data_problem
    assert result.warnings == [] and "500 unit(s) were counted across gaps" in result.notes[0]
    # without the windows the 500 parts would land in 10:47's period, which ran 43 min: E above 1 there
    blind = inputs_from_states(states, EXAMPLE_PLANNED, local(10), local(12), pri_s=12.0, produced=produced,
                               reject=reject, counter_max=65535)
    assert blind.pq == 750 and compute(blind).data_problem
    # the gap quantities add up when combined
    both = combine([inputs, inputs])
    assert (both.gap_pq, both.gap_gq, both.gap_sq, both.pq) == (1000, 980, 20, 1600)


def test_inconsistent_quantities_are_flagged() -> None:
    result = compute(OeeInputs(pbt_s=100, apt_s=100, pri_s=1, pq=100, gq=90, sq=5))
    assert result.warnings == ["good 90 + scrap 5 differ from produced 100"]
    with pytest.raises(ValueError, match=r"OeeInputs\.apt_s must be a finite number >= 0"):
        OeeInputs(pbt_s=100, apt_s=-1, pri_s=1, pq=0, gq=0, sq=0)
    with pytest.raises(ValueError, match=r"OeeInputs\.pq"):
        OeeInputs(pbt_s=100, apt_s=1, pri_s=1, pq=NAN, gq=0, sq=0)


def test_combine_sums_times_not_ratios() -> None:
    # A: 8 h planned, 4 h running, PRI 10 s, 1440 parts (40 scrap): A 0.5, E 1, QR 1400/1440
    # B: 1 h planned, 1 h running, PRI 2 s, 1800 parts (100 scrap): A 1,   E 1, QR 1700/1800
    a = OeeInputs(pbt_s=28800, apt_s=14400, pri_s=10, pq=1440, gq=1400, sq=40)
    b = OeeInputs(pbt_s=3600, apt_s=3600, pri_s=2, pq=1800, gq=1700, sq=100)
    ra, rb, total = compute(a), compute(b), compute(combine([a, b]))
    assert ra.oee is not None and rb.oee is not None and total.oee is not None
    # summed: PBT 32400, APT 18000, sum PRI x PQ = 14400 + 3600 = 18000, PQ 3240, GQ 3100
    assert total.availability == pytest.approx(18000 / 32400)
    assert total.effectiveness == pytest.approx(1.0)  # a mean PRI of 6 s would give 19440 / 18000
    assert total.quality_rate == pytest.approx(3100 / 3240)
    assert total.oee == pytest.approx(18000 / 32400 * 3100 / 3240)
    assert total.quality_loss_s == pytest.approx(10 * 40 + 2 * 100)  # 600, not 6 x 140 = 840
    assert total.fully_productive_s == pytest.approx(10 * 1400 + 2 * 1700)  # 17400
    # the naive mean of the OEEs: (0.5 x 0.97222 + 0.94444) / 2 = 0.71528, against 0.55556 x 0.95679 = 0.53155
    naive = (ra.oee + rb.oee) / 2
    assert naive == pytest.approx((0.5 * 1400 / 1440 + 1700 / 1800) / 2)
    assert naive == pytest.approx(0.71528, abs=1e-5) and total.oee == pytest.approx(0.53155, abs=1e-5)
    # combining is associative: a combined input combines again the same way
    again = compute(combine([combine([a]), combine([b])]))
    assert again.oee == pytest.approx(total.oee) and again.quality_loss_s == pytest.approx(600)


def test_combine_nothing() -> None:
    empty = compute(combine([]))
    assert (empty.availability, empty.oee) == (None, None)
    idle = combine([OeeInputs(pbt_s=10, apt_s=0, pri_s=4, pq=0, gq=0, sq=0), OeeInputs(10, 0, 8, 0, 0, 0)])
    assert idle.pri_s == 6  # nothing produced: the plain mean PRI
