"""The ``plantlink`` command line."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from plantlink import __version__
from plantlink.datadir import private_umask
from plantlink.errors import ConfigError, PlantlinkError

app = typer.Typer(
    name="plantlink",
    help="plantlink: connect, monitor, control and exploit the data of brownfield plants.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
err = Console(stderr=True)


def _register_subcommands() -> None:
    from plantlink.auth.cli import audit_app, users_app

    app.add_typer(users_app, name="users", help="Manage users, roles and API tokens.")
    app.add_typer(audit_app, name="audit", help="Verify and export the tamper-evident audit log.")


_register_subcommands()
out = Console()

DEMO_PLANT = Path(__file__).resolve().parents[2] / "examples" / "demo-plant.yaml"


def _setup_logging(verbose: bool, quiet: bool = False) -> None:
    level = logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)-7s %(name)s: %(message)s", stream=sys.stderr)
    for noisy in ("asyncua", "pymodbus", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING if not verbose else logging.INFO)
    # the simulator's loopback OPC UA server runs without security on purpose; don't warn about it
    logging.getLogger("asyncua.server.server").setLevel(logging.ERROR)


def _load(file: Path):  # type: ignore[no-untyped-def]
    from plantlink.model import load_plant

    try:
        return load_plant(file)
    except ConfigError as exc:
        for p in exc.problems:
            err.print(f"error {p}", markup=False, highlight=False, soft_wrap=True)
        err.print(f"{len(exc.problems)} problem(s) in {file}")
        raise typer.Exit(1) from None


@app.callback(invoke_without_command=True)
def _main(
    version: Annotated[bool, typer.Option("--version", help="Print the version and exit.")] = False,
) -> None:
    if version:
        out.print(__version__)
        raise typer.Exit(0)


@app.command()
def check(
    file: Annotated[Path, typer.Argument(help="The plant model YAML file to validate.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Validate a plant model: print every problem (file:line:column [path] message) and exit 1, or a summary."""
    plant = _load(file)
    summary = plant.summary()
    if as_json:
        print(json.dumps(summary))
        return
    table = Table(title=f"{file}: OK", show_header=False)
    for key in ("enterprise", "sites", "areas", "lines", "machines", "devices", "tags"):
        table.add_row(key, str(summary[key]))
    for proto, n in summary["tags_per_protocol"].items():
        table.add_row(f"tags over {proto}", str(n))
    out.print(table)


