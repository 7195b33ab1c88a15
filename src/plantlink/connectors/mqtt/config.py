"""Configuration models of the MQTT connector: a broker connection (optionally a Sparkplug B host) and a point
(a plain topic with its payload mapping, or a Sparkplug metric)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from plantlink.connectors.plugin import PointIssue
from plantlink.model.schema import Tag
from plantlink.model.tls import MQTTS_PORT, UNVERIFIED, Secret, TlsSettings, tls_switch
from plantlink.model.types import DeviceCommon, PositiveDuration

_TOPIC_CHARS = ("+", "#", "\0")


#: A Sparkplug group, node or host id: no MQTT wildcards, no '/' (spec 3.0, 4.1.1).
SparkplugId = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[^/+#]+$")]


_PLACE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}(/[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}){2}$")


def _place(value: Any) -> Any:
    if not isinstance(value, str) or not _PLACE.match(value):
        raise ValueError(f"expected the line the machines go under as site/area/line (names of letters, digits, "
                         f"_ . -), got {value!r}")
    return value


#: A line of the plant model: ``site/area/line``.
PlacePath = Annotated[str, AfterValidator(_place)]


class AutoTags(BaseModel):
    """Tags created from births at run time (docs/mqtt.md, "Tags from births"): each Sparkplug edge node and
    device becomes a machine under the line ``under``, each metric its tag."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: The line (``site/area/line``) the machines are created under; it must exist in the model.
    under: PlacePath
    #: Most tags created from births for this device; the metrics of later births beyond it are refused (counted
    #: in the device's health).
    max_tags: int = Field(default=1000, ge=1, le=100_000)
    #: Births arriving within this time of each other become one model change (a node with 50 devices: one).
    settle: PositiveDuration = 0.5


class SparkplugHostConfig(BaseModel):
    """This connector as a Sparkplug B 3.0 primary host application of one group."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    group: SparkplugId
    #: The host id in ``spBv1.0/STATE/{host_id}`` (edge nodes that name it as primary host wait for it).
    host_id: SparkplugId = "plantlink"
    #: Where the group's metrics live in the plant model (``site/area/line``); ``plantlink discover`` uses it to
    #: print the metrics as tags ready to paste there.
    under: str = ""
    #: Least time between two rebirth requests to one edge node.
    rebirth_interval: PositiveDuration = 5.0
    #: Off by default: the metrics of births that no tag reads become tags (``AutoTags``).
    auto_tags: AutoTags | None = None


class MqttDevice(DeviceCommon):
    # hide_input_in_errors: a ValidationError's text must never carry a password.
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    host: str = Field(min_length=1)
    port: int = Field(default=1883, ge=1, le=65535)
    client_id: str = Field(default="", max_length=128)
    username: str | None = None
    password: Secret | None = None
    keepalive: int = Field(default=30, ge=5, le=3600)
    timeout: PositiveDuration = 5.0
    reconnect_min: PositiveDuration = 0.5
    reconnect_max: PositiveDuration = 30.0
    sparkplug: SparkplugHostConfig | None = None
    #: TLS to the broker (``tls: true``: the system's CAs; or the options of ``TlsSettings``); the port is then
    #: 8883 unless given.
    tls: Annotated[TlsSettings | None, BeforeValidator(tls_switch)] = None

    @model_validator(mode="before")
    @classmethod
    def _tls_port(cls, data: Any) -> Any:
        if isinstance(data, dict) and "port" not in data and data.get("tls") not in (None, False):
            return {**data, "port": MQTTS_PORT}
        return data

    def model_places(self) -> list[tuple[tuple[str, ...], str]]:
        """The lines of the plant model this device names (field location, ``site/area/line``): the loader
        checks that they exist."""
        auto = self.sparkplug.auto_tags if self.sparkplug is not None else None
        return [] if auto is None else [(("sparkplug", "auto_tags", "under"), auto.under)]


def device_warnings(cfg: BaseModel) -> list[tuple[str, str]]:
    """What ``plantlink check`` warns about in a device's settings: ``tls: {verify: false}``."""
    if isinstance(cfg, MqttDevice) and cfg.tls is not None and not cfg.tls.verify:
        return [("tls", UNVERIFIED)]
    return []


