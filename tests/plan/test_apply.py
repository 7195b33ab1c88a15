"""Applying a changed model to a running plantlink (``services.model`` over ``reload.ModelApplier``), with
samples flowing from a real Mosquitto: the unchanged device's connector is never touched and every message
published to it before, during and after the apply is stored (a count, not a timing); the changed device's
connector restarts with the new model; a tag renamed with ``was:`` keeps its id and history; a model that fails
validation, or that would lose history, changes nothing."""

from __future__ import annotations

import json
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import paho.mqtt.client as paho
import pytest
import pytest_asyncio

from plantlink.errors import ConfigError, Conflict
from plantlink.identity import Principal
from plantlink.model import parse_plant
from plantlink.runtime import Runtime
from plantlink.services import services_of
from tests.connectors.mosquitto import MosquittoServer, mosquitto
from tests.plants import plant_yaml
from tests.waiting import wait_for

ENGINEER = Principal("erin", {"*": "engineer"})
M = "s1/a1/l1/m1/"
T0 = 1_767_225_600_000  # 2026-01-01 UTC, ms: message i is stamped T0 + i


def model(port: int, other: str = "reconnect_min: 100ms", b_tag: str = "name: b", extra: str = "") -> str:
    dev = "{{protocol: mqtt, host: 127.0.0.1, port: {port}, reconnect_min: 100ms, reconnect_max: 500ms}}"
    return plant_yaml(
        devices=f"steady: {dev}\nother: {{{{protocol: mqtt, host: 127.0.0.1, port: {{port}}, {other}}}}}\n",
        machines=f"""
        - name: m1
          tags:
            - {{{{name: a, source: {{{{device: steady, topic: t/a, timestamp_field: /ts}}}}}}}}
            - {{{{{b_tag}, source: {{{{device: other, topic: t/b}}}}}}}}
            {extra}
        """).format(port=port)


class Publisher(threading.Thread):
    """Publishes to ``topic`` (QoS 1, each acknowledged) message after message until stopped; ``sent``
    counts them. A thread: the event loop the runtime runs in is never blocked by it."""

    def __init__(self, port: int, topic: str):
        super().__init__(daemon=True)
        self.sent = 0
        self.topic = topic
        self.halt = threading.Event()
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="apply-test-publisher")
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def run(self) -> None:
        while not self.halt.is_set():
            body = json.dumps({"value": self.sent, "ts": T0 + self.sent}).encode()
            self.client.publish(self.topic, body, qos=1).wait_for_publish(10)
            self.sent += 1
        self.client.disconnect()
        self.client.loop_stop()


@pytest_asyncio.fixture
async def broker(tmp_path: Path) -> AsyncIterator[MosquittoServer]:
    async with mosquitto(tmp_path / "broker") as srv:
        yield srv


def stored(rt: Runtime, path: str) -> int:
    assert rt.historian is not None
    return rt.historian.raw(rt.tag_ids[path], 0, 2**62, 10**7).num_rows


async def test_apply_while_samples_flow_loses_no_sample_of_an_unchanged_device(broker: MosquittoServer,
                                                                                tmp_path: Path) -> None:
    rt = Runtime(parse_plant(model(broker.port), "plant.yaml"), tmp_path / "data", flush_interval=0.1)
    await rt.start()
    pub = Publisher(broker.port, "t/a")
    try:
        await wait_for(lambda: all(c.health.ok for c in rt.connectors.values()), 30, "connected")
        await broker.publish("t/b", b'{"value": 7}')
        await wait_for(lambda: stored(rt, M + "b") == 1, 30, "b's first sample stored")
        steady, other, b_id = rt.connectors["steady"], rt.connectors["other"], rt.tag_ids[M + "b"]
        pub.start()
        await wait_for(lambda: stored(rt, M + "a") >= 50, 30, "samples of a flowing")
        svc = services_of(rt)
        new = model(broker.port, other="reconnect_min: 200ms", b_tag="name: b2, was: b",
                    extra="- {{name: c, source: {{device: other, topic: t/c}}}}")
        done = await svc.model.apply(ENGINEER, new, "plant.yaml")
        during = pub.sent
        await wait_for(lambda: pub.sent >= during + 50, 30, "messages published after the apply")
        pub.halt.set()
        pub.join(30)
        assert done.applied and done.plan.devices == ("other",)
        assert rt.connectors["steady"] is steady  # never restarted
        assert rt.connectors["other"] is not other
        # every message published to the unchanged device is stored: none lost around the apply
        await wait_for(lambda: stored(rt, M + "a") == pub.sent, 60, f"all {pub.sent} samples of a stored")
        # the renamed tag kept its id and its history; the added one is read by the restarted connector
        assert rt.tag_ids[M + "b2"] == b_id and M + "b" not in rt.tag_ids
        assert stored(rt, M + "b2") == 1
        await wait_for(lambda: rt.connectors["other"].health.ok, 30, "other reconnected")
        await broker.publish("t/c", b'{"value": 3}')
        await wait_for(lambda: stored(rt, M + "c") == 1, 30, "c stored")
        assert services_of(rt).tags.id_of(M + "c") == rt.tag_ids[M + "c"]  # services rebuilt over the new model
        assert rt.audit is not None
        (rec,) = list(rt.audit.query(kind="model.apply"))
        assert rec.actor == "erin" and rec.details["devices"] == ["other"]
        assert {(c["action"], c["path"]) for c in rec.details["changes"]} >= {("rename", M + "b2"), ("add", M + "c")}
        assert svc.model.info().digest == done.plan.digest_after
    finally:
        pub.halt.set()
        await rt.stop()


async def test_an_invalid_model_or_one_losing_history_changes_nothing(broker: MosquittoServer,
                                                                      tmp_path: Path) -> None:
    rt = Runtime(parse_plant(model(broker.port), "plant.yaml"), tmp_path / "data", flush_interval=0.1)
    await rt.start()
    try:
        await wait_for(lambda: all(c.health.ok for c in rt.connectors.values()), 30, "connected")
        await broker.publish("t/b", b'{"value": 7}')
        await wait_for(lambda: stored(rt, M + "b") == 1, 30, "b stored")
        svc = services_of(rt)
        before, conns = svc.model.info().digest, dict(rt.connectors)
        with pytest.raises(ConfigError, match=r"plant\.yaml:.*nosuch"):
            await svc.model.apply(ENGINEER, model(broker.port).replace("device: other", "device: nosuch"),
                                  "plant.yaml")
        renamed = model(broker.port, b_tag="name: b2")  # no was: b's samples would be unreachable
        with pytest.raises(Conflict, match="allow_history_loss"):
            await svc.model.apply(ENGINEER, renamed, "plant.yaml")
        assert svc.model.plan(ENGINEER, renamed).history_loss == [M + "b"]
        assert svc.model.info().digest == before and rt.connectors == conns
        assert rt.audit is not None and not list(rt.audit.query(kind="model.apply"))
        done = await svc.model.apply(ENGINEER, renamed, "plant.yaml", allow_history_loss=True)
        assert done.applied and M + "b2" in rt.tag_ids and M + "b" not in rt.tag_ids
    finally:
        await rt.stop()
