"""The live feed: what the live stream's hub needs of the running system besides the latest values
(``services.latest.listen``): the state engine's changes as they happen."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from plantlink.engines.states import StateChange

if TYPE_CHECKING:
    from plantlink.services.deps import StateSource

__all__ = ["LiveFeed", "StateChange"]


class LiveFeed:
    def __init__(self, states: Callable[[], StateSource | None]):
        self._states = states

    def on_state_change(self, listener: Callable[[StateChange], None]) -> bool:
        """Call ``listener`` with each machine state change; False when no state engine runs."""
        engine = self._states()
        if engine is None:
            return False
        engine.add_listener(listener)
        return True
