"""Writes asked over MQTT, end to end: a UNS ``/set`` message or an NCMD to plantlink's Sparkplug edge node, on a
real Mosquitto, runs through the running plantlink's control path (as the ``publish.commands`` principal) and
changes the simulated Modbus machine, with an audit record; everything the principal, the tag's limits or the
payload does not allow is refused, audited and never written; with commands off nothing happens."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import pytest_asyncio
import yaml

from plantlink.connectors.mqtt.sparkplug import sparkplug_b_pb2 as pb
from plantlink.errors import ConfigError
from plantlink.model import parse_plant
from plantlink.model.publish import PublishSettings
from plantlink.publish.commands import CommandGate
from plantlink.publish.uns import UnsPublisher, targets_of
from plantlink.runtime import Runtime
from plantlink.sim import Simulator
from tests.connectors.mosquitto import MosquittoServer
from tests.control.conftest import CONV1, OVEN, PRESS1, free_port, plant_dicts, to_plant
from tests.publish.subscriber import Subscriber
from tests.waiting import wait_for

SPEED = f"{CONV1}/speed_setpoint"
PRINCIPAL = "mqtt-line1"
GROUP = "Plant"
COMMANDS = {"enabled": True, "as": PRINCIPAL, "roles": {"windsor": "operator"},
            "include": [f"{CONV1}/*", f"{OVEN}/zone1_setpoint", f"{OVEN}/zone2_setpoint"]}


class Rig:
    def __init__(self, sim: Simulator, rt: Runtime, broker: MosquittoServer, sub: Subscriber):
        self.sim, self.rt, self.broker, self.sub = sim, rt, broker, sub
        uns = next(p for p in rt.publishers if isinstance(p, UnsPublisher))
        self.topics = {t.path: t.topic for t in uns.targets.values()}
        self.uns = uns

    def value(self, path: str) -> float:
        return float(self.sim.snapshot()[path])  # type: ignore[arg-type]

    def records(self) -> list[Any]:
        assert self.rt.audit is not None
        return list(self.rt.audit.query(kind="control.mqtt_command"))  # type: ignore[attr-defined]

    async def set(self, path: str, payload: bytes, retain: bool = False) -> dict[str, Any]:
        """Publish a command on the tag's ``/set`` topic and wait for its result."""
        topic = self.topics[path] + "/set"
        n = len(self.records())
        self.sub.messages.pop(topic + "/result", None)
        await self.broker.publish(topic, payload, retain=retain)
        await waiting(self, lambda: self.sub.json(topic + "/result") is not None, f"the result on {topic}")
        result = self.sub.json(topic + "/result")
        assert result is not None and len(self.records()) == n + 1
        return result


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def rig(tmp_path_factory: Any) -> AsyncIterator[Rig]:
    work = tmp_path_factory.mktemp("commands")
    served, platform = plant_dicts(free_port(), free_port(), free_port(), free_port())
    broker = MosquittoServer(free_port(), work)
    await broker.start()
    stops: list[tuple[str, Callable[[], Awaitable[None]]]] = [("broker", broker.stop)]  # what started, last first
    sub: Subscriber | None = None
    try:
        platform["devices"]["sim-s7-detroit"]["enabled"] = False
        platform["publish"] = {"mqtt": f"mqtt://127.0.0.1:{broker.port}", "reconnect_min": "100ms",
                               "sparkplug": {"group": GROUP}, "commands": COMMANDS}
        sim = Simulator(to_plant(served), seed=7, speed=1.0)
        await sim.start()
        stops.insert(0, ("simulator", sim.stop))
        rt = Runtime(to_plant(platform), work / "data", flush_interval=0.5)
        await rt.start()
        stops.insert(0, ("runtime", rt.stop))
        sub = Subscriber(broker.port, "#")
        await wait_for(lambda: rt.connectors["sim-modbus"].health.ok and all(p.connected for p in rt.publishers),
                       30, "devices and publishers connected")
        await wait_for(lambda: rt.latest.table([rt.tag_ids[SPEED]]).to_pylist()[0]["quality"] == 192, 30,
                       "a first value of the speed setpoint")
        yield Rig(sim, rt, broker, sub)
    finally:
        if sub is not None:
            sub.close()
        for what, stop in stops:
            try:
                await asyncio.wait_for(stop(), 60)
            except TimeoutError:
                tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
                for t in tasks:
                    t.print_stack(limit=6)
                raise AssertionError(f"{what} did not stop within 60 s") from None


