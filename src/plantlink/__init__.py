"""plantlink: connect, monitor, control and exploit the data of brownfield plants."""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["__version__", "connect"]


def __getattr__(name: str) -> Any:
    """``plantlink.connect`` (the Python API, ``plantlink.client``), imported on first use: ``import
    plantlink`` stays cheap (the CLI imports it)."""
    if name == "connect":
        from plantlink.client import connect

        return connect
    raise AttributeError(f"module 'plantlink' has no attribute {name!r}")
