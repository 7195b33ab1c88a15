"""``plantlink ingest FILE``: a worker that stores the NATS JetStream samples stream in its historian
(docs/scale-out.md). Registered in ``plantlink.cli``; the helpers it shares with ``run`` are imported from there
when it runs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from plantlink.cli_options import data_dir_option, store_url_option
from plantlink.datadir import DEFAULT_DATA_DIR


def ingest(
    file: Annotated[Path, typer.Argument(help="The plant model YAML file (its sites and tags).")],
    nats_url: Annotated[str, typer.Option("--nats", help="The NATS server (JetStream enabled).")]
    = "nats://127.0.0.1:4222",
    data_dir: Annotated[Path, data_dir_option("Where this worker's historian is kept.")] = DEFAULT_DATA_DIR,
    worker: Annotated[str, typer.Option(help="This worker's name (default: host name and process id).")] = "",
    ack_wait: Annotated[float, typer.Option(help="Seconds before JetStream redelivers an unacknowledged batch "
                                                 "(below half the lease ttl).")] = 10.0,
    lease_ttl: Annotated[float, typer.Option(help="Seconds a site's lease lasts without renewal (used when the "
                                                  "lease bucket is created).")] = 30.0,
    batch: Annotated[int, typer.Option(help="Batches fetched, stored and acknowledged at once per site (the "
                                            "consumers' max_ack_pending when they are created).")] = 32,
    duration: Annotated[float, typer.Option(help="Stop after this many seconds (0 = until Ctrl-C or SIGTERM).")] = 0.0,
    as_json: Annotated[bool, typer.Option("--json", help="On stop, print a JSON status object on stdout.")] = False,
    historian: Annotated[str, typer.Option(
        help="Where the samples go: duckdb (this worker's own file in its data directory) or the historian all "
             "workers share, clickhouse://user:password@host:8123/database.")] = "duckdb",
    store_url: Annotated[str | None, store_url_option(
        "The relational store all workers share (PostgreSQL: postgresql+psycopg://user@host/db). Given, each "
        "site's owner runs its machine states, downtime and alarms and records them there; not given, no "
        "engines run.")] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log debug messages.")] = False,
) -> None:
    """Store the samples that edges and native NATS publishers send to the JetStream stream PLANTLINK_SAMPLES.

    Each site is owned by one worker at a time (a lease in JetStream's key-value store), which fetches that site's
    batches in order, stores them in its historian and only then acknowledges them. Run any number of workers:
    the sites are spread over them, and a site moves to another worker when its owner dies. With --historian
    clickhouse://... and --store-url all workers write to one historian and one store, and each site's owner runs
    the site's machine states, downtime and alarms. Ctrl-C or SIGTERM
    stops it cleanly (its sites are handed over at once)."""
    from plantlink.cli import _fail, _load, _run_async, _setup_logging
    from plantlink.ingest.stream import ConsumerSettings
    from plantlink.ingest.worker import IngestSettings

    _setup_logging(verbose, quiet=as_json)
    plant = _load(file)
    try:
        settings = IngestSettings(url=nats_url, worker=worker, lease_ttl=lease_ttl,
                                  consumer=ConsumerSettings(ack_wait=ack_wait, max_ack_pending=batch),
                                  historian=historian, store_url=store_url)
    except ValueError as exc:
        _fail(str(exc))
    status = _run_async(run_ingest(plant, data_dir, settings, duration))
    if as_json and status is not None:
        print(json.dumps(status))


async def run_ingest(plant: Any, data_dir: Path, settings: Any, duration: float) -> dict[str, Any]:
    import asyncio

    from plantlink.datadir import private_files, secure_data_dir
    from plantlink.ingest.worker import IngestWorker

    with private_files():
        secure_data_dir(data_dir)
        worker = IngestWorker(plant, data_dir, settings)
        try:
            await worker.start()
            await (asyncio.sleep(duration) if duration > 0 else asyncio.Event().wait())
        finally:
            await worker.stop()
        return worker.status()
