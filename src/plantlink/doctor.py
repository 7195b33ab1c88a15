"""``plantlink doctor``: check what a deployment depends on and say what is wrong in plain words.

Each check gives :class:`Finding`s: ``ok``, ``warn`` (works, but should be looked at) or ``fail`` (will not
work), each with what was found and, when something is wrong, what to do. Nothing is changed: the store is
not migrated, the historian is opened read-only (or found in use), devices and brokers get a connection and
nothing else (an MQTT CONNECT and DISCONNECT for brokers, which proves the credentials too).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import time
from collections.abc import Awaitable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from plantlink.model.tls import TlsSettings

Status = Literal["ok", "warn", "fail"]

#: The port each protocol's devices listen on when the model gives none.
DEFAULT_PORTS = {"modbus": 502, "s7": 102, "logix": 44818, "opcua": 4840, "mqtt": 1883}
MIB = 2**20
DISK_FAIL = 200 * MIB
DISK_WARN = 2048 * MIB


@dataclass(frozen=True)
class Finding:
    check: str
    status: Status
    detail: str
    fix: str = ""

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


def hide_password(url: str) -> str:
    """``url`` with its password (if any) replaced by ``***``: safe to print."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()


# -- the data directory and what is in it ----------------------------------------------------------------------
def check_data_dir(data_dir: Path) -> list[Finding]:
    name = "data directory"
    if not data_dir.exists():
        parent = next((p for p in data_dir.absolute().parents if p.exists()), Path("/"))
        if os.access(parent, os.W_OK):
            return [Finding(name, "ok", f"{data_dir} does not exist yet; plantlink creates it (in {parent})")]
        return [Finding(name, "fail", f"{data_dir} does not exist and {parent} is not writable",
                        f"create it as the user plantlink runs as: mkdir -m 700 {data_dir}")]
    if not os.access(data_dir, os.W_OK | os.X_OK):
        return [Finding(name, "fail", f"{data_dir} is not writable by this user",
                        f"run plantlink as the directory's owner, or chown it to this user ({_user()})")]
    found = [Finding(name, "ok", f"{data_dir} is writable")]
    if data_dir.stat().st_mode & 0o077:
        found.append(Finding(f"{name} permissions", "warn",
                             f"{data_dir} can be read by other users (it holds the store and keys)",
                             f"chmod 700 {data_dir}"))
    free = shutil.disk_usage(data_dir).free
    level: Status = "fail" if free < DISK_FAIL else "warn" if free < DISK_WARN else "ok"
    fix = "" if level == "ok" else "free space on that disk, shorten the retention, or move the data directory"
    found.append(Finding("free disk", level, f"{free / MIB:,.0f} MiB free where {data_dir} is", fix))
    return found


def _user() -> str:
    try:
        import pwd

        return pwd.getpwuid(os.getuid()).pw_name
    except (ImportError, KeyError):
        return str(os.getuid())


def check_historian(path: Path) -> Finding:
    name = "historian"
    if not path.exists():
        return Finding(name, "ok", f"{path} not created yet; plantlink run creates it")
    import duckdb

    try:
        con = duckdb.connect(str(path), read_only=True)
    except duckdb.IOException as exc:
        if "lock" in str(exc).lower():
            return Finding(name, "ok", f"{path} ({path.stat().st_size / MIB:,.1f} MiB) is open in a running "
                                       "plantlink (it holds the file's lock)")
        return Finding(name, "fail", f"{path} cannot be opened: {str(exc).splitlines()[0]}",
                       "restore it from a backup, or move it aside to start an empty historian")
    except duckdb.Error as exc:
        return Finding(name, "fail", f"{path} cannot be opened: {str(exc).splitlines()[0]}",
                       "a file written by a newer plantlink: upgrade plantlink; otherwise restore a backup")
    try:
        tags = con.execute("SELECT count(*) FROM tags").fetchone()
    except duckdb.Error:
        tags = None
    finally:
        con.close()
    held = f", {tags[0]:,} tags" if tags else ""
    return Finding(name, "ok", f"{path} opens ({path.stat().st_size / MIB:,.1f} MiB{held})")


