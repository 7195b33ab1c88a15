"""The ``plantlink`` command line.

Each command imports what it needs when it runs (the web stack, the store, the connectors, asyncio, rich tables):
``plantlink --help`` and ``plantlink check`` answer at once. Help is plain click help (``rich_markup_mode=None``):
flags show no value.
"""

from __future__ import annotations

import json
import logging
import signal
import sys
from collections.abc import Coroutine
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.console import Console
from typer.core import TyperCommand, TyperGroup

from plantlink import __version__
from plantlink.cli_connect import auto_tags, browse, discover
from plantlink.cli_options import data_dir_option, store_url_option
from plantlink.datadir import DATA_DIR_ENV, DEFAULT_DATA_DIR, STORE_FILE, private_umask
from plantlink.errors import ConfigError, PlantlinkError

if TYPE_CHECKING:  # plantlink.app imports the runtime: loaded only by the commands that run a plant
    from plantlink.app import ServeOptions

T = TypeVar("T")

#: Command groups loaded only when named (or listed by --help): they import the web stack, which takes
#: seconds, and ``plantlink check`` must answer at once.
_LAZY = {"users": "Manage users, roles and API tokens.",
         "historian": "The historian's tables (ClickHouse DDL).",
         "audit": "Verify and export the tamper-evident audit log.",
         "export": "Export the raw samples of tags over any range (CSV, Parquet, XLSX).",
         "import": "Backfill history from a CSV or Parquet file (checked whole first, audited).",
         "report": "Write a shift, daily or weekly report (HTML or PDF) of a site, area, line or machine.",
         "plan": "Show what applying a changed plant model to the running server would change.",
         "apply": "Apply a changed plant model to the running server without a restart.",
         "status": "The running server's plant model digest and its devices' health."}
#: The lazy commands that are single commands (plantlink.cli_data), not groups.
_DATA_COMMANDS = ("export", "import")
#: The lazy commands about the running server's plant model (plantlink.cli_model).
_MODEL_COMMANDS = ("plan", "apply", "status")


class _Group(TyperGroup):
    _listing = False  # while --help lists the commands: the lazy groups' one-line help, without loading them

    def list_commands(self, ctx: Any) -> list[str]:
        return [*super().list_commands(ctx), *_LAZY]

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        self._listing = True
        try:
            super().format_commands(ctx, formatter)
        finally:
            self._listing = False

    def get_command(self, ctx: Any, name: str) -> Any:
        if name not in _LAZY:
            return super().get_command(ctx, name)
        if self._listing:
            return TyperCommand(name=name, help=_LAZY[name])
        if name == "report":
            from plantlink.cli_report import report_app

            return typer.main.get_command(report_app)
        if name in _MODEL_COMMANDS:
            from plantlink.cli_model import model_app

            return typer.main.get_command(model_app).commands[name]  # type: ignore[attr-defined]
        if name in _DATA_COMMANDS:
            from plantlink.cli_data import data_app

            return typer.main.get_command(data_app).commands[name]  # type: ignore[attr-defined]
        if name == "historian":
            from plantlink.cli_historian import historian_app

            holder = typer.Typer(add_completion=False, rich_markup_mode=None)
            holder.add_typer(historian_app, name=name, help=_LAZY[name])
            return typer.main.get_command(holder).commands[name]  # type: ignore[attr-defined]
        from plantlink.auth.cli import audit_app, users_app

        # converted as a sub-group, exactly as add_typer on app would
        holder = typer.Typer(add_completion=False, rich_markup_mode=None)
        holder.add_typer({"users": users_app, "audit": audit_app}[name], name=name, help=_LAZY[name])
        return typer.main.get_command(holder).commands[name]  # type: ignore[attr-defined]


app = typer.Typer(
    name="plantlink",
    help="plantlink: connect, monitor, control and exploit the data of brownfield plants.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    cls=_Group,
)
# emoji=False: ":ab:" in a certificate fingerprint (AB:CD:...) must not print as an emoji
err = Console(stderr=True, emoji=False)
out = Console(emoji=False)

