"""The served application for the security tests: ``tests.security.child`` in a child process (the demo plant
simulated, a Runtime, the API and HMI behind authentication as ``plantlink demo`` serves them), on a free port.
Known downtime events are written into the store before it starts. Clients are plain synchronous httpx
clients over real TCP; ``Users.login(name)`` returns one logged in with a session cookie (cached)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from plantlink.samples import now_us
from plantlink.store import Store, default_url
from tests.security.child import EXTRA, ROLES, SITES, password_of, user_of

ROOT = Path(__file__).resolve().parents[2]
MIN_US = 60 * 1_000_000
W_LINE = "windsor/stamping/press-line-1"
W_MACHINE = f"{W_LINE}/conveyor1"
W_TAG = f"{W_LINE}/press1/tonnage"
W_RUN = f"{W_LINE}/conveyor1/run_command"
W_CRITICAL = "windsor/body-paint/body-line-1/oven1/zone1_setpoint"
W_ALARM = f"{W_LINE}/press1/lube_pressure:lube_low"
D_LINE = "detroit/machining/cnc-cell-2"
D_MACHINE = f"{D_LINE}/cnc2"
D_RUN = f"{D_MACHINE}/run_command"
#: demo users (plantlink.auth.DEMO_USERS) used as helpers outside the matrix
DEMO_PW = {"admin": "demo-admin-pw", "engineer": "demo-engineer-pw", "operator": "demo-operator-pw",
           "viewer": "demo-viewer-pw", "detroit-operator": "demo-detroit-pw"}


@dataclass
class Served:
    url: str
    routes: list[dict[str, Any]]
    data_dir: Path
    log: Path
    events: dict[str, int]
    proc: subprocess.Popen[bytes]
    passwords: dict[str, str] = field(default_factory=dict)

    def client(self, local_address: str | None = None, **kw: Any) -> httpx.Client:
        transport = httpx.HTTPTransport(local_address=local_address) if local_address else None
        return httpx.Client(base_url=self.url, timeout=20, transport=transport, **kw)

    def log_text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")


def seed(data_dir: Path) -> dict[str, int]:
    """One closed downtime event at each site, before the runtime starts."""
    store = Store.open(default_url(data_dir))
    try:
        t0 = now_us() - 3 * 60 * MIN_US
        out = {}
        for key, machine, line, site in (("windsor", W_MACHINE, W_LINE, "windsor"),
                                         ("windsor2", f"{W_LINE}/press1", W_LINE, "windsor"),
                                         ("detroit", D_MACHINE, D_LINE, "detroit")):
            ev = store.open_event(machine, line, site, t0, "faulted", None)
            store.close_event(ev, t0 + 10 * MIN_US, "faulted", micro=False)
            out[key] = ev
        return out
    finally:
        store.close()


def _start(tmp: Path) -> Served:
    data_dir, info, log = tmp / "data", tmp / "info.json", tmp / "server.log"
    events = seed(data_dir)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    with log.open("wb") as err:
        proc = subprocess.Popen([sys.executable, "-m", "tests.security.child", str(data_dir), str(info)],
                                cwd=ROOT, stdin=subprocess.PIPE, stdout=err, stderr=err, env=env)
    deadline = time.monotonic() + 300  # generous: a loaded machine starts the child and its devices slowly
    while not info.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"the server did not start:\n{log.read_text(errors='replace')[-3000:]}")
        time.sleep(0.1)
    data = json.loads(info.read_text(encoding="utf-8"))
    passwords = {user_of(s, r): password_of(s, r) for s in SITES for r in ROLES} | DEMO_PW
    passwords |= {n: pw for n, (_, pw) in EXTRA.items()}
    return Served(data["url"], data["routes"], data_dir, log, events, proc, passwords)


@pytest.fixture(scope="session")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    srv = _start(tmp_path_factory.mktemp("security"))
    try:
        yield srv
    finally:
        assert srv.proc.stdin is not None
        srv.proc.stdin.close()
        try:
            srv.proc.wait(30)
        except subprocess.TimeoutExpired:
            srv.proc.kill()
            srv.proc.wait(10)


class Users:
    """Logged-in session clients, one per user, made on first use (logins cost an argon2 hash each)."""

    def __init__(self, served: Served):
        self.served = served
        self.clients: dict[str, httpx.Client] = {}
        self.csrf: dict[str, str] = {}

    def login(self, name: str) -> httpx.Client:
        if name not in self.clients:
            c = self.served.client()
            r = c.post("/api/v1/auth/login", json={"user": name, "password": self.served.passwords[name]})
            assert r.status_code == 200, r.text
            self.csrf[name] = r.json()["csrf_token"]
            c.headers["x-csrf-token"] = self.csrf[name]
            self.clients[name] = c
        return self.clients[name]

    def close(self) -> None:
        for c in self.clients.values():
            c.close()


@pytest.fixture(scope="session")
def users(served: Served) -> Iterator[Users]:
    u = Users(served)
    yield u
    u.close()