def check_store(url: str) -> Finding:
    """The relational store: reachable, and its schema at this plantlink's revision (nothing is migrated)."""
    import sqlalchemy as sa

    from plantlink.store import migrate

    name, shown = "relational store", hide_password(url)
    try:
        u = sa.make_url(url)
    except sa.exc.ArgumentError:
        return Finding(name, "fail", f"{shown} is not a database URL",
                       "use sqlite:///PATH or postgresql+psycopg://USER@HOST/DB")
    if u.get_backend_name() == "sqlite" and u.database and not Path(u.database).exists():
        return Finding(name, "ok", f"{shown}: not created yet; plantlink run creates it")
    try:
        engine = sa.create_engine(u, connect_args=_connect_timeout(u))
    except (ImportError, sa.exc.ArgumentError) as exc:
        return Finding(name, "fail", f"{shown}: {exc}", "install the driver: pip install 'plantlink[postgres]'")
    try:
        have = migrate.current(engine)
    except sa.exc.OperationalError as exc:
        return Finding(name, "fail", f"{shown}: {_first_line(exc.orig or exc)}", _store_fix(str(exc)))
    except sa.exc.SQLAlchemyError as exc:
        return Finding(name, "fail", f"{shown}: {_first_line(exc)}", "check the URL and the database server")
    finally:
        engine.dispose()
    head = migrate.head()
    if have == head:
        return Finding(name, "ok", f"{shown}: schema at revision {head}")
    if have is None:
        return Finding(name, "warn", f"{shown}: reachable, no plantlink schema yet",
                       "plantlink run creates the schema on its first start")
    if have in migrate.revisions():
        return Finding(name, "warn", f"{shown}: schema at {have}, older than this plantlink's {head}",
                       "take a backup; plantlink run upgrades the schema when it starts")
    return Finding(name, "fail", f"{shown}: schema revision {have} is newer than this plantlink knows ({head})",
                   "upgrade plantlink to the version that wrote it (never downgrade the store)")


def _connect_timeout(u: Any) -> dict[str, Any]:
    return {"connect_timeout": 5} if u.get_backend_name() == "postgresql" else {}


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _store_fix(text: str) -> str:
    low = text.lower()
    if "does not exist" in low and "database" in low:
        return "create the database (createdb NAME) or correct the URL's database name"
    if "password" in low or "authentication" in low:
        return "check the user and password in the URL (or the server's pg_hba.conf)"
    return "is the database server running and reachable from here (host, port, firewall)?"


# -- devices and brokers ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Endpoint:
    check: str
    host: str
    port: int
    kind: Literal["tcp", "mqtt", "nats", "http"] = "tcp"
    username: str | None = None
    password: str | None = None
    #: TLS to an MQTT broker (``mqtts://``, a device's ``tls:``)
    tls: TlsSettings | None = None


def endpoints(plant: Any) -> list[Endpoint]:
    """Every device and broker the model connects to (disabled devices left out)."""
    found: list[Endpoint] = []
    for name, dev in plant.spec.devices.items():
        if not dev.enabled:
            continue
        f = dev.fields()
        host, port = _host_port(str(f.get("endpoint") or ""), f.get("host"), f.get("port"), dev.protocol)
        info = plant.devices.get(name)
        tls = getattr(info.config, "tls", None) if info is not None and dev.protocol == "mqtt" else None
        if host:
            found.append(Endpoint(f"device {name} ({dev.protocol})", host, info.config.port if tls else port,
                                  "mqtt" if dev.protocol == "mqtt" else "tcp", f.get("username"),
                                  _secret(f.get("password")), tls))
    spec = plant.spec
    brokers = [("publish broker", spec.publish), ("central broker (edge:)", spec.edge and spec.edge.central),
               ("edges broker (edges:)", spec.edges and spec.edges.broker)]
    for label, b in brokers:
        if b:
            found.append(Endpoint(label, b.host, b.port, "mqtt", b.username, _secret(b.password), b.tls_settings))
    if spec.edge is not None and spec.edge.nats is not None:
        found.append(nats_endpoint("central NATS (edge:)", spec.edge.nats.url))
    return found


def nats_endpoint(label: str, url: str) -> Endpoint:
    parts = urlsplit(url)
    return Endpoint(label, parts.hostname or "", parts.port or 4222, "nats")


def _secret(value: Any) -> str | None:
    """A password as text, whether the model holds it as a pydantic secret or a plain string."""
    if value is None:
        return None
    get = getattr(value, "get_secret_value", None)
    return str(get() if get else value)


def _host_port(url: str, host: Any, port: Any, protocol: str) -> tuple[str, int]:
    if url:
        parts = urlsplit(url)
        return parts.hostname or "", parts.port or DEFAULT_PORTS.get(protocol, 0)
    return (str(host) if host else ""), int(port or DEFAULT_PORTS.get(protocol, 0))


async def check_endpoint(ep: Endpoint, timeout: float) -> Finding:
    where = f"{ep.host}:{ep.port}"
    t0 = time.perf_counter()
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(ep.host, ep.port), timeout)
    except socket.gaierror:
        return Finding(ep.check, "fail", f"{ep.host} does not resolve", "correct the host name, or use its address")
    except ConnectionRefusedError:
        return Finding(ep.check, "fail", f"{where} refused the connection",
                       "is the device or server on, and the port right? (nothing listens there)")
    except TimeoutError:
        return Finding(ep.check, "fail", f"{where} did not answer within {timeout:g} s",
                       "check the address, the network path and firewalls between here and there")
    except OSError as exc:
        return Finding(ep.check, "fail", f"{where}: {exc.strerror or exc}", "check the address and the network")
    ms = (time.perf_counter() - t0) * 1000
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    if ep.kind == "mqtt":
        from plantlink.doctor_mqtt import mqtt_check

        return await mqtt_check(ep, timeout, ms)
    if ep.kind == "nats":
        return await _nats_info(ep, timeout, ms)
    return Finding(ep.check, "ok", f"{where} accepts connections ({ms:.0f} ms)")


