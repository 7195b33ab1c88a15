"""A paho-mqtt subscriber (independent of the publisher's aiomqtt) that keeps the last message per topic."""

from __future__ import annotations

import json
import threading
from typing import Any

import paho.mqtt.client as paho


class Subscriber:
    def __init__(self, port: int, topic: str):
        self.messages: dict[str, tuple[bytes, bool]] = {}
        self.count = 0
        self._lock = threading.Lock()
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2)
        self.client.on_message = self._on_message
        self.client.on_connect = lambda c, _u, _f, _r, _p: c.subscribe(topic, qos=1)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def _on_message(self, _c: Any, _u: Any, m: paho.MQTTMessage) -> None:
        with self._lock:
            self.messages[m.topic] = (bytes(m.payload), bool(m.retain))
            self.count += 1

    def json(self, topic: str) -> dict[str, Any] | None:
        with self._lock:
            got = self.messages.get(topic)
        return None if got is None else dict(json.loads(got[0]))

    def retained(self, topic: str) -> bool:
        with self._lock:
            return self.messages.get(topic, (b"", False))[1]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
