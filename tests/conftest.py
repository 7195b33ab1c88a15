"""Shared fixtures: free loopback ports, temporary data directories."""

from __future__ import annotations

import ast
import functools
import os
import socket
import threading
from collections.abc import Callable

import pytest

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _serialize_ast_parse() -> None:
    """CPython 3.11 keeps the AST constructor's recursion depth in one interpreter-wide counter (gh-106905): two
    threads inside `ast.parse` at once (pytest rendering a failure while a server thread formats a logged
    traceback, which parses the line to place its carets) corrupt it, and pytest stops with INTERNALERROR
    "AST constructor recursion depth mismatch" instead of naming the failed test. One lock makes them take turns."""
    parse = ast.parse
    if getattr(parse, "__wrapped__", None) is not None:
        return
    lock = threading.RLock()

    @functools.wraps(parse)
    def locked(*args, **kwargs):  # type: ignore[no-untyped-def]
        with lock:
            return parse(*args, **kwargs)

    ast.parse = locked


_serialize_ast_parse()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def free_port() -> Callable[[], int]:
    """Call it to get a TCP port that is free on 127.0.0.1 right now."""
    return _free_port
