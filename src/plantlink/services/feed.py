"""The live feed: what the live stream's hub needs of the running system, and nothing more: a bus subscription
(lossy and bounded for fan-out) and the state engine's changes as they happen."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from plantlink.engines.states import StateChange
from plantlink.errors import Unavailable

if TYPE_CHECKING:
    from plantlink.bus import Bus, Subscription
    from plantlink.services.deps import StateSource

__all__ = ["LiveFeed", "StateChange"]


class LiveFeed:
    def __init__(self, bus: Callable[[], Bus | None], states: Callable[[], StateSource | None]):
        self._bus, self._states = bus, states

    def subscribe(self, name: str, maxsize: int = 0) -> Subscription:
        """A subscription to every batch published from now on (``maxsize`` > 0: lossy, the oldest dropped)."""
        bus = self._bus()
        if bus is None:
            raise Unavailable("the bus is not running")
        return bus.subscribe(name, maxsize=maxsize)

    def on_state_change(self, listener: Callable[[StateChange], None]) -> bool:
        """Call ``listener`` with each machine state change; False when no state engine runs."""
        engine = self._states()
        if engine is None:
            return False
        engine.add_listener(listener)
        return True
