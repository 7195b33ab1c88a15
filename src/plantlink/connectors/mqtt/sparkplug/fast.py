"""The vectorised NDATA/DDATA path of the Sparkplug host: a born scope's aliases as arrays (tag id, value class),
and the columns ``wire.decode_data`` gives turned into one sample batch, with the datatype rules of ``values``
(signed integers sign-extended from their own width, Boolean 1/0, DateTime as milliseconds).

Whatever the protobuf path would report or treat specially (an alias no birth defined, a value field that does
not fit the datatype, a text datatype or a text tag, a timestamp out of range) makes ``fast_rows`` return None:
the host then decodes that message with the protobuf module.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from plantlink.connectors.mqtt.sparkplug import values as dt
from plantlink.connectors.mqtt.sparkplug import wire
from plantlink.connectors.mqtt.sparkplug.sparkplug_b_pb2 import Boolean, DateTime
from plantlink.samples import SAMPLE_SCHEMA, TS_TYPE, Quality

#: Value classes of a bound alias (0: the protobuf path decides).
SLOW, SIGNED, UNSIGNED, FLOAT, BOOL, DATETIME = range(6)
#: ALLOWED[class, value field kind]: the fields each class may carry its value in (values.FIELDS).
ALLOWED = np.zeros((6, 16), dtype=bool)
ALLOWED[SIGNED, [wire.KIND_INT, wire.KIND_LONG]] = True
ALLOWED[UNSIGNED, [wire.KIND_INT, wire.KIND_LONG]] = True
ALLOWED[FLOAT, [wire.KIND_FLOAT, wire.KIND_DOUBLE]] = True
ALLOWED[BOOL, wire.KIND_BOOL] = True
ALLOWED[DATETIME, wire.KIND_LONG] = True
#: Largest alias the tables index directly (sparser aliases take the protobuf path).
MAX_ALIAS = 1 << 20
#: Largest timestamp in ms whose microseconds fit an int64.
MAX_TS_MS = (2**63 - 1) // 1000


@dataclass(frozen=True)
class AliasTable:
    known: np.ndarray  # bool, by alias: a birth defined it
    tag: np.ndarray  # int64, by alias: the bound tag id, -1 if none
    cls: np.ndarray  # int8, by alias: value class
    bits: np.ndarray  # int8, by alias: width of a signed integer


def _class_of(datatype: int) -> int:
    if datatype in dt.SIGNED_BITS:
        return SIGNED
    if datatype in dt.UNSIGNED:
        return UNSIGNED
    if datatype in dt.FLOATS:
        return FLOAT
    if datatype == Boolean:
        return BOOL
    if datatype == DateTime:
        return DATETIME
    return SLOW


def alias_table(aliases: Mapping[int, tuple[str, int]], base: str, bindings: Mapping[str, int],
                text_tags: frozenset[int]) -> AliasTable | None:
    """The scope's aliases (alias -> (name, datatype)) as arrays; None when an alias is too large to index."""
    size = max(aliases, default=-1) + 1
    if size > MAX_ALIAS:
        return None
    known = np.zeros(size, dtype=bool)
    tag = np.full(size, -1, dtype=np.int64)
    cls = np.zeros(size, dtype=np.int8)
    bits = np.zeros(size, dtype=np.int8)
    for alias, (name, datatype) in aliases.items():
        known[alias] = True
        tag_id = bindings.get(base + name)
        if tag_id is None:
            continue
        tag[alias] = tag_id
        cls[alias] = SLOW if tag_id in text_tags else _class_of(datatype)
        bits[alias] = dt.SIGNED_BITS.get(datatype, 0)
    return AliasTable(known, tag, cls, bits)


def fast_rows(table: AliasTable, cols: wire.DataColumns, ts0_us: int) -> pa.RecordBatch | None:
    """The bound metrics' samples (payload order), or None when the protobuf path must decide."""
    if cols.timestamp is not None and cols.timestamp > MAX_TS_MS:
        return None
    alias = cols.alias
    if len(alias) and int(alias.max()) >= len(table.known):
        return None
    ai = alias.astype(np.intp)
    if not table.known[ai].all():
        return None
    bound = table.tag[ai] >= 0
    ai = ai[bound]
    cls, kind, raw = table.cls[ai], cols.kind[bound], cols.raw[bound]
    has_ts, ts_ms = cols.has_ts[bound], cols.ts[bound]
    if not ALLOWED[cls, kind].all() or (has_ts & (ts_ms > MAX_TS_MS)).any():
        return None
    values = _values(cls, kind, raw, table.bits[ai])
    ts = np.where(has_ts, ts_ms.astype(np.int64) * 1000, np.int64(ts0_us))
    n = len(ai)
    return pa.RecordBatch.from_arrays([
        pa.array(table.tag[ai].astype(np.uint32), pa.uint32()),
        pa.array(ts, pa.int64()).cast(TS_TYPE),
        pa.array(values, pa.float64()),
        pa.array(np.full(n, int(Quality.GOOD), dtype=np.uint8), pa.uint8()),
        pa.nulls(n, pa.string()),
    ], schema=SAMPLE_SCHEMA)


def _values(cls: np.ndarray, kind: np.ndarray, raw: np.ndarray, bits: np.ndarray) -> np.ndarray:
    raw = np.where(kind == wire.KIND_INT, raw & np.uint64(0xFFFFFFFF), raw)  # int_value is a uint32 field
    out = raw.astype(np.float64)  # unsigned integers, DateTime
    sel = cls == FLOAT
    if sel.any():
        out[sel] = raw[sel].view(np.float64)
        sel &= kind == wire.KIND_FLOAT
        out[sel] = (raw[sel] & np.uint64(0xFFFFFFFF)).astype(np.uint32).view(np.float32)
    sel = cls == BOOL
    out[sel] = raw[sel] != 0
    for width in (8, 16, 32, 64):
        sel = (cls == SIGNED) & (bits == width)
        if sel.any():
            out[sel] = _signed(raw[sel], width)
    return out


def _signed(raw: np.ndarray, width: int) -> np.ndarray:
    if width == 64:
        return raw.view(np.int64).astype(np.float64)
    v = (raw & np.uint64((1 << width) - 1)).astype(np.int64)
    return np.where(v >= 1 << (width - 1), v - (1 << width), v).astype(np.float64)
