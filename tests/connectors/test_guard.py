"""``Connector.emit`` checks every batch: timestamps ahead of the clock, values that are not numbers.

The rules are checked on batches built like the connectors build them, through a real (never started) Modbus
connector's ``emit`` (the real servers' side is in tests/test_values_trust.py); the clock skew comes from the
plant model.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from plantlink.connectors.modbus import ModbusConnector
from plantlink.errors import ConfigError
from plantlink.model import parse_plant
from plantlink.samples import Quality, now_us, numeric_batch, text_batch
from tests.connectors.modbus_cases import points_of
from tests.connectors.test_modbus_connector import PLANT
from tests.connectors.test_opcua_support import Collector

SECOND = 1_000_000
SPEED, TEMP, RUN = 1, 2, 3  # the tag ids of test_modbus_connector's plant


def connector(device_extra: str = "") -> tuple[ModbusConnector, Collector]:
    """A Modbus connector that is never started: only the base class's ``emit`` is under test."""
    text = PLANT.format(host="127.0.0.1", port=1502, poll="1s").replace("#EXTRA\n", "")
    text = text.replace("    reconnect_max: 200ms\n", f"    reconnect_max: 200ms\n{device_extra}")
    plant = parse_plant(text)
    sink = Collector()
    return ModbusConnector("plc", plant.devices["plc"].config, points_of(plant, "plc"), sink), sink


def rows(batch: pa.RecordBatch) -> list[tuple[int, int, Any, int]]:
    return list(zip(batch.column("tag_id").to_pylist(), batch.column("ts").cast(pa.int64()).to_pylist(),
                    batch.column("value").to_pylist(), batch.column("quality").to_pylist(), strict=True))


def test_a_plausible_batch_passes_untouched() -> None:
    conn, sink = connector()
    batch = numeric_batch([SPEED, TEMP, RUN], now_us() + 4 * SECOND, [1.0, -2.5, 0.0], Quality.GOOD)
    conn.emit(batch)
    assert sink.batches[0] is batch  # nothing copied on the common path
    assert conn.health.future_timestamps == 0 and conn.health.bad_values == 0 and conn.health.samples == 3


def test_timestamps_ahead_of_the_clock_are_replaced_by_arrival_and_flagged(caplog: pytest.LogCaptureFixture) -> None:
    conn, sink = connector()
    now = now_us()
    year_2099 = 4_070_908_800 * SECOND
    stamps = [now - 60 * SECOND, now + 3 * SECOND, now + 10 * SECOND, year_2099, year_2099]
    quality = [Quality.GOOD, Quality.GOOD, Quality.GOOD, Quality.UNCERTAIN, Quality.BAD]
    caplog.set_level(logging.WARNING, logger="plantlink.connectors")
    before = now_us()
    conn.emit(numeric_batch([SPEED, SPEED, TEMP, TEMP, RUN], stamps, [1.0, 2.0, 3.0, 4.0, float("nan")], quality))
    after = now_us()
    got = rows(sink.batches[0])
    assert got[:2] == [(SPEED, stamps[0], 1.0, Quality.GOOD), (SPEED, stamps[1], 2.0, Quality.GOOD)]  # within 5 s
    for (_tid, ts, _value, q), want in zip(got[2:], (Quality.UNCERTAIN, Quality.UNCERTAIN, Quality.BAD), strict=True):
        assert before <= ts <= after  # the arrival time
        assert q == want  # lowered to uncertain, never raised
    assert [r[2] for r in got[2:4]] == [3.0, 4.0]  # the values are kept
    assert conn.health.future_timestamps == 3
    assert conn.health.last_future_timestamp == year_2099 / 1e6
    assert conn.health.to_dict()["future_timestamps"] == 3
    logged = " ".join(r.getMessage() for r in caplog.records)
    assert "s/a/l/m/run" in logged and "2099-01-01T00:00:00" in logged and "ahead" in logged


def test_clock_skew_comes_from_the_plant_model() -> None:
    conn, sink = connector("    clock_skew: 30s\n")
    now = now_us()
    conn.emit(numeric_batch([SPEED, TEMP], [now + 20 * SECOND, now + 40 * SECOND], [1.0, 2.0], Quality.GOOD))
    got = rows(sink.batches[0])
    assert got[0] == (SPEED, now + 20 * SECOND, 1.0, Quality.GOOD)
    assert got[1][3] == Quality.UNCERTAIN and got[1][1] < now + 40 * SECOND
    for bad in ("-1s", ".inf", "soon"):
        with pytest.raises(ConfigError) as info:
            connector(f"    clock_skew: {bad}\n")
        assert "clock_skew" in str(info.value)


def test_values_that_are_not_numbers_are_bad_and_counted(caplog: pytest.LogCaptureFixture) -> None:
    conn, sink = connector()
    caplog.set_level(logging.WARNING, logger="plantlink.connectors")
    t = now_us()
    values = [float("nan"), float("inf"), float("-inf"), 0.0, 5.0]
    missing = [False, False, False, True, False]
    batch = numeric_batch([SPEED, TEMP, RUN, SPEED, TEMP], t, values, [Quality.GOOD] * 4 + [Quality.UNCERTAIN],
                          missing=np.array(missing))
    conn.emit(batch)
    got = rows(sink.batches[0])
    assert [r[3] for r in got] == [Quality.BAD] * 4 + [Quality.UNCERTAIN]
    assert got[1][2] == float("inf") and got[2][2] == float("-inf") and got[3][2] is None  # kept as sent
    assert conn.health.bad_values == 4
    # already bad (a lost connection): not counted again
    conn.emit(numeric_batch([SPEED, TEMP], t, [float("nan"), float("nan")], Quality.BAD))
    assert conn.health.bad_values == 4
    # a text tag without a text is bad too
    conn.emit(text_batch([SPEED, TEMP], t, [None, "ok"], Quality.GOOD))
    assert sink.batches[-1].column("quality").to_pylist() == [Quality.BAD, Quality.GOOD]
    assert conn.health.bad_values == 5
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 1 and "s/a/l/m/speed" in messages[0] and "nan" in messages[0]  # once a minute at most


def test_a_large_batch_is_checked_row_by_row_correctly() -> None:
    conn, sink = connector()
    n = 100_000
    values = np.arange(n, dtype=np.float64)
    values[::1000] = np.inf
    ts = np.full(n, now_us())
    ts[::777] += 3600 * SECOND
    conn.emit(numeric_batch(np.arange(n) % 3 + 1, ts, values, Quality.GOOD))
    q = sink.batches[0].column("quality").to_numpy()
    want = np.full(n, Quality.GOOD, dtype=np.uint8)
    want[::777] = Quality.UNCERTAIN
    want[::1000] = Quality.BAD
    assert np.array_equal(q, want)
    assert conn.health.bad_values == n // 1000 and conn.health.future_timestamps == len(range(0, n, 777))
