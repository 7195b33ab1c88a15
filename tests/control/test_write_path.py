"""The write path end to end: simulator (Modbus TCP + OPC UA + Logix) <- connectors <- ControlService, with a real
Runtime. Every applied write is checked in the simulated machine itself (``Simulator.snapshot``)."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest

from plantlink.audit.sink import MemoryAudit
from plantlink.control.records import ControlRefused, Reason
from plantlink.control.service import ControlService
from plantlink.control.wiring import ControlWiring
from tests.control.conftest import (
    ADAM,
    ALICE,
    CAROL,
    CNC2,
    CONV1,
    CONV2,
    DETROIT_OP,
    OSCAR,
    OVEN,
    PRESS1,
    VERA,
    Rig,
)
from tests.waiting import wait_for

pytestmark = pytest.mark.asyncio(loop_scope="module")

SPEED = f"{CONV1}/speed_setpoint"
ZONE1 = f"{OVEN}/zone1_setpoint"


class Clock:
    """Wall time plus an offset the test moves."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


def service(rig: Rig, **kw: Any) -> tuple[ControlService, MemoryAudit]:
    audit = MemoryAudit()
    return ControlService(ControlWiring.of(rig.runtime), audit, **kw), audit


def new_speed(rig: Rig, delta: float = 3.21) -> tuple[float, float]:
    """(current, a new value ``delta`` away inside 0..40 on the register's 0.01 grid)."""
    cur = float(rig.sim.snapshot()[SPEED])  # type: ignore[arg-type]
    target = round(cur + delta if cur + delta <= 40 else cur - delta, 2)
    return cur, target


def reasons(staged: Any) -> list[Reason]:
    return [r.reason for r in staged.refusals]


async def test_modbus_write_is_applied_in_the_machine(rig: Rig) -> None:
    svc, audit = service(rig)
    cur, target = new_speed(rig)
    staged = svc.stage(OSCAR, SPEED, target)
    assert staged.ok, staged.refusals
    assert staged.current == pytest.approx(cur, abs=0.011)
    assert staged.new == target and staged.unit == "m/min" and staged.role == "operator"
    assert staged.limits["min"] == 0 and staged.limits["max"] == 40 and staged.limits["max_step"] == 10
    assert [(i.expression, i.ok) for i in staged.interlocks] == [
        ("state in [0, 1, 2, 3, 4, 5, 6]", True), ("press1.state >= 0", True)]
    assert set(staged.interlocks[1].values) == {f"{PRESS1}/state"}
    json.dumps(staged.to_dict())
    assert [s.id for s in svc.pending(OSCAR)] == [staged.id]
    assert svc.pending(VERA) == []

    out = await svc.confirm(OSCAR, staged.id, "cmd-modbus-1")
    assert out.status == "applied", out
    assert out.read_back == pytest.approx(target, abs=1e-9)
    await wait_for(lambda: abs(float(rig.sim.snapshot()[SPEED]) - target) < 1e-9, 3,  # type: ignore[arg-type]
                   "the simulated conveyor's setpoint")
    assert svc.pending(OSCAR) == []
    assert audit.kinds() == ["control.stage", "control.confirm", "control.execute", "control.result"]
    assert audit.entries[-1].details["status"] == "applied" and audit.entries[-1].actor == "oscar"
    assert audit.entries[-1].site == "windsor" and audit.entries[-1].target == SPEED


async def test_opcua_write_is_applied_in_the_machine(rig: Rig) -> None:
    svc, _ = service(rig)
    cur = float(rig.sim.snapshot()[ZONE1])  # type: ignore[arg-type]
    target = cur + 20.5 if cur + 20.5 <= 260 else cur - 20.5
    staged = svc.stage(ALICE, ZONE1, target)
    assert staged.ok, staged.refusals
    assert [i.ok for i in staged.interlocks] == [True, True]
    out = await svc.confirm(ALICE, staged.id, "cmd-ua-1")
    assert out.status == "applied", out
    await wait_for(lambda: rig.sim.snapshot()[ZONE1] == pytest.approx(target), 3, "the oven zone setpoint")


