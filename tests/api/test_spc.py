"""GET /api/v1/spc/{tag}: the chart as JSON (strict: no NaN), and the error envelopes: 404 unknown tag, 400 no
data or no specification limits, 403 a tag of another site by path (404 by id)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import numpy as np
import pytest

from plantlink.model import parse_plant
from plantlink.runtime import Runtime
from tests.api.conftest import strict_json
from tests.api.test_rest import assert_error
from tests.services.test_spc import HEIGHT, PLANT, M, S, publish, published_height, t0

Client = Callable[..., httpx.AsyncClient]
URL = f"/api/v1/spc/{M}/height"


@pytest.fixture
async def runtime(tmp_path: Path) -> AsyncIterator[Runtime]:
    rt = Runtime(parse_plant(PLANT, "spc-plant.yaml"), tmp_path / "data", flush_interval=0.2)
    await rt.start()
    try:
        yield rt
    finally:
        await rt.stop()


def span(start: int, seconds: int = 3600) -> str:
    return f"start={start // 1000}&end={(start + seconds * S) // 1000}"


async def test_chart_json(client: Client, runtime: Runtime) -> None:
    start = await published_height(runtime)
    r = await client("ann:windsor=viewer").get(f"{URL}?{span(start)}")
    assert r.status_code == 200, r.text
    body = strict_json(r.text)
    assert (body["tag"], body["chart"], body["samples"], body["points"]) == (f"{M}/height", "xbar_r", 50, 10)
    assert body["ts_ms"] == [(start + (5 * i + 4) * S) // 1000 for i in range(10)]
    x, rr = body["charts"]
    assert x["name"] == "xbar" and x["values"] == pytest.approx([12.0] * 9 + [12.1])
    assert x["ucl"][0] == pytest.approx(12.01 + 0.577 * 0.04, abs=1e-4) and rr["name"] == "r"
    assert {"chart": "xbar", "rule": "we1", "point": 9, "ts": body["ts"][9], "ts_ms": body["ts_ms"][9],
            "value": pytest.approx(12.1)} in body["violations"]
    assert body["spec"] == {"lsl": 11.9, "usl": 12.2, "target": 12.0}
    assert body["capability"]["pp"] == pytest.approx(0.3 / (6 * float(np.std(HEIGHT, ddof=1))))
    # overrides: a CUSUM has no lower limits (null, not NaN); no rules; no capability
    r = await client().get(f"{URL}?{span(start)}&chart=cusum&rules=&capability=false")
    body = strict_json(r.text)
    assert r.status_code == 200 and [c["name"] for c in body["charts"]] == ["cusum_hi", "cusum_lo"]
    assert body["charts"][0]["lcl"] == [None] * 50 and body["capability"] is None and body["rules"] == []


async def test_errors(client: Client, runtime: Runtime) -> None:
    start = await published_height(runtime)
    ann = client("ann:windsor=viewer")
    assert_error(await ann.get(f"/api/v1/spc/{M}/nope?{span(start)}"), 404, "tag")
    err = assert_error(await ann.get(f"{URL}?{span(start - 7200 * S)}"), 400, "start")
    assert f"{M}/height" in str(err["message"]) and "no samples" in str(err["message"])
    assert_error(await ann.get(f"{URL}?{span(start, 10)}"), 400, "subgroups")
    await publish(runtime, "temp", t0() + np.arange(12) * S, np.arange(12.0) % 3)
    err = assert_error(await ann.get(f"/api/v1/spc/{M}/temp?{span(t0())}&capability=true"), 400, "capability")
    assert "specification limits" in str(err["message"])
    assert_error(await ann.get(f"{URL}?{span(start)}&chart=pie"), 400, "chart")
    err = assert_error(await ann.get(f"{URL}?{span(start)}&rules=n9"), 400, "rules")
    assert "unknown rule 'n9'" in str(err["message"])
    dan = client("dan:detroit=viewer")
    assert_error(await dan.get(f"{URL}?{span(start)}"), 403, "site")
    assert_error(await dan.get(f"/api/v1/spc/{runtime.tag_ids[f'{M}/height']}?{span(start)}"), 404, "tag")
    r = await client(None).get(f"{URL}?{span(start)}")
    assert r.status_code == 401
