"""The Sparkplug B host state machine (``plantlink.connectors.mqtt.sparkplug.host``) on hand-made payloads:
values, timestamps and aliases resolved, sequence gaps and unknown aliases answered by a rebirth request,
deaths making tags bad, stale deaths ignored, and bad input named and never stored."""

from __future__ import annotations

import struct

import pyarrow as pa
import pytest

from plantlink.connectors.mqtt.sparkplug import sparkplug_b_pb2 as pb
from plantlink.connectors.mqtt.sparkplug.host import SparkplugHost
from plantlink.samples import Quality, values_of

G = "Plant1"
NOW = 1_800_000_000_000_000  # us
T0 = 1_700_000_000_000  # ms
BINDINGS = {"N1/Temp": 1, "N1/Count": 2, "N1/Running": 3, "N1/Recipe": 4, "N1/D1/Speed": 5, "N1/D1/Alarm": 6}


def payload(seq: int | None, metrics: list[dict[str, object]], ts: int | None = T0) -> bytes:
    msg = pb.Payload()
    if ts is not None:
        msg.timestamp = ts
    if seq is not None:
        msg.seq = seq
    for m in metrics:
        msg.metrics.add(**m)  # type: ignore[arg-type]
    return msg.SerializeToString()


def nbirth(bdseq: int = 7, seq: int = 0) -> bytes:
    return payload(seq, [
        {"name": "bdSeq", "datatype": pb.Int64, "long_value": bdseq},
        {"name": "Node Control/Rebirth", "datatype": pb.Boolean, "boolean_value": False},
        {"name": "Temp", "alias": 1, "datatype": pb.Double, "double_value": 21.5, "timestamp": T0 + 5},
        {"name": "Count", "alias": 2, "datatype": pb.Int32, "int_value": 0xFFFFFFFD},  # -3, two's complement
        {"name": "Running", "alias": 3, "datatype": pb.Boolean, "boolean_value": True},
        {"name": "Recipe", "alias": 4, "datatype": pb.String, "string_value": "A-12"},
    ])


def dbirth(seq: int = 1) -> bytes:
    return payload(seq, [
        {"name": "Speed", "alias": 10, "datatype": pb.Float, "float_value": 1.25},
        {"name": "Alarm", "alias": 11, "datatype": pb.Int8, "int_value": 0xFF},  # -1
    ])


def rows(batch: pa.RecordBatch | None) -> list[tuple[int, int, object, int]]:
    assert batch is not None
    return list(zip(batch.column("tag_id").to_pylist(), batch.column("ts").cast(pa.int64()).to_pylist(),
                    values_of(batch), batch.column("quality").to_pylist(), strict=True))


def topic(kind: str, device: str | None = None, node: str = "N1") -> str:
    return f"spBv1.0/{G}/{kind}/{node}" + (f"/{device}" if device else "")


@pytest.fixture
def host() -> SparkplugHost:
    h = SparkplugHost(G, BINDINGS, text_tags=frozenset({4}))
    r = h.handle(topic("NBIRTH"), nbirth(), NOW)
    assert not r.issues and not r.rebirths
    r = h.handle(topic("DBIRTH", "D1"), dbirth(), NOW)
    assert not r.issues and not r.rebirths
    return h


def test_nbirth_values_timestamps_and_datatypes() -> None:
    h = SparkplugHost(G, BINDINGS, text_tags=frozenset({4}))
    r = h.handle(topic("NBIRTH"), nbirth(), NOW)
    assert rows(r.batch) == [
        (1, (T0 + 5) * 1000, 21.5, Quality.GOOD),  # the metric's own timestamp
        (2, T0 * 1000, -3.0, Quality.GOOD),  # the payload's timestamp
        (3, T0 * 1000, 1.0, Quality.GOOD),
        (4, T0 * 1000, "A-12", Quality.GOOD),
    ]
    assert r.issues == [] and r.rebirths == []
    infos = {i.name: i for i in h.births[("N1", None)]}
    assert infos["bdSeq"].value == 7.0 and infos["Count"].alias == 2 and infos["Count"].datatype == pb.Int32


def test_dbirth_and_data_by_alias(host: SparkplugHost) -> None:
    r = host.handle(topic("DDATA", "D1"), payload(2, [
        {"alias": 10, "float_value": 2.5, "timestamp": T0 + 100},
        {"alias": 11, "int_value": 0x7F},
    ]), NOW)
    assert rows(r.batch) == [(5, (T0 + 100) * 1000, 2.5, Quality.GOOD), (6, T0 * 1000, 127.0, Quality.GOOD)]
    r = host.handle(topic("NDATA"), payload(3, [{"alias": 2, "int_value": 41}, {"alias": 1, "double_value": -0.5}],
                                           ts=None), NOW)
    assert rows(r.batch) == [(2, NOW, 41.0, Quality.GOOD), (1, NOW, -0.5, Quality.GOOD)]  # no timestamp: arrival
    assert r.issues == [] and r.rebirths == []