#: Exit code of a command that failed on a bug rather than on its input (EX_SOFTWARE of sysexits.h).
INTERNAL_ERROR = 70

DEMO_PLANT = Path(__file__).resolve().parents[2] / "examples" / "demo-plant.yaml"
#: Written by ``plantlink demo`` into its data directory: the demo adds users with published passwords, so
#: ``plantlink run`` refuses such a directory and the demo refuses a real plant's.
DEMO_MARKER = "demo-data.txt"
DataDirHelp = "Where the store (users, audit trail), the historian and the keys are kept."
Verbose = Annotated[bool, typer.Option("--verbose", "-v", help="Log debug messages.")]


class _IsoFormatter(logging.Formatter):
    """Log times as ISO 8601 with the local offset (``2026-11-27T05:46:37.978+01:00``): readable, unambiguous."""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return datetime.fromtimestamp(record.created).astimezone().isoformat(timespec="milliseconds")


class _NoFrameDumps(logging.Filter):
    """pymodbus appends hex dumps of the last frames to its errors (``>>>>> recv: 0x48 0x54 ...``: kilobytes at
    every failed poll of a device that does not speak Modbus): the first line is kept (``--verbose``: all)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name.startswith("pymodbus"):
            msg = record.getMessage()
            if "\n>>>>>" in msg:
                record.msg, record.args = msg.split("\n>>>>>", 1)[0] + " (frames: --verbose)", ()
        return True


def _setup_logging(verbose: bool, quiet: bool = False) -> None:
    level = logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_IsoFormatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    if not verbose:
        handler.addFilter(_NoFrameDumps())
    logging.basicConfig(level=level, handlers=[handler])
    for noisy in ("asyncua", "pymodbus", "alembic", "snap7", "pylogix", "ethernetip"):
        logging.getLogger(noisy).setLevel(logging.WARNING if not verbose else logging.INFO)


def _load(file: Path):  # type: ignore[no-untyped-def]
    from plantlink.model import load_plant

    try:
        return load_plant(file)
    except ConfigError as exc:
        for p in exc.problems:
            err.print(f"error {p}", markup=False, highlight=False, soft_wrap=True)
        err.print(f"{len(exc.problems)} problem(s) in {file}", markup=False, highlight=False)
        raise typer.Exit(1) from None
    except Exception as exc:  # a bug: say so plainly, without a traceback, and fail
        err.print(f"error {file}: internal error while reading the plant model ({type(exc).__name__}: {exc!s:.200}); "
                  "this is a bug in plantlink, please report it with the file", markup=False, highlight=False,
                  soft_wrap=True)
        raise typer.Exit(INTERNAL_ERROR) from None


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
    """Validate a plant model: print every problem (file:line:column [path] message) and exit 1, or a summary.

    A file that is not UTF-8 text, is over 16 MiB, nests too deep or has runaway aliases is refused the same way.
    Settings that are valid but weaken the plant (an OPC UA device with security: none) are printed as
    warnings, located the same way; they do not change the exit code.

    Exit 70 means a bug in plantlink (reported in one line, never a traceback).
    """
    from plantlink.model.lint import model_warnings

    plant = _load(file)
    for w in model_warnings(plant):
        err.print(f"warning {w}", markup=False, highlight=False, soft_wrap=True)
    summary = plant.summary()
    if as_json:
        print(json.dumps(summary))
        return
    from rich.table import Table

    table = Table(title=f"{file}: OK", show_header=False)
    for key in ("enterprise", "sites", "areas", "lines", "machines", "devices", "tags"):
        table.add_row(key, str(summary[key]))
    for proto, n in summary["tags_per_protocol"].items():
        table.add_row(f"tags over {proto}", str(n))
    out.print(table)


@app.command()
def plugins(
    as_json: Annotated[bool, typer.Option("--json", help="Print {group: {name: null or the load error}} as JSON.")]
    = False,
) -> None:
    """List the installed plugins of each kind (connectors, historians, buses, notifiers), each loaded once to
    prove it works: a plugin that fails to load is shown with its error and the exit code is 1."""
    from plantlink import plugins as registry
    from plantlink.errors import PluginError

    found: dict[str, dict[str, str | None]] = {}
    for group in registry.GROUPS:
        found[group] = {}
        for name in registry.names(group):
            try:
                registry.load(group, name)
                found[group][name] = None
            except PluginError as exc:
                found[group][name] = str(exc)
    if as_json:
        print(json.dumps(found))
    else:
        from rich.table import Table

        table = Table(title="plantlink plugins (entry-point groups)")
        for col in ("group", "name", "status"):
            table.add_column(col)
        for group, names in found.items():
            for name, problem in names.items():
                table.add_row(group, name, problem or "ok")
        out.print(table)
    if any(p for names in found.values() for p in names.values()):
        raise typer.Exit(1)


@app.command()
def sim(
    file: Annotated[Path, typer.Argument(help="Plant model whose devices to serve.")] = DEMO_PLANT,
    speed: Annotated[float, typer.Option(help="Simulated seconds per wall second (60 = a minute a second).")] = 1.0,
    seed: Annotated[int, typer.Option(help="Random seed: the same seed gives the same plant.")] = 1,
    duration: Annotated[float, typer.Option(help="Stop after this many wall seconds (0 = until Ctrl-C).")] = 0.0,
    verbose: Verbose = False,
) -> None:
    """Run the virtual plant: serve its machines over real OPC UA, Modbus TCP, S7 and Logix servers on loopback."""
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


app.command()(browse)
app.command()(discover)
app.command(name="auto-tags")(auto_tags)


Host = Annotated[str, typer.Option(help="Address the web server listens on (0.0.0.0 for the whole LAN).")]
Port = Annotated[int, typer.Option(help="Port of the web server (0 picks a free one).")]
NoApi = Annotated[bool, typer.Option("--no-api", help="Run without the web server (API and HMI).")]
Tls = Annotated[bool, typer.Option("--tls", help="Serve HTTPS (self-signed unless --tls-cert/--tls-key).")]
TlsFile = Annotated[Path | None, typer.Option(help="PEM file for --tls.")]
TrustedProxy = Annotated[list[str] | None, typer.Option(
    "--trusted-proxy", metavar="ADDRESS", help="Address or network (10.0.0.5, 10.1.0.0/16) of a reverse proxy "
    "whose X-Forwarded-For names the client; repeat for several. Default: none (the connecting address counts).")]
WalCommitMs = Annotated[float, typer.Option(
    min=0, max=10_000, help="Write-ahead log group commit: fsync arriving samples at most every this many ms "
    "(0 = at once). A sample is shown live and stored only once fsynced (docs/historian.md).")]
WalMaxMb = Annotated[int, typer.Option(
    min=64, help="Size limit of the write-ahead log in MiB. When full (the historian cannot store), arriving "
    "samples are refused and never shown.")]
NoWal = Annotated[bool, typer.Option("--no-wal", help="Run without the write-ahead log: a crash loses up to the "
                                     "last second of samples, including samples already shown live.")]


def _wal_settings(commit_ms: float, max_mb: int, no_wal: bool):  # type: ignore[no-untyped-def]
    from plantlink.wal import WalSettings

    return WalSettings(enabled=not no_wal, commit_ms=commit_ms, max_bytes=max_mb * 2**20)


def _serve_options(no_api: bool, host: str, port: int, tls: bool, tls_cert: Path | None, tls_key: Path | None,
                   demo_users: bool = False, trusted_proxy: list[str] | None = None) -> ServeOptions:
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
    data_dir: Annotated[Path, data_dir_option(DataDirHelp)] = DEFAULT_DATA_DIR,
    duration: Annotated[float, typer.Option(help="Stop after this many seconds (0 = until Ctrl-C or SIGTERM).")] = 0.0,
    as_json: Annotated[bool, typer.Option("--json", help="On stop, print a JSON status object on stdout.")] = False,
    host: Host = "127.0.0.1",
    port: Port = 8080,
    no_api: NoApi = False,
    tls: Tls = False,
    tls_cert: TlsFile = None,
    tls_key: TlsFile = None,
    wal_commit_ms: WalCommitMs = 20.0,
    wal_max_mb: WalMaxMb = 1024,
    no_wal: NoWal = False,
    trusted_proxy: TrustedProxy = None,
    store_url: Annotated[str | None, store_url_option()] = None,
    historian: Annotated[str | None, typer.Option(
        help="The historian: duckdb (a file in the data directory), clickhouse (the ClickHouse engine in this "
             "process) or a ClickHouse server, clickhouse://user:password@host:8123/database. Overrides the "
             "model's historian: (default duckdb).")] = None,
    verbose: Verbose = False,
) -> None:
    """Connect to the machines a plant model describes, store their data, and serve the API and HMI.

    Ctrl-C or SIGTERM stops it cleanly (machine states and downtime end as a clean stop). Refuses the demo's data
    directory (it holds demo users with published passwords)."""
    if (data_dir / DEMO_MARKER).exists():
        _fail(f"{data_dir.absolute()} holds the demo's data (demo users with published passwords): run a plant on "
              f"another data directory, with --data-dir DIR or {DATA_DIR_ENV}=DIR")
    _setup_logging(verbose, quiet=as_json)
    plant = _load(file)
    opts = _serve_options(no_api, host, port, tls, tls_cert, tls_key, trusted_proxy=trusted_proxy)
    wal = _wal_settings(wal_commit_ms, wal_max_mb, no_wal)
    from plantlink.app import run_plant

    status = _run_async(run_plant(plant, data_dir, duration=duration, announce=not as_json, serve=opts, wal=wal,
                                  store_url=store_url, historian=historian))
    if as_json and status is not None:
        print(json.dumps(status))


@app.command()
def demo(
    duration: Annotated[float, typer.Option(help="Stop after this many seconds (0 = until Ctrl-C or SIGTERM).")] = 0.0,
    as_json: Annotated[bool, typer.Option("--json", help="Headless (no web server unless --port is given): "
                                                          "print one JSON status object.")] = False,
    data_dir: Annotated[Path, data_dir_option(
        "Where the demo keeps its store, historian and simulated PLC counters: the same default as every command, "
        "so that users and audit find them. To keep the demo apart from a plant's data, give both another one "
        "(plantlink demo --data-dir plantlink-demo; plantlink users list --data-dir plantlink-demo).")]
    = DEFAULT_DATA_DIR,
    speed: Annotated[float, typer.Option(help="Simulation speed (simulated seconds per second).")] = 1.0,
    seed: Annotated[int, typer.Option(help="Random seed of the simulated plant.")] = 1,
    host: Host = "127.0.0.1",
    port: Annotated[int | None, typer.Option(help="Port of the web server (default 8080; 0 = a free one).")] = None,
    no_api: NoApi = False,
    tls: Tls = False,
    wal_commit_ms: WalCommitMs = 20.0,
    wal_max_mb: WalMaxMb = 1024,
    no_wal: NoWal = False,
    trusted_proxy: TrustedProxy = None,
    verbose: Verbose = False,
) -> None:
    """Run the simulated demo plant with the connectors, historian, engines, API and HMI in one process.

    The simulated PLCs keep their counters in the data directory across runs. Ctrl-C or SIGTERM stops it cleanly.
    The demo adds users with published passwords: it refuses a data directory that holds a plant's store, and
    plantlink run refuses the demo's."""
    from plantlink.app import check_demo_extras, run_demo

    try:
        check_demo_extras(_load(DEMO_PLANT))
    except PlantlinkError as exc:
        _fail(str(exc))
    _mark_demo(data_dir)
    _setup_logging(verbose, quiet=as_json)
    headless = no_api or (as_json and port is None)
    opts = _serve_options(headless, host, 8080 if port is None else port, tls, None, None, demo_users=True,
                          trusted_proxy=trusted_proxy)
    wal = _wal_settings(wal_commit_ms, wal_max_mb, no_wal)
    status = _run_async(run_demo(DEMO_PLANT, data_dir, duration=duration, speed=speed, seed=seed,
                                 announce=not as_json, serve=opts, wal=wal))
    if as_json and status is not None:
        print(json.dumps(status))


