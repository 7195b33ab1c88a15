"""The Unified Namespace publisher: every selected tag on ``[root/]enterprise/site/area/line/machine/tag`` with a
JSON payload ``{"value", "unit", "quality", "timestamp", "ts_ms"}``, retained (docs/mqtt.md, "Publishing").

After a reconnect every tag's last value is published again (a broker restarted without persistence has lost
its retained messages). The bus side and the connection are ``plantlink.publish.base``'s.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

import aiomqtt

from plantlink.model.publish import PublishSettings
from plantlink.publish.base import Publisher, Sample, Target
from plantlink.publish.commands import uns_command
from plantlink.samples import Quality

__all__ = ["Sample", "Target", "UnsPublisher", "payload_of", "targets_of", "topic_of"]

_TOPIC_UNSAFE = str.maketrans({"/": "_", "+": "_", "#": "_", "\0": "_"})


def topic_of(root: str, enterprise: str, path: str) -> str:
    """The UNS topic of a tag: ``[root/]enterprise/site/area/line/machine/tag`` (MQTT wildcards and '/' in the
    enterprise name replaced by '_')."""
    parts = [root] if root else []
    return "/".join([*parts, enterprise.strip().translate(_TOPIC_UNSAFE), path])


def json_value(typ: str, s: Sample) -> Any:
    """The value by the tag's type (None when there is none)."""
    if typ == "string":
        return s.text
    if s.value is None or not math.isfinite(s.value):
        return None
    if typ == "int":
        return int(s.value)
    if typ == "bool":
        return bool(s.value)
    return s.value


def payload_of(target: Target, s: Sample) -> bytes:
    """The JSON payload: value by the tag's type (null when there is none), unit, quality name, timestamps."""
    return json.dumps({"value": json_value(target.type, s), "unit": target.unit,
                       "quality": Quality.name_of(s.quality), "timestamp": s.iso, "ts_ms": s.ts_ms},
                      separators=(",", ":")).encode()


SET = "/set"
RESULT = "/result"


class UnsPublisher(Publisher):
    """Publishes the tags; takes write commands on ``<tag topic>/set`` and answers on ``<tag topic>/set/result``
    (``plantlink.publish.commands``)."""

    name = "uns publisher"
    via = "uns"

    def make_client(self) -> aiomqtt.Client:
        return aiomqtt.Client(**self.client_args())

    @property
    def command_filter(self) -> str | None:
        """The subscription of the command topics: ``[root/]enterprise/+/+/+/+/+/set`` (None: no tags)."""
        t = next(iter(self.targets.values()), None)
        if t is None or self.commands is None:
            return None
        return t.topic[: len(t.topic) - len(t.path)] + "+/+/+/+/+" + SET

    async def on_connect(self, client: aiomqtt.Client) -> None:
        self._set_topics = {t.topic + SET: t.path for t in self.targets.values()}
        flt = self.command_filter
        if flt is not None:
            await client.subscribe(flt, qos=1)
        self.repend(self._last)

    async def on_message(self, client: aiomqtt.Client, topic: str, payload: bytes) -> None:
        if topic.endswith(SET):
            self.command(uns_command(topic, payload, self._set_topics.get(topic)), client, topic + RESULT)

    async def send(self, client: aiomqtt.Client, items: dict[int, Sample]) -> None:
        uns = self.settings.uns
        for i, (tid, sample) in enumerate(items.items()):
            target = self.targets[tid]
            try:
                await client.publish(target.topic, payload_of(target, sample), qos=uns.qos, retain=uns.retain)
            except aiomqtt.MqttError:
                self.repend(dict(list(items.items())[i:]))
                raise
            self._last[tid] = sample
            self.published += 1


def targets_of(settings: PublishSettings, enterprise: str, tags: Sequence[tuple[int, str, str, str]]) -> list[Target]:
    """The published tags from ``(tag_id, path, unit, type)``: those ``include``/``exclude`` select."""
    root = settings.uns.root
    return [Target(tid, path, topic_of(root, enterprise, path), unit, typ)
            for tid, path, unit, typ in tags if settings.selects(path)]
