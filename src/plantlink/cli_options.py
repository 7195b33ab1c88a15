"""Command-line options shared by ``plantlink`` and its ``users`` and ``audit`` groups."""

from __future__ import annotations

from typing import Any

import typer

from plantlink.datadir import DATA_DIR_ENV, STORE_URL_ENV


def data_dir_option(help_text: str) -> Any:
    """``--data-dir``: the same default (``./plantlink-data``, or ``$PLANTLINK_DATA_DIR``) for every command."""
    return typer.Option("--data-dir", envvar=DATA_DIR_ENV, show_envvar=True, help=help_text)


STORE_URL_HELP = ("The relational store (users, sessions, audit trail, alarms, states, downtime) by URL, e.g. "
                  "postgresql+psycopg://plantlink@db.example/plantlink (password in ~/.pgpass or the URL). "
                  "Default: SQLite under --data-dir.")


def store_url_option(help_text: str = STORE_URL_HELP) -> Any:
    """``--store-url``: the same option (and ``$PLANTLINK_STORE_URL``) for every command that opens the store."""
    return typer.Option("--store-url", metavar="URL", envvar=STORE_URL_ENV, show_envvar=True, help=help_text)