async def waiting(rig: Rig, cond: Callable[[], Any], what: str, *publishers: UnsPublisher) -> None:
    """``wait_for`` that says, when it fails, what the publishers and the broker were doing."""
    try:
        await wait_for(cond, 30, what)
    except AssertionError as exc:
        states = [p.status() for p in (rig.uns, *publishers)]
        seen = sorted(t for t in rig.sub.messages if "/set" in t)
        log = rig.broker.log.read_text(errors="replace").splitlines()[-15:]
        raise AssertionError(f"{exc}\npublishers: {states}\ncommand topics seen: {seen}\nbroker log tail:\n"
                             + "\n".join(log)) from None


def executed(rig: Rig) -> int:
    """Writes the control path executed (made to a device) so far."""
    assert rig.rt.audit is not None
    return len(list(rig.rt.audit.query(kind="control.execute")))  # type: ignore[attr-defined]


async def in_the_machine(rig: Rig, want: float) -> None:
    """The simulated machine takes a written register at its next step: wait for it there."""
    await wait_for(lambda: abs(rig.value(SPEED) - want) < 1e-9, 10, f"{want} in the simulated machine")


async def rate_limit_passed(rig: Rig) -> None:
    """The tag's min_interval (200 ms) since the control path's last write to it."""
    svc = rig.rt.control
    assert svc is not None
    await wait_for(lambda: time.time() - svc._last_write.get(SPEED, 0.0) > 0.3, 10, "the rate limit passed")


async def target(rig: Rig, delta: float) -> float:
    await rate_limit_passed(rig)
    cur = rig.value(SPEED)
    return round(cur + delta if cur + delta <= 40 else cur - delta, 2)


@pytest.mark.asyncio(loop_scope="module")
async def test_a_uns_set_command_changes_the_machine(rig: Rig) -> None:
    want = await target(rig, 2.37)
    result = await rig.set(SPEED, json.dumps({"value": want, "id": "uns-1"}).encode())
    assert result == {"ok": True, "status": "applied", "reason": None, "message": "written and read back",
                      "id": "uns-1", "value": want}
    await in_the_machine(rig, want)
    rec = rig.records()[-1]
    assert (rec.actor, rec.site, rec.target) == (PRINCIPAL, "windsor", SPEED)
    assert rec.details["topic"] == rig.topics[SPEED] + "/set" and rec.details["status"] == "applied"
    assert rec.details["via"] == "uns" and rec.details["value"] == want
    assert rig.rt.audit is not None
    kinds = [r.kind for r in rig.rt.audit.query(actor=PRINCIPAL)]  # type: ignore[attr-defined]
    assert kinds[-5:] == ["control.stage", "control.confirm", "control.execute", "control.result", rec.kind]
    # the same id again (a QoS 1 redelivery): the first result, never a second write
    execs = kinds.count("control.execute")
    again = await rig.set(SPEED, json.dumps({"value": want, "id": "uns-1"}).encode())
    assert again == result
    kinds = [r.kind for r in rig.rt.audit.query(actor=PRINCIPAL)]  # type: ignore[attr-defined]
    assert kinds.count("control.execute") == execs
    assert rig.uns.status()["commands"]["applied"] == 1 and rig.uns.status()["commands"]["repeated"] == 1