async def test_logix_write_is_applied_in_the_machine(rig: Rig) -> None:
    """The transfer conveyor's run command, a BOOL program tag of the simulated CompactLogix: stopped, then
    started again, each write read back from the controller and seen in the simulated machine."""
    svc, audit = service(rig)
    run = f"{CONV2}/run_command"
    assert rig.plant.tag(run).device == "sim-logix"
    await wait_for(lambda: rig.sim.snapshot()[run] is True, 3, "the conveyor runs")
    try:
        staged = svc.stage(OSCAR, run, False)
        assert staged.ok, staged.refusals
        assert staged.current is True
        out = await svc.confirm(OSCAR, staged.id, "cmd-logix-1")
        assert (out.status, out.read_back) == ("applied", False), out
        await wait_for(lambda: rig.sim.snapshot()[run] is False, 3, "the simulated conveyor's run command")
        await wait_for(lambda: rig.sim.snapshot()[f"{CONV2}/state"] == 5, 3, "the conveyor in planned stop")
    finally:
        again = svc.stage(OSCAR, run, True)
        assert again.ok, again.refusals
        assert (await svc.confirm(OSCAR, again.id, "cmd-logix-2")).status == "applied"
    await wait_for(lambda: rig.sim.snapshot()[run] is True, 3, "the conveyor started again")
    assert [e.details["status"] for e in audit.entries if e.kind == "control.result"] == ["applied", "applied"]


async def test_limit_step_role_type_and_writability_refusals(rig: Rig) -> None:
    svc, audit = service(rig)
    cur, _ = new_speed(rig)
    assert reasons(svc.stage(OSCAR, SPEED, 45.0))[0] == Reason.LIMIT
    assert reasons(svc.stage(OSCAR, SPEED, -1))[0] == Reason.LIMIT
    step_to = cur + 10.5 if cur + 10.5 <= 40 else cur - 10.5
    staged = svc.stage(OSCAR, SPEED, step_to)
    assert reasons(staged) == [Reason.STEP] and "largest step 10" in staged.refusals[0].message
    assert reasons(svc.stage(OSCAR, f"{CONV1}/run_command", True)) == []
    for who, path, value, reason in [
        (VERA, SPEED, cur, Reason.ROLE),  # a viewer: refused outright (and recorded), nothing to show
        (OSCAR, ZONE1, 100.0, Reason.ROLE),  # engineer tag
        (DETROIT_OP, SPEED, 10.0, Reason.ROLE),  # no rights at windsor at all
        (OSCAR, f"{CONV1}/speed", 10.0, Reason.NOT_WRITABLE),
        (OSCAR, "windsor/body-paint/body-line-1/welder1/run_command", True, Reason.NOT_WRITABLE),  # no control:
        (OSCAR, f"{CONV1}/run_command", "yes", Reason.INVALID_VALUE),
        (OSCAR, SPEED, True, Reason.INVALID_VALUE),
        (OSCAR, SPEED, float("nan"), Reason.INVALID_VALUE),
        (OSCAR, "windsor/nope", 1, Reason.UNKNOWN_TAG),
    ]:
        with pytest.raises(ControlRefused) as err:
            svc.stage(who, path, value)
        assert err.value.reason == reason, (path, value, err.value)
    assert [s.tag for s in svc.pending(OSCAR)] == [f"{CONV1}/run_command"]
    assert audit.kinds().count("control.stage_refused") == 9
    out = await svc.confirm(OSCAR, "no-such-id", "cmd-x")
    assert (out.status, out.reason) == ("refused", Reason.UNKNOWN_STAGED)


async def test_interlock_refusal_names_the_expression_and_values(rig: Rig) -> None:
    svc, _ = service(rig)
    staged = svc.stage(OSCAR, f"{CONV2}/speed_setpoint", 10.0)
    assert reasons(staged) == [Reason.INTERLOCK]
    (lock,) = staged.interlocks
    assert (lock.expression, lock.ok, lock.detail) == ("state == 99", False, "does not hold")
    # the value the stage read: the latest value of the tag (read with no await in between, so the same; the
    # simulator's own state may have moved on since, which CI run m2 caught)
    rt = rig.runtime
    seen = rt.latest.table([rt.tag_ids[f"{CONV2}/state"]]).column("value")[0].as_py()
    assert lock.values[f"{CONV2}/state"] == seen
    assert "state == 99" in staged.refusals[0].message
    assert svc.pending(OSCAR) == []