def test_int8_from_a_negative_int32_encoding() -> None:
    h = SparkplugHost(G, {"N1/D1/Alarm": 6})
    h.handle(topic("NBIRTH"), nbirth(), NOW)
    r = h.handle(topic("DBIRTH", "D1"), dbirth(), NOW)
    assert rows(r.batch) == [(6, T0 * 1000, -1.0, Quality.GOOD)]


def test_a_sequence_gap_asks_for_one_rebirth_and_keeps_the_values(host: SparkplugHost) -> None:
    r = host.handle(topic("NDATA"), payload(5, [{"alias": 1, "double_value": 3.0}]), NOW)
    assert rows(r.batch) == [(1, T0 * 1000, 3.0, Quality.GOOD)]
    assert [i.kind for i in r.issues] == ["sequence"] and "seq 5 after 1: expected 2" in r.issues[0].reason
    (rb,) = r.rebirths
    assert rb.topic == f"spBv1.0/{G}/NCMD/N1"
    cmd = pb.Payload.FromString(rb.payload)
    assert [(m.name, m.datatype, m.boolean_value) for m in cmd.metrics] == [("Node Control/Rebirth", pb.Boolean, True)]
    r = host.handle(topic("NDATA"), payload(9, [{"alias": 1, "double_value": 4.0}]), NOW + 1_000_000)
    assert r.rebirths == [] and [i.kind for i in r.issues] == ["sequence"]  # asked already, less than 5 s ago
    r = host.handle(topic("NDATA"), payload(2, [{"alias": 1, "double_value": 4.0}]), NOW + 6_000_000)
    assert len(r.rebirths) == 1
    host.handle(topic("NBIRTH"), nbirth(seq=0), NOW + 6_100_000)  # born again: the next gap asks at once
    r = host.handle(topic("NDATA"), payload(3, [{"alias": 1, "double_value": 4.0}]), NOW + 6_200_000)
    assert len(r.rebirths) == 1


def test_sequence_wraps_at_256() -> None:
    h = SparkplugHost(G, BINDINGS)
    h.handle(topic("NBIRTH"), nbirth(seq=254), NOW)
    for seq in (255, 0, 1):
        r = h.handle(topic("NDATA"), payload(seq, [{"alias": 1, "double_value": float(seq)}]), NOW)
        assert r.issues == [] and r.rebirths == [], seq


def test_an_unknown_alias_asks_for_a_rebirth_and_stores_the_rest(host: SparkplugHost) -> None:
    r = host.handle(topic("NDATA"), payload(2, [{"alias": 99, "double_value": 1.0}, {"alias": 1, "double_value": 9.0}]),
                    NOW)
    assert rows(r.batch) == [(1, T0 * 1000, 9.0, Quality.GOOD)]
    assert [i.kind for i in r.issues] == ["alias"] and len(r.rebirths) == 1


def test_data_before_a_birth_asks_for_a_rebirth() -> None:
    h = SparkplugHost(G, BINDINGS)
    r = h.handle(topic("NDATA"), payload(4, [{"alias": 1, "double_value": 1.0}]), NOW)
    assert r.batch is None and [i.kind for i in r.issues] == ["unborn"] and len(r.rebirths) == 1
    h.handle(topic("NBIRTH"), nbirth(), NOW)
    r = h.handle(topic("DDATA", "D2"), payload(1, [{"alias": 10, "float_value": 1.0}]), NOW)
    assert r.batch is None and [i.kind for i in r.issues] == ["unborn"] and len(r.rebirths) == 1


def test_ndeath_with_the_sessions_bdseq_makes_every_tag_of_the_node_bad(host: SparkplugHost) -> None:
    death = payload(None, [{"name": "bdSeq", "datatype": pb.Int64, "long_value": 7}], ts=T0 + 999)
    r = host.handle(topic("NDEATH"), death, NOW)
    assert sorted(rows(r.batch)) == [(i, (T0 + 999) * 1000, None, Quality.BAD) for i in range(1, 7)]
    r = host.handle(topic("NDATA"), payload(2, [{"alias": 1, "double_value": 1.0}]), NOW)
    assert r.batch is None and len(r.rebirths) == 1  # a dead node's data waits for its birth


def test_ndeath_of_an_earlier_session_is_ignored(host: SparkplugHost) -> None:
    r = host.handle(topic("NDEATH"), payload(None, [{"name": "bdSeq", "datatype": pb.Int64, "long_value": 6}]), NOW)
    assert r.batch is None and r.issues == [] and host.stale_deaths == 1
    r = host.handle(topic("NDATA"), payload(2, [{"alias": 1, "double_value": 1.5}]), NOW)
    assert rows(r.batch) == [(1, T0 * 1000, 1.5, Quality.GOOD)]


