"""Aggregates at intervals that are not whole minutes (read from the raw samples, ``rawagg``) give what numpy
gives on the raw samples, in every state of a day: appended (one sorted run per flush), compacted, compacted
then late samples appended after it (rows out of order again), and a day mixed with others in one range.
The samples have bad, uncertain, NaN and infinite values, a 6-hour gap (buckets with no sample), a range that
starts inside a bucket after samples of an earlier day (the value carried in for twa), tags asked out of id
order and a tag without samples."""

from __future__ import annotations

import numpy as np
import pytest

from plantlink.historian.base import TagMeta
from plantlink.historian.duckdb import DuckDBHistorian
from plantlink.historian.duckdb import aggregate as agg
from plantlink.samples import Quality, numeric_batch
from tests.historian.conftest import DAY, T0, S
from tests.historian.pyramid_reference import Samples, answers, assert_same
from tests.historian.test_duckdb_compaction import make_samples, write_in_pieces

H = 3600 * S
NOW = T0 + 4 * DAY
GAP = (T0 + DAY + 2 * H + 5 * S + 17, T0 + DAY + 11 * H - 13)  # across the gap, a value carried in from before
ALL = (T0 - 7 * S, T0 + 3 * DAY + 11 * S)  # every day, cut at both ends
#: 1,000 h + 7 s: one bucket per tag, the same for every tag (a fold must still tell the tags apart)
CASES = ((GAP, 10 * S), (GAP, 7 * S + 3), (GAP, 90 * S), (GAP, 1000 * H + 7 * S), (ALL, 90 * S))


@pytest.fixture
def samples(hist: DuckDBHistorian) -> dict[int, Samples]:
    rng = np.random.default_rng(33)
    s = make_samples(rng)
    ts, value, quality = s[1]
    strays = rng.choice(len(ts), 30, replace=False)
    value[strays[:10]], value[strays[10:20]], value[strays[20:]] = np.nan, np.inf, -np.inf
    quality[strays] = Quality.GOOD
    write_in_pieces(hist, s, rng)
    return s


def check(h: DuckDBHistorian, samples: dict[int, Samples], idle: int) -> None:
    for (start, end), interval in CASES:
        assert_same(answers(h, [2, idle, 1], start, end, interval), samples, start, end, interval)
        tags = h.aggregate([2, idle, 1], start, end, interval).column("tag_id").to_pylist()
        assert tags == sorted(tags, key=[2, 1].index)  # in the order asked, then by bucket


@pytest.mark.parametrize("split", [True, False], ids=["a group per tag", "tags in one read"])
def test_every_state_of_a_day_gives_what_numpy_gives(hist: DuckDBHistorian, samples: dict[int, Samples],
                                                     split: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(agg, "GROUP_TAG_US", 1 if split else 2**62)
    idle = hist.register_tags([TagMeta("line1/m1/idle", "")])["line1/m1/idle"]
    check(hist, samples, idle)  # appended: one sorted run per flush
    assert hist.build_rollups(NOW) > 0
    check(hist, samples, idle)  # compacted
    rng = np.random.default_rng(5)
    late_ts = np.sort(rng.integers(T0 + DAY, T0 + 2 * DAY, 500) // 1000 * 1000)
    late_ts = late_ts[~np.isin(late_ts, samples[1][0])]
    late_v = np.round(rng.normal(0, 30, len(late_ts)), 2)
    late_q = np.where(rng.random(len(late_ts)) < 0.2, Quality.BAD, Quality.GOOD).astype(np.uint8)
    hist.write(numeric_batch(np.full(len(late_ts), 1), late_ts, late_v, late_q))
    hist.flush()
    ts, value, quality = samples[1]
    samples[1] = (np.append(ts, late_ts), np.append(value, late_v), np.append(quality, late_q))
    check(hist, samples, idle)  # day 2 compacted, then late rows appended after its sorted rows


def test_a_range_without_samples(hist: DuckDBHistorian, samples: dict[int, Samples]) -> None:
    assert hist.aggregate([1, 2], T0 + 4 * DAY, T0 + 5 * DAY, 10 * S).num_rows == 0
    assert hist.aggregate([1], T0 + DAY + 4 * H, T0 + DAY + 5 * H, 10 * S).num_rows == 0  # inside the gap
