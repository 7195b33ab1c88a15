"""Tag-level processing: scaling, clamping, type coercion and deadbands, checked against hand arithmetic."""

from __future__ import annotations

import numpy as np

from plantlink.connectors.base import Point
from plantlink.connectors.processing import PointProcessor
from plantlink.model.schema import Scaling, SourceRef, Tag
from plantlink.samples import Quality


def point(i: int, **tag: object) -> Point:
    t = Tag(name=f"t{i}", source=SourceRef(device="d"), **tag)  # type: ignore[arg-type]
    return Point(tag_id=100 + i, path=f"s/a/l/m/t{i}", tag=t, source=t.source)


def test_linear_scaling_and_clamp() -> None:
    pts = [
        point(0, scaling=Scaling(raw_low=4, raw_high=20, eng_low=0, eng_high=100)),  # 4-20 mA
        point(1, scaling=Scaling(raw_low=0, raw_high=27648, eng_low=-50, eng_high=150, clamp=True)),
        point(2),
    ]
    proc = PointProcessor(pts)
    batch = proc.process(np.array([0, 1, 2]), np.array([12.0, 30000.0, 7.5]), Quality.GOOD, 1_000_000)
    values = batch.column("value").to_pylist()
    assert values[0] == (12 - 4) / 16 * 100  # 50.0
    assert values[1] == 150.0  # clamped at eng_high
    assert values[2] == 7.5
    assert batch.column("tag_id").to_pylist() == [100, 101, 102]
    assert batch.column("ts").cast("int64").to_pylist() == [1_000_000] * 3


def test_types_int_and_bool() -> None:
    proc = PointProcessor([point(0, type="int"), point(1, type="bool")])
    batch = proc.process(np.array([0, 1]), np.array([2.6, 5.0]), Quality.GOOD, 0)
    assert batch.column("value").to_pylist() == [3.0, 1.0]


def test_deadband_suppresses_small_changes_but_passes_quality_changes() -> None:
    proc = PointProcessor([point(0, deadband=0.5), point(1)])
    idx = np.array([0, 1])
    first = proc.process(idx, np.array([10.0, 1.0]), Quality.GOOD, 1)
    assert first.num_rows == 2  # first sample always passes
    small = proc.process(idx, np.array([10.4, 1.0]), Quality.GOOD, 2)
    assert small.column("tag_id").to_pylist() == [101]  # no deadband on point 1: every sample passes
    big = proc.process(idx, np.array([10.6, 1.0]), Quality.GOOD, 3)
    assert big.column("tag_id").to_pylist() == [100, 101]
    # the deadband is measured from the last value reported (10.6), not the last value read
    proc.process(idx, np.array([10.9, 1.0]), Quality.GOOD, 4)
    bad = proc.process(idx, np.array([10.9, 1.0]), Quality.BAD, 5)
    assert bad.column("tag_id").to_pylist() == [100, 101]
    assert bad.column("value").to_pylist() == [None, None]  # a bad sample has no value
    assert bad.column("quality").to_pylist() == [0, 0]


def test_values_that_are_not_numbers_stay_what_the_device_sent() -> None:
    """Clamping, the int and bool types and scaling would turn NaN and the infinities into plausible numbers
    (NaN != 0 is a true bool; +Inf clamps to the range's top): they pass through unchanged, for the
    connector's check to mark them bad. A value the device did not send at all is null."""
    pts = [
        point(0, scaling=Scaling(raw_low=0, raw_high=100, eng_low=0, eng_high=10, clamp=True)),
        point(1, type="bool"),
        point(2, type="int"),
        point(3, scaling=Scaling(raw_low=0, raw_high=100, eng_high=0, eng_low=10)),  # a falling scale
        point(4),
    ]
    proc = PointProcessor(pts)
    raw = np.array([np.inf, np.nan, -np.inf, np.inf, 0.0])
    missing = np.array([False, False, False, False, True])
    batch = proc.process(np.arange(5), raw, Quality.GOOD, 0, missing)
    values = batch.column("value").to_pylist()
    assert values[0] == np.inf and np.isnan(values[1]) and values[2] == -np.inf and values[3] == np.inf
    assert values[4] is None
    assert batch.column("quality").to_pylist() == [Quality.GOOD] * 5  # the connector's emit judges them