class MqttPoint(BaseModel):
    """A tag's source: a plain ``topic`` (JSON or raw payload) or a Sparkplug ``metric``
    (``node/metric name`` or ``node/device/metric name`` in the device's Sparkplug group)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    topic: str | None = Field(default=None, min_length=1, max_length=65535)
    #: ``json``: the value is at ``field`` (a JSON pointer, RFC 6901, ``/value``, ``/data/0/t``);
    #: ``raw``: the whole payload is the value (a number, ``true``/``false``, or text for a string tag).
    payload: Literal["json", "raw"] = "json"
    field: str = "/value"
    #: JSON pointer of the sample's time (a number in ``timestamp_unit`` since the epoch, or ISO 8601 text);
    #: absent: the arrival time.
    timestamp_field: str | None = None
    timestamp_unit: Literal["s", "ms", "us"] = "ms"
    metric: str | None = Field(default=None, min_length=3)
    #: Where a write to a writable plain-topic tag is published (``{"value": v}`` for ``payload: json``, the
    #: value as text for ``raw``); a Sparkplug metric is written with an NCMD/DCMD instead.
    write_topic: str | None = Field(default=None, min_length=1, max_length=65535)
    write_qos: Literal[0, 1, 2] = 1
    write_retain: bool = False

    @model_validator(mode="after")
    def _shape(self) -> MqttPoint:
        if (self.topic is None) == (self.metric is None):
            raise ValueError("give either 'topic' (a plain MQTT topic) or 'metric' (a Sparkplug metric), not both")
        if self.topic is not None:
            if any(c in self.topic for c in _TOPIC_CHARS):
                raise ValueError(f"topic {self.topic!r}: one topic per tag, without the wildcards + and #")
            if self.topic.startswith("spBv1.0/"):
                raise ValueError(f"topic {self.topic!r} is in the Sparkplug namespace: name its 'metric' instead")
        if self.write_topic is not None:
            if self.topic is None:
                raise ValueError("write_topic is for a plain-topic tag: a Sparkplug metric is written by NCMD/DCMD")
            if any(c in self.write_topic for c in _TOPIC_CHARS):
                raise ValueError(f"write_topic {self.write_topic!r}: a topic without the wildcards + and #")
            if self.write_topic.startswith("spBv1.0/"):
                raise ValueError(f"write_topic {self.write_topic!r} is in the Sparkplug namespace")
            if self.write_topic == self.topic:
                raise ValueError(f"write_topic {self.write_topic!r} is the tag's own topic: the device would read "
                                 "the command back as its value; give its command topic")
        for name in ("field", "timestamp_field"):
            ptr = getattr(self, name)
            if ptr is not None and ptr != "" and not ptr.startswith("/"):
                raise ValueError(f"{name} {ptr!r} is not a JSON pointer (like '/value')")
        if self.metric is not None and self.metric.count("/") < 1:
            raise ValueError(f"metric {self.metric!r}: expected 'node/metric' or 'node/device/metric'")
        return self


def check_points(device: BaseModel, points: Sequence[tuple[Tag, BaseModel]]) -> list[PointIssue]:
    """A Sparkplug metric needs the device's ``sparkplug`` settings; a metric or topic is bound to one tag; a
    writable plain-topic tag needs its ``write_topic`` (and only a writable one has one)."""
    issues: list[PointIssue] = []
    seen: dict[tuple[str, str, str | None], int] = {}
    sparkplug = getattr(device, "sparkplug", None)
    for i, (tag, src) in enumerate(points):
        assert isinstance(src, MqttPoint)
        if tag.writable and src.topic is not None and src.write_topic is None:
            issues.append(PointIssue(i, "write_topic", "a writable plain-topic tag needs 'write_topic' (the topic "
                                                       "the device takes its commands on)"))
        if not tag.writable and src.write_topic is not None:
            issues.append(PointIssue(i, "write_topic", "write_topic on a tag that is not writable (add writable: "
                                                       "true and a control: section, or remove write_topic)"))
        if src.metric is not None and sparkplug is None:
            issues.append(PointIssue(i, "metric", "a Sparkplug metric needs 'sparkplug: {group: ...}' on its device"))
        key = ("metric", src.metric, None) if src.metric is not None else ("topic", src.topic or "", src.field)
        if key in seen:
            what = f"metric {src.metric!r}" if src.metric else f"topic {src.topic!r} field {src.field!r}"
            issues.append(PointIssue(i, key[0], f"{what} is already the source of another tag"))
        seen[key] = i
    return issues
