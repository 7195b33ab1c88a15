"""The MQTT connector emits the samples of messages handled back to back (while more were queued) as one batch,
in their order, when released; no network here (the release points are in the receive loop)."""

from __future__ import annotations

import pyarrow as pa

from plantlink.connectors.mqtt.client import MqttConnector
from plantlink.connectors.mqtt.sparkplug.host import Result
from plantlink.samples import Quality, numeric_batch
from tests.connectors.test_mqtt_connector import PLAIN_TAGS, connector, plant_text

T_US = 1_700_000_000_000_000


def test_held_results_are_emitted_as_one_batch_in_order() -> None:
    got: list[pa.RecordBatch] = []
    conn = connector(plant_text(1, PLAIN_TAGS), got.append)
    assert isinstance(conn, MqttConnector)
    ids = [p.tag_id for p in conn.points]
    for k in range(3):
        conn._deliver(Result(batch=numeric_batch([ids[k]], T_US + k, [float(k)], Quality.GOOD)))
    assert got == []  # held until released
    conn._release()
    assert len(got) == 1
    assert got[0].column("tag_id").to_pylist() == ids[:3]
    assert got[0].column("value").to_pylist() == [0.0, 1.0, 2.0]
    assert conn.health.samples == 3
    conn._release()
    assert len(got) == 1  # nothing held: nothing emitted