async def test_confirm_after_the_timeout_or_by_someone_else_is_refused(rig: Rig) -> None:
    clock = Clock()
    svc, _ = service(rig, clock=clock)
    cur, target = new_speed(rig, 1.11)
    staged = svc.stage(OSCAR, SPEED, target)
    assert staged.ok and staged.expires_at - staged.created_at == 30
    other = await svc.confirm(CAROL, staged.id, "cmd-carol")
    assert (other.status, other.reason) == ("refused", Reason.WRONG_USER)
    clock.offset = 30.5
    out = await svc.confirm(OSCAR, staged.id, "cmd-late")
    assert (out.status, out.reason) == ("refused", Reason.EXPIRED)
    await asyncio.sleep(0.5)
    assert rig.sim.snapshot()[SPEED] == pytest.approx(cur)
    again = await svc.confirm(OSCAR, staged.id, "cmd-late-2")
    assert again.reason == Reason.UNKNOWN_STAGED  # the selection is gone


async def test_read_back_that_differs_is_unverified(rig: Rig) -> None:
    svc, _ = service(rig)
    path = f"{PRESS1}/spm_setpoint"  # uint16 register with scale 0.1: 0.04 cannot be represented
    cur = round(float(rig.sim.snapshot()[path]), 1)  # type: ignore[arg-type]
    staged = svc.stage(OSCAR, path, cur + 0.04)
    assert staged.ok, staged.refusals
    t0 = time.monotonic()
    out = await svc.confirm(OSCAR, staged.id, "cmd-spm")
    assert out.status == "unverified", out
    # waited the whole verify_timeout (4 s: on a loaded machine a poll's read-back can take over a second)
    assert time.monotonic() - t0 >= 4.0
    assert out.read_back == pytest.approx(cur) and "within 4 s" in out.message


async def test_retried_confirm_executes_once_and_returns_the_first_result(rig: Rig) -> None:
    svc, audit = service(rig)
    _, target = new_speed(rig, 2.22)
    staged = svc.stage(OSCAR, SPEED, target)
    results = await asyncio.gather(*(svc.confirm(OSCAR, staged.id, "cmd-retry") for _ in range(3)))
    later = await svc.confirm(OSCAR, staged.id, "cmd-retry")
    assert results[0].status == "applied"
    assert all(r is results[0] for r in [*results, later])
    assert audit.kinds().count("control.execute") == 1
    assert audit.kinds().count("control.confirm") == 4
    assert [e.details["retry"] for e in audit.entries if e.kind == "control.confirm"] == [False, True, True, True]
    staged2 = svc.stage(OSCAR, f"{CONV1}/run_command", True)
    clash = await svc.confirm(OSCAR, staged2.id, "cmd-retry")
    assert (clash.status, clash.reason) == ("refused", Reason.COMMAND_CONFLICT)
    await wait_for(lambda: rig.sim.snapshot()[SPEED] == pytest.approx(target), 3, "conveyor setpoint")


async def test_critical_write_needs_a_second_qualified_person(rig: Rig) -> None:
    svc, audit = service(rig)
    path = f"{OVEN}/zone2_setpoint"
    cur = float(rig.sim.snapshot()[path])  # type: ignore[arg-type]
    target = cur - 15 if cur - 15 >= 20 else cur + 15
    staged = svc.stage(ALICE, path, target)
    assert staged.ok and staged.to_dict()["needs_approval"] is True
    out = await svc.confirm(ALICE, staged.id, "cmd-crit-1")
    assert (out.status, out.reason) == ("refused", Reason.NEEDS_APPROVAL)
    for who, reason in [(ALICE, Reason.SELF_APPROVAL), (OSCAR, Reason.ROLE)]:
        with pytest.raises(ControlRefused) as err:
            svc.approve(who, staged.id)
        assert err.value.reason == reason
    assert svc.approve(CAROL, staged.id).approved_by == "carol"
    out = await svc.confirm(ALICE, staged.id, "cmd-crit-2")
    assert out.status == "applied", out
    await wait_for(lambda: rig.sim.snapshot()[path] == pytest.approx(target), 3, "zone 2 setpoint")
    execute = next(e for e in audit.entries if e.kind == "control.execute")
    assert execute.actor == "alice" and execute.details["approved_by"] == "carol"
    with pytest.raises(ControlRefused) as err:
        svc.approve(CAROL, svc.stage(OSCAR, f"{CONV1}/run_command", True).id)
    assert err.value.reason == Reason.NOT_CRITICAL