async def _nats_info(ep: Endpoint, timeout: float, ms: float) -> Finding:
    """A NATS server greets every connection with ``INFO {json}``: its version and whether JetStream is on."""
    import json

    where = f"{ep.host}:{ep.port}"
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(ep.host, ep.port), timeout)
        try:
            line = await asyncio.wait_for(reader.readline(), timeout)
        finally:
            writer.close()
    except (OSError, TimeoutError) as exc:
        return Finding(ep.check, "fail", f"{where} did not greet as a NATS server ({exc or 'timed out'})",
                       "is nats-server running there (not TLS only)?")
    if not line.startswith(b"INFO "):
        return Finding(ep.check, "fail", f"{where} answers, but not as a NATS server", "check the port (4222)")
    try:
        info = json.loads(line[5:])
    except ValueError:
        info = {}
    version = info.get("version", "?")
    if not info.get("jetstream"):
        return Finding(ep.check, "fail", f"{where}: nats-server {version} without JetStream",
                       "enable it: jetstream { store_dir: ... } in nats.conf (docs/scale-out.md)")
    return Finding(ep.check, "ok", f"{where}: nats-server {version}, JetStream on ({ms:.0f} ms to connect)")


async def check_endpoints(eps: Iterable[Endpoint], timeout: float) -> list[Finding]:
    return list(await asyncio.gather(*(guarded(ep.check, check_endpoint(ep, timeout)) for ep in eps)))


async def guarded(check: str, finding: Awaitable[Finding]) -> Finding:
    """``finding``, or when the check itself raises (a bug), a finding that says so: the other checks still run."""
    try:
        return await finding
    except Exception as exc:
        return Finding(check, "fail", f"the check itself failed ({type(exc).__name__}: {str(exc)[:200]})",
                       "a bug in plantlink doctor: please report it")


# -- everything -------------------------------------------------------------------------------------------------
def check_model(file: Path) -> tuple[Any, list[Finding]]:
    from plantlink.errors import ConfigError
    from plantlink.model import load_plant

    try:
        plant = load_plant(file)
    except ConfigError as exc:
        shown = "; ".join(str(p) for p in exc.problems[:3])
        more = f" (and {len(exc.problems) - 3} more)" if len(exc.problems) > 3 else ""
        return None, [Finding("plant model", "fail", f"{len(exc.problems)} problem(s): {shown}{more}",
                              f"plantlink check {file} lists them all with their lines")]
    s = plant.summary()
    return plant, [Finding("plant model", "ok", f"{file}: {s['machines']} machines, {s['tags']} tags, "
                                                f"{s['devices']} devices")]


async def check_remote_historian(spec: str, data_dir: Path, timeout: float) -> Finding:
    """A historian other than the DuckDB file (ClickHouse): opened and closed again, within ``timeout``."""
    from plantlink.historian import historian_target, open_historian

    backend, options, shown = historian_target(spec, data_dir)
    name = f"historian ({backend})"

    def probe() -> None:
        open_historian(backend, **options).close()

    try:
        await asyncio.wait_for(asyncio.to_thread(probe), timeout * 10)
    except TimeoutError:
        return Finding(name, "fail", f"{shown} did not answer within {timeout * 10:g} s",
                       "is the server running and reachable from here (host, port, firewall)?")
    except Exception as exc:  # the backend's own error says what and where (without the password)
        return Finding(name, "fail", f"{shown}: {_first_line(exc)}", "see docs/historian-clickhouse.md")
    return Finding(name, "ok", f"{shown} opens")


async def diagnose(file: Path, data_dir: Path, store_url: str | None = None, timeout: float = 3.0,
                   historian: str | None = None, nats: str | None = None) -> list[Finding]:
    """Every check, in the order a person reads them. ``historian``: the backend or URL when not the model's
    ``historian:`` (default the DuckDB file); ``nats``: a NATS server the deployment's ingest workers use."""
    from plantlink.historian import default_path
    from plantlink.store import default_url

    plant, found = check_model(file)
    found += check_data_dir(data_dir)
    found.append(await asyncio.to_thread(check_store, store_url or default_url(data_dir)))
    spec = historian or (plant.spec.historian if plant is not None else None) or "duckdb"
    if spec == "duckdb":
        found.append(await asyncio.to_thread(check_historian, default_path(data_dir)))
    else:
        found.append(await check_remote_historian(spec, data_dir, timeout))
    eps = endpoints(plant) if plant is not None else []
    if nats:
        eps.append(nats_endpoint("NATS (--nats)", nats))
    checked = await check_endpoints(eps, timeout)
    found += checked
    if plant is not None:  # the polled devices that answered: every tag read once
        from plantlink.doctor_tags import probe_tags

        reachable = {f.check.split(" ")[1] for f in checked if f.check.startswith("device ") and f.status == "ok"}
        found += await probe_tags(plant, reachable)
    return found
