"""Command-line options shared by ``plantlink`` and its ``users`` and ``audit`` groups."""

from __future__ import annotations

from typing import Any

import typer

from plantlink.datadir import DATA_DIR_ENV


def data_dir_option(help_text: str) -> Any:
    """``--data-dir``: the same default (``./plantlink-data``, or ``$PLANTLINK_DATA_DIR``) for every command."""
    return typer.Option("--data-dir", envvar=DATA_DIR_ENV, show_envvar=True, help=help_text)
