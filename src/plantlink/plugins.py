"""Plugin registry: a plain name-to-factory map per kind, filled from entry points.

Built-ins are registered exactly like third-party plugins, in ``pyproject.toml``::

    [project.entry-points."plantlink.connectors"]
    modbus = "plantlink.connectors.modbus:plugin"

Groups: ``plantlink.connectors``, ``plantlink.historians``, ``plantlink.buses``.
"""

from __future__ import annotations

from functools import cache
from importlib.metadata import entry_points
from typing import Any

from plantlink.errors import PluginError


@cache
def _entry_points(group: str) -> dict[str, Any]:
    return {ep.name: ep for ep in entry_points(group=group)}


def names(group: str) -> list[str]:
    """The plugin names registered in ``group``."""
    return sorted(_entry_points(group))


_loaded: dict[tuple[str, str], Any] = {}


def load(group: str, name: str) -> Any:
    """Load plugin ``name`` of ``group``; raises PluginError naming what exists when it is unknown."""
    key = (group, name)
    if key in _loaded:
        return _loaded[key]
    eps = _entry_points(group)
    if name not in eps:
        known = ", ".join(sorted(eps)) or "none installed"
        raise PluginError(f"unknown {group.split('.')[-1][:-1]} plugin {name!r} (known: {known})")
    try:
        obj = eps[name].load()
    except Exception as exc:  # a broken third-party plugin must not look like a config typo
        raise PluginError(f"plugin {name!r} of {group} failed to load: {exc}") from exc
    _loaded[key] = obj
    return obj


def register(group: str, name: str, obj: Any) -> None:
    """Register a plugin object at run time (tests, embedding applications)."""
    _loaded[(group, name)] = obj
    _entry_points(group)  # make sure the cache exists, then add a stand-in entry
    _entry_points(group).setdefault(name, _Registered(obj))


class _Registered:
    def __init__(self, obj: Any):
        self._obj = obj

    def load(self) -> Any:
        return self._obj
