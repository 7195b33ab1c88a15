"""The vectorised NDATA/DDATA decoder (``sparkplug.wire`` + ``sparkplug.fast``) against the protobuf module's own
decoding, value by value: the expected values are computed here from the protobuf-decoded metrics (ctypes for
the sign extension), and the host with the fast path must give exactly what the host without it gives."""

from __future__ import annotations

import ctypes

import numpy as np
import pytest

from plantlink.connectors.mqtt.sparkplug import sparkplug_b_pb2 as pb
from plantlink.connectors.mqtt.sparkplug import wire
from plantlink.connectors.mqtt.sparkplug.host import Result, SparkplugHost

T0 = 1_795_000_000_000
#: datatype -> (value field, random raw value maker)
SIGNED = {pb.Int8: ctypes.c_int8, pb.Int16: ctypes.c_int16, pb.Int32: ctypes.c_int32, pb.Int64: ctypes.c_int64}
DATATYPES = [pb.Int8, pb.Int16, pb.Int32, pb.Int64, pb.UInt8, pb.UInt16, pb.UInt32, pb.UInt64, pb.Float,
             pb.Double, pb.Boolean, pb.DateTime]


def _raw_int(rng: np.random.Generator, bits: int) -> int:
    edges = [0, 1, 127, 128, 255, 256, 2**15 - 1, 2**15, 2**31 - 1, 2**31, 2**32 - 1, 2**63, 2**64 - 1]
    v = int(rng.choice(edges)) if rng.random() < 0.5 else int(rng.integers(0, 2**63)) * 2 + int(rng.integers(2))
    return v & ((1 << bits) - 1)


def _fill(m: pb.Payload.Metric, datatype: int, rng: np.random.Generator) -> None:
    if datatype in (pb.Float, pb.Double):
        v = float(rng.choice([0.0, -0.0, 1.5, -3.25e10, float("inf"), float("nan"), rng.normal() * 1e6]))
        if rng.random() < 0.5:
            m.float_value = v
        else:
            m.double_value = v
    elif datatype == pb.Boolean:
        m.boolean_value = bool(rng.integers(2))
    elif datatype == pb.DateTime:
        m.long_value = T0 + int(rng.integers(0, 10**9))
    elif rng.random() < 0.5:
        m.int_value = _raw_int(rng, 32)
    else:
        m.long_value = _raw_int(rng, 64)


def _expected(m: pb.Payload.Metric, datatype: int) -> float:
    """The value the product must store, from the protobuf-decoded metric, computed independently."""
    raw = getattr(m, m.WhichOneof("value") or "")
    if datatype in SIGNED:
        return float(SIGNED[datatype](raw).value)
    return float(raw)


def _host(fast: bool, datatypes: list[int], bound: int) -> SparkplugHost:
    host = SparkplugHost("G", {f"N/D/m{i}": 100 + i for i in range(bound)})
    host.fast = fast
    nb = pb.Payload(timestamp=T0, seq=0)
    nb.metrics.add(name="bdSeq", datatype=pb.Int64, long_value=0)
    host.handle("spBv1.0/G/NBIRTH/N", nb.SerializeToString(), 0)
    db = pb.Payload(timestamp=T0, seq=1)
    for i, d in enumerate(datatypes):
        db.metrics.add(name=f"m{i}", alias=i * 3 + 1, datatype=d)
    host.handle("spBv1.0/G/DBIRTH/N/D", db.SerializeToString(), 0)
    return host


def _same(a: Result, b: Result) -> None:
    assert (a.batch is None) == (b.batch is None)
    if a.batch is not None and b.batch is not None:
        assert a.batch.schema == b.batch.schema
        for name in a.batch.schema.names:
            x, y = a.batch.column(name).to_pylist(), b.batch.column(name).to_pylist()
            assert [v if v == v else "nan" for v in x] == [v if v == v else "nan" for v in y], name
    assert [(i.kind, i.reason) for i in a.issues] == [(i.kind, i.reason) for i in b.issues]
    assert [(r.topic, r.reason) for r in a.rebirths] == [(r.topic, r.reason) for r in b.rebirths]


