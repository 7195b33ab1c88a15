"""plantlink as a Sparkplug B 3.0 edge node ``spBv1.0/{group}/N*/{node}`` (docs/mqtt.md, "Publishing").

* Each session (MQTT connection) has a birth/death sequence number ``bdSeq`` (0-255, one more per session):
  the connection's last will is the NDEATH carrying it, and the NBIRTH that follows the connection carries the
  same ``bdSeq`` metric, so a host can tell a stale death from the current one.
* NBIRTH (``seq`` 0): every published tag as a metric (its name is the tag's path ``site/area/line/machine/tag``,
  its alias the tag's id, its datatype from the tag's type, its property ``engUnit`` the unit, its last value
  or null), plus ``bdSeq`` and ``Node Control/Rebirth``.
* NDATA (``seq`` +1 mod 256): the metrics whose value changed, by alias only (with their names too when
  ``names_in_data``), each with its timestamp. A sample without a value (bad quality) is sent as a null metric.
* NCMD ``Node Control/Rebirth`` = true: a new NBIRTH (``seq`` 0 again, same ``bdSeq``).
* A clean stop publishes the NDEATH itself before disconnecting.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import aiomqtt
from google.protobuf.message import DecodeError

from plantlink.connectors.mqtt.sparkplug import sparkplug_b_pb2 as pb
from plantlink.connectors.mqtt.sparkplug.host import BDSEQ_METRIC, NAMESPACE, REBIRTH_METRIC
from plantlink.publish.base import Publisher, Sample, Target
from plantlink.publish.commands import Command
from plantlink.publish.sparkplug_cmd import DATATYPES, metric_commands

log = logging.getLogger("plantlink.publish")

UNIT_PROPERTY = "engUnit"


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _set_value(m: pb.Payload.Metric, target: Target, s: Sample | None) -> None:
    """The metric's value field by its datatype; null when there is no value."""
    if s is None or (s.text if target.type == "string" else s.value) is None:
        m.is_null = True
    elif target.type == "string":
        m.string_value = s.text or ""
    elif target.type == "bool":
        m.boolean_value = bool(s.value)
    elif target.type == "int":
        m.long_value = int(s.value or 0) & 0xFFFF_FFFF_FFFF_FFFF  # two's complement in the unsigned field
    else:
        m.double_value = float(s.value or 0.0)


def _same(a: Sample | None, b: Sample) -> bool:
    """The same value and quality (a repeated value is not a change)."""
    return a is not None and (a.value, a.text, a.quality) == (b.value, b.text, b.quality)


