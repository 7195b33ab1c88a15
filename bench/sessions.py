"""How fast open connections close when their credential ends, and what the watch costs; one JSON line per
figure ({"name", "value", "unit", "target"}).

On the served demo (``tests.security.child``: simulated plant, Runtime, API and HMI behind authentication, in a
child process), for ``--rounds`` rounds each:

(a) API stream, logout: the logout request sent -> the stream's close frame received (in-process notice);
(b) API stream, token revoked by another process (this one, on the server's store) -> close received
    (found by the periodic re-check, every 0.25 s);
(c) API stream, user disabled by another process (the code path of ``plantlink users disable``, without the
    CLI's start-up time) -> close received;
(d) HMI page socket, logout -> the socket closed.

And (e) the cost of one re-check (``plantlink.auth.live.check``) of 200 and 2,000 open sessions on SQLite (CPU
time of the checking thread, and the share of a core at 4 re-checks a second).

Times are from the start of the action (the logout request sent, the revoke or disable called) to the close
seen by the client, so they include the action itself.

    .venv/bin/python bench/sessions.py [--rounds 10]
"""

from __future__ import annotations

import argparse
import json
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.hmi.nicesocket import HmiPage  # noqa: E402
from tests.security.conftest import W_LINE, Served, _start  # noqa: E402
from websockets.exceptions import ConnectionClosed  # noqa: E402
from websockets.sync.client import connect  # noqa: E402

from plantlink.auth import AuthService, AuthSettings, repo  # noqa: E402
from plantlink.auth.live import Credential, check  # noqa: E402
from plantlink.auth.service import sha256_hex  # noqa: E402

FAST = AuthSettings(argon2_time_cost=1, argon2_memory_kib=1024, argon2_parallelism=1)
PRESS = f"{W_LINE}/press1"


def emit(name: str, value: float, unit: str, **extra: Any) -> None:
    print(json.dumps({"name": name, "value": round(value, 3), "unit": unit, **extra}), flush=True)


def summary(name: str, ms: list[float]) -> None:
    emit(f"{name} p50", statistics.median(ms), "ms", target=1000, n=len(ms))
    emit(f"{name} max", max(ms), "ms", target=1000, n=len(ms))


class Bench:
    def __init__(self, served: Served, auth: AuthService):
        self.served, self.auth = served, auth

    def user(self) -> tuple[str, str, str]:
        """A new viewer-operator at windsor, logged in: name, session cookie, CSRF token."""
        name, password = f"bench-{secrets.token_hex(4)}", secrets.token_urlsafe(12)
        self.auth.create_user(name, {"windsor": "operator"}, actor="bench", password=password)
        with self.served.client() as c:
            r = c.post("/api/v1/auth/login", json={"user": name, "password": password})
            r.raise_for_status()
            return name, r.cookies["plantlink_session"], r.json()["csrf_token"]

    def stream_close_ms(self, headers: dict[str, str], end: Callable[[], None]) -> float:
        url = self.served.url.replace("http://", "ws://") + "/api/v1/stream"
        with connect(url, additional_headers=headers, open_timeout=20) as ws:
            ws.send(json.dumps({"subscribe": {"machines": [PRESS]}}))
            while json.loads(ws.recv(timeout=20))["type"] != "values":
                pass
            t0 = time.perf_counter()
            end()
            try:
                while True:
                    ws.recv(timeout=10)
            except ConnectionClosed as exc:
                assert exc.rcvd is not None and exc.rcvd.code == 4401, exc
                return (time.perf_counter() - t0) * 1000
        raise AssertionError("unreachable")

    def logout(self, cookie: str, csrf: str) -> None:
        with self.served.client(cookies={"plantlink_session": cookie}) as c:
            c.post("/api/v1/auth/logout", headers={"x-csrf-token": csrf}).raise_for_status()

    def stream_logout(self) -> float:
        _, cookie, csrf = self.user()
        return self.stream_close_ms({"cookie": f"plantlink_session={cookie}"}, lambda: self.logout(cookie, csrf))

    def stream_revoke(self) -> float:
        name, _, _ = self.user()
        tok = self.auth.create_token(name, "bench", None, actor="bench")
        return self.stream_close_ms({"authorization": f"Bearer {tok.secret}"},
                                    lambda: self.auth.revoke_token(tok.info.id, actor="bench"))

    def stream_disable(self) -> float:
        name, cookie, _ = self.user()
        return self.stream_close_ms({"cookie": f"plantlink_session={cookie}"},
                                    lambda: self.auth.set_disabled(name, True, actor="bench"))

    def hmi_logout(self) -> float:
        _, cookie, csrf = self.user()
        page = HmiPage.open(self.served.url, cookie, f"/hmi/machine/{PRESS}")
        sock = page.connect()
        assert sock.wait_connected()
        t0 = time.perf_counter()
        self.logout(cookie, csrf)
        assert sock.closed.wait(10), "the page stayed open"
        return (time.perf_counter() - t0) * 1000


def check_cost(tmp: Path) -> None:
    svc = AuthService.open(tmp / "cost", settings=FAST)
    try:
        user, _ = svc.create_user("bench", {"windsor": "operator", "detroit": "viewer"}, "bench", "a-bench-password")
        now = int(time.time() * 1e6)
        for n in (200, 2000):
            creds = [Credential("session", sha256_hex(f"{n}-{i}"), "bench") for i in range(n)]
            with svc.engine.begin() as c:
                for cr in creds:
                    repo.insert_session(c, cr.key, user.id, now, now + 3600 * 10**6, None)
            wall, cpu = [], []
            for _ in range(20):
                t0, c0 = time.perf_counter(), time.thread_time()
                check(svc.engine, svc.settings, creds, now)
                wall.append((time.perf_counter() - t0) * 1000)
                cpu.append((time.thread_time() - c0) * 1000)
            emit(f"re-check of {n} open sessions (SQLite), CPU p50 of 20", statistics.median(cpu), "ms",
                 wall_ms=round(statistics.median(wall), 3),
                 cpu_share_at_4_per_s=round(4 * statistics.median(cpu) / 1000, 4))
    finally:
        svc.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=10)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        check_cost(Path(d))
        served = _start(Path(d))
        auth = AuthService.open(served.data_dir, settings=FAST)
        try:
            b = Bench(served, auth)
            for name, fn in (("stream closed after logout", b.stream_logout),
                             ("stream closed after token revoked elsewhere", b.stream_revoke),
                             ("stream closed after user disabled elsewhere", b.stream_disable),
                             ("HMI page socket closed after logout", b.hmi_logout)):
                summary(name, [fn() for _ in range(args.rounds)])
        finally:
            auth.close()
            assert served.proc.stdin is not None
            served.proc.stdin.close()
            served.proc.wait(60)


if __name__ == "__main__":
    main()