@app.command()
def sim(
    file: Annotated[Path, typer.Argument(help="Plant model whose devices to serve.")] = DEMO_PLANT,
    speed: Annotated[float, typer.Option(help="Simulated seconds per wall second (60 = a minute a second).")] = 1.0,
    seed: Annotated[int, typer.Option(help="Random seed: the same seed gives the same plant.")] = 1,
    duration: Annotated[float, typer.Option(help="Stop after this many wall seconds (0 = until Ctrl-C).")] = 0.0,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Run the virtual plant: serve its machines over real OPC UA and Modbus TCP servers on loopback."""
    _setup_logging(verbose)
    plant = _load(file)
    from plantlink.sim import Simulator

    async def main() -> None:
        simulator = Simulator(plant, seed=seed, speed=speed)
        await simulator.start()
        for dev, ep in simulator.endpoints().items():
            err.print(f"serving {dev} at {ep}")
        err.print(f"simulating {len(plant.tags)} tags at {speed}x; Ctrl-C to stop")
        try:
            await _wait(duration)
        finally:
            await simulator.stop()

    _run_async(main())


@app.command()
def browse(
    endpoint: Annotated[str, typer.Argument(help="OPC UA endpoint, e.g. opc.tcp://10.0.0.5:4840/")],
    device: Annotated[str, typer.Option(help="Device id to put in the generated YAML.")] = "opcua-1",
    root: Annotated[str | None, typer.Option(help="Node id to start from (default: the Objects folder).")] = None,
    depth: Annotated[int, typer.Option(help="How deep to walk.")] = 10,
    timeout: Annotated[float, typer.Option(help="Connect timeout in seconds.")] = 5.0,
) -> None:
    """List an OPC UA server's variables as ready-to-paste plant-model tag YAML."""
    from plantlink.connectors.opcua.browse import browse as do_browse
    from plantlink.connectors.opcua.browse import to_yaml

    try:
        variables = asyncio.run(do_browse(endpoint, root=root, max_depth=depth, timeout=timeout))
    except (OSError, TimeoutError, PlantlinkError) as exc:
        err.print(f"[red]error[/red] cannot browse {endpoint}: {exc or type(exc).__name__}")
        raise typer.Exit(1) from None
    print(to_yaml(variables, device), end="")
    err.print(f"{len(variables)} variable(s)")


Host = Annotated[str, typer.Option(help="Address the web server listens on (0.0.0.0 for the whole LAN).")]
Port = Annotated[int, typer.Option(help="Port of the web server (0 picks a free one).")]
NoApi = Annotated[bool, typer.Option("--no-api", help="Run without the web server (API and HMI).")]
Tls = Annotated[bool, typer.Option("--tls", help="Serve HTTPS (self-signed unless --tls-cert/--tls-key).")]
TlsFile = Annotated[Path | None, typer.Option(help="PEM file for --tls.")]
TrustedProxy = Annotated[list[str] | None, typer.Option(
    "--trusted-proxy", help="Address or network (10.0.0.5, 10.1.0.0/16) of a reverse proxy whose X-Forwarded-For "
                            "names the client; repeat for several. Default: none (the connecting address counts).")]


def _serve_options(no_api: bool, host: str, port: int, tls: bool, tls_cert: Path | None, tls_key: Path | None,
                   demo_users: bool = False, trusted_proxy: list[str] | None = None):  # type: ignore[no-untyped-def]
    from plantlink.api.connections import TrustedProxies
    from plantlink.app import ServeOptions

    if (tls_cert is None) != (tls_key is None):
        err.print("error: give both --tls-cert and --tls-key, or neither")
        raise typer.Exit(2)
    try:
        proxies = TrustedProxies(trusted_proxy or ()).entries
    except PlantlinkError as exc:
        err.print(f"error: --trusted-proxy: {exc}", markup=False)
        raise typer.Exit(2) from None
    return ServeOptions(api=not no_api, host=host, port=port, tls=tls or tls_cert is not None,
                        tls_cert=tls_cert, tls_key=tls_key, demo_users=demo_users, trusted_proxies=proxies)


@app.command()
def run(
    file: Annotated[Path, typer.Argument(help="The plant model YAML file.")],
    data_dir: Annotated[Path, typer.Option(help="Where the historian and state are kept.")] = Path("plantlink-data"),
    duration: Annotated[float, typer.Option(help="Stop after this many seconds (0 = until Ctrl-C).")] = 0.0,
    as_json: Annotated[bool, typer.Option("--json", help="On stop, print a JSON status object on stdout.")] = False,
    host: Host = "127.0.0.1",
    port: Port = 8080,
    no_api: NoApi = False,
    tls: Tls = False,
    tls_cert: TlsFile = None,
    tls_key: TlsFile = None,
    trusted_proxy: TrustedProxy = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Connect to the machines a plant model describes, store their data, and serve the API and HMI."""
    _setup_logging(verbose, quiet=as_json)
    plant = _load(file)
    opts = _serve_options(no_api, host, port, tls, tls_cert, tls_key, trusted_proxy=trusted_proxy)
    from plantlink.app import run_plant

    status = _run_async(run_plant(plant, data_dir, duration=duration, announce=not as_json, serve=opts))
    if as_json and status is not None:
        print(json.dumps(status))


@app.command()
def demo(
    duration: Annotated[float, typer.Option(help="Stop after this many seconds (0 = until Ctrl-C).")] = 0.0,
    as_json: Annotated[bool, typer.Option("--json", help="Headless (no web server unless --port is given): "
                                                          "print one JSON status object.")] = False,
    data_dir: Annotated[Path, typer.Option(help="Where the demo keeps its historian.")] = Path("plantlink-data/demo"),
    speed: Annotated[float, typer.Option(help="Simulation speed (simulated seconds per second).")] = 1.0,
    seed: Annotated[int, typer.Option(help="Random seed of the simulated plant.")] = 1,
    host: Host = "127.0.0.1",
    port: Annotated[int | None, typer.Option(help="Port of the web server (default 8080; 0 = a free one).")] = None,
    no_api: NoApi = False,
    tls: Tls = False,
    trusted_proxy: TrustedProxy = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Run the simulated demo plant with the connectors, historian, engines, API and HMI in one process."""
    _setup_logging(verbose, quiet=as_json)
    headless = no_api or (as_json and port is None)
    opts = _serve_options(headless, host, 8080 if port is None else port, tls, None, None, demo_users=True,
                          trusted_proxy=trusted_proxy)
    from plantlink.app import run_demo

    status = _run_async(
        run_demo(DEMO_PLANT, data_dir, duration=duration, speed=speed, seed=seed, announce=not as_json, serve=opts)
    )
    if as_json and status is not None:
        print(json.dumps(status))


async def _wait(duration: float) -> None:
    if duration > 0:
        await asyncio.sleep(duration)
    else:
        await asyncio.Event().wait()


def _run_async(coro):  # type: ignore[no-untyped-def]
    try:
        return asyncio.run(coro)
    except KeyboardInterrupt:
        err.print("stopped")
        return None
    except PlantlinkError as exc:
        err.print(f"[red]error[/red] {exc}")
        raise typer.Exit(1) from None


def main() -> None:
    private_umask()  # every file plantlink creates (store, historian, keys, exports) is private to its user
    app()


if __name__ == "__main__":
    main()
