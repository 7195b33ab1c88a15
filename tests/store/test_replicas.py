"""Two `plantlink serve` processes on one PostgreSQL store and one historian answer as one (API replicas,
docs/scale-out.md): a session made on A works on B, a CSRF token from A is accepted by B, failed logins counted
on either throttle both, the same history, latest values and audit trail from both, and the live stream works on both.

The historian is a DuckDB file written beforehand and opened read-only by both processes (each from its own data
directory, through a symlink: nothing but the store and the historian is shared). ClickHouse needs a server that
this machine does not have; the serving code reads either through the same interface.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pyarrow as pa
import pytest
import websockets

from plantlink.app import free_port
from plantlink.auth import AuthService
from plantlink.historian import TagMeta, default_path
from plantlink.historian.duckdb import DuckDBHistorian
from plantlink.samples import SAMPLE_SCHEMA, now_us
from plantlink.store import Store
from plantlink.store.alarm_repo import AlarmStore, JournalEntry, SavedState
from tests.plants import plant_yaml
from tests.waiting import patience, wait_until

PLANT = plant_yaml(devices="plc: {protocol: modbus, host: 127.0.0.1, port: 1, enabled: false}", machines="""
- name: m1
  tags:
    - name: t0
      source: {device: plc, address: 0}
      alarms:
        - {name: hot, type: hi, limit: 100, priority: high, message: Too hot}
    - {name: t1, source: {device: plc, address: 1}}
