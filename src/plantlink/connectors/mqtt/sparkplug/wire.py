"""A vectorised decoder of the common shape of Sparkplug B NDATA/DDATA payloads, straight from the protobuf wire
format into numpy arrays: no Python object per metric.

The common shape: the payload's ``timestamp`` and ``seq``, and metrics by ``alias`` with a numeric value field
(``int_value``, ``long_value``, ``float_value``, ``double_value``, ``boolean_value``), each optionally with its
own ``timestamp`` (``datatype``, ``is_historical`` and ``is_transient`` are read past). Anything else (a metric
by name, ``is_null``, text, properties, metadata, a ``uuid`` or ``body``, an unknown field, malformed bytes)
makes :func:`decode_data` return ``None``: the caller then decodes the payload with the protobuf module, which
handles (and names) every case. Both decoders give the same values; ``tests/connectors/test_sparkplug_wire.py``
checks it value by value.

How: every top-level field start is found at once by pointer doubling over the byte positions (the next field
after a field starting at each position, then after 2, 4, 8... fields), then the metrics' own fields are read
one field index at a time across all metrics together.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Metric fields of the fast path, by tag byte (field number << 3 | wire type).
_ALIAS, _TS, _DATATYPE, _HISTORICAL, _TRANSIENT = 0x10, 0x18, 0x20, 0x28, 0x30
_INT, _LONG, _FLOAT, _DOUBLE, _BOOL = 0x50, 0x58, 0x65, 0x69, 0x70
_METRIC_TAGS = np.zeros(256, dtype=bool)
_METRIC_TAGS[[_ALIAS, _TS, _DATATYPE, _HISTORICAL, _TRANSIENT, _INT, _LONG, _FLOAT, _DOUBLE, _BOOL]] = True
#: The value field kinds (the field number), 0 for none.
KIND_INT, KIND_LONG, KIND_FLOAT, KIND_DOUBLE, KIND_BOOL = 10, 11, 12, 13, 14
#: Payload fields of the fast path: timestamp (1, varint), metrics (2, length-delimited), seq (3, varint).
_P_TS, _P_METRIC, _P_SEQ = 0x08, 0x12, 0x18
_U64 = np.uint64
_TEN = np.arange(10)
_SHIFTS = (7 * _TEN).astype(_U64)
_SHIFTS8 = (8 * _TEN).astype(_U64)
_PAYLOAD_TAGS = np.zeros(256, dtype=bool)
_PAYLOAD_TAGS[[_P_TS, _P_METRIC, _P_SEQ]] = True


@dataclass(frozen=True)
class DataColumns:
    """A data payload as columns, one row per metric in payload order."""

    timestamp: int | None  # the payload's, ms
    seq: int | None
    alias: np.ndarray  # uint64
    has_ts: np.ndarray  # bool
    ts: np.ndarray  # uint64 ms
    kind: np.ndarray  # uint8: KIND_* or 0 (no value field)
    raw: np.ndarray  # uint64: the varint, or the fixed32/fixed64 bits


def _varints(buf: np.ndarray, pos: np.ndarray, end: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The varints starting at ``pos`` (``buf`` padded with 10 zero bytes): values, lengths, and whether each
    is complete before ``end``."""
    raw = buf[pos[:, None] + _TEN]
    more = raw >= 0x80
    length = np.argmin(more, axis=1) + 1
    ok = ~more.all(axis=1) & (pos + length <= end)
    digits = (raw & 0x7F).astype(_U64) << _SHIFTS
    digits[length[:, None] <= _TEN] = 0
    return np.bitwise_or.reduce(digits, axis=1), length, ok


def _fixed(buf: np.ndarray, pos: np.ndarray, size: int) -> np.ndarray:
    """Little-endian fixed-width values (4 or 8 bytes) at ``pos``, as uint64 bits."""
    out: np.ndarray = np.bitwise_or.reduce(buf[pos[:, None] + _TEN[:size]].astype(_U64) << _SHIFTS8[:size],
                                           axis=1)
    return out


def _field_starts(buf: np.ndarray, n: int) -> np.ndarray | None:
    """Start offsets of the top-level fields of a payload of ``n`` bytes, or None if it is not well formed or
    has a field other than timestamp, metrics and seq (left to protobuf).

    Only bytes equal to one of those three tags can start a field of the fast path: for each such candidate,
    the candidate the next field would start at (if the candidate were a field start), then the chain from
    offset 0 by pointer doubling: the candidates reached in 1, 2, 4, 8... hops."""
    pos = np.flatnonzero(_PAYLOAD_TAGS[buf[:n]])
    m = len(pos)
    tag = buf[pos]
    value, length, ok = _varints(buf, pos + 1, n)
    skip = np.where(tag == _P_METRIC, length + np.minimum(value, _U64(n + 1)).astype(np.int64), length)
    nxt = np.minimum(pos + 1 + skip, n + 1)
    # candidate index by offset: m for the end (n), m + 1 for anything else (not a candidate, past the end)
    index = np.full(n + 2, m + 1, dtype=np.int64)
    index[pos] = np.arange(m)
    index[n] = m
    jump = np.concatenate([np.where(ok, index[nxt], m + 1), np.array([m, m + 1], dtype=np.int64)])
    if m == 0 or pos[0] != 0:  # no field, or the payload does not start with a field of the fast path
        return pos if n == 0 else None
    chain = _simple_chain(jump, m)
    if chain is not None:
        starts: np.ndarray = pos[chain]
        return starts
    reached = np.zeros(m + 2, dtype=bool)
    reached[0] = True
    hops = 1
    while True:
        reached[jump[np.flatnonzero(reached)]] = True
        if hops >= m + 1:
            break
        jump = jump[jump]
        hops *= 2
    if reached[m + 1] or not reached[m]:
        return None
    return pos[reached[:m]]


