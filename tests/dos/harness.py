"""plantlink as a person runs it (``plantlink run`` in a child process) with a loopback OPC UA server feeding it,
and the clients of the denial-of-service tests and ``bench/login_flood.py``.

    ua = OpcUaTestServer(port, VARIABLES); await ua.start()
    child = start_plantlink(tmp, ua.port)              # returns once /healthz answers
    cookies = login(child.url)                         # the user USER, a viewer at windsor
    ...
    status = child.stop()                              # the JSON status when started with a duration
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from asyncua import ua

from plantlink.auth import AuthService
from tests.plants import plant_yaml

ROOT = Path(__file__).resolve().parents[2]
PLANT = plant_yaml(
    enterprise="DoS test", site="windsor", timezone="America/Toronto", area="press",
    devices="""
    ua: {{protocol: opcua, endpoint: "opc.tcp://127.0.0.1:{ua}/test/", security: none,
          sampling_interval: 100ms, publishing_interval: 100ms, timeout: 10s,
          reconnect_min: 200ms, reconnect_max: 1s}}
    """,
    machines="""
    - name: p1
      tags:
        - {{name: temp, unit: degC, source: {{device: ua, node: "ns=2;s=Temp"}}}}
    """)
VARIABLES = {"Temp": (20.0, ua.VariantType.Double)}
TAG = "windsor/press/l1/p1/temp"
USER, PASSWORD = "watcher", "watcher-password-1"


def pythonpath() -> str:
    """The repository (for ``tests``) after what the caller put first (e.g. another checkout's ``src``)."""
    return os.pathsep.join(p for p in (os.environ.get("PYTHONPATH"), str(ROOT)) if p)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def raise_own_nofile() -> int:
    """Raise this process's open-file limit to its hard limit (a test holding thousands of sockets)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


@dataclass
class Child:
    proc: subprocess.Popen[bytes]
    url: str
    data_dir: Path
    log: Path

    def log_text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def stop(self, timeout: float = 60) -> dict[str, Any] | None:
        """Wait for a run with a duration to end (else interrupt it); its JSON status, if it printed one."""
        try:
            out, _ = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.send_signal(signal.SIGINT)
            try:
                out, _ = self.proc.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                out, _ = self.proc.communicate()
        lines = [ln for ln in out.decode(errors="replace").splitlines() if ln.startswith("{")]
        return json.loads(lines[-1]) if lines else None

    def interrupt(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(30)
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


def start_plantlink(tmp: Path, ua_port: int, *, args: Sequence[str] = (), duration: float | None = None,
                    nofile: tuple[int, int] | None = None, user: bool = True, scheme: str = "http",
                    stderr_to: Path | None = None) -> Child:
    """``plantlink run`` on a free port (``nofile``: its open-file limits, set before it starts)."""
    data = tmp / "data"
    plant = tmp / "plant.yaml"
    plant.write_text(PLANT.format(ua=ua_port), encoding="utf-8")
    if user:
        auth = AuthService.open(data)
        try:
            auth.create_user(USER, {"windsor": "viewer"}, "test:setup", PASSWORD)
        finally:
            auth.close()
    port = free_port()
    cmd = [sys.executable, "-m", "plantlink.cli", "run", str(plant), "--data-dir", str(data), "--port", str(port),
           *args]
    if duration is not None:
        cmd += ["--duration", str(duration), "--json"]
    log = stderr_to or tmp / "plantlink.log"

    def limits() -> None:
        if nofile is not None:
            resource.setrlimit(resource.RLIMIT_NOFILE, nofile)

    env = dict(os.environ, PYTHONPATH=pythonpath(), PYTHONUNBUFFERED="1")
    with log.open("wb") as err:
        proc = subprocess.Popen(cmd, cwd=tmp, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err,
                                env=env, preexec_fn=limits)
    child = Child(proc, f"{scheme}://127.0.0.1:{port}", data, log)
    deadline = time.monotonic() + 90
    while True:
        if proc.poll() is not None or time.monotonic() > deadline:
            child.interrupt()
            raise RuntimeError(f"plantlink did not start:\n{child.log_text()[-3000:]}")
        try:
            if httpx.get(f"{child.url}/healthz", timeout=2, verify=False).status_code == 200:
                return child
        except httpx.HTTPError:
            pass
        time.sleep(0.2)


def login(url: str, user: str = USER, password: str = PASSWORD) -> httpx.Cookies:
    with httpx.Client(base_url=url, timeout=30, verify=False) as c:
        r = c.post("/api/v1/auth/login", json={"user": user, "password": password})
        assert r.status_code == 200, r.text
        return c.cookies


def percentile(values: Sequence[float], q: float) -> float:
    """The nearest-rank percentile (q in 0..100) of ``values``."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * q // 100))
    return ordered[int(rank) - 1]


def start_flood(url: str, seconds: float, concurrency: int, addresses: int = 40) -> subprocess.Popen[bytes]:
    """``tests.dos.flood`` in its own process; returns once its first requests are out."""
    return _started([sys.executable, "-m", "tests.dos.flood", url, str(seconds), str(concurrency), str(addresses)])


def start_slowloris(url: str, connections: int, seconds: float, addresses: int = 40) -> subprocess.Popen[bytes]:
    """``tests.dos.slowloris`` in its own process; returns once its connections are open."""
    return _started([sys.executable, "-m", "tests.dos.slowloris", url, str(connections), str(seconds),
                     str(addresses)])


def _started(cmd: list[str]) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, env=dict(os.environ, PYTHONPATH=pythonpath()))
    assert proc.stdout is not None
    first = proc.stdout.readline()
    assert b"started" in first, first
    return proc


def flood_result(proc: subprocess.Popen[bytes], timeout: float = 120) -> dict[str, Any]:
    out, _ = proc.communicate(timeout=timeout)
    return dict(json.loads(out.decode().strip().splitlines()[-1]))
