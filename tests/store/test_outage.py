"""A PostgreSQL store that goes away and comes back (a relay to the real server, cut and restored on the same
port): the health shows it (URL without password, the error), the recorder keeps retrying beyond its attempts
for a refused row, and everything written meanwhile is in the store, in order, once it answers again; requests
that need the store to check their credentials are answered 503, and the same session works once it is back."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from plantlink.auth import AuthService
from plantlink.engines.events import IntervalOpened, Sinks
from plantlink.engines.recorder import Recorder, RecorderPolicy
from plantlink.identity import Principal
from plantlink.services.health import Health, HealthSources
from plantlink.store import Store
from tests.store.conftest import pg_url  # noqa: F401  (fixture)
from tests.store.tcp_proxy import Relay
from tests.waiting import wait_until

S = 1_000_000
T0 = 1_767_600_000 * S
LINE = "s1/a1/l1"
#: few attempts and short backoffs: an outage outlasts them many times over
POLICY = RecorderPolicy(base_backoff_s=0.01, max_backoff_s=0.05, max_attempts=3)


@pytest.fixture
def relay(pg_url: str) -> Iterator[tuple[Relay, str]]:  # noqa: F811
    u = sa.make_url(pg_url)
    r = Relay((u.host or "127.0.0.1", u.port or 5432)).start()
    try:
        yield r, u.set(host="127.0.0.1", port=r.port, password="not-shown").render_as_string(hide_password=False)
    finally:
        r.stop()


def _opened(first: int, n: int) -> list[IntervalOpened]:
    return [IntervalOpened(f"{LINE}/m{k}", LINE, "running", T0 + k * S, None) for k in range(first, first + n)]


def test_the_store_going_away_is_in_health_and_the_recorder_catches_up(relay: tuple[Relay, str]) -> None:
    r, url = relay
    store = Store.open(url)
    health = Health(["s1"], {}, HealthSources(store=store.status))
    who = Principal("viewer", {"s1": "viewer"})
    rec = Recorder(Sinks.of(store), POLICY)
    rec.start()
    try:
        rec.submit(_opened(0, 3))
        assert rec.flush(20) and health.report(who).status == "ok"
        r.stop()
        rec.submit(_opened(3, 4))
        wait_until(lambda: rec.retries > 3 * POLICY.max_attempts, what="the recorder retries past its attempts")
        st = rec.status()
        assert st["store_down"] and st["failed"] == 0 and st["waiting"] == 4 and st["written"] == 3
        report = wait_until(lambda: (h := health.report(who)).status == "degraded" and h, what="health degraded")
        assert report.store is not None and report.store["reachable"] is False
        assert "not-shown" not in str(report) and report.store["url"].endswith(f"@127.0.0.1:{r.port}/"
                                                                              f"{sa.make_url(url).database}")
        assert report.reasons[0].startswith(f"store at {report.store['url']} does not answer (")
        r.start()
        assert rec.flush(60)
        wait_until(lambda: health.report(who).status == "ok", what="health ok again")
    finally:
        rec.close()
    st = rec.status()
    assert (st["written"], st["failed"], st["waiting"], st["store_down"]) == (7, 0, 0, False)
    assert sorted(iv.machine for iv in store.open_intervals()) == [f"{LINE}/m{k}" for k in range(7)]
    store.close()


async def test_requests_get_503_while_the_store_is_down_and_work_again_after(relay: tuple[Relay, str],
                                                                            tmp_path: Path) -> None:
    from tests.auth.conftest import FAST
    from tests.auth.test_web import PW, make_app

    r, url = relay
    svc = AuthService.open(tmp_path, url, settings=FAST)
    svc.create_user("alice", {"windsor": "operator"}, "t", PW)
    transport = httpx.ASGITransport(app=make_app(svc), client=("10.1.2.3", 5555))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://plant.test") as c:
            assert (await c.post("/api/v1/auth/login", json={"user": "alice", "password": PW})).status_code == 200
            assert (await c.get("/api/v1/secret")).json() == {"who": "alice"}
            r.stop()
            down = await c.get("/api/v1/secret")
            assert down.status_code == 503 and down.json()["error"]["code"] == "unavailable", down.text
            assert (await c.get("/healthz")).status_code == 200  # the liveness probe needs no store
            r.start()
            assert (await c.get("/api/v1/secret")).json() == {"who": "alice"}  # the same session, kept
    finally:
        svc.close()