def test_ddeath_makes_only_the_devices_tags_bad(host: SparkplugHost) -> None:
    r = host.handle(topic("DDEATH", "D1"), payload(2, []), NOW)
    assert sorted(rows(r.batch)) == [(5, T0 * 1000, None, Quality.BAD), (6, T0 * 1000, None, Quality.BAD)]
    r = host.handle(topic("NDATA"), payload(3, [{"alias": 1, "double_value": 2.0}]), NOW)
    assert rows(r.batch) == [(1, T0 * 1000, 2.0, Quality.GOOD)] and r.issues == []


def test_is_null_is_a_bad_sample_without_value(host: SparkplugHost) -> None:
    r = host.handle(topic("NDATA"), payload(2, [{"alias": 1, "is_null": True}]), NOW)
    assert rows(r.batch) == [(1, T0 * 1000, None, Quality.BAD)]


def test_bad_input_is_named_and_never_stored(host: SparkplugHost) -> None:
    r = host.handle(topic("NDATA"), b"\xff\xff\xff not protobuf", NOW)
    assert r.batch is None and [i.kind for i in r.issues] == ["malformed"] and r.issues[0].topic == topic("NDATA")
    r = host.handle("spBv1.0/Other/NDATA/N1", payload(2, []), NOW)
    assert [i.kind for i in r.issues] == ["namespace"]
    r = host.handle(f"spBv1.0/{G}/NFOO/N1", payload(2, []), NOW)
    assert [i.kind for i in r.issues] == ["namespace"]
    r = host.handle(topic("NDATA"), payload(2, [{"alias": 1, "string_value": "12.5"}]), NOW)  # Double as text
    assert r.batch is None and [i.kind for i in r.issues] == ["value"]


def test_a_birth_with_unknown_datatypes_keeps_the_known_metrics() -> None:
    h = SparkplugHost(G, BINDINGS)
    r = h.handle(topic("NBIRTH"), payload(0, [
        {"name": "Temp", "alias": 1, "datatype": 99, "double_value": 1.0},
        {"name": "Count", "alias": 2, "datatype": pb.Unknown, "int_value": 1},
        {"name": "Running", "alias": 3, "datatype": pb.Boolean, "boolean_value": False},
    ]), NOW)
    assert rows(r.batch) == [(3, T0 * 1000, 0.0, Quality.GOOD)]
    assert [i.kind for i in r.issues] == ["datatype", "datatype"] and "unknown datatype 99" in r.issues[0].reason
    r = h.handle(topic("NDATA"), payload(1, [{"alias": 1, "double_value": 5.0}]), NOW)
    assert r.batch is None and [i.kind for i in r.issues] == ["alias"]  # never stored under a guessed type


def test_properties_are_decoded() -> None:
    h = SparkplugHost(G, {})
    msg = pb.Payload(timestamp=T0, seq=0)
    m = msg.metrics.add(name="Temp", alias=1, datatype=pb.Double, double_value=1.0)
    m.properties.keys.extend(["engUnit", "engLow", "deadband"])
    m.properties.values.add(type=pb.String, string_value="degC")
    m.properties.values.add(type=pb.Int32, int_value=0xFFFFFFF6)  # -10
    m.properties.values.add(type=pb.Double, double_value=0.5)
    h.handle(topic("NBIRTH"), msg.SerializeToString(), NOW)
    (info,) = h.births[("N1", None)]
    assert info.properties == {"engUnit": "degC", "engLow": -10, "deadband": 0.5}


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _field(num: int, wire: int, body: bytes) -> bytes:
    return _varint(num << 3 | wire) + body


def _len(num: int, body: bytes) -> bytes:
    return _field(num, 2, _varint(len(body)) + body)


def test_wire_bytes_written_by_hand_from_the_specifications_field_numbers() -> None:
    """A second encoder (field numbers of spec 3.0 Appendix A / Tahu, wire format by hand) checks the .proto."""
    h = SparkplugHost(G, {"N1/Temp": 1})
    temp = (_len(1, b"Temp") + _field(2, 0, _varint(1)) + _field(4, 0, _varint(10))  # name, alias, Double
            + _field(13, 1, struct.pack("<d", 21.5)))  # double_value
    birth = _field(1, 0, _varint(T0)) + _len(2, temp) + _field(3, 0, _varint(0))  # timestamp, metrics, seq
    assert rows(h.handle(topic("NBIRTH"), birth, NOW).batch) == [(1, T0 * 1000, 21.5, Quality.GOOD)]
    data = (_field(1, 0, _varint(T0 + 1)) + _len(2, _field(2, 0, _varint(1)) + _field(3, 0, _varint(T0 + 2))
                                                + _field(13, 1, struct.pack("<d", -4.0))) + _field(3, 0, _varint(1)))
    assert rows(h.handle(topic("NDATA"), data, NOW).batch) == [(1, (T0 + 2) * 1000, -4.0, Quality.GOOD)]
