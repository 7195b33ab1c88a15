"""``plantlink doctor FILE``: check a deployment's model, data directory, store, historian, devices and brokers
and print what is wrong in plain words (``plantlink.doctor``). Registered in ``plantlink.cli``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from plantlink.cli_options import data_dir_option
from plantlink.datadir import DEFAULT_DATA_DIR

_STYLE = {"ok": "green", "warn": "yellow", "fail": "red"}


def doctor(
    file: Annotated[Path, typer.Argument(help="The plant model YAML file the deployment runs.")],
    data_dir: Annotated[Path, data_dir_option("The data directory plantlink run uses.")] = DEFAULT_DATA_DIR,
    store_url: Annotated[str | None, typer.Option(
        help="The relational store's URL, when not the SQLite file in the data directory "
             "(postgresql+psycopg://USER@HOST/DB).")] = None,
    historian: Annotated[str | None, typer.Option(
        help="The historian when not the model's historian: (duckdb, or a ClickHouse URL "
             "clickhouse://user:password@host:8123/database).")] = None,
    nats: Annotated[str | None, typer.Option(
        help="A NATS server the ingest workers use (nats://host:4222): checked for JetStream.")] = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for each device or broker.", min=0.1)] = 3.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the findings as a JSON list.")] = False,
) -> None:
    """Check what a deployment depends on and say what is wrong: the plant model, the data directory and its
    free disk, the relational store (reachable, schema revision), the historian (the DuckDB file, or a
    ClickHouse opened and closed), NATS (JetStream on), and a connection to every device and MQTT broker the
    model names (brokers with its credentials); then every tag of the Modbus, S7 and Logix devices that
    answered is read once, and the tags they refuse are named.

    Nothing is changed. Exit 1 when any check fails; warnings do not change the exit code."""
    import asyncio
    import logging

    from plantlink.doctor import diagnose

    # the findings say what the connectors and clients would log (a refused tag, a lost connection): not twice
    logging.basicConfig(level=logging.ERROR)
    logging.getLogger("plantlink.connectors").setLevel(logging.CRITICAL)

    found = asyncio.run(diagnose(file, data_dir, store_url, timeout, historian, nats))
    if as_json:
        print(json.dumps([f.to_dict() for f in found]))
    else:
        from rich.console import Console
        from rich.table import Table

        table = Table(title=f"plantlink doctor: {file}")
        for col in ("check", "", "found", "what to do"):
            table.add_column(col, overflow="fold")
        for f in found:
            table.add_row(f.check, f"[{_STYLE[f.status]}]{f.status}[/]", f.detail, f.fix)
        Console().print(table)
    if any(f.status == "fail" for f in found):
        raise typer.Exit(1)