@pytest.mark.asyncio(loop_scope="module")
async def test_an_ncmd_to_the_edge_node_changes_the_machine(rig: Rig) -> None:
    want = await target(rig, 1.5)
    n = len(rig.records())
    msg = pb.Payload(timestamp=1)
    msg.metrics.add(name=SPEED, datatype=pb.Double, double_value=want)
    await rig.broker.publish(f"spBv1.0/{GROUP}/NCMD/plantlink", msg.SerializeToString())
    await wait_for(lambda: len(rig.records()) > n, 30, "the NCMD's audit record")
    rec = rig.records()[-1]
    assert rec.details["status"] == "applied", rec.details
    assert (rec.actor, rec.target, rec.details["via"]) == (PRINCIPAL, SPEED, "sparkplug")
    assert rec.details["topic"] == f"spBv1.0/{GROUP}/NCMD/plantlink"
    await in_the_machine(rig, want)
    # by alias (the tag's id, as the NBIRTH announced it), no datatype: the birth's (Double)
    want = await target(rig, 1.25)
    msg = pb.Payload(timestamp=1)
    msg.metrics.add(alias=rig.rt.tag_ids[SPEED], double_value=want)
    await rig.broker.publish(f"spBv1.0/{GROUP}/NCMD/plantlink", msg.SerializeToString())
    await wait_for(lambda: len(rig.records()) > n + 1, 30, "the second NCMD's audit record")
    assert rig.records()[-1].details["status"] == "applied"
    await in_the_machine(rig, want)


@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.parametrize(("path", "payload", "reason"), [
    (SPEED, b'{"value": 95}', "limit"),
    (SPEED, b'{"value": "fast"}', "invalid_value"),
    (SPEED, b"not json", "invalid_request"),
    (SPEED, b'{"speed": 5}', "invalid_request"),
    (SPEED, b'{"value": 5, "by": "me"}', "invalid_request"),
    (f"{CONV1}/state", b'{"value": 1}', "not_writable"),
    (f"{PRESS1}/spm_setpoint", b'{"value": 10}', "role"),  # not in commands.include
    (f"{OVEN}/zone1_setpoint", b'{"value": 100}', "role"),  # an engineer's tag, the principal is an operator
    (f"{OVEN}/zone2_setpoint", b'{"value": 100}', "needs_approval"),  # critical: no second person over MQTT
])
async def test_what_is_not_allowed_is_refused_audited_and_not_written(rig: Rig, path: str, payload: bytes,
                                                                     reason: str) -> None:
    before, writes = rig.value(path), executed(rig)
    result = await rig.set(path, payload)
    assert (result["ok"], result["status"], result["reason"]) == (False, "refused", reason), result
    rec = rig.records()[-1]
    assert (rec.actor, rec.details["status"], rec.details["reason"]) == (PRINCIPAL, "refused", reason)
    assert rec.details["topic"] == rig.topics[path] + "/set"
    assert executed(rig) == writes and rig.value(path) == before


@pytest.mark.asyncio(loop_scope="module")
async def test_retained_unknown_and_device_commands_are_refused(rig: Rig) -> None:
    # a retained command reaches the session subscribed at the time unretained (MQTT: applied once); a session
    # that subscribes later gets it retained, as it would after every reconnect: refused, never run again
    want = await target(rig, 1.0)
    assert (await rig.set(SPEED, json.dumps({"value": want}).encode(), retain=True))["status"] == "applied"
    await in_the_machine(rig, want)  # the simulator takes the register at its next step: read it after that
    before, writes = rig.value(SPEED), executed(rig)
    rt = rig.rt
    assert rt.services is not None and rt.plant.spec.publish is not None
    control = rt.services.control
    late = UnsPublisher(rt.plant.spec.publish, list(rig.uns.targets.values()), rt.bus,
                        CommandGate(rt.plant.spec.publish.commands, lambda: control))
    result_topic = rig.topics[SPEED] + "/set/result"
    rig.sub.messages.pop(result_topic, None)
    await late.start()
    try:
        await waiting(rig, lambda: rig.sub.json(result_topic) is not None, "the late session's result", late)
        result = rig.sub.json(result_topic)
        assert result is not None and (result["status"], result["reason"]) == ("refused", "invalid_request")
        assert "retained" in result["message"] and late.status()["commands"] == {"refused": 1}
    finally:
        await late.stop()
        await rig.broker.publish(rig.topics[SPEED] + "/set", b"", retain=True)  # clear it
    topic = rig.topics[SPEED].rsplit("/", 1)[0] + "/no_such_tag/set"
    rig.sub.messages.pop(topic + "/result", None)
    await rig.broker.publish(topic, b'{"value": 1}')
    await wait_for(lambda: rig.sub.json(topic + "/result") is not None, 30, "the unknown tag's result")
    assert rig.sub.json(topic + "/result")["reason"] == "unknown_tag"  # type: ignore[index]
    n = len(rig.records())
    msg = pb.Payload(timestamp=1)
    msg.metrics.add(name="Speed", datatype=pb.Double, double_value=1.0)
    await rig.broker.publish(f"spBv1.0/{GROUP}/DCMD/plantlink/D1", msg.SerializeToString())
    await rig.broker.publish(f"spBv1.0/{GROUP}/NCMD/plantlink", b"\xff\xff not protobuf")
    bad = pb.Payload(timestamp=1)
    bad.metrics.add(name=SPEED, datatype=pb.Double, string_value="x")
    await rig.broker.publish(f"spBv1.0/{GROUP}/NCMD/plantlink", bad.SerializeToString())
    await wait_for(lambda: len(rig.records()) >= n + 3, 30, "three refused Sparkplug commands")
    got = sorted((r.details["reason"], r.details["message"].split(" (")[0]) for r in rig.records()[n:])
    assert got == [("invalid_request", f"metric '{SPEED}': datatype Double carried in string_value"),
                   ("invalid_request", "not a Sparkplug B payload"),
                   ("unknown_tag", "plantlink's edge node has no devices: write its node metrics with an NCMD")]
    assert executed(rig) == writes and rig.value(SPEED) == before


