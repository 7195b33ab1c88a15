"""The anomaly block's ``lags`` and ``smooth`` on a real Runtime: the live scores, fed in uneven batches, equal
the trained detector scoring the whole series at once; the model file (version 2) keeps them; a version 1
file loads as lags 0 / smooth 1; a plant model that changes them makes the saved model a problem; bad values
are located errors."""

from __future__ import annotations

import pickle
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import numpy as np
import pytest

from plantlink.errors import ConfigError
from plantlink.model import parse_plant
from plantlink.runtime import Runtime
from plantlink.samples import now_us
from tests.engines.test_anomaly_live import ADMIN, PLANT, L, N, S, client, normal, period, publish, shifted
from tests.waiting import wait_for

BLOCK = "anomaly: {tags: [a, b, c], mode: alarm,"
#: the configuration measured on SKAB
DYNAMIC = PLANT.replace(BLOCK, f"{BLOCK} variance: 0.85, alpha: 0.001, lags: 1, smooth: 5,")
Starter = Callable[[str], Runtime]


@pytest.fixture
async def started(tmp_path: Path) -> AsyncIterator[Starter]:
    made: list[Runtime] = []

    async def start(plant: str) -> Runtime:
        rt = Runtime(parse_plant(plant, "anomaly.yaml"), tmp_path / "data", flush_interval=0.2)
        await rt.start()
        made.append(rt)
        return rt

    yield start  # type: ignore[misc]
    for rt in made:
        if rt.running:
            await rt.stop()


async def test_live_scores_equal_the_whole_series(started: Starter) -> None:
    rt = await started(DYNAMIC)  # type: ignore[misc]
    rng = np.random.default_rng(11)
    t0 = now_us() - 3600 * S
    await publish(rt, "m1", t0, normal(rng, N))
    async with client(rt) as api:
        r = await api.post(f"/api/v1/anomaly/{L}/m1/train", json=period(t0, N))
        assert r.status_code == 200, r.text
        assert (r.json()["lags"], r.json()["smooth"]) == (1, 5)
    t1 = t0 + 2 * N * S
    x = np.concatenate([normal(rng, 30), shifted(rng, 10)])
    start = 0
    for size in (1, 3, 7, 2, 12, 1, 14):  # uneven batches, 40 rows
        await publish(rt, "m1", t1 + start * S, x[start : start + size])
        start += size
    assert rt.anomaly is not None and rt.services is not None
    ms = rt.anomaly.machines[f"{L}/m1"]
    assert ms.trained is not None
    det = ms.trained.detector
    assert (det.variance, det.alpha, det.lags, det.smooth) == (0.85, 0.001, 1, 5)  # type: ignore[attr-defined]
    whole = det.score_many(x)
    assert np.isnan(whole[:5]).all()  # 1 lag + a median of 5: the first 5 rows have no score
    svc = rt.services

    def stored() -> object:
        s = svc.history.raw(ADMIN, f"{L}/m1/anomaly_score", t1, t1 + 60 * S)
        return s.table.num_rows == 35 and s

    series = await wait_for(stored, what="the dynamic scores in the historian")
    v = np.asarray(series.table.column("value"))
    assert np.array_equal(v, whole[5:])
    ts = np.asarray(series.table.column("ts").cast("int64"))
    assert np.array_equal(ts, t1 + np.arange(5, 40) * S)
    assert (v[:25] < 1).mean() > 0.9 and (v[-5:] > 1).all()  # the median lags the fault by up to 2 rows
    assert rt.alarm_engine is not None and rt.alarm_engine.state_of(f"{L}/m1/anomaly_score:anomaly") == "unack_active"
    doc = pickle.loads(rt.anomaly.files.path(f"{L}/m1").read_bytes())
    assert (doc["version"], doc["lags"], doc["smooth"]) == (2, 1, 5)


async def test_old_files_and_changed_options(started: Starter) -> None:
    rt = await started(DYNAMIC)  # type: ignore[misc]
    rng = np.random.default_rng(12)
    t0 = now_us() - 3600 * S
    await publish(rt, "m1", t0, normal(rng, N))
    await publish(rt, "m2", t0, normal(rng, N))
    async with client(rt) as api:
        for m in ("m1", "m2"):
            assert (await api.post(f"/api/v1/anomaly/{L}/{m}/train", json=period(t0, N))).status_code == 200
    assert rt.anomaly is not None
    files = rt.anomaly.files
    await rt.stop()
    # m2's file as version 1 wrote it: no lags / smooth in the document nor on the detector
    doc = pickle.loads(files.path(f"{L}/m2").read_bytes())
    del doc["lags"], doc["smooth"]
    del doc["trained"].detector.__dict__["lags"], doc["trained"].detector.__dict__["smooth"]
    doc["version"] = 1
    files.path(f"{L}/m2").write_bytes(pickle.dumps(doc))
    # and the plant model now asks m1 for 2 lags
    rt2 = await started(DYNAMIC.replace("lags: 1, smooth: 5", "lags: 2, smooth: 5"))  # type: ignore[misc]
    assert rt2.anomaly is not None
    m1, m2 = rt2.anomaly.machines[f"{L}/m1"], rt2.anomaly.machines[f"{L}/m2"]
    assert m1.trained is None and m1.problem is not None
    assert "has lags 1, the plant model now names lags 2; train again" in m1.problem
    assert m2.problem is None and m2.trained is not None
    assert (m2.trained.detector.lags, m2.trained.detector.smooth) == (0, 1)
    await rt2.stop()
    rt3 = await started(DYNAMIC.replace("alpha: 0.001", "alpha: 0.01"))  # type: ignore[misc]
    assert rt3.anomaly is not None
    problem = rt3.anomaly.machines[f"{L}/m1"].problem
    assert problem is not None and "has alpha 0.001, the plant model now names alpha 0.01" in problem
    m2 = rt3.anomaly.machines[f"{L}/m2"]
    assert m2.trained is not None and m2.problem is None
    x = normal(rng, 3)
    await publish(rt3, "m2", t0 + 2 * N * S, x)
    assert m2.scored == 3 and m2.last_score == pytest.approx(m2.trained.detector.score_many(x)[-1])


def test_bad_options_are_located() -> None:
    for value, words in (("lags: -1,", "greater than or equal to 0"), ("lags: 11,", "less than or equal to 10"),
                         ("smooth: 0,", "greater than or equal to 1"), ("smooth: 1.5,", "valid integer"),
                         ("lags: yes,", "valid integer"), ("variance: 0,", "greater than 0"),
                         ("alpha: 1,", "less than 1"),
                         ("detector: iforest, lags: 1,", "lags, smooth, variance and alpha apply to detector pca"),
                         ("detector: iforest, alpha: 0.1,", "apply to detector pca only, not iforest")):
        with pytest.raises(ConfigError) as e:
            parse_plant(PLANT.replace(BLOCK, f"{BLOCK} {value}"), "bad.yaml")
        text = str(e.value)
        assert words in text and "bad.yaml:" in text and "m1" in text, text
    plant = parse_plant(DYNAMIC, "ok.yaml")
    blocks = {p: m.anomaly for p, m in plant.machines() if m.anomaly is not None}
    assert (blocks[f"{L}/m1"].lags, blocks[f"{L}/m1"].smooth) == (1, 5)
    assert (blocks[f"{L}/m2"].lags, blocks[f"{L}/m2"].smooth) == (0, 1)