""")
T0, T1 = "s1/a1/l1/m1/t0", "s1/a1/l1/m1/t1"
M1, L1 = "s1/a1/l1/m1", "s1/a1/l1"
HOT = f"{T0}:hot"  # the alarm's key
PASSWORD = "correct horse battery"
N = 20  # samples per tag: 0, 1, ... at 1 s steps ending a minute ago


def _history(data_dir: Path) -> int:
    """Write the historian the replicas read: N samples of t0 (value i) and t1 (value 10 i). Returns the last ts."""
    end = now_us() - 60_000_000
    ts = [end - (N - 1 - i) * 1_000_000 for i in range(N)]
    h = DuckDBHistorian(default_path(data_dir))
    h.open()
    ids = h.register_tags([TagMeta(T0, "", "float"), TagMeta(T1, "", "float")])
    cols = {"tag_id": [ids[T0]] * N + [ids[T1]] * N, "ts": ts * 2,
            "value": [float(i) for i in range(N)] + [10.0 * i for i in range(N)], "quality": [192] * (2 * N),
            "text": [None] * (2 * N)}
    h.write(pa.RecordBatch.from_pydict(cols, schema=SAMPLE_SCHEMA))
    h.flush()
    h.close()
    return end


class Replica:
    """`plantlink serve` in a subprocess on a free port, its stderr in a file."""

    def __init__(self, name: str, plant: Path, data_dir: Path, store_url: str):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = data_dir.parent / f"{name}.log"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "plantlink.cli", "serve", str(plant), "--data-dir", str(data_dir),
             "--store-url", store_url, "--historian", "duckdb", "--port", str(self.port), "--poll-interval", "0.2"],
            stdout=subprocess.DEVNULL, stderr=self.log.open("w"), env={**os.environ, "PYTHONUNBUFFERED": "1"})

    def text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def up(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"plantlink serve exited ({self.proc.returncode}):\n{self.text()}")
        try:
            return httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(patience(30))
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def replicas(tmp_path: Path, pg_url: str) -> Iterator[tuple[Replica, Replica, int, str]]:
    plant = tmp_path / "plant.yaml"
    plant.write_text(PLANT, encoding="utf-8")
    shared = tmp_path / "shared"
    shared.mkdir()
    last = _history(shared)
    store = Store.open(pg_url)  # migrated here, users made here: the replicas only read them
    store.open_interval(M1, L1, "running", last - 30_000_000)  # as the state engine of `plantlink run` keeps it
    AlarmStore(store.engine).record(  # as its alarm engine does: the journal and the alarm's state now
        [JournalEntry(HOT, "s1", last - 10_000_000, "activate", "normal", "unack_active", "high", value=120.0)],
        [SavedState(HOT, "unack_active", True, last - 10_000_000, activated_us=last - 10_000_000)])
    auth = AuthService(store.engine, tmp_path / "admin")
    auth.create_user("ada", {"*": "admin"}, "test", password=PASSWORD)
    auth.create_user("olga", {"s1": "operator"}, "test", password=PASSWORD)
    auth.close()
    store.close()
    procs = []
    for name in ("a", "b"):
        data_dir = tmp_path / name
        data_dir.mkdir(mode=0o700)
        default_path(data_dir).symlink_to(default_path(shared))
        procs.append(Replica(name, plant, data_dir, pg_url))
    try:
        for p in procs:
            wait_until(p.up, 60, f"{p.url} serves")
        yield procs[0], procs[1], last, pg_url
    finally:
        for p in procs:
            p.stop()
    for p in procs:
        assert "Traceback" not in p.text(), p.text()


def _login(url: str, user: str, password: str) -> httpx.Response:
    return httpx.post(f"{url}/api/v1/auth/login", json={"user": user, "password": password}, timeout=30)


def test_two_replicas_share_sessions_csrf_throttle_and_answers(replicas: tuple[Replica, Replica, int, str]
                                                               ) -> None:
    a, b, last, url = replicas
    logged = _login(a.url, "ada", PASSWORD)
    assert logged.status_code == 200, logged.text
    cookies, csrf = dict(logged.cookies), logged.json()["csrf_token"]
    # the session cookie from A is a session on B
    me = httpx.get(f"{b.url}/api/v1/auth/me", cookies=cookies, timeout=10)
    assert me.status_code == 200 and me.json()["user"] == "ada", me.text
    assert me.json()["csrf_token"] == csrf  # one CSRF key in the store: B derives the same token
    # a write on B with A's CSRF token; read back on A
    note = {"machine": "s1/a1/l1/m1", "text": "written on B", "start": str(last // 1000)}
    wrote = httpx.post(f"{b.url}/api/v1/trends/annotations", json=note, cookies=cookies,
                       headers={"X-CSRF-Token": csrf}, timeout=10)
    assert wrote.status_code in (200, 201), wrote.text
    bad = httpx.post(f"{b.url}/api/v1/trends/annotations", json=note, cookies=cookies,
                     headers={"X-CSRF-Token": "0" * 64}, timeout=10)
    assert bad.status_code == 403, bad.text
    notes = httpx.get(f"{a.url}/api/v1/trends/annotations", params={"machine": "s1/a1/l1/m1"}, cookies=cookies,
                      timeout=10)
    assert notes.status_code == 200 and "written on B" in notes.text, notes.text
    # the same answers from both: history, latest values, the audit trail (users' logins)
    start = (last - (N + 5) * 1_000_000) // 1000
    for path, params in (("/api/v1/history/raw", {"tag": T0, "start": str(start), "end": str(last // 1000 + 1)}),
                         ("/api/v1/values", {"tag": f"{T0},{T1}"}), ("/api/v1/audit", {}),
                         ("/api/v1/states", {"site": "s1"}), ("/api/v1/alarms/history", {}), ("/api/v1/alarms", {})):
        got = [httpx.get(f"{r.url}{path}", params=params, cookies=cookies, timeout=10) for r in (a, b)]
        assert [g.status_code for g in got] == [200, 200], [g.text for g in got]
        assert got[0].json() == got[1].json(), path
    raw = httpx.get(f"{a.url}/api/v1/history/raw", params={"tag": T0, "start": str(start),
                                                          "end": str(last // 1000 + 1)}, cookies=cookies,
                    timeout=10).json()
    assert raw["value"] == [float(i) for i in range(N)], raw
    journal = httpx.get(f"{b.url}/api/v1/alarms/history", cookies=cookies, timeout=10).json()
    assert [(e["alarm"], e["event"]) for e in journal["items"]] == [(HOT, "activate")], journal
    now = httpx.get(f"{a.url}/api/v1/alarms", cookies=cookies, timeout=10).json()  # the saved state: the alarm now
    assert [(v["key"], v["state"], v["message"]) for v in now["items"]] == [(HOT, "unack_active", "Too hot")], now
    states = httpx.get(f"{b.url}/api/v1/states", params={"site": "s1"}, cookies=cookies, timeout=10)
    assert "running" in states.text, states.text  # the open interval in the store: the state now
    # what needs a running engine (alarm actions, control) answers 503 with the part named; no route fails
    for r in (a, b):
        ack = httpx.post(f"{r.url}/api/v1/alarms/ack", json={"alarms": [HOT]}, cookies=cookies,
                         headers={"X-CSRF-Token": csrf}, timeout=10)
        assert ack.status_code == 503 and "not running" in ack.text, ack.text
    stage = httpx.post(f"{a.url}/api/v1/control/stage", json={"tag": T0, "value": 1}, cookies=cookies,
                       headers={"X-CSRF-Token": csrf}, timeout=10)
    assert stage.status_code == 503 and "the control path is not running" in stage.text, stage.text
    _sweep(a, cookies)
    store = Store.open(url)  # the writer's alarm engine saves a new state (acknowledged): both replicas show it
    try:
        AlarmStore(store.engine).record([], [SavedState(HOT, "ack_active", True, last, activated_us=last - 10_000_000)])
    finally:
        store.close()
    for r in (a, b):
        wait_until(lambda r=r: [v["state"] for v in httpx.get(f"{r.url}/api/v1/alarms", cookies=cookies,
                                                               timeout=10).json()["items"]] == ["ack_active"],
                   20, f"{r.url} shows the alarm acknowledged")
    for page in ("/hmi/", "/hmi/machine/" + M1, "/hmi/alarms", "/hmi/model"):  # the HMI's pages render on B
        got = httpx.get(f"{b.url}{page}", cookies=cookies, timeout=30)
        assert got.status_code == 200, (page, got.text)
    assert "plantlink serve" in got.text  # the model page says where to plan and apply
    # failed logins counted on A and on B throttle both (the throttle is in the store): bad passwords alternate
    # between the replicas until one refuses (429), then the right password is refused on the other too
    refused = None
    for i in range(12):
        r = (a, b)[i % 2]
        got = _login(r.url, "olga", "wrong password!")
        if got.status_code == 429:
            refused = r
            break
        assert got.status_code == 401, got.text
    assert refused is not None, "no lockout after 12 failed logins"
    assert i == 5, i  # five free failures (three on A, two on B), the sixth refused
    other = b if refused is a else a
    locked = _login(other.url, "olga", PASSWORD)
    assert locked.status_code == 429, locked.text
    # the live stream on both: a snapshot of the latest values from the shared historian and of the states;
    # then a state change written to the store (as `plantlink run` does) reaches both streams
    asyncio.run(_stream_both(a, b, cookies, url, last))


def _sweep(r: Replica, cookies: dict[str, str]) -> None:
    """Every GET route of the security matrix, as an admin: an answer, never a server error."""
    from tests.security.matrix import ROUTES

    params = {"scope": M1, "machine": M1, "tag": T0, "line": L1}
    fill = {"{ref:path}": T0, "{machine:path}": M1, "{path:path}": M1, "{site}": "s1", "{line:path}": L1}
    for route in ROUTES:
        method, path = route.split(" ", 1)
        if method != "GET" or not path.startswith("/api/"):
            continue
        for k, v in fill.items():
            path = path.replace(k, v)
        if "{" in path:
            path = path.split("{", 1)[0] + "1"
        got = httpx.get(f"{r.url}{path}", params=params, cookies=cookies, timeout=30)
        assert got.status_code < 500 or got.status_code == 503, (route, got.status_code, got.text)


async def _recv(ws: websockets.ClientConnection, kind: str) -> dict[str, object]:
    while True:
        msg = json.loads(await asyncio.wait_for(ws.recv(), patience(20)))
        if msg["type"] == kind:
            return msg  # type: ignore[no-any-return]


async def _stream_both(a: Replica, b: Replica, cookies: dict[str, str], url: str, last: int) -> None:
    header = "; ".join(f"{k}={v}" for k, v in cookies.items())
    streams = [await websockets.connect(f"ws://127.0.0.1:{r.port}/api/v1/stream",
                                        additional_headers={"Cookie": header}) for r in (a, b)]
    try:
        for ws in streams:
            await ws.send(json.dumps({"subscribe": {"tags": [T0, T1], "states": True}}))
            ack = await _recv(ws, "subscribed")
            assert ack["tags"] == 2, ack
            snap = await _recv(ws, "values")
            assert snap.get("snapshot"), snap
            assert {v["tag"]: v["value"] for v in snap["values"]} == {T0: float(N - 1), T1: 10.0 * (N - 1)}
            states = await _recv(ws, "states")
            assert [(s["machine"], s["state"]) for s in states["states"]] == [(M1, "running")], states
        store = Store.open(url)
        try:
            await asyncio.to_thread(store.open_interval, M1, L1, "stopped", last)
        finally:
            store.close()
        for ws in streams:
            change = await _recv(ws, "state")
            assert (change["machine"], change["state"], change["previous"]) == (M1, "stopped", "running"), change
    finally:
        for ws in streams:
            await ws.close()


def test_the_csrf_key_is_the_stores_adopted_from_the_first_file(store_url: str, tmp_path: Path) -> None:
    """The first process on a store without a key puts its data directory's key file there; every later one
    (another data directory, with another key file or none) uses the store's."""
    from plantlink.auth.keys import load_or_create_key

    old = load_or_create_key(tmp_path / "one", "csrf.key")  # an installation from before: its key in a file
    other = load_or_create_key(tmp_path / "two", "csrf.key")
    store = Store.open(store_url)
    try:
        one = AuthService(store.engine, tmp_path / "one")
        two = AuthService(store.engine, tmp_path / "two")
        three = AuthService(store.engine, tmp_path / "three")
        expected = hmac.new(old, b"csrf:secret", hashlib.sha256).hexdigest()  # computed from the file's key
        assert one.csrf_token("secret") == two.csrf_token("secret") == three.csrf_token("secret") == expected
        assert hmac.new(other, b"csrf:secret", hashlib.sha256).hexdigest() != expected
        assert not (tmp_path / "three" / "secrets" / "csrf.key").exists()  # no file made: the key is the store's
        for svc in (one, two, three):
            svc.close()
    finally:
        store.close()