@pytest.mark.parametrize("seed", range(12))
def test_random_data_matches_protobuf_value_by_value(seed: int) -> None:
    rng = np.random.default_rng(seed)
    datatypes = [DATATYPES[int(k)] for k in rng.integers(0, len(DATATYPES), 300)]
    bound = 250  # the last 50 metrics are bound to no tag
    fast, slow = _host(True, datatypes, bound), _host(False, datatypes, bound)
    for seq in range(2, 6):
        msg = pb.Payload(timestamp=T0 + seq, seq=seq)
        for i in rng.permutation(len(datatypes))[: int(rng.integers(1, len(datatypes)))]:
            m = msg.metrics.add(alias=int(i) * 3 + 1)
            if rng.random() < 0.3:
                m.timestamp = T0 + int(rng.integers(0, 10**6))
            _fill(m, datatypes[i], rng)
        payload = msg.SerializeToString()
        cols = wire.decode_data(payload)
        assert cols is not None  # the fast path is taken (else this test would compare protobuf with itself)
        got = fast.handle("spBv1.0/G/DDATA/N/D", payload, 7)
        _same(got, slow.handle("spBv1.0/G/DDATA/N/D", payload, 7))
        decoded = pb.Payload.FromString(payload)
        want = [(100 + (m.alias - 1) // 3, (m.timestamp if m.HasField("timestamp") else decoded.timestamp) * 1000,
                 _expected(m, datatypes[(m.alias - 1) // 3])) for m in decoded.metrics if (m.alias - 1) // 3 < bound]
        assert got.batch is not None and not got.issues
        ids = got.batch.column("tag_id").to_pylist()
        ts = got.batch.column("ts").cast("int64").to_pylist()
        values = got.batch.column("value").to_pylist()
        assert [(a, b, "nan" if c != c else c) for a, b, c in zip(ids, ts, values, strict=True)] == \
            [(a, b, "nan" if c != c else c) for a, b, c in want]


def _payload(seq: int, build: object) -> bytes:
    msg = pb.Payload(timestamp=T0, seq=seq)
    msg.metrics.add(alias=1, double_value=1.5)
    build(msg)  # type: ignore[operator]
    return msg.SerializeToString()


CASES = {
    "by name": lambda msg: msg.metrics.add(name="m1", int_value=3),
    "is_null": lambda msg: msg.metrics.add(alias=4, is_null=True),
    "text value": lambda msg: msg.metrics.add(alias=4, string_value="x"),
    "unknown alias": lambda msg: msg.metrics.add(alias=999, int_value=1),
    "field not of the datatype": lambda msg: msg.metrics.add(alias=4, double_value=2.0),
    "no value": lambda msg: msg.metrics.add(alias=4),
    "uuid": lambda msg: setattr(msg, "uuid", "u"),
    "properties": lambda msg: msg.metrics.add(alias=4, int_value=1).properties.keys.append("k"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_unusual_payloads_take_the_protobuf_path_with_the_same_result(case: str) -> None:
    datatypes = [pb.Double, pb.Int16]
    fast, slow = _host(True, datatypes, 2), _host(False, datatypes, 2)
    payload = _payload(2, CASES[case])
    _same(fast.handle("spBv1.0/G/DDATA/N/D", payload, 7), slow.handle("spBv1.0/G/DDATA/N/D", payload, 7))


def test_sequence_gap_on_the_fast_path_asks_for_a_rebirth_and_keeps_the_values() -> None:
    fast, slow = _host(True, [pb.Double], 1), _host(False, [pb.Double], 1)
    payload = _payload(9, lambda msg: None)
    assert wire.decode_data(payload) is not None
    a, b = fast.handle("spBv1.0/G/DDATA/N/D", payload, 7), slow.handle("spBv1.0/G/DDATA/N/D", payload, 7)
    _same(a, b)
    assert [i.kind for i in a.issues] == ["sequence"] and len(a.rebirths) == 1
    assert a.batch is not None and a.batch.column("value").to_pylist() == [1.5]


@pytest.mark.parametrize("seed", range(4))
def test_bytes_the_fast_decoder_accepts_are_what_protobuf_decodes(seed: int) -> None:
    """Truncated, mutated and random payloads: either refused (None) or decoded as protobuf decodes them."""
    rng = np.random.default_rng(100 + seed)
    msg = pb.Payload(timestamp=T0, seq=3)
    for i in range(20):
        m = msg.metrics.add(alias=i, timestamp=T0 + i)
        _fill(m, DATATYPES[i % len(DATATYPES)], rng)
    good = msg.SerializeToString()
    accepted = 0
    for k in range(400):
        data = bytearray(good)
        if k % 3 == 0:
            data = data[: int(rng.integers(0, len(data)))]
        else:
            for _ in range(int(rng.integers(1, 4))):
                data[int(rng.integers(0, len(data)))] = int(rng.integers(0, 256))
        cols = wire.decode_data(bytes(data))
        if cols is None:
            continue
        accepted += 1
        ref = pb.Payload.FromString(bytes(data))  # must not raise: the fast decoder accepted it
        assert cols.timestamp == (ref.timestamp if ref.HasField("timestamp") else None)
        assert cols.seq == (ref.seq if ref.HasField("seq") else None)
        assert cols.alias.tolist() == [m.alias for m in ref.metrics]
        assert cols.ts.tolist() == [m.timestamp for m in ref.metrics]
        assert cols.kind.tolist() == [ref.metrics[0].DESCRIPTOR.fields_by_name[m.WhichOneof("value")].number
                                      if m.WhichOneof("value") else 0 for m in ref.metrics]
    assert accepted > 0


def _varint(v: int) -> bytes:
    out = bytearray()
    while True:
        out.append((v & 0x7F) | (0x80 if v > 0x7F else 0))
        v >>= 7
        if not v:
            return bytes(out)


def test_an_int_value_wider_than_32_bits_is_truncated_as_protobuf_does() -> None:
    """int_value is a uint32 field: a wider varint on the wire keeps its low 32 bits (hand-encoded bytes)."""
    body = b"\x10\x01" + b"\x50" + _varint(2**40 + 2**32 + 5)  # alias 1, int_value
    payload = b"\x08" + _varint(T0) + b"\x12" + _varint(len(body)) + body + b"\x18\x02"
    assert pb.Payload.FromString(payload).metrics[0].int_value == 5
    fast, slow = _host(True, [pb.UInt32], 1), _host(False, [pb.UInt32], 1)
    a = fast.handle("spBv1.0/G/DDATA/N/D", payload, 7)
    _same(a, slow.handle("spBv1.0/G/DDATA/N/D", payload, 7))
    assert wire.decode_data(payload) is not None
    assert a.batch is not None and a.batch.column("value").to_pylist() == [5.0]


def _walk(payload: bytes) -> list[int]:
    """Top-level field offsets by a plain byte-by-byte walk (the reference for the vectorised search)."""
    out, pos = [], 0
    while pos < len(payload):
        out.append(pos)
        tag, pos = payload[pos], pos + 1
        shift = length = 0
        while True:
            b = payload[pos]
            length |= (b & 0x7F) << shift
            pos, shift = pos + 1, shift + 7
            if b < 0x80:
                break
        if tag == 0x12:
            pos += length
    return out


@pytest.mark.parametrize("search", [True, False])
def test_field_offsets_match_a_plain_walk_by_either_route(search: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """The checked chain and the pointer-doubling search (forced by refusing the checked chain) both find the
    offsets a byte-by-byte walk finds, in payloads whose values are full of bytes that look like field starts."""
    if search:
        monkeypatch.setattr(wire, "_simple_chain", lambda jump, m: None)
    rng = np.random.default_rng(7)
    for _ in range(30):
        msg = pb.Payload(timestamp=T0, seq=int(rng.integers(0, 256)))
        for i in range(int(rng.integers(0, 300))):
            m = msg.metrics.add(alias=int(rng.integers(0, 5000)))
            m.long_value = int.from_bytes(bytes(rng.choice([0x08, 0x12, 0x18, 0x02, 0x80], 8).tolist()), "little")
            if i % 3 == 0:
                m.timestamp = T0 + i
        payload = msg.SerializeToString()
        buf = np.frombuffer(payload + bytes(10), dtype=np.uint8)
        starts = wire._field_starts(buf, len(payload))
        assert starts is not None and starts.tolist() == _walk(payload)