def _simple_chain(jump: np.ndarray, m: int) -> np.ndarray | None:
    """The usual case, checked rather than searched: the candidates some candidate jumps to (and the first) form
    one chain from the first candidate (offset 0) to the end. None when they do not (a byte inside a value that
    looks like a field start and is pointed at): then the chain is searched."""
    pointed = np.zeros(m + 2, dtype=bool)
    pointed[jump[:m]] = True
    pointed[0] = True
    chain = np.flatnonzero(pointed[:m])
    if not pointed[m] or not len(chain):
        return None
    following = np.append(chain[1:], m)
    return chain if bool((jump[chain] == following).all()) else None


def decode_data(payload: bytes) -> DataColumns | None:
    """The payload as columns, or None when it is not in the fast path's common shape (see the module's doc)."""
    n = len(payload)
    buf = np.frombuffer(payload + bytes(10), dtype=np.uint8)
    starts = _field_starts(buf, n)
    if starts is None:
        return None
    tags = buf[starts]
    heads = starts[tags != _P_METRIC]
    values, _, _ = _varints(buf, heads + 1, n)
    timestamp = seq = None
    for t, v in zip(buf[heads].tolist(), values.tolist(), strict=True):
        if t == _P_TS:
            timestamp = v
        else:
            seq = v
    metrics = starts[tags == _P_METRIC]
    size, hdr, _ = _varints(buf, metrics + 1, n)
    begin = metrics + 1 + hdr
    cols = _metrics(buf, begin, begin + size.astype(np.int64))
    if cols is None:
        return None
    return DataColumns(timestamp, seq, *cols)


def _read_uniform(buf: np.ndarray, p: np.ndarray, tag: int, limit: int) -> tuple[np.ndarray, np.ndarray] | None:
    """The values of fields with tag byte ``tag`` at ``p`` (the tag's offsets) and the bytes each takes."""
    wire = tag & 7
    if wire == 0:
        value, length, ok = _varints(buf, p + 1, limit)
        return (value, length) if ok.all() else None
    size = 8 if wire == 1 else 4
    return _fixed(buf, p + 1, size), np.full(len(p), size, dtype=np.int64)


def _read_mixed(buf: np.ndarray, p: np.ndarray, tag: np.ndarray, limit: int
                ) -> tuple[np.ndarray, np.ndarray] | None:
    wire = tag & 7
    value, length, ok = _varints(buf, p + 1, limit)
    if not (ok | (wire != 0)).all():
        return None
    value = np.where(wire == 5, _fixed(buf, p + 1, 4), np.where(wire == 1, _fixed(buf, p + 1, 8), value))
    return value, np.where(wire == 0, length, np.where(wire == 5, 4, 8))


def _metrics(buf: np.ndarray, pos: np.ndarray, end: np.ndarray
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
    m = len(pos)
    alias = np.zeros(m, dtype=_U64)
    has_alias = np.zeros(m, dtype=bool)
    ts = np.zeros(m, dtype=_U64)
    has_ts = np.zeros(m, dtype=bool)
    kind = np.zeros(m, dtype=np.uint8)
    raw = np.zeros(m, dtype=_U64)
    pos = pos.copy()
    limit = int(end.max()) if m else 0
    while True:
        idx = np.flatnonzero(pos < end)
        if not len(idx):
            break
        p = pos[idx]
        tag = buf[p]
        first = int(tag[0])
        uniform = bool((tag == first).all())  # the common case: one field of one kind at this index in all
        if not (_METRIC_TAGS[first] if uniform else _METRIC_TAGS[tag].all()):
            return None
        read = _read_uniform(buf, p, first, limit) if uniform else _read_mixed(buf, p, tag, limit)
        if read is None:
            return None
        value, step = read
        if (p + 1 + step > end[idx]).any():
            return None
        for t in (first,) if uniform else np.unique(tag).tolist():
            at, val = (idx, value) if uniform else (idx[tag == t], value[tag == t])
            if t == _ALIAS:
                alias[at], has_alias[at] = val, True
            elif t == _TS:
                ts[at], has_ts[at] = val, True
            elif t >= _INT:
                kind[at], raw[at] = t >> 3, val
        pos[idx] = p + 1 + step
    if not has_alias.all():
        return None
    return alias, has_ts, ts, kind, raw
