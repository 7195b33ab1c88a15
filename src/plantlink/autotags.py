"""Tags from Sparkplug B births, created while running (``sparkplug: {auto_tags: {under: site/area/line}}`` on an
MQTT device; docs/mqtt.md, "Tags from births").

The connector proposes the unbound metrics of each birth (``plantlink.connectors.mqtt.autotags``); the
``AutoTagger`` gathers the proposals of a moment (births within ``settle`` of each other: a node with 50 devices
is one change), adds them to the *auto-tags file* (``<data dir>/auto-tags.yaml``: per device, the machines and
tags in the shape ``plantlink discover`` prints) and applies the running model with them through the same path
as ``plantlink apply`` (``ModelService.apply``: validated whole, planned, audited as ``model.apply`` by
``system:sparkplug`` with the plan's changes). The connector takes the new tags while running (no new MQTT
session, so no rebirth and no loop) and stores the samples it held since the birth under them.

The file is the layer the tags live in: it is merged into the model at every start and into every model applied
(``plantlink plan`` / ``apply`` of the engineer's file keep them), for the devices that have ``auto_tags`` set,
skipping the tags whose metric the model itself already reads (moved into the model file).
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from plantlink.connectors.mqtt.config import AutoTags
from plantlink.errors import Conflict, PlantlinkError
from plantlink.identity import ALL_SITES, Principal
from plantlink.lifecycle import Part
from plantlink.model import DeviceInfo, Plant, parse_plant
from plantlink.model.yamlmarks import load_marked
from plantlink.tasks import cancel_and_wait

if TYPE_CHECKING:
    from plantlink.connectors.base import Connector
    from plantlink.connectors.mqtt.autotags import NewTag
    from plantlink.runtime import Runtime

log = logging.getLogger("plantlink.autotags")

#: The auto-tags file, in the data directory.
AUTO_TAGS_FILE = "auto-tags.yaml"
#: Who the audit log names for a model change made from births.
ACTOR = "system:sparkplug"
SYSTEM = Principal(ACTOR, {ALL_SITES: "admin"}, kind="token")
#: Longest a model change waits for births to stop arriving.
MAX_SETTLE = 10.0
_HEADER = """\
# Tags plantlink created from Sparkplug B births (docs/mqtt.md, "Tags from births"), per MQTT device: merged into
# the plant model at every start and apply while the device has sparkplug: {auto_tags: ...}. To make a tag
# permanent, copy its machine and tag under the line in the plant model file (a tag whose metric the model reads
# is no longer taken from here). To remove them: turn auto_tags off and apply; to forget them, stop plantlink,
# delete the device's entry here and start it (a running plantlink rewrites this file when it creates tags).
"""

Overlay = dict[str, dict[str, Any]]


def auto_settings(dev: DeviceInfo | None) -> AutoTags | None:
    sp = getattr(dev.config, "sparkplug", None) if dev is not None and dev.enabled else None
    auto = getattr(sp, "auto_tags", None)
    return auto if isinstance(auto, AutoTags) else None


def load_overlay(path: Path) -> Overlay:
    """The auto-tags file (empty when missing; an unreadable one is logged and ignored: the model runs without)."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) if path.exists() else {}
    except (OSError, yaml.YAMLError, UnicodeDecodeError) as exc:
        log.error("%s cannot be read (%s): the tags created from births are not in the model", path, exc)
        return {}
    if not isinstance(data, dict):
        log.error("%s does not hold a mapping of devices: ignored", path)
        return {}
    out: Overlay = {}
    for dev, entry in data.items():
        machines = entry.get("machines") if isinstance(entry, dict) else None
        if isinstance(dev, str) and isinstance(machines, list):
            out[dev] = {"under": str(entry.get("under", "")), "machines": [m for m in machines if _machine_ok(m)]}
        else:
            log.error("%s: the entry of device %r is not {under, machines}: ignored", path, dev)
    return out


def _machine_ok(m: Any) -> bool:
    return (isinstance(m, dict) and isinstance(m.get("name"), str) and isinstance(m.get("tags"), list)
            and all(isinstance(t, dict) and isinstance(t.get("source"), dict) for t in m["tags"]))


