"""Apply a new plant model to a running ``Runtime`` without a restart (``plantlink apply``, docs/plan-apply.md).

``ModelApplier.apply(new, plan)`` (one at a time):

1. the historian renames the tags the new model renames with ``was:`` (they keep their ids, so their history)
   and registers the new model's tags (new ones get new ids; the others keep theirs);
2. the connectors of the devices the plan names (``Plan.devices``: the device changed, or a tag it reads was
   added, removed, renamed or re-addressed) stop, except those whose device settings did not change and whose
   connector takes the new tags while running (``Connector.rebind``: the MQTT connector, when only Sparkplug
   metrics changed); every other connector keeps running, untouched: its samples keep flowing without a gap;
3. the runtime's model, tag ids and services are swapped at once (the API and HMI look the services up per
   request);
4. the connectors of those devices start again with the new model, and the engines are handed the new
   definitions (``Runtime.reload_engines``: alarms, machine states, downtime, SPC, anomaly, notifications;
   each keeps the running state of what did not change);
5. the notifier (a ``notifications:`` section added or removed), report schedules and MQTT publishing follow
   (``ModelApplier._outputs``).

A step that fails undoes the ones before it (renames reverted, the old connectors started again, the old model
and services back) and raises: the old model keeps running.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING

from plantlink.connectors.base import Connector, Point
from plantlink.errors import Conflict
from plantlink.historian import TagMeta
from plantlink.lifecycle import Part
from plantlink.model import Plant
from plantlink.model.diff import Plan, diff_plants, model_digest, resolve_was

if TYPE_CHECKING:
    from plantlink.runtime import Runtime

log = logging.getLogger("plantlink.reload")


def startup_renames(plant: Plant, known: set[str]) -> dict[str, str]:
    """Former path -> new path for the tags whose ``was:`` names a path the historian knows while it does not
    know theirs (a model edited with ``was:``, then started rather than applied): they keep their history."""
    paths = {t.path for t in plant.all_tags}
    out: dict[str, str] = {}
    for t in plant.tags:
        was = resolve_was(t)
        if was and t.path not in known and was in known and was not in paths and was not in out:
            out[was] = t.path
    return out


def device_points(plant: Plant, ids: Mapping[str, int], device: str) -> list[Point]:
    """The points of ``device`` in ``plant`` (its tags with their ids)."""
    return [Point(ids[t.path], t.path, t.tag, t.source) for t in plant.tags_of_device(device)]


def connector_part(dev: str, conn: Connector) -> Part:
    """A started connector as the lifecycle counts it (stopped with the runtime)."""
    return Part(f"connector {dev}", conn.start, conn.stop)


class ModelApplier:
    """Plans against, and applies to, the model a runtime runs."""

    def __init__(self, runtime: Runtime):
        self.rt = runtime
        self._lock = asyncio.Lock()
        self.applied = 0
        self._digest: tuple[Plant, str] | None = None

    @property
    def plant(self) -> Plant:
        return self.rt.plant

    def digest(self) -> str:
        """The running model's digest (computed once per model)."""
        plant = self.rt.plant
        if self._digest is None or self._digest[0] is not plant:
            self._digest = (plant, model_digest(plant))
        return self._digest[1]

    def has_history(self, path: str) -> bool:
        """Whether the running tag ``path`` has a sample (the historian's latest value of its id)."""
        tag_id = self.rt.tag_ids.get(path)
        if tag_id is None or self.rt.historian is None:
            return False
        ts = self.rt.historian.latest([tag_id]).column("ts")
        return bool(ts.null_count < len(ts))

    def _layer(self, new: Plant) -> Plant:
        """``new`` with the tags created from Sparkplug births (``plantlink.autotags``): a model applied keeps them."""
        auto = getattr(self.rt, "auto_tags", None)
        return auto.layer(new) if auto is not None else new

    def plan(self, new: Plant) -> Plan:
        return diff_plants(self.rt.plant, self._layer(new), self.has_history, self.digest())

    async def apply(self, new: Plant, plan: Plan) -> None:
        """Apply ``plan`` (made against the running model) to reach ``new``; see the module's doc."""
        async with self._lock:
            if plan.digest_before != self.digest():
                raise Conflict("the running model changed since this plan was made: plan again")
            await self._apply(self._layer(new), plan)
            self.applied += 1

    async def _apply(self, new: Plant, plan: Plan) -> None:
        rt = self.rt
        assert rt.historian is not None
        old_plant, old_ids = rt.plant, dict(rt.tag_ids)
        renames = {was: path for path, was in plan.renames.items()}
        if renames:
            await asyncio.to_thread(rt.historian.rename_tags, renames)
        try:
            metas = [TagMeta(t.path, t.tag.unit, t.tag.type) for t in new.all_tags]
            ids = await asyncio.to_thread(rt.historian.register_tags, metas)
        except BaseException:
            await self._unrename(renames)
            raise
        hot = self._rebind(self._unchanged(old_plant, new, plan.devices), new, ids)
        restart = tuple(d for d in plan.devices if d not in hot)
        stopped = await self._stop_connectors(restart)
        try:
            rt.plant, rt.tag_ids = new, ids
            rt.reload_services()
            await self._start_connectors(restart)
            await rt.reload_engines(plan.renames)
            await self._outputs()
        except BaseException as exc:
            log.error("applying the model failed (%s): the old model is put back", exc)
            await self._stop_connectors(restart)
            rt.plant, rt.tag_ids = old_plant, old_ids
            rt.reload_services()
            self._rebind(hot, old_plant, old_ids)
            await self._unrename(renames)
            await self._start_connectors(stopped)
            with contextlib.suppress(Exception):
                await rt.reload_engines(renames)
                await self._outputs()
            raise
        log.info("model applied: %s (%d changes; connectors restarted: %s; took the new tags while running: %s)",
                 plan.digest_after, len(plan.changes), ", ".join(restart) or "none", ", ".join(hot) or "none")

    async def _outputs(self) -> None:
        """What the plant sends out follows the model just swapped in: its notifier (a section added or removed),
        its report schedules (kept ones go on, added ones start with the periods that end from now on) and its
        MQTT publishing (started again when its settings or the tags it publishes changed: a Sparkplug edge
        births again with its new metrics)."""
        rt = self.rt
        spec = rt.plant.spec
        await self._notifier()
        if rt.report_schedule is not None:
            rt.report_schedule.reload(spec.reports, spec.notifications)
        elif spec.reports:  # the first schedules of this plant: all of them added
            part = rt.report_part([])
            assert rt.report_schedule is not None
            rt.report_schedule.reload(spec.reports, spec.notifications)
            rt.report_schedule.start()
            rt.adopt_part(part)
        new = rt.build_publishers()
        if [(type(p), p.settings, p.targets) for p in new] == [(type(p), p.settings, p.targets) for p in rt.publishers]:
            return
        for p in rt.publishers:
            rt.forget_part(p.name)
            await p.stop()
        rt.publishers = []
        for p in new:
            await p.start()
            rt.publishers.append(p)
            rt.adopt_part(p)
        log.info("MQTT publishing started again for the applied model (%d publishers)", len(new))

    async def _notifier(self) -> None:
        """A ``notifications:`` section added starts a notifier (told every alarm transition from now on); one
        removed stops it (deliveries under way get their drain time). A changed one: ``reload_engines``."""
        rt = self.rt
        cfg, alarms = rt.plant.spec.notifications, rt.alarms
        if alarms is None or rt.alarm_engine is None or (cfg is None) == (rt.notifier is None):
            return
        if cfg is not None:
            rt.start_notifier(alarms.store)
        else:
            assert rt.notifier is not None
            notifier, rt.notifier = rt.notifier, None
            rt.alarm_engine.listeners.remove(notifier.on_event)
            await notifier.stop()
        alarms.notifier = rt.notifier
        log.info("notifications %s by the applied model", "started" if cfg is not None else "stopped")

    def _unchanged(self, old: Plant, new: Plant, devices: tuple[str, ...]) -> tuple[str, ...]:
        """The running connectors among ``devices`` whose device settings did not change (only their tags did)."""
        out = []
        for dev in devices:
            before, after = old.devices.get(dev), new.devices.get(dev)
            if dev in self.rt.connectors and before is not None and before == after and new.tags_of_device(dev):
                out.append(dev)
        return tuple(out)

    def _rebind(self, devices: tuple[str, ...], plant: Plant, ids: dict[str, int]) -> tuple[str, ...]:
        """Hand the running connectors of ``devices`` their points of ``plant`` (``Connector.rebind``); the
        devices whose connector took them (the others are restarted)."""
        out = []
        for dev in devices:
            conn = self.rt.connectors.get(dev)
            if conn is not None and conn.rebind(device_points(plant, ids, dev)):
                out.append(dev)
        return tuple(out)

    async def _unrename(self, renames: dict[str, str]) -> None:
        if renames and self.rt.historian is not None:
            back = {path: was for was, path in renames.items()}
            with contextlib.suppress(Exception):
                await asyncio.to_thread(self.rt.historian.rename_tags, back)

    async def _stop_connectors(self, devices: tuple[str, ...]) -> tuple[str, ...]:
        """Stop the running connectors of ``devices``; returns those that ran."""
        rt = self.rt
        stopped = []
        for dev in devices:
            conn = rt.connectors.pop(dev, None)
            if conn is None:
                continue
            rt.forget_part(f"connector {dev}")
            try:
                await conn.stop()
            except Exception:
                log.exception("connector %s did not stop cleanly", dev)
            stopped.append(dev)
        return tuple(stopped)

    async def _start_connectors(self, devices: tuple[str, ...]) -> None:
        """Start the connectors of ``devices`` (those enabled and with tags) for the runtime's model."""
        rt = self.rt
        for dev, conn in rt.build_connectors(set(devices)).items():
            try:
                await conn.start()
            except BaseException:
                with contextlib.suppress(Exception):
                    await conn.stop()
                raise
            rt.connectors[dev] = conn
            rt.adopt_part(connector_part(dev, conn))