async def test_control_disabled_at_a_site_is_admin_only_persisted_and_rechecked_at_confirm(rig: Rig) -> None:
    svc, audit = service(rig)
    cur, target = new_speed(rig, 1.5)
    with pytest.raises(ControlRefused) as err:
        svc.set_enabled(OSCAR, "windsor", False)
    assert err.value.reason == Reason.ROLE
    staged = svc.stage(OSCAR, SPEED, target)
    assert staged.ok
    try:
        svc.set_enabled(ADAM, "windsor", False, note="maintenance")
        out = await svc.confirm(OSCAR, staged.id, "cmd-disabled")
        assert (out.status, out.reason) == ("refused", Reason.CONTROL_DISABLED)
        assert reasons(svc.stage(OSCAR, SPEED, target)) == [Reason.CONTROL_DISABLED]
        fresh, _ = service(rig)  # a restart reads the switch from the store
        assert fresh.disabled("windsor") and not fresh.disabled("detroit")
    finally:
        svc.set_enabled(ADAM, "windsor", True)
    assert not service(rig)[0].disabled("windsor")
    assert rig.sim.snapshot()[SPEED] == pytest.approx(cur)
    switches = [(e.kind, e.actor) for e in audit.entries if "site" in e.kind]
    assert switches == [("control.site_switch_refused", "oscar"), ("control.site_disabled", "adam"),
                        ("control.site_enabled", "adam")]


async def test_no_write_to_a_device_that_is_down(rig: Rig) -> None:
    svc, _ = service(rig)
    staged = svc.stage(DETROIT_OP, f"{CNC2}/run_command", False)
    assert reasons(staged) == [Reason.DEVICE_DOWN]
    assert "sim-s7-detroit" in staged.refusals[0].message


async def test_stale_values_are_refused(rig: Rig) -> None:
    clock = Clock()
    clock.offset = 10.0  # every polled value now looks 10 s old (limit: 3 x 200 ms poll + 2 s timeout)
    svc, _ = service(rig, clock=clock)
    staged = svc.stage(OSCAR, SPEED, 12.0)
    assert Reason.STALE_VALUE in reasons(staged) and Reason.INTERLOCK in reasons(staged)
    assert "stale" in staged.refusals[0].message and "at most 2.6 s" in staged.refusals[0].message
    assert all("stale" in i.detail for i in staged.interlocks)
    # OPC UA reports by exception: a steady value is not stale while its device is connected ...
    cur = float(rig.sim.snapshot()[ZONE1])  # type: ignore[arg-type]
    ok = svc.stage(ALICE, ZONE1, cur)
    assert Reason.STALE_VALUE not in reasons(ok), ok.refusals
    # ... unless a maximum age is configured
    capped, _ = service(rig, clock=clock, max_age=5.0)
    assert Reason.STALE_VALUE in reasons(capped.stage(ALICE, ZONE1, cur))


async def test_rate_limit_per_tag(rig: Rig) -> None:
    svc, _ = service(rig)
    path = f"{OVEN}/zone3_setpoint"
    cur = float(rig.sim.snapshot()[path])  # type: ignore[arg-type]
    staged = svc.stage(OSCAR, path, cur + 1 if cur + 1 <= 260 else cur - 1)
    assert (await svc.confirm(OSCAR, staged.id, "cmd-rate-1")).status == "applied"
    again = svc.stage(OSCAR, path, cur)
    assert reasons(again) == [Reason.RATE_LIMIT] and "every 60 s" in again.refusals[0].message


async def test_a_write_that_cannot_be_audited_is_refused(rig: Rig) -> None:
    class Broken:
        def record(self, *args: Any, **kw: Any) -> None:
            raise OSError("disk full")

    svc = ControlService(ControlWiring.of(rig.runtime), Broken())
    with pytest.raises(ControlRefused) as err:
        svc.stage(OSCAR, SPEED, 12.0)
    assert err.value.reason == Reason.AUDIT_FAILED and "disk full" in err.value.message
    assert svc.pending(OSCAR) == []


async def test_the_real_audit_log_plugs_in_and_chains_every_step(rig: Rig) -> None:
    from plantlink.audit.log import AuditLog

    assert rig.runtime.store is not None
    log = AuditLog(rig.runtime.store.engine)
    svc = ControlService(ControlWiring.of(rig.runtime), log)
    _, target = new_speed(rig, 0.77)
    staged = svc.stage(OSCAR, SPEED, target)
    out = await svc.confirm(OSCAR, staged.id, "cmd-real-audit")
    assert out.status == "applied", out
    records = list(log.query(actor="oscar", kind="control."))[-4:]
    assert [r.kind for r in records] == ["control.stage", "control.confirm", "control.execute", "control.result"]
    assert records[-1].details["status"] == "applied" and records[-1].target == SPEED
    assert log.verify().ok
