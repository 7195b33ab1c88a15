"""The Sparkplug B 3.0 host application as a pure state machine: ``SparkplugHost.handle(topic, payload, now)``
gives an Arrow batch of samples and the actions to take (rebirth requests), and names every bad input.

No network here (``plantlink.connectors.mqtt.client`` feeds it), so it is tested with hand-made payloads.

* NBIRTH starts a node's session: its ``bdSeq``, its sequence number, the aliases and datatypes of its metrics
  (a device's are reset: they are born again by DBIRTH). DBIRTH does the same for a device of a live node.
* Every message of a node after its NBIRTH (NDATA, DBIRTH, DDATA, DDEATH) carries ``seq``, one more than the
  last (mod 256). A gap, a data message from a node or device whose birth this host has not seen, or an alias
  no birth defined, asks the node for a rebirth (NCMD ``Node Control/Rebirth`` = true), at most once per
  ``rebirth_interval`` per node until it is born again.
* NDEATH with the ``bdSeq`` of the node's current session (the will of an earlier session is ignored), or
  DDEATH, makes every tag of the node (of the device) bad: one bad sample each, at the death's time.
* Metrics are bound to tags by key: ``node/metric name`` for a node's own metrics, ``node/device/metric name``
  for a device's. Values are decoded only for bound metrics; other metrics are only recorded (``births``).
* NDATA/DDATA of the usual shape (metrics by alias with a numeric value) are decoded vectorised (``wire``,
  ``fast``: arrays, no object per metric); any other message, or one with a problem to name, goes through the
  protobuf module (``fast = False`` forces it). Both give the same samples, issues and rebirth requests.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
from google.protobuf.message import DecodeError

from plantlink.connectors.mqtt.sparkplug import sparkplug_b_pb2 as pb
from plantlink.connectors.mqtt.sparkplug import values as dt
from plantlink.connectors.mqtt.sparkplug import wire
from plantlink.connectors.mqtt.sparkplug.fast import AliasTable, alias_table, fast_rows
from plantlink.samples import SAMPLE_SCHEMA, TS_TYPE, Quality

NAMESPACE = "spBv1.0"
REBIRTH_METRIC = "Node Control/Rebirth"
BDSEQ_METRIC = "bdSeq"
MESSAGE_TYPES = frozenset({"NBIRTH", "NDEATH", "DBIRTH", "DDEATH", "NDATA", "DDATA", "NCMD", "DCMD"})


@dataclass(frozen=True)
class Rebirth:
    """Ask edge node ``node`` to publish its births again: publish ``payload`` on ``topic`` (QoS 0)."""

    node: str
    topic: str
    payload: bytes
    reason: str


@dataclass(frozen=True)
class Issue:
    """Bad or unexpected input: ``kind`` (malformed, namespace, datatype, alias, sequence, unborn, value) and why."""

    kind: str
    topic: str
    reason: str


@dataclass
class Result:
    batch: pa.RecordBatch | None = None
    rebirths: list[Rebirth] = field(default_factory=list)
    issues: list[Issue] = field(default_factory=list)


@dataclass(frozen=True)
class MetricInfo:
    """A metric as a birth announced it (for ``plantlink discover``)."""

    name: str
    alias: int | None
    datatype: int
    properties: dict[str, Any]
    value: float | str | None


@dataclass
class _Scope:
    """The metrics of a node or of one of its devices, as last born: alias -> (name, datatype), name -> datatype."""

    aliases: dict[int, tuple[str, int]] = field(default_factory=dict)
    datatypes: dict[str, int] = field(default_factory=dict)
    online: bool = True
    #: The aliases as arrays for the vectorised data path (built at the first data message; None: not usable).
    table: AliasTable | None = None
    tabled: bool = False


@dataclass
class _Node:
    bdseq: int | None
    seq: int
    scope: _Scope
    devices: dict[str, _Scope] = field(default_factory=dict)
    online: bool = True


class Rows:
    """The samples of one message, appended per metric and turned into one batch."""

    __slots__ = ("ids", "missing", "quality", "texts", "ts", "values")

    def __init__(self) -> None:
        self.ids: list[int] = []
        self.ts: list[int] = []
        self.values: list[float] = []
        self.missing: list[bool] = []
        self.quality: list[int] = []
        self.texts: list[str | None] = []

    def add(self, tag_id: int, ts_us: int, value: float | str | None, quality: int) -> None:
        self.ids.append(tag_id)
        self.ts.append(ts_us)
        self.quality.append(quality)
        if isinstance(value, str):
            self.values.append(0.0)
            self.missing.append(True)
            self.texts.append(value)
        else:
            self.values.append(0.0 if value is None else value)
            self.missing.append(value is None)
            self.texts.append(None)

    def batch(self) -> pa.RecordBatch | None:
        n = len(self.ids)
        if not n:
            return None
        missing = np.asarray(self.missing, dtype=bool)
        text = pa.array(self.texts, pa.string()) if any(t is not None for t in self.texts) else pa.nulls(n, pa.string())
        return pa.RecordBatch.from_arrays([
            pa.array(np.asarray(self.ids, dtype=np.uint32), pa.uint32()),
            pa.array(np.asarray(self.ts, dtype=np.int64), pa.int64()).cast(TS_TYPE),
            pa.array(np.asarray(self.values, dtype=np.float64), pa.float64(), mask=missing if missing.any() else None),
            pa.array(np.asarray(self.quality, dtype=np.uint8), pa.uint8()),
            text,
        ], schema=SAMPLE_SCHEMA)


def rebirth_payload(now_ms: int) -> bytes:
    """The NCMD payload that asks a node for a rebirth (spec 3.0, 6.4.2.5)."""
    msg = pb.Payload(timestamp=now_ms)
    msg.metrics.add(name=REBIRTH_METRIC, timestamp=now_ms, datatype=pb.Boolean, boolean_value=True)
    data: bytes = msg.SerializeToString()
    return data


class SparkplugHost:
    """The host side of one Sparkplug group. ``bindings``: metric key -> tag id; ``text_tags``: the tag ids
    that take text (a number arriving for one is stored as its text)."""

    def __init__(self, group: str, bindings: Mapping[str, int], text_tags: frozenset[int] = frozenset(),
                 rebirth_interval_us: int = 5_000_000):
        self.group = group
        self.bindings = dict(bindings)
        self.text_tags = text_tags
        self.rebirth_interval_us = rebirth_interval_us
        self.prefix = f"{NAMESPACE}/{group}/"
        self.nodes: dict[str, _Node] = {}
        self.births: dict[tuple[str, str | None], list[MetricInfo]] = {}
        #: NDEATHs whose bdSeq is not the node's current one (the will of an earlier session): ignored.
        self.stale_deaths = 0
        #: NDATA/DDATA of the common shape are decoded vectorised (``wire``, ``fast``); False: always protobuf.
        self.fast = True
        self._asked: dict[str, int] = {}
        #: Called with (node, device or None, metrics) after a birth is read, before its values are sampled.
        self.on_birth: Callable[[str, str | None, list[MetricInfo]], None] | None = None

    def reset(self) -> None:
        """Forget every node (a new MQTT session of this host: every node must be born again)."""
        self.nodes.clear()
        self._asked.clear()

    # -- one message ------------------------------------------------------------------------------------------
    def handle(self, topic: str, payload: bytes, now_us: int) -> Result:
        out = Result()
        parts = topic.split("/")
        if not topic.startswith(self.prefix) or len(parts) not in (4, 5) or parts[2] not in MESSAGE_TYPES:
            out.issues.append(Issue("namespace", topic, f"not a Sparkplug B topic of group {self.group!r}"))
            return out
        kind, node_id = parts[2], parts[3]
        device = parts[4] if len(parts) == 5 else None
        if (device is None) != kind.startswith("N"):
            out.issues.append(Issue("namespace", topic, f"{kind} with {'no' if device is None else 'a'} device id"))
            return out
        if kind in ("NCMD", "DCMD"):
            return out  # commands (ours or another host's): nothing to ingest
        if self.fast and kind in ("NDATA", "DDATA") and self._data_fast(out, topic, node_id, device, payload, now_us):
            return out
        try:
            msg = pb.Payload.FromString(payload)
        except DecodeError as exc:
            out.issues.append(Issue("malformed", topic, f"not a Sparkplug B payload ({exc})"))
            return out
        handler = getattr(self, "_" + kind.lower())
        rows = Rows()
        handler(out, rows, topic, node_id, device, msg, now_us)
        out.batch = rows.batch()
        return out

    def _nbirth(self, out: Result, rows: Rows, topic: str, node_id: str, _dev: str | None, msg: pb.Payload,
                now_us: int) -> None:
        bdseq = None
        for m in msg.metrics:
            if m.name == BDSEQ_METRIC and m.WhichOneof("value") in ("long_value", "int_value"):
                bdseq = int(getattr(m, m.WhichOneof("value") or "long_value"))
        scope = self._born(out, rows, topic, node_id, None, msg, now_us)
        self.nodes[node_id] = _Node(bdseq=bdseq, seq=int(msg.seq), scope=scope)
        self._asked.pop(node_id, None)

    def _dbirth(self, out: Result, rows: Rows, topic: str, node_id: str, device: str | None, msg: pb.Payload,
                now_us: int) -> None:
        assert device is not None
        node = self._live(out, topic, node_id, msg, now_us)
        if node is None:
            return
        node.devices[device] = self._born(out, rows, topic, node_id, device, msg, now_us)

    def _data_fast(self, out: Result, topic: str, node_id: str, device: str | None, payload: bytes,
                   now_us: int) -> bool:
        """NDATA/DDATA through the vectorised decoder (``wire``); False (nothing done) when the payload or one of
        its metrics needs the protobuf path (which also names every problem)."""
        node = self.nodes.get(node_id)
        if node is None or not node.online:
            return False
        scope = node.scope if device is None else node.devices.get(device)
        if scope is None or not scope.online:
            return False
        if not scope.tabled:
            base = f"{node_id}/" if device is None else f"{node_id}/{device}/"
            scope.table = alias_table(scope.aliases, base, self.bindings, self.text_tags)
            scope.tabled = True
        if scope.table is None:
            return False
        cols = wire.decode_data(payload)
        if cols is None:
            return False
        ts0 = cols.timestamp * 1000 if cols.timestamp is not None else now_us
        batch = fast_rows(scope.table, cols, ts0)
        if batch is None:
            return False
        self._check_seq(out, topic, node_id, node, cols.seq, now_us)
        out.batch = batch if batch.num_rows else None
        return True

    def _ndata(self, out: Result, rows: Rows, topic: str, node_id: str, device: str | None, msg: pb.Payload,
               now_us: int) -> None:
        node = self._live(out, topic, node_id, msg, now_us)
        if node is None:
            return
        scope = node.scope if device is None else node.devices.get(device)
        if scope is None or not scope.online:
            self._ask(out, node_id, now_us, Issue("unborn", topic, f"data from device {device!r} before its DBIRTH"))
            return
        base = f"{node_id}/" if device is None else f"{node_id}/{device}/"
        ts0 = _ms(msg, now_us)
        for m in msg.metrics:
            if m.HasField("alias") and not m.name:
                known = scope.aliases.get(m.alias)
                if known is None:
                    self._ask(out, node_id, now_us, Issue("alias", topic, f"alias {m.alias} is in no birth"))
                    continue
                name, datatype = known
            else:
                datatype = scope.datatypes.get(m.name, -1)
                if datatype < 0:
                    self._ask(out, node_id, now_us, Issue("alias", topic, f"metric {m.name!r} is in no birth"))
                    continue
                name = m.name
            tag_id = self.bindings.get(base + name)
            if tag_id is not None:
                self._sample(out, rows, topic, tag_id, name, datatype, m, ts0)

    _ddata = _ndata

    def _ndeath(self, out: Result, rows: Rows, topic: str, node_id: str, _dev: str | None, msg: pb.Payload,
                now_us: int) -> None:
        node = self.nodes.get(node_id)
        bdseq = next((int(m.long_value or m.int_value) for m in msg.metrics if m.name == BDSEQ_METRIC), None)
        if node is None or not node.online or (node.bdseq is not None and bdseq != node.bdseq):
            self.stale_deaths += 1
            return
        node.online = False
        for scope in (node.scope, *node.devices.values()):
            scope.online = False
        self._all_bad(rows, f"{node_id}/", _ms(msg, now_us))

    def _ddeath(self, out: Result, rows: Rows, topic: str, node_id: str, device: str | None, msg: pb.Payload,
                now_us: int) -> None:
        node = self._live(out, topic, node_id, msg, now_us)
        if node is None or device not in node.devices:
            return
        node.devices[device].online = False
        self._all_bad(rows, f"{node_id}/{device}/", _ms(msg, now_us))

    # -- helpers ----------------------------------------------------------------------------------------------
    def _born(self, out: Result, rows: Rows, topic: str, node_id: str, device: str | None, msg: pb.Payload,
              now_us: int) -> _Scope:
        scope = _Scope()
        infos: list[MetricInfo] = []
        base = f"{node_id}/" if device is None else f"{node_id}/{device}/"
        ts0 = _ms(msg, now_us)
        for m in msg.metrics:
            if not m.name:
                out.issues.append(Issue("datatype", topic, "a birth metric without a name"))
                continue
            if not dt.known(m.datatype):
                out.issues.append(Issue("datatype", topic, f"metric {m.name!r}: unknown datatype {m.datatype}"))
                continue
            scope.datatypes[m.name] = m.datatype
            if m.HasField("alias"):
                scope.aliases[m.alias] = (m.name, m.datatype)
            value = _quiet_value(m, m.datatype)
            infos.append(MetricInfo(m.name, m.alias if m.HasField("alias") else None, m.datatype,
                                    dt.properties_of(m.properties), value))
        self.births[(node_id, device)] = infos
        if self.on_birth is not None:  # may bind more metrics (tags from births), sampled from this birth on
            self.on_birth(node_id, device, infos)
        for m in msg.metrics:
            tag_id = self.bindings.get(base + m.name) if m.name in scope.datatypes else None
            if tag_id is not None:
                self._sample(out, rows, topic, tag_id, m.name, m.datatype, m, ts0)
        return scope

    def rebind(self, bindings: Mapping[str, int], text_tags: frozenset[int]) -> None:
        """Bind the metrics anew (the model changed): the alias tables of the data path are built again."""
        self.bindings, self.text_tags = dict(bindings), text_tags
        for node in self.nodes.values():
            for scope in (node.scope, *node.devices.values()):
                scope.table, scope.tabled = None, False

    def _live(self, out: Result, topic: str, node_id: str, msg: pb.Payload, now_us: int) -> _Node | None:
        """The node if born and alive, its sequence number checked (a gap asks for a rebirth); else None."""
        node = self.nodes.get(node_id)
        if node is None or not node.online:
            self._ask(out, node_id, now_us, Issue("unborn", topic, "a message from a node whose NBIRTH this host "
                                                                   "has not seen"))
            return None
        self._check_seq(out, topic, node_id, node, int(msg.seq) if msg.HasField("seq") else None, now_us)
        return node

    def _check_seq(self, out: Result, topic: str, node_id: str, node: _Node, got: int | None, now_us: int) -> None:
        expected = (node.seq + 1) % 256
        if got != expected:
            self._ask(out, node_id, now_us, Issue("sequence", topic, f"seq {got} after {node.seq}: expected "
                                                                     f"{expected}"))
        if got is not None:
            node.seq = got

    def _ask(self, out: Result, node_id: str, now_us: int, issue: Issue) -> None:
        out.issues.append(issue)
        last = self._asked.get(node_id)
        if last is not None and now_us - last < self.rebirth_interval_us:
            return
        self._asked[node_id] = now_us
        out.rebirths.append(Rebirth(node_id, f"{NAMESPACE}/{self.group}/NCMD/{node_id}",
                                    rebirth_payload(now_us // 1000), issue.reason))

    def _sample(self, out: Result, rows: Rows, topic: str, tag_id: int, name: str, datatype: int,
                m: pb.Payload.Metric, ts0: int) -> None:
        ts = m.timestamp * 1000 if m.HasField("timestamp") else ts0
        if m.is_null:
            rows.add(tag_id, ts, None, Quality.BAD)
            return
        try:
            value = dt.value_of(m, datatype)
        except ValueError as exc:
            out.issues.append(Issue("value", topic, f"metric {name!r}: {exc}"))
            return
        if tag_id in self.text_tags and isinstance(value, float):
            value = _text(value, datatype)
        elif tag_id not in self.text_tags and isinstance(value, str):
            out.issues.append(Issue("value", topic, f"metric {name!r}: text for a numeric tag"))
            return
        rows.add(tag_id, ts, value, Quality.GOOD)

    def _all_bad(self, rows: Rows, prefix: str, ts: int) -> None:
        for key, tag_id in self.bindings.items():
            if key.startswith(prefix):
                rows.add(tag_id, ts, None, Quality.BAD)


def _ms(msg: pb.Payload, now_us: int) -> int:
    """The payload's timestamp in microseconds, or ``now_us`` when it has none."""
    return msg.timestamp * 1000 if msg.HasField("timestamp") else now_us


def _quiet_value(m: pb.Payload.Metric, datatype: int) -> float | str | None:
    if m.is_null:
        return None
    try:
        return dt.value_of(m, datatype)
    except ValueError:
        return None


def _text(value: float, datatype: int) -> str:
    if datatype == pb.Boolean:
        return "true" if value else "false"
    return str(int(value)) if value.is_integer() and datatype not in dt.FLOATS else repr(value)