def save_overlay(path: Path, overlay: Overlay) -> None:
    """Write the file whole (a temporary file renamed over it: never half written)."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(_HEADER + yaml.safe_dump(overlay, sort_keys=False, allow_unicode=True, width=120),
                   encoding="utf-8")
    os.replace(tmp, path)


def paste_yaml(overlay: Overlay) -> str:
    """The overlay as ``plantlink discover`` prints births: per device, the machines to paste under its line."""
    out = []
    for dev, entry in overlay.items():
        out.append(f"# device {dev}: paste these machines under the line {entry['under'] or '(its auto_tags under)'}")
        body = yaml.safe_dump({"machines": entry["machines"]}, sort_keys=False, allow_unicode=True, width=120)
        out.append(body.rstrip("\n"))
    return "\n".join(out) + "\n" if out else ""


def with_new(overlay: Overlay, new: Mapping[str, list[NewTag]], under: Mapping[str, str]) -> Overlay:
    """``overlay`` plus the tags ``new`` (device -> tags), as a new overlay."""
    out = {dev: {"under": e["under"], "machines": [dict(m, tags=list(m["tags"])) for m in e["machines"]]}
           for dev, e in overlay.items()}
    for dev, tags in new.items():
        entry = out.setdefault(dev, {"under": under.get(dev, ""), "machines": []})
        for t in tags:
            machine = next((m for m in entry["machines"] if m["name"] == t.machine), None)
            if machine is None:
                machine = {"name": t.machine, "description": t.description, "tags": []}
                entry["machines"].append(machine)
            if all(x.get("name") != t.name for x in machine["tags"]):
                machine["tags"].append(t.to_dict())
    return out


def merge_text(plant: Plant, overlay: Overlay) -> str | None:
    """The text of ``plant`` with the overlay's tags of its devices that have ``auto_tags`` (under their line);
    None when that adds nothing."""
    if not overlay or not plant.text:
        return None
    unders = {d: a.under for d, dev in plant.devices.items() if (a := auto_settings(dev)) is not None}
    if not any(d in unders for d in overlay):
        return None
    data = load_marked(plant.text, plant.file).data
    if not isinstance(data, dict):
        return None
    bound = {(t.device, getattr(t.source, "metric", None)) for t in plant.tags}
    added = False
    for dev, entry in overlay.items():
        line = _line(data, unders[dev]) if dev in unders else None
        if line is None:
            continue
        if not isinstance(line.get("machines"), list):
            line["machines"] = []
        for m in entry["machines"]:
            added |= _add_machine(line["machines"], m, [t for t in m["tags"]
                                                         if (dev, t["source"].get("metric")) not in bound])
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True) if added else None


def _line(data: dict[str, Any], under: str) -> dict[str, Any] | None:
    node: Any = data
    for level, name in zip(("sites", "areas", "lines"), under.split("/"), strict=True):
        items = node.get(level) if isinstance(node, dict) else None
        node = next((x for x in items or () if isinstance(x, dict) and x.get("name") == name), None)
    return node if isinstance(node, dict) else None


def _add_machine(machines: list[Any], m: dict[str, Any], tags: list[dict[str, Any]]) -> bool:
    if not tags:
        return False
    target = next((x for x in machines if isinstance(x, dict) and x.get("name") == m["name"]), None)
    if target is None:
        target = {"name": m["name"], "description": m.get("description", ""), "tags": []}
        machines.append(target)
    if not isinstance(target.get("tags"), list):
        target["tags"] = []
    names = {t.get("name") for t in target["tags"] if isinstance(t, dict)}
    fresh = [t for t in tags if t.get("name") not in names]
    target["tags"].extend(fresh)
    return bool(fresh)


class AutoTagger:
    """The runtime's side: the auto-tags file, the proposals of the connectors, one model change per moment."""

    def __init__(self, runtime: Runtime):
        self.rt = runtime
        self.overlay: Overlay = {}
        #: Model changes made from births, and those that failed (with the last error).
        self.applied = 0
        self.failed = 0
        self.last_error: str | None = None
        self._pending: dict[str, list[NewTag]] = {}
        self._last_offer = 0.0
        self._task: asyncio.Task[None] | None = None
        self._adopted = False

    @property
    def path(self) -> Path:
        return self.rt.data_dir / AUTO_TAGS_FILE

    # -- the model ----------------------------------------------------------------------------------------------
    def at_start(self, plant: Plant) -> Plant:
        """``plant`` with the auto-tags file's tags (read now)."""
        self.overlay = load_overlay(self.path)
        return self.layer(plant)

    def layer(self, plant: Plant) -> Plant:
        """``plant`` with the file's tags of its devices that have ``auto_tags`` (``plant`` itself when none is
        missing from it, or when they do not make a valid model: logged, the model runs without them)."""
        text = merge_text(plant, self.overlay)
        if text is None:
            return plant
        try:
            return parse_plant(text, plant.file)
        except PlantlinkError as exc:
            log.error("the tags created from births (%s) do not fit this model, they are left out: %s", self.path,
                      exc)
            return plant

    def wants(self, dev: DeviceInfo) -> bool:
        """Whether the device's connector runs although no tag reads it yet (it creates them from births)."""
        return auto_settings(dev) is not None

    def count(self, dev_id: str) -> int:
        return sum(len(m["tags"]) for m in self.overlay.get(dev_id, {}).get("machines", []))

    # -- the connectors -----------------------------------------------------------------------------------------
    def attach(self, dev_id: str, conn: Connector) -> None:
        """Let ``conn`` propose tags from births (when it can and its device has ``auto_tags``)."""
        enable = getattr(conn, "enable_auto_tags", None)
        if enable is None or auto_settings(self.rt.plant.devices.get(dev_id)) is None:
            return
        enable(self.offer, self.count(dev_id))
        if not self._adopted:  # stopped with the runtime, after the connectors
            self._adopted = True
            self.rt.adopt_part(Part("auto tags", lambda: None, self.stop))

    def offer(self, dev_id: str, tags: list[NewTag]) -> None:
        """A birth's new tags (in the event loop): applied with the others of the moment."""
        self._pending.setdefault(dev_id, []).extend(tags)
        self._last_offer = asyncio.get_running_loop().time()
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._settle(), name="auto tags")

    def _quiet(self) -> float:
        settle = [a.settle for d in self._pending if (a := auto_settings(self.rt.plant.devices.get(d)))]
        return max(settle, default=0.5)

    async def _settle(self) -> None:
        loop = asyncio.get_running_loop()
        while self._pending:
            first = loop.time()
            while (wait := self._last_offer + self._quiet() - loop.time()) > 0 and loop.time() - first < MAX_SETTLE:
                await asyncio.sleep(min(wait, MAX_SETTLE))
            pending, self._pending = self._pending, {}
            await self.apply(pending)

    async def apply(self, new: dict[str, list[NewTag]]) -> None:
        """Apply the model with ``new`` (device -> tags) through the model service; on failure the connectors
        drop them (refused, counted in their health)."""
        rt = self.rt
        unders = {d: a.under for d in new if (a := auto_settings(rt.plant.devices.get(d))) is not None}
        overlay = with_new(self.overlay, new, unders)
        error = None
        for _ in range(3):  # a model applied meanwhile (Conflict): again, over it
            text = merge_text(rt.plant, overlay)
            if text is None or rt.services is None:
                error = "no change to make" if text is None else "the runtime is not running"
                break
            try:
                await rt.services.model.apply(SYSTEM, text, rt.plant.file)
            except Conflict as exc:
                error = str(exc)
                continue
            except Exception as exc:  # a model that is not valid, an apply that failed: never a crash
                error = f"{type(exc).__name__}: {str(exc)[:300]}"
                break
            self.overlay, error = overlay, None
            await asyncio.to_thread(save_overlay, self.path, overlay)
            self.applied += 1
            log.info("created %d tag(s) from Sparkplug births: %s", sum(len(t) for t in new.values()),
                     ", ".join(f"{d} ({len(t)})" for d, t in new.items()))
            break
        if error is not None:
            self.failed += 1
            self.last_error = error
            log.error("the tags of Sparkplug births could not be created: %s", error)
        self._settle_connectors(new, error)

    def _settle_connectors(self, new: dict[str, list[NewTag]], error: str | None) -> None:
        """Tell the connectors which proposals were not bound (failed, or the model did not take them)."""
        for dev, tags in new.items():
            conn = self.rt.connectors.get(dev)
            auto, drop = getattr(conn, "auto", None), getattr(conn, "drop_auto_tags", None)
            left = [t.metric for t in tags if t.metric in auto.pending] if auto is not None else []
            if left and drop is not None:
                drop(left, error or "the model has another tag of that name on that machine")

    async def stop(self) -> None:
        task, self._task = self._task, None
        self._adopted = False
        await cancel_and_wait([task], "auto-tags")

    def status(self) -> dict[str, Any]:
        return {"file": str(self.path), "applied": self.applied, "failed": self.failed, "last_error": self.last_error,
                "tags": {d: self.count(d) for d in self.overlay}}
