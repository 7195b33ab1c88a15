"""The UNS publisher in a running plantlink against a real Mosquitto: batches put on the bus arrive as retained
JSON on the tags' ISA-95 topics; a late subscriber gets the last values; after a broker restart the publisher
reconnects and publishes again."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest_asyncio

from plantlink.identity import Principal
from plantlink.model import parse_plant
from plantlink.runtime import Runtime
from plantlink.samples import Quality, concat, numeric_batch, text_batch
from tests.connectors.mosquitto import MosquittoServer, mosquitto
from tests.plants import plant_yaml
from tests.publish.subscriber import Subscriber
from tests.waiting import wait_for

# A demo-like plant: a press with a float, an int, a bool and a text tag; its device is disabled (no connector
# runs), so what is published is exactly the batches the test puts on the bus.
PLANT = plant_yaml(
    enterprise="Acme", site="windsor", timezone="America/Toronto", area="press",
    devices="plc: {protocol: mqtt, host: 127.0.0.1, enabled: false}",
    machines="""
    - name: p1
      tags:
        - {name: temp, unit: degC, source: {device: plc, topic: x/temp}}
        - {name: strokes, type: int, unit: count, source: {device: plc, topic: x/strokes}}
        - {name: running, type: bool, source: {device: plc, topic: x/running}}
        - {name: recipe, type: string, source: {device: plc, topic: x/recipe}}
        - {name: secret_sauce, source: {device: plc, topic: x/sauce}}
    """) + """publish:
  mqtt: mqtt://127.0.0.1:{port}
  reconnect_min: 50ms
  reconnect_max: 200ms
  uns: {root: uns}
  exclude: ['*/secret_sauce']
