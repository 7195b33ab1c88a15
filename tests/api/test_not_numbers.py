"""Values that are not numbers (NaN, +Inf, -Inf, no value) through the REST API and the WebSocket stream.

The samples are published straight into the bus, as a plugin that skips the connectors' check could: even
a "good" +Inf must come out as valid JSON, ``value: null`` with a ``reason``, never a 500.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import numpy as np

from plantlink.api.server import ServerHandle
from plantlink.runtime import Runtime
from plantlink.samples import now_us, numeric_batch
from tests.api.conftest import settle, strict_json
from tests.api.test_stream import connect, recv, subscribe

Client = Callable[..., httpx.AsyncClient]
M1, M2 = "windsor/a1/l1/m1", "windsor/a1/l1/m2"
TAGS = [f"{M1}/temp", f"{M1}/count", f"{M2}/speed", f"{M2}/st", f"{M1}/reject"]
VALUES = [float("inf"), float("-inf"), float("nan"), 0.0, 2.5]
MISSING = np.array([False, False, False, True, False])
QUALITY = [192, 192, 64, 0, 192]
REASONS = ["+inf", "-inf", "nan", "null", None]



def publish(runtime: Runtime, t: int) -> None:
    ids = [runtime.tag_ids[p] for p in TAGS]
    runtime.bus.publish(numeric_batch(ids, t, VALUES, QUALITY, missing=MISSING))


async def test_values_and_raw_history_answer_null_with_a_reason(client: Client, runtime: Runtime) -> None:
    t = now_us() - 1_000_000
    publish(runtime, t)
    await settle(runtime)
    r = await client().get("/api/v1/values", params=[("tag", p) for p in TAGS])
    assert r.status_code == 200, r.text
    rows = strict_json(r.text)["values"]
    assert [(v["tag"], v["value"], v.get("reason")) for v in rows] == [
        (p, 2.5 if why is None else None, why) for p, why in zip(TAGS, REASONS, strict=True)]
    raw = await client().get("/api/v1/history/raw", params={"tag": f"{M1}/temp", "start": str(t // 1000 - 1000),
                                                            "end": str(t // 1000 + 1000)})
    assert raw.status_code == 200, raw.text
    got = strict_json(raw.text)
    assert got["value"] == [None] and got["reason"] == ["+inf"]
    agg = await client().get("/api/v1/history/aggregate", params={"tag": TAGS, "start": str(t // 1000 - 60_000),
                                                                   "end": str(t // 1000 + 60_000)})
    assert agg.status_code == 200, agg.text
    strict_json(agg.text)


async def test_the_stream_sends_null_with_a_reason(server: ServerHandle, runtime: Runtime) -> None:
    async with await connect(server) as ws:
        await subscribe(ws, tags=TAGS)
        publish(runtime, now_us())
        frame = await ws.recv()
        msg = strict_json(str(frame))
        while msg["type"] != "values" or msg.get("snapshot"):
            msg = strict_json(str(await ws.recv()))
        by_tag = {v["tag"]: v for v in msg["values"]}
        assert [(by_tag[p]["value"], by_tag[p].get("reason")) for p in TAGS] == [
            (2.5 if why is None else None, why) for why in REASONS]
    await settle(runtime)
    async with await connect(server) as ws:  # the snapshot of a new subscription, from the latest values
        await ws.send(json.dumps({"subscribe": {"tags": TAGS}}))
        assert (await recv(ws))["type"] == "subscribed"
        snap = strict_json(str(await ws.recv()))
        assert snap["snapshot"]
        by_tag = {v["tag"]: v for v in snap["values"]}
        assert [by_tag[p].get("reason") for p in TAGS] == REASONS
