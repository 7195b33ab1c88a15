"""Shared fixtures: free loopback ports, temporary data directories."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable

import pytest

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def free_port() -> Callable[[], int]:
    """Call it to get a TCP port that is free on 127.0.0.1 right now."""
    return _free_port