"""
VIEWER = Principal("v", {"windsor": "viewer"})
P = "uns/Acme/windsor/press/l1/p1/"
T0_US = 1_795_000_000_000_000  # 2026-11-18T11:06:40.000Z


@pytest_asyncio.fixture
async def broker(tmp_path: Path) -> AsyncIterator[MosquittoServer]:
    async with mosquitto(tmp_path / "broker") as srv:
        yield srv


@pytest_asyncio.fixture
async def runtime(broker: MosquittoServer, tmp_path: Path) -> AsyncIterator[Runtime]:
    rt = Runtime(parse_plant(PLANT.replace("{port}", str(broker.port))), tmp_path / "data", flush_interval=0.2)
    await rt.start()
    yield rt
    await rt.stop()


def inject(rt: Runtime, **values: float) -> None:
    ids = [rt.tag_ids[f"windsor/press/l1/p1/{k}"] for k in values]
    rt.ingest(numeric_batch(ids, T0_US, list(values.values()), Quality.GOOD))


async def test_batches_arrive_as_retained_json(runtime: Runtime, broker: MosquittoServer) -> None:
    sub = Subscriber(broker.port, "uns/#")
    try:
        ids = runtime.tag_ids
        p = "windsor/press/l1/p1/"
        # two samples of temp in one batch: only the last is published; strokes bad without a value
        runtime.ingest(concat([
            numeric_batch([ids[p + "temp"], ids[p + "temp"], ids[p + "running"], ids[p + "secret_sauce"]],
                          [T0_US, T0_US + 250_000, T0_US, T0_US], [181.0, 182.5, 1.0, 9.0], Quality.GOOD),
            numeric_batch([ids[p + "strokes"]], T0_US + 1000, [0.0], Quality.BAD, missing=np.array([True])),
            text_batch([ids[p + "recipe"]], T0_US + 2000, ["BRKT-4471"], Quality.GOOD)]))
        await wait_for(lambda: sub.json(P + "recipe") is not None and sub.json(P + "strokes") is not None,
                       what="the batch published")
        assert sub.json(P + "temp") == {"value": 182.5, "unit": "degC", "quality": "good",
                                        "timestamp": "2026-11-18T11:06:40.250Z", "ts_ms": 1_795_000_000_250}
        assert sub.json(P + "running") == {"value": True, "unit": "", "quality": "good",
                                           "timestamp": "2026-11-18T11:06:40.000Z", "ts_ms": 1_795_000_000_000}
        assert sub.json(P + "strokes") == {"value": None, "unit": "count", "quality": "bad",
                                           "timestamp": "2026-11-18T11:06:40.001Z", "ts_ms": 1_795_000_000_001}
        assert sub.json(P + "recipe") == {"value": "BRKT-4471", "unit": "", "quality": "good",
                                          "timestamp": "2026-11-18T11:06:40.002Z", "ts_ms": 1_795_000_000_002}
        assert set(sub.messages) == {P + t for t in ("temp", "running", "strokes", "recipe")}  # not excluded one
        inject(runtime, strokes=4711)
        await wait_for(lambda: (sub.json(P + "strokes") or {}).get("value") == 4711, what="strokes updated")
        # a late subscriber gets the retained last values
        late = Subscriber(broker.port, "uns/#")
        try:
            await wait_for(lambda: len(late.messages) == 4, what="retained values for the late subscriber")
            assert all(late.retained(t) for t in late.messages)
            assert late.json(P + "strokes") == {"value": 4711, "unit": "count", "quality": "good",
                                                "timestamp": "2026-11-18T11:06:40.000Z", "ts_ms": 1_795_000_000_000}
            assert late.json(P + "temp") == sub.json(P + "temp")
        finally:
            late.close()
        st = runtime.status()["publish"]["uns publisher"]
        assert st["connected"] and st["published"] == 5 and st["dropped"] == 0 and st["tags"] == 4
    finally:
        sub.close()


async def test_broker_restart_reconnects_and_publishes_again(runtime: Runtime, broker: MosquittoServer) -> None:
    inject(runtime, temp=20.5)
    probe = Subscriber(broker.port, "uns/#")
    await wait_for(lambda: probe.json(P + "temp") is not None, what="published before the restart")
    probe.close()
    assert runtime.publishers
    await broker.stop()  # no persistence: the retained values are gone with it
    await wait_for(lambda: not runtime.publishers[0].status()["connected"], what="publisher sees the broker down")
    assert runtime.services is not None
    report = runtime.services.health.report(VIEWER)
    assert report.status == "degraded" and any(r.startswith("uns publisher: not connected to 127.0.0.1:")
                                               for r in report.reasons), report.reasons
    inject(runtime, temp=21.0)  # while down: pending, then replaced (last value wins)
    inject(runtime, temp=21.5)
    await wait_for(lambda: runtime.publishers[0].status()["dropped"] == 1, what="the older pending value dropped")
    await broker.start()
    sub = Subscriber(broker.port, "uns/#")
    try:
        await wait_for(lambda: (sub.json(P + "temp") or {}).get("value") == 21.5, what="republished after restart")
        inject(runtime, temp=22.0)
        await wait_for(lambda: (sub.json(P + "temp") or {}).get("value") == 22.0, what="published after restart")
        assert runtime.publishers[0].status()["reconnects"] >= 1
        report = runtime.services.health.report(VIEWER)
        assert report.publish["uns publisher"]["connected"]
        assert not any(r.startswith("uns publisher") for r in report.reasons)
    finally:
        sub.close()


async def test_an_applied_model_is_published_without_a_restart(runtime: Runtime, broker: MosquittoServer) -> None:
    """``plantlink apply`` of a model with a new tag and ``secret_sauce`` no longer excluded: the publisher starts
    again with them (the plan says so) and their values arrive on their topics; an apply that leaves publishing
    as it is (a display name changed) keeps the same publisher running."""
    from plantlink.model.plan_text import render
    from plantlink.services import services_of

    erin = Principal("erin", {"*": "engineer"})
    running = PLANT.replace("{port}", str(broker.port))
    sauce = "- {name: secret_sauce,"
    indent = running[:running.index(sauce)].rsplit("\n", 1)[1]
    new = (running.replace("  exclude: ['*/secret_sauce']\n", "")
           .replace(sauce, "- {name: load, unit: kN, source: {device: plc, topic: x/load}}\n" + indent + sauce))
    model = services_of(runtime).model
    text = render(model.plan(erin, new).to_dict())
    assert "MQTT publishing takes it at once" in text and "next restart" not in text
    before = runtime.publishers[0]
    assert (await model.apply(erin, new)).applied
    after = runtime.publishers[0]
    assert after is not before and len(runtime.publishers) == 1 and "uns publisher" in runtime.running
    assert before.status()["connected"] is False  # the former session ended
    sub = Subscriber(broker.port, "uns/#")
    try:
        inject(runtime, load=12.5, secret_sauce=3.0)
        await wait_for(lambda: sub.json(P + "load") is not None and sub.json(P + "secret_sauce") is not None,
                       what="the new and the no longer excluded tag published")
        assert (sub.json(P + "load") or {})["unit"] == "kN" and (sub.json(P + "secret_sauce") or {})["value"] == 3.0
        assert after.status()["tags"] == 6
        same = new.replace("{name: temp, unit: degC,", "{name: temp, unit: degC, display_name: Die temperature,")
        assert (await model.apply(erin, same)).applied
        assert runtime.publishers == [after]  # publishing unchanged: the same session goes on
        inject(runtime, temp=30.0)
        await wait_for(lambda: (sub.json(P + "temp") or {}).get("value") == 30.0, what="still publishing")
    finally:
        sub.close()
    await runtime.stop()
    assert "uns publisher" not in runtime.running and after.status()["connected"] is False
