"""Contract suites for plugin authors: base test classes that every plugin of a kind must pass.

Each suite is a class of pytest tests; a plugin's own test module subclasses it, names the class ``Test...``
and provides what the suite cannot know (how to open the store, build the bus, start the server)::

    from plantlink.testing.historian import HistorianContract

    class TestMyHistorian(HistorianContract):
        def make_historian(self, location, retention=None):
            h = MyHistorian(location / "db", retention=retention)
            h.open()
            return h

Suites: ``HistorianContract`` (``plantlink.testing.historian``), ``BusContract`` (``.bus``),
``NotifierContract`` (``.notifier``), ``ConnectorContract`` (``.connector``). The built-in plugins pass them
(``tests/historian``, ``tests/bus``, ``tests/notify``, ``tests/connectors``). docs/plugins.md explains each.

The suites need ``pytest`` and ``pytest-asyncio`` (test dependencies, not runtime ones): importing this
package does not import them; importing a suite module does.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_SUITES = {
    "HistorianContract": "plantlink.testing.historian",
    "BusContract": "plantlink.testing.bus",
    "NotifierContract": "plantlink.testing.notifier",
    "ConnectorContract": "plantlink.testing.connector",
}


def __getattr__(name: str) -> Any:
    if name in _SUITES:
        return getattr(import_module(_SUITES[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["BusContract", "ConnectorContract", "HistorianContract", "NotifierContract"]
