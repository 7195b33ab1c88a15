"""Items 10 and 13 on ``plantlink run`` as a person runs it: ``X-Forwarded-For`` counts only from configured
proxies; the data directory and every file in it are private after a real run (also what an older version left
readable); the first-run admin password never reaches a log file; over ``--tls`` every response carries HSTS."""

from __future__ import annotations

import os
import stat
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from plantlink.auth import AuthService
from plantlink.auth.service import FIRST_ADMIN_FILE
from plantlink.store import Store, default_url
from tests.dos.harness import VARIABLES, free_port, start_plantlink
from tests.servers import OpcUaTestServer

HSTS = "strict-transport-security"


@pytest.fixture
async def ua() -> AsyncIterator[OpcUaTestServer]:
    server = OpcUaTestServer(free_port(), VARIABLES)
    await server.start()
    yield server
    await server.stop()


def failed_login_clients(data_dir: Path) -> list[str]:
    auth = AuthService.open(data_dir)
    try:
        return [r.details.get("client") for r in auth.audit.query(kind="auth.login_failed")]
    finally:
        auth.close()


def modes(root: Path) -> dict[str, str]:
    """Every directory and file under ``root`` (and root itself) that others or the group may access."""
    loose = {}
    for p in [root, *root.rglob("*")]:
        st = p.lstat()
        if not stat.S_ISLNK(st.st_mode) and stat.S_IMODE(st.st_mode) & 0o077:
            loose[str(p.relative_to(root.parent))] = oct(stat.S_IMODE(st.st_mode))
    return loose


@pytest.mark.timeout(300)  # a real server in a child process, on a loaded machine
async def test_tls_run_hsts_private_files_no_password_in_logs_no_spoofed_address(
        tmp_path: Path, ua: OpcUaTestServer) -> None:
    """Each finding is checked and reported (not only the first one that fails)."""
    data = tmp_path / "data"
    old = os.umask(0o022)
    try:  # what an older version left: a world-readable store in a world-readable directory
        Store.open(default_url(data)).close()
    finally:
        os.umask(old)
    assert modes(data), "the set-up should start from loose modes"
    log = tmp_path / "plantlink.log"  # stderr redirected to a file, as a service manager does
    problems: list[str] = []
    child = start_plantlink(tmp_path, ua.port, args=["--tls"], user=False, scheme="https", stderr_to=log)
    try:
        with httpx.Client(base_url=child.url, verify=False, timeout=30) as c:
            for r in (c.get("/healthz"), c.get("/api/v1/hierarchy"), c.get("/", headers={"accept": "text/html"}),
                      c.post("/api/v1/auth/login", json={"user": "nobody", "password": "wrong-password"},
                             headers={"x-forwarded-for": "203.0.113.7"})):
                if r.headers.get(HSTS) != "max-age=31536000":
                    problems.append(f"no HSTS on {r.request.method} {r.request.url.path} ({r.status_code})")
            secret_file = data / "secrets" / FIRST_ADMIN_FILE
            password = secret_file.read_text().strip() if secret_file.exists() else None
            if password is None:
                problems.append("no first-run password file")
            elif c.post("/api/v1/auth/login", json={"user": "admin", "password": password}).status_code != 200:
                problems.append("the first-run password does not log in")
    finally:
        child.interrupt()
    text = log.read_text(errors="replace")
    if "first run" not in text or str(secret_file) not in text:
        problems.append("the log does not say where the first-run password is")
    if (password is not None and password in text) or "password: " in text:
        problems.append("a password is in the log file")
    if password is not None and stat.S_IMODE(secret_file.stat().st_mode) != 0o600:
        problems.append("the first-run password file is not 0600")
    if failed_login_clients(data) != ["127.0.0.1"]:
        problems.append(f"X-Forwarded-For believed from an untrusted peer: {failed_login_clients(data)}")
    if modes(data):
        problems.append(f"readable by others after the run: {modes(data)}")
    assert {p.name for p in data.iterdir()} >= {"plantlink.sqlite", "secrets", "tls"}  # (what was checked)
    assert problems == [], "\n".join(problems)


@pytest.mark.timeout(300)  # a real server in a child process, on a loaded machine
async def test_forwarded_for_counts_only_from_a_trusted_proxy(tmp_path: Path, ua: OpcUaTestServer) -> None:
    child = start_plantlink(tmp_path, ua.port, args=["--trusted-proxy", "127.0.0.1"])
    try:
        def login_failed(source: str, forwarded: str) -> httpx.Response:
            with httpx.Client(base_url=child.url, timeout=30,
                              transport=httpx.HTTPTransport(local_address=source)) as c:
                return c.post("/api/v1/auth/login", json={"user": "watcher", "password": "wrong-password"},
                              headers={"x-forwarded-for": forwarded})

        assert login_failed("127.0.0.1", "198.51.100.4").status_code == 401  # through the proxy
        assert login_failed("127.0.0.2", "198.51.100.9").status_code == 401  # not the proxy: header ignored
        with httpx.Client(base_url=child.url, timeout=30) as c:
            assert HSTS not in c.get("/healthz").headers  # plain HTTP: no HSTS
        # the throttle counts the client the proxy names: its pair backs off, another client behind it does not
        for _ in range(4):
            assert login_failed("127.0.0.1", "198.51.100.4").status_code == 401
        assert login_failed("127.0.0.1", "198.51.100.4").status_code == 429
        assert login_failed("127.0.0.1", "198.51.100.5").status_code == 401
    finally:
        child.interrupt()
    clients = failed_login_clients(child.data_dir)
    assert clients[:2] == ["198.51.100.4", "127.0.0.2"]
