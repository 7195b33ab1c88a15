"""A real ``nats-server`` with JetStream and its MQTT gateway on free loopback ports, its store in a temp dir.
Missing binary: skipped, but a failure under CI (``.ci/run`` installs Debian's ``nats-server``)."""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
from pathlib import Path

import pytest

from tests.conftest import IN_CI
from tests.edge.harness import free_port
from tests.waiting import wait_for

NATS_SERVER = shutil.which("nats-server") or "/usr/sbin/nats-server"


def nats_binary() -> str:
    if not Path(NATS_SERVER).is_file():
        if IN_CI:
            pytest.fail(f"nats-server is needed under CI and {NATS_SERVER} is missing (apt-get install nats-server)")
        pytest.skip(f"nats-server not installed ({NATS_SERVER}): apt-get install nats-server")
    return NATS_SERVER


def _accepts(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


class NatsServer:
    """``start`` runs the server (again on the same ports, with the same store: streams, consumers and key-value
    buckets survive a restart); ``stop`` ends it (SIGTERM); ``kill`` ends it with SIGKILL."""

    def __init__(self, workdir: Path):
        self.port, self.mqtt_port = free_port(), free_port()
        self.url = f"nats://127.0.0.1:{self.port}"
        self.binary = nats_binary()
        workdir.mkdir(parents=True, exist_ok=True)
        self.conf = workdir / "nats.conf"
        self.conf.write_text(f"listen: 127.0.0.1:{self.port}\nserver_name: plantlink-test\n"
                             f"jetstream {{ store_dir: '{workdir / 'js'}' }}\n"
                             f"mqtt {{ listen: 127.0.0.1:{self.mqtt_port} }}\n")
        self.log = workdir / "nats.log"
        self.proc: subprocess.Popen[bytes] | None = None

    async def start(self) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen([self.binary, "-c", str(self.conf)], stdout=out, stderr=out)
        proc = self.proc
        await wait_for(lambda: (_accepts(self.port) and _accepts(self.mqtt_port)) or proc.poll() is not None,
                       what=f"nats-server listening on {self.port} and {self.mqtt_port}")
        assert proc.poll() is None, self.log.read_text()

    async def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            await asyncio.to_thread(self.proc.wait, 20)
            self.proc = None