class SparkplugEdge(Publisher):
    name = "sparkplug edge node"
    via = "sparkplug"

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        sp = self.settings.sparkplug
        assert sp is not None
        self.group, self.node = sp.group, sp.node
        self.names_in_data = sp.names_in_data
        self.base = f"{NAMESPACE}/{sp.group}"
        #: The session's bdSeq (-1 before the first), the message sequence number, births published.
        self.bdseq = -1
        self.seq = 0
        self.births = 0
        self._lock = asyncio.Lock()  # one message at a time: a rebirth never interleaves with an NDATA's seq

    def topic(self, kind: str) -> str:
        return f"{self.base}/{kind}/{self.node}"

    def death_payload(self) -> bytes:
        msg = pb.Payload(timestamp=_now_ms())
        msg.metrics.add(name=BDSEQ_METRIC, datatype=pb.Int64, long_value=self.bdseq)
        data: bytes = msg.SerializeToString()
        return data

    def make_client(self) -> aiomqtt.Client:
        self.bdseq = (self.bdseq + 1) % 256
        will = aiomqtt.Will(self.topic("NDEATH"), self.death_payload(), qos=1, retain=False)
        return aiomqtt.Client(**self.client_args(), will=will)

    async def on_connect(self, client: aiomqtt.Client) -> None:
        await client.subscribe(self.topic("NCMD"), qos=1)
        if self.commands is not None:
            await client.subscribe(self.topic("DCMD") + "/+", qos=1)
        await self.birth(client)

    def birth_payload(self) -> bytes:
        """NBIRTH: bdSeq, Node Control/Rebirth, then every tag with its last value (pending ones included)."""
        now = _now_ms()
        msg = pb.Payload(timestamp=now, seq=0)
        msg.metrics.add(name=BDSEQ_METRIC, datatype=pb.Int64, long_value=self.bdseq, timestamp=now)
        msg.metrics.add(name=REBIRTH_METRIC, datatype=pb.Boolean, boolean_value=False, timestamp=now)
        for tid, target in self.targets.items():
            s = self._last.get(tid)
            m = msg.metrics.add(name=target.path, alias=tid, datatype=DATATYPES[target.type],
                                timestamp=s.ts_ms if s is not None else now)
            _set_value(m, target, s)
            m.properties.keys.append(UNIT_PROPERTY)
            m.properties.values.add(type=pb.String, string_value=target.unit)
        data: bytes = msg.SerializeToString()
        return data

    async def birth(self, client: aiomqtt.Client) -> None:
        """Publish an NBIRTH with every value known so far (pending values are folded into it)."""
        async with self._lock:
            self._last.update(self._pending)
            self._pending = {}
            self.seq = 0
            await client.publish(self.topic("NBIRTH"), self.birth_payload(), qos=0)
            self.births += 1
            self.published += 1

    async def send(self, client: aiomqtt.Client, items: dict[int, Sample]) -> None:
        """One NDATA of the changed metrics, by alias."""
        async with self._lock:
            await self._ndata(client, items)

    async def _ndata(self, client: aiomqtt.Client, items: dict[int, Sample]) -> None:
        changed = {tid: s for tid, s in items.items() if not _same(self._last.get(tid), s)}
        if not changed:
            return
        seq = (self.seq + 1) % 256
        msg = pb.Payload(timestamp=_now_ms(), seq=seq)
        for tid, s in changed.items():
            target = self.targets[tid]
            m = msg.metrics.add(alias=tid, datatype=DATATYPES[target.type], timestamp=s.ts_ms)
            if self.names_in_data:
                m.name = target.path
            _set_value(m, target, s)
        try:
            await client.publish(self.topic("NDATA"), msg.SerializeToString(), qos=0)
        except aiomqtt.MqttError:
            self.repend(changed)
            raise
        self.seq = seq
        self._last.update(changed)
        self.published += 1

    async def on_message(self, client: aiomqtt.Client, topic: str, payload: bytes) -> None:
        """NCMD: a rebirth request, and writes (metrics other than ``Node Control/*``); DCMD: refused writes."""
        device = topic.startswith(self.topic("DCMD") + "/")
        if topic != self.topic("NCMD") and not device:
            return
        try:
            msg = pb.Payload.FromString(payload)
        except DecodeError as exc:
            log.warning("%s: ignored a malformed command on %s: %s", self.name, topic, exc)
            if self.commands is not None:
                self.command(Command("sparkplug", topic, None, problem=f"not a Sparkplug B payload ({exc})"),
                             client, None)
            return
        for cmd in metric_commands(topic, msg, self.targets, device):
            self.command(cmd, client, None)  # the answer is the next NDATA (and the audit trail)
        if not device and any(m.name == REBIRTH_METRIC and m.WhichOneof("value") == "boolean_value" and m.boolean_value
               for m in msg.metrics):
            log.info("%s: rebirth requested on %s", self.name, topic)
            await self.birth(client)

    async def before_disconnect(self, client: aiomqtt.Client) -> None:
        await client.publish(self.topic("NDEATH"), self.death_payload(), qos=1)

    def status(self) -> dict[str, Any]:
        return {**super().status(), "group": self.group, "node": self.node, "bdseq": self.bdseq, "seq": self.seq,
                "births": self.births}
