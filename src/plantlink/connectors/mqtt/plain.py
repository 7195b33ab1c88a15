"""Plain MQTT topics mapped to tags, as a pure function of (topic, payload, arrival time): one batch per message.

A ``json`` point takes its value at a JSON pointer (RFC 6901) of the payload and, optionally, its time at
another; a ``raw`` point takes the whole payload (a number, ``true``/``false``, or text for a string tag). A
payload that does not fit its mapping gives an ``Issue`` and no sample for that tag: a value is never guessed
(a JSON string is not a number; a missing timestamp is not the arrival time). JSON ``null`` is a bad sample.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from plantlink.connectors.mqtt.config import MqttPoint
from plantlink.connectors.mqtt.sparkplug.host import Issue, Result, Rows
from plantlink.samples import Quality

_UNIT_US = {"s": 1_000_000, "ms": 1_000, "us": 1}
_MISSING = object()


@dataclass(frozen=True)
class Route:
    tag_id: int
    point: MqttPoint
    text: bool


def pointer(doc: Any, ptr: str) -> Any:
    """The value at JSON pointer ``ptr`` in ``doc``, or ``_MISSING``."""
    if ptr == "":
        return doc
    for raw in ptr[1:].split("/"):
        key = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(doc, dict):
            doc = doc.get(key, _MISSING)
        elif isinstance(doc, list) and key.isdigit() and int(key) < len(doc):
            doc = doc[int(key)]
        else:
            return _MISSING
        if doc is _MISSING:
            return doc
    return doc


class PlainRouter:
    """Routes messages of the configured topics to their tags."""

    def __init__(self, routes: Sequence[Route]):
        self.routes: dict[str, list[Route]] = {}
        for r in routes:
            assert r.point.topic is not None
            self.routes.setdefault(r.point.topic, []).append(r)

    @property
    def topics(self) -> list[str]:
        return list(self.routes)

    def handle(self, topic: str, payload: bytes, now_us: int) -> Result:
        out = Result()
        routes = self.routes.get(topic)
        if routes is None:
            out.issues.append(Issue("namespace", topic, "a topic no tag is mapped to"))
            return out
        rows = Rows()
        doc: Any = _MISSING
        for r in routes:
            if r.point.payload == "raw":
                self._raw(out, rows, topic, r, payload, now_us)
                continue
            if doc is _MISSING:
                try:
                    doc = json.loads(payload)
                except (UnicodeDecodeError, ValueError) as exc:
                    out.issues.append(Issue("malformed", topic, f"not JSON ({exc})"))
                    return out
            self._json(out, rows, topic, r, doc, now_us)
        out.batch = rows.batch()
        return out

    @staticmethod
    def _raw(out: Result, rows: Rows, topic: str, r: Route, payload: bytes, now_us: int) -> None:
        try:
            text = payload.decode("utf-8").strip()
        except UnicodeDecodeError:
            out.issues.append(Issue("malformed", topic, "payload is not UTF-8 text"))
            return
        if r.text:
            rows.add(r.tag_id, now_us, text, Quality.GOOD)
            return
        low = text.lower()
        if low in ("true", "false"):
            rows.add(r.tag_id, now_us, 1.0 if low == "true" else 0.0, Quality.GOOD)
            return
        try:
            rows.add(r.tag_id, now_us, float(text), Quality.GOOD)
        except ValueError:
            out.issues.append(Issue("value", topic, f"payload {text[:40]!r} is not a number"))

    @staticmethod
    def _json(out: Result, rows: Rows, topic: str, r: Route, doc: Any, now_us: int) -> None:
        p = r.point
        value = pointer(doc, p.field)
        if value is _MISSING:
            out.issues.append(Issue("value", topic, f"no value at {p.field!r}"))
            return
        ts = now_us
        if p.timestamp_field is not None:
            got = _timestamp(pointer(doc, p.timestamp_field), p.timestamp_unit)
            if got is None:
                out.issues.append(Issue("value", topic, f"no timestamp at {p.timestamp_field!r}"))
                return
            ts = got
        if value is None:
            rows.add(r.tag_id, ts, None, Quality.BAD)
        elif r.text:
            rows.add(r.tag_id, ts, value if isinstance(value, str) else json.dumps(value), Quality.GOOD)
        elif isinstance(value, bool | int | float):
            rows.add(r.tag_id, ts, float(value), Quality.GOOD)
        else:
            out.issues.append(Issue("value", topic, f"{p.field!r} is {type(value).__name__}, not a number"))


def _timestamp(raw: Any, unit: str) -> int | None:
    """Microseconds since the epoch from a number in ``unit`` or ISO 8601 text with an offset; else None."""
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int | float):
        return int(raw * _UNIT_US[unit]) if math.isfinite(raw) else None
    if isinstance(raw, str):
        try:
            dt = datetime.fromisoformat(raw)
        except ValueError:
            return None
        if dt.tzinfo is None:
            return None
        return int(dt.timestamp() * 1_000_000)
    return None
