"""ChangeDecoder on real asyncua notification objects: quality, timestamps, types, odd values."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from asyncua import ua

from plantlink.connectors.opcua.delivery import ChangeDecoder, quality_of
from plantlink.connectors.processing import PointProcessor
from plantlink.samples import SAMPLE_SCHEMA, Quality
from tests.connectors.test_opcua_support import plant_text, points_of

TAGS = """
- {name: f, source: {device: ua, node: "ns=2;i=1"}}
- {name: i, type: int, source: {device: ua, node: "ns=2;i=2"}}
- {name: b, type: bool, source: {device: ua, node: "ns=2;i=3"}}
- {name: s, type: string, source: {device: ua, node: "ns=2;i=4"}}
- name: scaled
  scaling: {raw_low: 4, raw_high: 20, eng_low: 0, eng_high: 100}
  source: {device: ua, node: "ns=2;i=5"}
"""
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def us(dt: datetime) -> int:
    return (dt - EPOCH) // timedelta(microseconds=1)


def item(handle: int, value: Any, vtype: ua.VariantType, *, status: int = ua.StatusCodes.Good,
         source: datetime | None = None, server: datetime | None = None) -> ua.MonitoredItemNotification:
    dv = ua.DataValue(ua.Variant(value, vtype), StatusCode=ua.StatusCode(status), SourceTimestamp=source,
                      ServerTimestamp=server)
    return ua.MonitoredItemNotification(ClientHandle=handle, Value=dv)


@pytest.fixture
def decoder() -> ChangeDecoder:
    _, points = points_of(plant_text(4840, TAGS))
    return ChangeDecoder(points, PointProcessor(points), "ua")


def rows(batches: list[Any]) -> dict[int, tuple[int, Any, int]]:
    out = {}
    for b in batches:
        for r in b.to_pylist():
            out[r["tag_id"]] = (us(r["ts"]), r["value"] if r["text"] is None else r["text"], r["quality"])
    return out


def test_quality_mapping_by_severity() -> None:
    codes = np.array([ua.StatusCodes.Good, ua.StatusCodes.GoodClamped, ua.StatusCodes.UncertainLastUsableValue,
                      ua.StatusCodes.BadNodeIdUnknown, ua.StatusCodes.BadSensorFailure, 0xC0000000], dtype=np.uint32)
    assert quality_of(codes).tolist() == [192, 192, 64, 0, 0, 0]


def test_one_publish_becomes_one_batch_of_numbers_and_text_alike(decoder: ChangeDecoder) -> None:
    t1 = datetime(2024, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    t2 = t1 + timedelta(microseconds=1)
    items = [
        item(1, 1.25, ua.VariantType.Double, source=t1, server=t2),
        item(2, -7, ua.VariantType.Int32, server=t2),  # no source timestamp: the server's
        item(3, False, ua.VariantType.Boolean, source=t1),
        item(4, "hello", ua.VariantType.String, source=t1),
        item(5, 8.0, ua.VariantType.Float, source=t1, status=ua.StatusCodes.UncertainSensorNotAccurate),
    ]
    batches = decoder.decode(items)
    assert len(batches) == 1 and batches[0].schema.equals(SAMPLE_SCHEMA)
    got = rows(batches)
    assert got[0] == (us(t1), 1.25, Quality.GOOD)
    assert got[1] == (us(t2), -7.0, Quality.GOOD)
    assert got[2] == (us(t1), 0.0, Quality.GOOD)
    assert got[3] == (us(t1), "hello", Quality.GOOD)
    assert got[4] == (us(t1), (8.0 - 4) * 100 / 16, Quality.UNCERTAIN)


def test_missing_timestamps_bad_values_and_strangers(decoder: ChangeDecoder) -> None:
    before = time.time_ns() // 1000
    items = [
        item(1, None, ua.VariantType.Null, status=ua.StatusCodes.BadCommunicationError),
        item(2, "not a number", ua.VariantType.String),  # text on an int tag
        item(3, [1, 2], ua.VariantType.Int32),  # an array on a bool tag
        item(4, 12, ua.VariantType.Int32),  # a number on a string tag becomes its text
        item(99, 1.0, ua.VariantType.Double),  # unknown client handle: dropped
    ]
    got = rows(decoder.decode(items))
    after = time.time_ns() // 1000
    assert set(got) == {0, 1, 2, 3}
    for tag in (0, 1, 2, 3):
        assert before <= got[tag][0] <= after  # no timestamp at all: now
    assert got[0][2] == Quality.BAD and got[0][1] is None  # no value
    assert got[1][2] == Quality.BAD and got[1][1] is None
    assert got[2][2] == Quality.BAD and got[2][1] is None
    assert got[3][1:] == ("12", Quality.GOOD)


def test_bad_marks_numeric_and_text_points(decoder: ChangeDecoder) -> None:
    batches = decoder.bad([0, 3, 4], ts_us=1_700_000_000_000_000)
    got = rows(batches)
    assert sorted(got) == [0, 3, 4]
    assert all(r[0] == 1_700_000_000_000_000 and r[2] == Quality.BAD for r in got.values())
    assert got[3][1] is None and got[0][1] is None


def test_monitored_item_requests_scale_the_deadband_to_raw_units() -> None:
    from plantlink.connectors.opcua import OpcUaConnector

    tags = """
- name: p
  deadband: 0.5
  scaling: {raw_low: 0, raw_high: 1000, eng_low: 0, eng_high: 10}
  source: {device: ua, node: "ns=2;i=1", sampling_interval: 25ms}
- {name: b, type: bool, deadband: 1, source: {device: ua, node: "ns=2;i=2"}}
"""
    config, points = points_of(plant_text(4840, tags))
    conn = OpcUaConnector("ua", config, points, lambda b: None)
    p, b = conn._request(0), conn._request(1)
    assert p.RequestedParameters.ClientHandle == 1 and b.RequestedParameters.ClientHandle == 2
    assert p.RequestedParameters.SamplingInterval == 25.0
    assert p.RequestedParameters.QueueSize == 2  # 50 ms publishing / 25 ms sampling
    assert p.RequestedParameters.Filter.DeadbandValue == pytest.approx(50.0)  # 0.5 eng / (10 eng per 1000 raw)
    assert p.RequestedParameters.Filter.DeadbandType == ua.DeadbandType.Absolute
    assert not b.RequestedParameters.Filter  # no server deadband on a bool
    assert b.ItemToMonitor.NodeId == ua.NodeId(2, 2)
