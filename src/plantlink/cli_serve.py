"""``plantlink serve FILE``: the API and HMI only, over a shared store and historian (API replicas,
docs/scale-out.md). Registered in ``plantlink.cli``; the helpers it shares with ``run`` are imported from there
when it runs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from plantlink.cli_options import data_dir_option, store_url_option
from plantlink.datadir import DEFAULT_DATA_DIR


def serve(
    file: Annotated[Path, typer.Argument(help="The plant model YAML file.")],
    data_dir: Annotated[Path, data_dir_option("Where this process keeps its TLS files and, without --store-url, "
                                              "finds the SQLite store and the DuckDB historian.")]
    = DEFAULT_DATA_DIR,
    store_url: Annotated[str | None, store_url_option()] = None,
    historian: Annotated[str | None, typer.Option(
        help="The historian to read: a ClickHouse server, clickhouse://user:password@host:8123/database, or duckdb "
             "(the file in the data directory, opened read-only: no process may write it meanwhile).")] = None,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on (0: a free one).")] = 8080,
    tls: Annotated[bool, typer.Option(help="Serve HTTPS (a self-signed certificate unless --tls-cert).")] = False,
    tls_cert: Annotated[Path | None, typer.Option(help="PEM certificate (chain) for HTTPS.")] = None,
    tls_key: Annotated[Path | None, typer.Option(help="PEM private key of --tls-cert.")] = None,
    trusted_proxy: Annotated[list[str] | None, typer.Option(
        help="A load balancer's address or network whose X-Forwarded-For is believed (repeatable).")] = None,
    poll_interval: Annotated[float, typer.Option(help="Seconds between two reads of the historian's latest "
                                                      "values (they feed the live stream).")] = 1.0,
    duration: Annotated[float, typer.Option(help="Stop after this many seconds (0 = until Ctrl-C or SIGTERM).")] = 0.0,
    as_json: Annotated[bool, typer.Option("--json", help="On stop, print a JSON status object on stdout.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log debug messages.")] = False,
) -> None:
    """Serve the API and HMI of a plant from a shared store and historian: no connectors, no engines, no writer.

    Run several behind any load balancer (no sticky sessions for the API; the HMI needs them): sessions, CSRF
    tokens and login lockout are in the store, history in the historian; `plantlink run` writes them. Routes that
    need a running engine (alarm actions, control) answer 503."""
    from plantlink.cli import _fail, _load, _run_async, _serve_options, _setup_logging
    from plantlink.serving import serve_plant

    if poll_interval <= 0:
        _fail("--poll-interval must be positive")
    _setup_logging(verbose, quiet=as_json)
    plant = _load(file)
    opts = _serve_options(False, host, port, tls, tls_cert, tls_key, trusted_proxy=trusted_proxy)
    status = _run_async(serve_plant(plant, data_dir, opts, historian=historian, store_url=store_url,
                                    poll_interval=poll_interval, announce=not as_json, duration=duration))
    if as_json and status is not None:
        print(json.dumps(status))
