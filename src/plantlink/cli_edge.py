"""``plantlink edge FILE``: run the model's connectors on an edge box and forward their samples to a central
``plantlink run`` over MQTT, through a disk-backed store-and-forward queue (docs/edge.md). Registered in
``plantlink.cli``; the helpers it shares with ``run`` are imported from there when it runs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from plantlink.cli_options import data_dir_option
from plantlink.datadir import DEFAULT_DATA_DIR


def edge(
    file: Annotated[Path, typer.Argument(help="The plant model YAML file, with an edge: section.")],
    data_dir: Annotated[Path, data_dir_option(
        "Where the store-and-forward queue is kept (edge-queue/, unless edge.queue.dir says otherwise).")]
    = DEFAULT_DATA_DIR,
    duration: Annotated[float, typer.Option(help="Stop after this many seconds (0 = until Ctrl-C or SIGTERM).")] = 0.0,
    as_json: Annotated[bool, typer.Option("--json", help="On stop, print a JSON status object on stdout.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log debug messages.")] = False,
) -> None:
    """Run the connectors of a plant model on an edge box and forward their samples to a central plantlink.

    Samples are durable in the queue on disk before they are sent (MQTT QoS 1); they leave it only once the
    central's broker acknowledged them, so a link or central outage, a broker restart or a kill of this process
    loses nothing the queue accepted. Ctrl-C or SIGTERM stops it cleanly."""
    from plantlink.cli import _fail, _load, _run_async, _setup_logging

    _setup_logging(verbose, quiet=as_json)
    plant = _load(file)
    if plant.spec.edge is None:
        _fail(f"{file}: no edge: section: plantlink edge needs the edge's name and its central broker, e.g.\n"
              "  edge: {name: press-hall, central: {mqtt: mqtt://central.example:1883}}\n(see docs/edge.md)")
    status = _run_async(run_edge(plant, data_dir, duration))
    if as_json and status is not None:
        print(json.dumps(status))


async def run_edge(plant: Any, data_dir: Path, duration: float) -> dict[str, Any]:
    import asyncio

    from plantlink.datadir import private_files, secure_data_dir
    from plantlink.edge.node import EdgeNode

    with private_files():
        secure_data_dir(data_dir)
        node = EdgeNode(plant, data_dir)
        try:
            await node.start()
            await (asyncio.sleep(duration) if duration > 0 else asyncio.Event().wait())
        finally:
            await node.stop()
        return node.status()
