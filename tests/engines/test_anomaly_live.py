"""Live anomaly detection on a real Runtime and its API: train on a baseline the user picks, score every batch
into ``<machine>/anomaly_score`` (stored, readable through the history service), alarm in mode ``alarm``
only, the model kept across a restart, a corrupt model file a visible problem; errors name the period / tag."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import numpy as np
import pytest

from plantlink.api.app import create_app
from plantlink.errors import ConfigError
from plantlink.identity import Principal
from plantlink.model import parse_plant
from plantlink.runtime import Runtime
from plantlink.samples import now_us, numeric_batch
from tests.api.conftest import install_header_auth, principal_header, settle
from tests.api.test_rest import assert_error
from tests.waiting import wait_for

S = 1_000_000
L = "s1/a1/l1"
MACHINE = """
              - name: {name}
                anomaly: {{tags: [a, b, c], mode: {mode}, interval: 1s, priority: high}}
                tags:
                  - {{name: a, source: {{device: plc, address: {0}, type: float32}}}}
                  - {{name: b, source: {{device: plc, address: {1}, type: float32}}}}
                  - {{name: c, source: {{device: plc, address: {2}, type: float32}}}}"""
PLANT = """
enterprise: Test
devices:
  plc: {protocol: modbus, host: 127.0.0.1, port: 1502, enabled: false}
sites:
  - name: s1
    timezone: UTC
    areas:
      - name: a1
        lines:
          - name: l1
            machines:""" + MACHINE.format(0, 2, 4, name="m1", mode="alarm") + MACHINE.format(
    6, 8, 10, name="m2", mode="shadow") + """
              - name: m3
                tags:
                  - {name: t, source: {device: plc, address: 12, type: float32}}