@pytest.mark.asyncio(loop_scope="module")
async def test_commands_are_off_by_default(rig: Rig) -> None:
    """A UNS publisher whose model says nothing of commands: a /set message is ignored and counted, with no
    result, no audit record and no write."""
    settings = PublishSettings.model_validate({"mqtt": f"mqtt://127.0.0.1:{rig.broker.port}",
                                               "uns": {"root": "off"}})
    assert not settings.commands.enabled
    rt = rig.rt
    tags = [(rt.tag_ids[t.path], t.path, t.tag.unit, t.tag.type) for t in rt.plant.all_tags]
    targets = targets_of(settings, rt.plant.spec.enterprise, tags)
    assert rt.services is not None
    control = rt.services.control
    pub = UnsPublisher(settings, targets, rt.bus, CommandGate(settings.commands, lambda: control))
    await pub.start()
    try:
        await waiting(rig, lambda: pub.connected, "the second publisher connected", pub)
        topic = next(t.topic for t in targets if t.path == SPEED) + "/set"
        before, n = rig.value(SPEED), len(rig.records())
        await rig.broker.publish(topic, json.dumps({"value": await target(rig, 1.0)}).encode())
        await waiting(rig, lambda: pub.status()["commands"].get("ignored") == 1, "the command counted as ignored", pub)
        assert topic + "/result" not in rig.sub.messages
        assert len(rig.records()) == n and rig.value(SPEED) == before
    finally:
        await pub.stop()


def test_enabled_commands_need_a_principal_roles_and_writable_tags() -> None:
    _, platform = plant_dicts(1502, 4840, 1503, 1504)
    for broken, expect in [({"enabled": True}, "'as'"),
                           ({**COMMANDS, "roles": {}}, "roles"),
                           ({**COMMANDS, "roles": {"paris": "operator"}}, "no site 'paris'"),
                           ({**COMMANDS, "roles": {"windsor": "viewer"}}, "roles"),
                           ({**COMMANDS, "include": [f"{CONV1}/state"]}, "no writable tag"),
                           ({**COMMANDS, "include": []}, "include")]:
        platform["publish"] = {"mqtt": "mqtt://127.0.0.1", "commands": broken}
        with pytest.raises(ConfigError, match=expect):
            parse_plant(yaml.safe_dump(platform, sort_keys=False), "p.yaml")
    platform["publish"] = {"mqtt": "mqtt://127.0.0.1", "commands": COMMANDS}
    assert parse_plant(yaml.safe_dump(platform, sort_keys=False), "p.yaml").spec.publish is not None

