"""Plugin registry: a plain name-to-factory map per kind, filled from entry points.

Built-ins are registered exactly like third-party plugins, in ``pyproject.toml``::

    [project.entry-points."plantlink.connectors"]
    modbus = "plantlink.connectors.modbus:plugin"

Groups (docs/plugins.md describes what each kind's entry point must name):

- ``plantlink.connectors``: a ``ConnectorPlugin`` (built-ins: ``modbus``, ``opcua``)
- ``plantlink.historians``: a factory ``(**options) -> Historian`` (``duckdb``, ``clickhouse``)
- ``plantlink.buses``: a factory ``(**options) -> Bus`` (``inproc``)
- ``plantlink.notifiers``: a factory ``(notifications) -> Channel`` for one target kind (``email``, ``webhook``)

``load(group, name)`` is the one way the runtime, the CLI and the model checks find a plugin.
"""

from __future__ import annotations

from functools import cache
from importlib.metadata import entry_points
from typing import Any

from plantlink.errors import PluginError

CONNECTORS = "plantlink.connectors"
HISTORIANS = "plantlink.historians"
BUSES = "plantlink.buses"
NOTIFIERS = "plantlink.notifiers"
GROUPS = (CONNECTORS, HISTORIANS, BUSES, NOTIFIERS)

_KIND = {CONNECTORS: "connector", HISTORIANS: "historian", BUSES: "bus", NOTIFIERS: "notifier"}


@cache
def _entry_points(group: str) -> dict[str, Any]:
    return {ep.name: ep for ep in entry_points(group=group)}


def names(group: str) -> list[str]:
    """The plugin names registered in ``group``."""
    return sorted(_entry_points(group))


_loaded: dict[tuple[str, str], Any] = {}


def load(group: str, name: str) -> Any:
    """Load plugin ``name`` of ``group``. An unknown name raises PluginError naming the group, the name asked
    for and the names available; a plugin that fails to import raises PluginError with the cause."""
    key = (group, name)
    if key in _loaded:
        return _loaded[key]
    eps = _entry_points(group)
    if name not in eps:
        known = ", ".join(sorted(eps)) or "none installed"
        kind = _KIND.get(group, group.rsplit(".", 1)[-1])
        raise PluginError(f"unknown {kind} plugin {name!r} (known: {known}) in entry-point group {group}")
    try:
        obj = eps[name].load()
    except Exception as exc:  # a broken third-party plugin must not look like a config typo
        raise PluginError(f"plugin {name!r} of {group} failed to load: {exc}") from exc
    _loaded[key] = obj
    return obj


def register(group: str, name: str, obj: Any) -> None:
    """Register a plugin object at run time (tests, embedding applications)."""
    _loaded[(group, name)] = obj
    _entry_points(group).setdefault(name, _Registered(obj))


class _Registered:
    def __init__(self, obj: Any):
        self._obj = obj

    def load(self) -> Any:
        return self._obj
