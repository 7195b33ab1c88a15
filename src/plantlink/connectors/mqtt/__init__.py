"""MQTT connector: plain topics (JSON or raw payloads) mapped to tags, and a Sparkplug B 3.0 host application.

Importing this package (the plugin: config models and the static check) imports neither aiomqtt nor protobuf;
``MqttConnector`` (``plugin.connector``) does, on first use. See docs/mqtt.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from plantlink.connectors.mqtt.config import MqttDevice, MqttPoint, SparkplugHostConfig, check_points, device_warnings
from plantlink.connectors.plugin import ConnectorPlugin

if TYPE_CHECKING:
    from plantlink.connectors.mqtt.client import MqttConnector

plugin = ConnectorPlugin(
    name="mqtt",
    device_model=MqttDevice,
    source_model=MqttPoint,
    connector="plantlink.connectors.mqtt.client:MqttConnector",
    check=check_points,
    warnings=device_warnings,
)

__all__ = ["MqttConnector", "MqttDevice", "MqttPoint", "SparkplugHostConfig", "plugin"]


def __getattr__(name: str) -> Any:
    if name == "MqttConnector":
        return plugin.connector
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
