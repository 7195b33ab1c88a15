"""The bus carries sample batches from connectors to their consumers (historian, engines, API)."""

from plantlink.bus.base import Bus, Subscription
from plantlink.bus.inproc import InProcBus

__all__ = ["Bus", "InProcBus", "Subscription"]
