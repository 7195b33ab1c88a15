"""The bus carries sample batches from connectors to their consumers (historian, engines, API)."""

from __future__ import annotations

from typing import Any

from plantlink import plugins
from plantlink.bus.base import Bus, Subscription
from plantlink.bus.inproc import InProcBus


def open_bus(name: str = "inproc", **options: Any) -> Bus:
    """Create a bus by plugin name (``plantlink.buses``: ``inproc``, later MQTT or NATS)."""
    factory = plugins.load(plugins.BUSES, name)
    bus: Bus = factory(**options)
    return bus


__all__ = ["Bus", "InProcBus", "Subscription", "open_bus"]