"""
ADMIN = Principal("admin", {"*": "admin"})
N = 300  # baseline seconds


def normal(rng: np.random.Generator, n: int) -> np.ndarray:
    """a ~ N(50, 2); b = 2 a + small noise (correlated); c ~ N(10, 1)."""
    a = rng.normal(50, 2, n)
    return np.column_stack([a, 2 * a + rng.normal(0, 0.3, n), rng.normal(10, 1, n)])


def shifted(rng: np.random.Generator, n: int) -> np.ndarray:
    """The correlation broken: b is 15 above 2 a (50 times its usual spread about that line; about 4 times
    its own spread)."""
    x = normal(rng, n)
    x[:, 1] += 15
    return x


async def publish(rt: Runtime, machine: str, start: int, x: np.ndarray) -> None:
    n = x.shape[0]
    ids = [rt.tag_ids[f"{L}/{machine}/{t}"] for t in "abc"]
    ts = start + np.arange(n) * S
    rt.bus.publish(numeric_batch(np.repeat(ids, n), np.tile(ts, 3), x.T.reshape(-1), 192))
    await settle(rt)


@pytest.fixture
async def started(tmp_path: Path) -> AsyncIterator[Callable[[], Runtime]]:
    made: list[Runtime] = []

    async def start() -> Runtime:
        rt = Runtime(parse_plant(PLANT, "anomaly.yaml"), tmp_path / "data", flush_interval=0.2)
        await rt.start()
        made.append(rt)
        return rt

    yield start  # type: ignore[misc]
    for rt in made:
        if rt.running:
            await rt.stop()


def client(rt: Runtime, spec: str = "admin:*=admin") -> httpx.AsyncClient:
    app = create_app(rt, auth=install_header_auth)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test",
                             headers=principal_header(spec))


def period(start: int, seconds: int) -> dict[str, int]:
    return {"from": start // 1000, "to": (start + seconds * S) // 1000}


async def test_train_score_alarm_and_shadow(started: Callable[[], Runtime]) -> None:
    rt = await started()  # type: ignore[misc]
    rng = np.random.default_rng(7)
    t0 = now_us() - 3600 * S
    for m in ("m1", "m2"):
        await publish(rt, m, t0, normal(rng, N))
    async with client(rt) as api:
        for m in ("m1", "m2"):
            r = await api.post(f"/api/v1/anomaly/{L}/{m}/train", json=period(t0, N))
            assert r.status_code == 200, r.text
            body = r.json()
            assert body["trained"] and body["baseline"]["rows"] == N and body["limit"] == 1.0
        # normal operation scores below 1; the broken correlation far above it
        t1 = t0 + 2 * N * S
        for m in ("m1", "m2"):
            await publish(rt, m, t1, normal(rng, 30))
        assert rt.alarm_engine is not None and rt.anomaly is not None
        key = f"{L}/m1/anomaly_score:anomaly"
        assert rt.alarm_engine.state_of(key) == "normal"
        for m in ("m1", "m2"):
            await publish(rt, m, t1 + 30 * S, shifted(rng, 10))
        assert rt.alarm_engine.state_of(key) == "unack_active"
        view = rt.alarm_engine.view(rt.alarm_engine.info(key).index)
        assert (view.priority, view.type, view.activated_us) == ("high", "anomaly", t1 + 30 * S)
        # shadow: no alarm exists for m2, the crossing is counted; its scores are stored like any tag
        assert not any("m2" in i.key for i in rt.alarm_engine.c.infos)
        st = (await api.get(f"/api/v1/anomaly/{L}/m2")).json()
        assert (st["mode"], st["above"]) == ("shadow", True) and st["score"] > 1
        svc = rt.services
        assert svc is not None

        def stored() -> object:
            s = svc.history.raw(ADMIN, f"{L}/m2/anomaly_score", t1, t1 + 60 * S)
            return s.table.num_rows == 40 and s

        series = await wait_for(stored, what="the shadow scores in the historian")
        v = np.asarray(series.table.column("value"))
        assert (v[:30] < 1).mean() > 0.9 and (v[30:] > 1).all()
        above = v > 1  # crossings counted by hand from the stored scores: rising edges over the limit
        assert st["crossings"] == int((above & ~np.concatenate([[False], above[:-1]])).sum())
        r = await api.get(f"/api/v1/anomaly/{L}/m2/scores", params=period(t1, 60))
        assert r.status_code == 200 and r.json()["count"] == 40
        journal = svc.alarms.journal(ADMIN)
        assert [(e.alarm, e.to_state) for e in journal] == [(key, "unack_active")]


async def test_model_survives_a_restart_and_a_corrupt_file_is_a_problem(started: Callable[[], Runtime]) -> None:
    rt = await started()  # type: ignore[misc]
    rng = np.random.default_rng(8)
    t0 = now_us() - 3600 * S
    await publish(rt, "m1", t0, normal(rng, N))
    await publish(rt, "m2", t0, normal(rng, N))
    async with client(rt) as api:
        assert (await api.post(f"/api/v1/anomaly/{L}/m1/train", json=period(t0, N))).status_code == 200
        assert (await api.post(f"/api/v1/anomaly/{L}/m2/train", json=period(t0, N))).status_code == 200
    await rt.stop()
    files = sorted((rt.data_dir / "analytics" / "anomaly").iterdir())
    assert [f.name for f in files] == ["s1__a1__l1__m1.model", "s1__a1__l1__m2.model"]
    files[1].write_bytes(b"not a model")
    rt2 = await started()  # type: ignore[misc]
    async with client(rt2) as api:
        st1 = (await api.get(f"/api/v1/anomaly/{L}/m1")).json()
        assert st1["trained"] and st1["baseline"]["from"].startswith(str(np.datetime64(t0 // S, "s"))[:16])
        st2 = (await api.get(f"/api/v1/anomaly/{L}/m2")).json()
        assert not st2["trained"] and "cannot be read" in st2["problem"] and "m2.model" in st2["problem"]
    key = f"{L}/m1/anomaly_score:anomaly"
    await publish(rt2, "m1", t0 + 2 * N * S, shifted(rng, 5))
    assert rt2.alarm_engine is not None
    assert rt2.alarm_engine.state_of(key) == "unack_active"
    # active across a restart: restored, and cleared by the first normal scores after it
    await rt2.stop()
    rt3 = await started()  # type: ignore[misc]
    assert rt3.alarm_engine is not None and rt3.alarm_engine.state_of(key) == "unack_active"
    await publish(rt3, "m1", t0 + 3 * N * S, normal(np.random.default_rng(1), 1))
    assert rt3.alarm_engine.state_of(key) == "rtn_unack"


async def test_bad_requests(started: Callable[[], Runtime]) -> None:
    rt = await started()  # type: ignore[misc]
    rng = np.random.default_rng(9)
    t0 = now_us() - 3600 * S
    await publish(rt, "m1", t0, normal(rng, 12))
    url = f"/api/v1/anomaly/{L}/m1/train"
    async with client(rt) as api:
        err = assert_error(await api.post(url, json=period(t0, 12)), 400, "from")
        assert "too short: 12 intervals" in str(err["message"]) and "baseline [" in str(err["message"])
        err = assert_error(await api.post(url, json=period(t0 - 600 * S, 60)), 400, "from")
        assert f"no data of tag {L}/m1/a" in str(err["message"])
        assert_error(await api.post(url, json={}), 400, "from")  # no default baseline in the model
        assert_error(await api.post(f"/api/v1/anomaly/{L}/m3/train", json=period(t0, 12)), 404, "machine")
        assert_error(await api.post(f"/api/v1/anomaly/{L}/nope/train", json=period(t0, 12)), 404, "machine")
        assert_error(await api.get(f"/api/v1/rul/{L}/m1"), 404, "machine")
    async with client(rt, "op:s1=operator") as api:
        assert_error(await api.post(url, json=period(t0, 12)), 403, "site")
        assert (await api.get(f"/api/v1/anomaly/{L}/m1")).status_code == 200
    async with client(rt, "dan:s2=engineer") as api:
        assert_error(await api.get(f"/api/v1/anomaly/{L}/m1"), 403, "site")


def test_model_errors_are_located() -> None:
    bad = PLANT.replace("anomaly: {tags: [a, b, c], mode: alarm", "anomaly: {tags: [a, nope], mode: alarm")
    with pytest.raises(ConfigError) as e:
        parse_plant(bad, "bad.yaml")
    text = str(e.value)
    assert "no tag 'nope' on machine 'm1'" in text and "bad.yaml" in text
    bad = PLANT.replace("mode: shadow", "mode: loud")
    with pytest.raises(ConfigError) as e:
        parse_plant(bad, "bad.yaml")
    assert "mode" in str(e.value)
