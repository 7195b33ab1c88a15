"""The one sample schema: both builders, mixed batches, and ``conform`` for the legacy four-column shapes."""

from __future__ import annotations

import pyarrow as pa
import pytest

from plantlink.samples import SAMPLE_SCHEMA, Quality, concat, conform, numeric_batch, text_batch, text_rows, values_of

T0 = 1_772_409_600_000_000


def legacy(value: pa.Array, ts_type: pa.DataType = pa.timestamp("us", "UTC")) -> pa.RecordBatch:
    n = len(value)
    return pa.RecordBatch.from_arrays(
        [pa.array(range(1, n + 1), pa.uint32()), pa.array([T0] * n, pa.int64()).cast(ts_type), value,
         pa.array([192] * n, pa.uint8())], names=["tag_id", "ts", "value", "quality"])


def test_numbers_and_text_share_one_schema_and_mix_in_one_batch() -> None:
    num = numeric_batch([1, 2], T0, [1.5, 2.5], Quality.GOOD)
    txt = text_batch([3, 4], T0, ["RUN", None], Quality.GOOD)
    assert num.schema.equals(SAMPLE_SCHEMA) and txt.schema.equals(SAMPLE_SCHEMA)
    assert text_rows(num) is None  # the common case answers without touching the rows
    mixed = concat([num, txt])
    assert text_rows(mixed).tolist() == [False, False, True, False]
    assert values_of(mixed) == [1.5, 2.5, "RUN", None]
    assert mixed.column("value").to_pylist() == [1.5, 2.5, None, None]


def test_conform_keeps_a_sample_batch_and_its_metadata() -> None:
    b = numeric_batch([1], T0, [1.0], Quality.GOOD).replace_schema_metadata({b"seq": b"7"})
    assert conform(b) is b


@pytest.mark.parametrize("ts_type", [pa.timestamp("us", "UTC"), pa.timestamp("us"), pa.timestamp("us", "Europe/Paris")])
def test_conform_turns_the_legacy_shapes_into_the_sample_schema(ts_type: pa.DataType) -> None:
    num = conform(legacy(pa.array([1.5, None]), ts_type).replace_schema_metadata({b"seq": b"3"}))
    assert num.schema.equals(SAMPLE_SCHEMA) and num.schema.metadata == {b"seq": b"3"}
    assert values_of(num) == [1.5, None] and num.column("ts").cast(pa.int64()).to_pylist() == [T0, T0]
    txt = conform(legacy(pa.array(["RUN", None]), ts_type))
    assert txt.schema.equals(SAMPLE_SCHEMA)
    assert txt.column("text").to_pylist() == ["RUN", None] and txt.column("value").null_count == 2


@pytest.mark.parametrize(("batch", "message"), [
    (legacy(pa.array([1], pa.int64())), "column value is int64, expected double"),
    (legacy(pa.array([1.0]), pa.timestamp("ms", "UTC")), "column ts is timestamp"),
    (legacy(pa.array([1.0])).drop_columns(["quality"]), r"missing columns \['quality'\]"),
    (numeric_batch([1], T0, [1.0], 192).set_column(4, "text", pa.array([1], pa.int32())), "column text is int32"),
])
def test_conform_refuses_what_is_no_sample_batch(batch: pa.RecordBatch, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        conform(batch)
