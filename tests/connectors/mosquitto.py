"""A real Mosquitto broker on a free loopback port (Debian's /usr/sbin/mosquitto), for the MQTT connector's
tests. Missing binary: skipped, but a failure under CI (``.ci/run`` installs it)."""

from __future__ import annotations

import asyncio
import getpass
import shutil
import socket
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as paho
import pytest

from tests.conftest import IN_CI, _free_port
from tests.connectors.pki import Pki, make_pki
from tests.waiting import wait_for

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"


def mosquitto_binary() -> str:
    if not Path(MOSQUITTO).is_file():
        if IN_CI:
            pytest.fail(f"Mosquitto is needed under CI and {MOSQUITTO} is missing (apt-get install mosquitto)")
        pytest.skip(f"Mosquitto not installed ({MOSQUITTO}): apt-get install mosquitto")
    return MOSQUITTO


def _accepts(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


@dataclass(frozen=True)
class TlsListener:
    """A second listener of the broker, TLS on ``port`` with the server certificate of ``pki``;
    ``require_certificate``: clients must show a certificate signed by the test CA."""

    port: int
    pki: Pki
    require_certificate: bool = False

    def conf(self) -> str:
        p = self.pki
        # user: as root, Mosquitto would read the keys as user mosquitto, who cannot read the test's directory
        stay = f"user {getpass.getuser()}\n"
        return (f"{stay}listener {self.port} 127.0.0.1\ncafile {p.ca}\ncertfile {p.server_cert}\n"
                f"keyfile {p.server_key}\nrequire_certificate {str(self.require_certificate).lower()}\n")


class MosquittoServer:
    """``start`` runs the broker (again, on the same port) and publishes ``retained`` (topic -> payload),
    retained; ``stop`` ends it (SIGTERM: without ``persistence`` its retained messages and sessions are gone with it;
    with it, they are saved in ``workdir`` and restored by the next ``start``)."""

    def __init__(self, port: int, workdir: Path, retained: dict[str, bytes] | None = None, persistence: bool = False,
                 tls: TlsListener | None = None, max_queued: int = 0):
        self.port = port
        #: The TLS listener's port (None: no TLS listener).
        self.tls_port = tls.port if tls is not None else None
        self.binary = mosquitto_binary()
        self.conf = workdir / "mosquitto.conf"
        # persistence: sessions, queued QoS 1 messages and retained ones survive a restart (saved on stop).
        # Either way a client's queue of QoS 1 messages is unbounded: Mosquitto's default of 1000 drops the rest
        # for a subscriber that stops reading for a moment (a busy test machine), which no test is about
        keep = (f"persistence true\npersistence_location {workdir}/\n" if persistence else "persistence false\n")
        keep += f"max_queued_messages {max_queued}\n"  # 0: unbounded
        listeners = f"listener {port} 127.0.0.1\n" + (tls.conf() if tls is not None else "")
        self.conf.write_text(f"{listeners}allow_anonymous true\n{keep}")
        self.log = workdir / "mosquitto.log"
        self.retained = dict(retained or {})
        self.proc: subprocess.Popen[bytes] | None = None
        self.pki = tls.pki if tls is not None else None

    async def start(self) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen([self.binary, "-c", str(self.conf)], stdout=out, stderr=out)
        ports = [p for p in (self.port, self.tls_port) if p is not None]
        await wait_for(lambda: all(_accepts(p) for p in ports) or self.proc is None or self.proc.poll() is not None,
                       what=f"mosquitto listening on {ports}")
        assert self.proc.poll() is None, self.log.read_text()
        for topic, payload in self.retained.items():
            await self.publish(topic, payload, retain=True)

    async def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            await asyncio.to_thread(self.proc.wait, 10)
            self.proc = None

    async def kill(self) -> None:
        """A crash (SIGKILL): nothing is saved, whatever ``persistence`` says (Mosquitto saves on a clean stop)."""
        if self.proc is not None:
            self.proc.kill()
            await asyncio.to_thread(self.proc.wait, 10)
            self.proc = None

    async def publish(self, topic: str, payload: bytes, retain: bool = False) -> None:
        """Publish once from a short-lived client (QoS 1, acknowledged before it returns)."""
        await asyncio.to_thread(self._publish, topic, payload, retain)

    def _publish(self, topic: str, payload: bytes, retain: bool) -> None:
        c = paho.Client(paho.CallbackAPIVersion.VERSION2)
        c.connect("127.0.0.1", self.port)
        c.loop_start()
        try:
            c.publish(topic, payload, qos=1, retain=retain).wait_for_publish(10)
        finally:
            c.disconnect()
            c.loop_stop()


class Edge:
    """A Sparkplug edge node as a paho-mqtt client (independent of the connector's aiomqtt): publishes, and
    keeps what it receives (the host's STATE, its NCMDs)."""

    def __init__(self, port: int, subscribe: list[str]):
        self.received: list[tuple[str, bytes, bool]] = []
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="edge-test")
        self.client.on_message = lambda _c, _u, m: self.received.append((m.topic, m.payload, bool(m.retain)))
        self.client.connect("127.0.0.1", port)
        for t in subscribe:
            self.client.subscribe(t, qos=1)
        self.client.loop_start()

    def publish(self, topic: str, payload: bytes) -> None:
        self.client.publish(topic, payload, qos=1).wait_for_publish(10)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


class CutProxy:
    """A TCP proxy on a free port in front of the broker (or any TCP server); ``cut()`` drops every connection
    through it without an MQTT DISCONNECT, as a failed network would (the broker then publishes the clients'
    wills); ``freeze()`` keeps the connections open but forwards nothing (a cable pulled: no reset, no answer)
    until ``thaw()``."""

    def __init__(self, port: int, target: int):
        self.port, self.target = port, target
        self.frozen = False
        self._writers: list[asyncio.StreamWriter] = []
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target)
        self._writers += [writer, up_writer]
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                if self.frozen:
                    continue  # lost on the way
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    def freeze(self) -> None:
        self.frozen = True

    def thaw(self) -> None:
        """Forward again (the connections a client gave up meanwhile are dropped, as its peer would)."""
        self.frozen = False
        self.cut()

    def cut(self) -> None:
        for w in self._writers:
            w.transport.abort()
        self._writers.clear()

    async def stop(self) -> None:
        self.cut()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


@asynccontextmanager
async def mosquitto(workdir: Path, persistence: bool = False, retained: dict[str, bytes] | None = None,
                    tls: Pki | bool = False, require_certificate: bool = False) -> AsyncIterator[MosquittoServer]:
    """A broker on a free port with its files in ``workdir`` (created), stopped on exit even when the body fails.
    ``tls``: also a TLS listener on a second free port (``tls_port``), with the certificates of the given ``Pki``
    (``True``: made in ``workdir/pki``, kept as ``srv.pki``)."""
    workdir.mkdir(parents=True, exist_ok=True)
    pki = make_pki(workdir / "pki") if tls is True else tls or None
    port = _free_port()
    tls_port = next(p for p in iter(_free_port, None) if p != port)
    listener = TlsListener(tls_port, pki, require_certificate) if pki is not None else None
    srv = MosquittoServer(port, workdir, retained, persistence, listener)
    await srv.start()
    try:
        yield srv
    finally:
        await srv.stop()
