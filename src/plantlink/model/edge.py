"""The ``edge:`` and ``edges:`` sections of the plant model (docs/edge.md).

``edge:`` makes ``plantlink edge FILE`` an edge box: it runs the model's connectors and forwards their batches to
a central ``plantlink run`` over MQTT, through a bounded disk-backed store-and-forward queue. ``edges:`` makes
``plantlink run`` that central: it subscribes to the edges' batches, stores them and shows each edge's health.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import BeforeValidator, Field, field_validator, model_validator

from plantlink.model.broker import UrlBroker
from plantlink.model.schema_base import Strict
from plantlink.model.types import Name, PositiveDuration

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(B|KB|MB|GB|KiB|MiB|GiB)?\s*$")
_SIZE_UNITS = {None: 1, "B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "KiB": 2**10, "MiB": 2**20, "GiB": 2**30}
_TOPIC_ROOT = re.compile(r"^[^+#\0]*[^+#\0/]$")


def parse_size(value: Any) -> Any:
    """``1GiB``, ``500MB``, ``65536`` (bytes) -> an int of bytes; other values are left to the validator."""
    if isinstance(value, str):
        m = _SIZE.match(value)
        if not m:
            raise ValueError(f"{value!r} is not a size: a number with B, KB, MB, GB, KiB, MiB or GiB (1GiB)")
        return int(float(m.group(1)) * _SIZE_UNITS[m.group(2)])
    return value


def parse_fraction(value: Any) -> Any:
    """``80%`` or ``0.8`` -> 0.8."""
    if isinstance(value, str) and value.strip().endswith("%"):
        try:
            return float(value.strip()[:-1]) / 100
        except ValueError:
            raise ValueError(f"{value!r} is not a percentage (80%)") from None
    return value


Size = Annotated[int, BeforeValidator(parse_size), Field(ge=64 * 2**10)]
Fraction = Annotated[float, BeforeValidator(parse_fraction), Field(gt=0, le=1)]


class BrokerSettings(UrlBroker):
    """An MQTT broker: ``mqtt://host[:port]`` or ``mqtts://host[:port]`` (TLS, ``tls``), optional credentials
    (never logged)."""

    #: The topic root: batches go to ``{root}/{edge}/batch``, status to ``{root}/{edge}/status``.
    root: str = Field(default="plantlink/edge", max_length=512)

    @field_validator("root")
    @classmethod
    def _root(cls, value: str) -> str:
        if not _TOPIC_ROOT.match(value):
            raise ValueError(f"root {value!r}: a topic prefix without + and # that does not end with /")
        return value


class QueueSettings(Strict):
    #: Where the queue's segments are kept (default: ``edge-queue`` in the data directory).
    dir: str | None = None
    #: The most the queue keeps on disk while the central is unreachable.
    max_size: Size = 2**30
    #: When full: ``drop_oldest`` deletes the oldest data (counted) to keep reading; ``stop_reading`` pauses
    #: the connectors until there is room again (nothing read is dropped; what the devices do meanwhile is missed).
    when_full: Literal["drop_oldest", "stop_reading"] = "drop_oldest"
    #: The backlog (fraction of ``max_size``) from which the "queue nearly full" alarm is raised.
    alarm_at: Fraction = 0.8
    #: One segment file's size (the unit ``drop_oldest`` deletes): 16MiB by default, at most max_size / 4.
    segment_size: Size = 16 * 2**20

    @model_validator(mode="after")
    def _segments(self) -> QueueSettings:
        if self.segment_size * 4 > self.max_size:
            raise ValueError(f"segment_size ({self.segment_size} bytes) must be at most a quarter of max_size "
                             f"({self.max_size} bytes): drop_oldest deletes a segment at a time")
        return self


class NatsCentral(Strict):
    """A NATS JetStream central (docs/scale-out.md): batches go natively to the stream ``PLANTLINK_SAMPLES``."""

    #: ``nats://host[:port]``
    url: str = Field(min_length=1, max_length=512)
    #: The site the edge's samples belong to (a subject token: the site's partition at the central).
    site: str = Field(min_length=1, max_length=128)

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme != "nats" or not parts.hostname:
            raise ValueError(f"{value!r}: a NATS server as nats://host[:port]")
        return value

    @property
    def host(self) -> str:
        return urlsplit(self.url).hostname or ""


class EdgeSettings(Strict):
    """This box is an edge: ``plantlink edge FILE`` forwards its connectors' samples to ``central`` (an MQTT
    broker) or ``nats`` (a NATS JetStream central)."""

    #: The edge's name, unique among the central's edges (topic level, health key).
    name: Name
    central: BrokerSettings | None = None
    nats: NatsCentral | None = None
    queue: QueueSettings = Field(default_factory=QueueSettings)
    #: Most batches published and not yet acknowledged by the broker.
    inflight: int = Field(default=32, ge=1, le=1000)
    #: How often the edge publishes its status (backlog, sequence) to the central.
    status_interval: PositiveDuration = 2.0
    #: Batches the broker acknowledged that the central (heard from meanwhile) has not stored after this long are
    #: sent again: the broker lost them (a restart, a queue limit). MQTT only.
    resend_after: PositiveDuration = 30.0

    @model_validator(mode="after")
    def _one_central(self) -> EdgeSettings:
        if (self.central is None) == (self.nats is None):
            raise ValueError("an edge forwards to one central: give either central: {mqtt: ...} or "
                             "nats: {url: nats://..., site: ...}")
        return self

    @property
    def target(self) -> str:
        """Where it forwards, for logs: the broker's or the NATS server's URL."""
        return self.central.mqtt if self.central is not None else self.nats.url if self.nats else ""


class EdgesSettings(Strict):
    """This ``plantlink run`` is a central: it stores the batches of the edges that forward to ``broker``."""

    broker: BrokerSettings
    #: The MQTT client id of the central's persistent session (batches queued in the broker during a central
    #: outage are delivered when it is back): unique per central.
    client_id: str = Field(default="plantlink-central", min_length=1, max_length=128)
    #: The edges expected (names); others are accepted too and listed in health as unexpected.
    expected: list[Name] = Field(default_factory=list)