def _fail(message: str) -> None:
    err.print(f"error: {message}", markup=False, highlight=False, soft_wrap=True)
    raise typer.Exit(1)


def _mark_demo(data_dir: Path) -> None:
    """Mark ``data_dir`` as the demo's, or refuse it when it holds a plant's store."""
    marker = data_dir / DEMO_MARKER
    if (data_dir / STORE_FILE).exists() and not marker.exists():
        _fail(f"{data_dir.absolute()} holds a plant's data; the demo would add users with published passwords to "
              f"it: run the demo on another data directory, with --data-dir DIR or {DATA_DIR_ENV}=DIR")
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)  # run_plant tightens it, once logging is set up
    marker.write_text("plantlink demo data: users with published passwords; never run a plant on it.\n",
                      encoding="utf-8")


async def _wait(duration: float) -> None:
    import asyncio

    if duration > 0:
        await asyncio.sleep(duration)
    else:
        await asyncio.Event().wait()


log = logging.getLogger("plantlink.cli")
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


async def _until_signal(coro: Coroutine[Any, Any, T]) -> T | None:
    """Run ``coro``; SIGINT (Ctrl-C) and SIGTERM cancel it, and its clean-up stops everything cleanly (state
    intervals and downtime events end as a clean stop). A second signal during that stop cancels again: it
    stops at once, and the next start recovers as after a crash. Returns None when stopped by a signal."""
    import asyncio

    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None
    received: list[str] = []

    def on_signal(sig: signal.Signals) -> None:
        if received:
            log.warning("%s again while stopping: stopping at once", sig.name)
        else:
            log.info("%s: stopping cleanly", sig.name)
        received.append(sig.name)
        task.cancel()

    for sig in STOP_SIGNALS:
        loop.add_signal_handler(sig, on_signal, sig)
    try:
        return await coro
    except asyncio.CancelledError:
        if not received:
            raise
        err.print(f"stopped ({received[0]})" if len(received) == 1 else f"stopped at once ({received[-1]})")
        return None
    finally:
        for sig in STOP_SIGNALS:
            loop.remove_signal_handler(sig)


def _run_async(coro: Coroutine[Any, Any, T]) -> T | None:
    import asyncio

    try:
        return asyncio.run(_until_signal(coro))
    except KeyboardInterrupt:  # a Ctrl-C before the signal handlers were in place
        err.print("stopped")
        return None
    except PlantlinkError as exc:
        from rich.markup import escape

        # one line however long (a store URL and what to do), and brackets in the message kept as they are
        err.print(f"[red]error[/red] {escape(str(exc))}", soft_wrap=True, highlight=False)
        raise typer.Exit(1) from None


from plantlink.cli_edge import edge  # noqa: E402  (registered here: its module imports the helpers above)

app.command()(edge)

from plantlink.cli_doctor import doctor  # noqa: E402

app.command()(doctor)

from plantlink.cli_ingest import ingest  # noqa: E402  (the same)

app.command()(ingest)

from plantlink.cli_serve import serve  # noqa: E402  (the same)

app.command()(serve)


def main() -> None:
    private_umask()  # every file plantlink creates (store, historian, keys, exports) is private to its user
    app()


if __name__ == "__main__":
    main()
