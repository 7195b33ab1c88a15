"""Compare two validated plant models: what ``plantlink plan`` shows and ``plantlink apply`` does.

``diff_plants(running, new, has_history)`` lists every change, each with its kind (device, tag, alarm, machine,
line, site, model), its action (add, change, remove, rename), the fields changed (old and new values, secrets
masked) and what it does to history. A tag is the same tag when its path is the same, or when the new model
says so with ``was:`` (its former name on the same machine, or its former path): it then keeps its tag id and
its history. A tag removed, or renamed without ``was:``, loses its history (kept in the historian under the old
path, but no longer reachable by the model): ``Plan.history_loss`` names those that had samples.

Pure: no I/O, no runtime. ``model_digest`` is the digest of a model's content (comments and layout aside).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import BaseModel, SecretStr

from plantlink.model.plant import DeviceInfo, Plant, TagInfo
from plantlink.model.secrets import MASK, SecretValue

Action = Literal["add", "change", "remove", "rename"]
#: Fields whose change leaves the stored samples as they were, while their meaning changes.
_HISTORY_NOTES = {
    "unit": "earlier samples stay in {old} (not converted)",
    "type": "earlier samples keep their {old} values",
    "scaling": "earlier samples stay scaled as before",
    "deadband": "earlier samples were stored with the old deadband",
}

#: What an apply does to the engines' definitions: alarms, machine states, downtime, SPC, anomaly detection and
#: notifications, remaining life, report schedules and MQTT publishing take them at once, OEE, costs and energy
#: are computed with them from then on.
ALARM_EFFECT = "the alarm engine takes it at once"
_AT_ONCE = "takes effect at once"
_FIGURES = "OEE, costs and energy are computed with it at once (for any period asked, also before the apply)"
#: A changed setting of a machine, line or site (by its first field): what the apply does with it.
_SETTING_EFFECTS = {
    "states": "the state engine takes it at once (an open state interval goes on unless the state changes)",
    "calendar": "the state engine takes it at once (planned time and shifts from now on); " + _FIGURES,
    "timezone": "the state engine takes it at once (planned time and shifts from now on); " + _FIGURES,
    "production": _FIGURES, "energy": _FIGURES, "costs": _FIGURES,
    "downtime": "the downtime engine takes it at once (reasons and micro-stops of the stops that end from now on)",
    "anomaly": "the anomaly engine takes it at once (a detector trained on other settings: train again)",
    "rul": "remaining-life estimation takes it at once (a changed machine trains again at its next round)",
}
_SECTION_EFFECTS = {
    "notifications": "the notifier takes it at once (a section added starts it, one removed stops it)",
    "reports": "report schedules take it at once (a schedule added starts with the periods that end after the apply)",
    "publish": "MQTT publishing takes it at once (its publishers start again: a Sparkplug edge births again)",
    "enterprise": "MQTT publishing takes it at once (new topics: its publishers start again)",
    "historian": "the historian changes at the next restart of plantlink (the history stays in the former one)",
}
_SPC_EFFECT = "SPC takes it at once (its control limits are learned again)"
#: The fields of a tag its connector reads by: a change of one restarts the connector.
_CONNECTOR_FIELDS = frozenset({"source", "type", "scaling", "deadband", "writable"})


@dataclass(frozen=True)
class FieldChange:
    field: str
    old: Any
    new: Any

    def to_dict(self) -> dict[str, Any]:
        return {"field": self.field, "old": self.old, "new": self.new}


@dataclass(frozen=True)
class Change:
    action: Action
    kind: str
    path: str
    fields: tuple[FieldChange, ...] = ()
    #: A renamed tag's former path.
    was: str | None = None
    #: What the change does to history (empty: nothing).
    history: str = ""
    #: A tag with samples that the new model no longer reaches.
    loses_history: bool = False
    #: What the change does to the running system (a connector restarts, an engine reloads).
    effect: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"action": self.action, "kind": self.kind, "path": self.path, "was": self.was,
                "fields": [f.to_dict() for f in self.fields], "history": self.history,
                "loses_history": self.loses_history, "effect": self.effect}


@dataclass(frozen=True)
class Plan:
    changes: tuple[Change, ...]
    #: Devices whose connector starts, stops or restarts.
    devices: tuple[str, ...] = ()
    digest_before: str = ""
    digest_after: str = ""
    #: Renamed tags: new path -> former path (the tag keeps its id).
    renames: Mapping[str, str] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return not self.changes

    @property
    def history_loss(self) -> list[str]:
        return [c.path for c in self.changes if c.loses_history]

    def counts(self) -> dict[str, int]:
        out = {"add": 0, "change": 0, "remove": 0, "rename": 0}
        for c in self.changes:
            out[c.action] += 1
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"digest_before": self.digest_before, "digest_after": self.digest_after,
                "counts": self.counts(), "devices": list(self.devices), "history_loss": self.history_loss,
                "changes": [c.to_dict() for c in self.changes]}


# -- values ------------------------------------------------------------------------------------------------
def _plain(value: Any) -> Any:
    """A JSON-able copy of ``value`` with secrets masked."""
    if isinstance(value, SecretStr | SecretValue):
        return MASK
    if isinstance(value, BaseModel):
        return _plain(value.model_dump(mode="python"))
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _flat(value: Any, prefix: str = "") -> dict[str, Any]:
    """Nested mappings as dotted keys (``scaling.raw_high``); lists and secrets are leaves."""
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="python")
    if isinstance(value, Mapping) and value:
        out: dict[str, Any] = {}
        for k, v in value.items():
            out.update(_flat(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    return {prefix: value}


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, SecretStr) or isinstance(b, SecretStr):
        return isinstance(a, SecretStr) and isinstance(b, SecretStr) and a.get_secret_value() == b.get_secret_value()
    if isinstance(a, bool) != isinstance(b, bool):
        return False
    return bool(a == b)


def field_changes(old: Any, new: Any) -> tuple[FieldChange, ...]:
    """The dotted fields whose values differ between two (nested) values, in sorted order."""
    a, b = _flat(old), _flat(new)
    out = []
    for key in sorted(set(a) | set(b)):
        if _same(a.get(key), b.get(key)):  # a section absent on one side: its fields are None there
            continue
        out.append(FieldChange(key, _plain(a.get(key)), _plain(b.get(key))))
    return tuple(out)


def _digest_default(value: Any) -> Any:
    if isinstance(value, SecretStr):
        return "secret:" + hashlib.sha256(value.get_secret_value().encode()).hexdigest()
    return str(value)


_ALL = "__all__"
#: The parts of the file as written that the digest takes as validated instead (defaults filled in).
_RAW: Any = {"devices": True, "sites": {_ALL: {"areas": {_ALL: {"lines": {_ALL: {"machines": {_ALL: {
    "tags": {_ALL: {"source": True}}}}}}}}}}}


def model_digest(plant: Plant) -> str:
    """``sha256:<hex>`` of the model's content: the same for two files that differ only in comments, layout,
    key order or written defaults."""
    doc = {"model": plant.spec.model_dump(mode="python", exclude=_RAW),  # devices and sources: as validated
           "devices": {d: _device_doc(i) for d, i in sorted(plant.devices.items())},
           "sources": {t.path: {"device": t.device, **t.source.model_dump(mode="python")} for t in plant.tags}}
    text = json.dumps(doc, sort_keys=True, default=_digest_default, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


# -- the diff ------------------------------------------------------------------------------------------------
def resolve_was(t: TagInfo) -> str | None:
    """The former path a tag's ``was:`` names (a bare name: on the same machine)."""
    was = t.tag.was
    if not was:
        return None
    return was if "/" in was else "/".join((t.site, t.area, t.line, t.machine, was))


def renames_of(old: Plant, new: Plant) -> dict[str, str]:
    """New path -> former path, for the tags whose ``was:`` names a tag of ``old`` that ``new`` has no more."""
    old_paths = {t.path for t in old.tags}
    new_paths = {t.path for t in new.tags}
    out: dict[str, str] = {}
    for t in new.tags:
        was = resolve_was(t)
        if t.path not in old_paths and was in old_paths and was not in new_paths and was not in out.values():
            out[t.path] = was
    return out


def diff_plants(old: Plant, new: Plant, has_history: Callable[[str], bool] = lambda _: False,
                old_digest: str | None = None) -> Plan:
    """Every change from ``old`` (the running model) to ``new``; ``has_history(path)``: whether a tag of
    ``old`` has samples; ``old_digest``: ``model_digest(old)`` when known."""
    renames = renames_of(old, new)
    devices = _device_changes(old, new)
    tags = _tag_changes(old, new, renames, has_history)
    touched = {c.path for c in devices} | _devices_of_tag_changes(old, new, tags)
    changes = [*devices, *tags, *_alarm_changes(old, new, renames), *_structure_changes(old, new)]
    restart = tuple(sorted(d for d in touched if _enabled(old, d) or _enabled(new, d)))
    return Plan(tuple(_with_effect(c, new) for c in changes), restart, old_digest or model_digest(old),
                model_digest(new), renames)


def _enabled(plant: Plant, device: str) -> bool:
    info = plant.devices.get(device)
    return info is not None and info.enabled


def _with_effect(c: Change, new: Plant) -> Change:
    if c.kind == "tag" and c.action == "change" and not _reads_differently(c):
        effect = "no connector restart"
        if any(f.field.split(".")[0] == "spc" for f in c.fields):
            effect += "; " + _SPC_EFFECT
        return Change(c.action, c.kind, c.path, c.fields, c.was, c.history, c.loses_history, effect)
    if c.kind != "device":
        return c
    effect = {"add": f"connector {c.path} starts", "remove": f"connector {c.path} stops",
              "change": f"connector {c.path} restarts"}[c.action]
    if c.action == "add" and not new.devices[c.path].enabled:
        effect = "disabled: no connector"
    return Change(c.action, c.kind, c.path, c.fields, c.was, c.history, c.loses_history, effect)


def _device_changes(old: Plant, new: Plant) -> list[Change]:
    out = []
    for dev in sorted(set(old.devices) | set(new.devices)):
        a, b = old.devices.get(dev), new.devices.get(dev)
        if a is None and b is not None:
            out.append(Change("add", "device", dev, (FieldChange("protocol", None, b.protocol),)))
        elif b is None:
            out.append(Change("remove", "device", dev))
        elif a is not None:
            fields = field_changes(_device_doc(a), _device_doc(b))
            if fields:
                out.append(Change("change", "device", dev, fields))
    return out


def _device_doc(d: DeviceInfo) -> dict[str, Any]:
    """A device as validated: protocol, enabled and its protocol's settings (defaults filled in)."""
    return {"protocol": d.protocol, "enabled": d.enabled,
            **{k: getattr(d.config, k) for k in type(d.config).model_fields}}


def _tag_doc(t: TagInfo) -> dict[str, Any]:
    doc = t.tag.model_dump(mode="python", exclude={"name", "was", "alarms", "source"})
    doc["source"] = {"device": t.device, **t.source.model_dump(mode="python")}
    return doc


def _tag_changes(old: Plant, new: Plant, renames: Mapping[str, str], has_history: Callable[[str], bool]
                 ) -> list[Change]:
    olds = {t.path: t for t in old.tags}
    news = {t.path: t for t in new.tags}
    kept_by_rename = set(renames.values())
    out = []
    for path in sorted(set(olds) | set(news)):
        a, b = olds.get(path), news.get(path)
        if a is None and b is not None:
            was = renames.get(path)
            if was is None:
                out.append(Change("add", "tag", path, (FieldChange("type", None, b.tag.type),
                                                      FieldChange("source.device", None, b.device))))
                continue
            fields = field_changes(_tag_doc(olds[was]), _tag_doc(b))
            out.append(Change("rename", "tag", path, fields, was=was, history=_kept_history(fields)))
        elif b is None and a is not None:
            if path in kept_by_rename:
                continue
            lost = has_history(path)
            note = ("its samples stay in the historian but the model no longer reaches them (a rename? say so "
                    "with was:)") if lost else "no samples yet"
            out.append(Change("remove", "tag", path, history=note, loses_history=lost))
        elif a is not None and b is not None:
            if a.tag == b.tag and a.device == b.device and a.source == b.source:
                continue  # the common case, at C speed: a 10,000-tag model is planned in a fraction of a second
            fields = field_changes(_tag_doc(a), _tag_doc(b))
            if fields:
                out.append(Change("change", "tag", path, fields, history=_field_history(fields)))
    return out


def _kept_history(fields: Iterable[FieldChange]) -> str:
    extra = _field_history(fields)
    return "kept (same tag id)" + (f"; {extra}" if extra else "")


def _field_history(fields: Iterable[FieldChange]) -> str:
    notes = []
    for f in fields:
        top = f.field.split(".")[0]
        note = _HISTORY_NOTES.get(top)
        if note is not None:
            text = note.format(old=f.old if f.old not in ("", None) else "no unit")
            if text not in notes:
                notes.append(text)
    return "; ".join(notes)


def _reads_differently(c: Change) -> bool:
    """Whether a tag change changes what its connector reads (a point added, removed, renamed or re-addressed):
    limits, roles, alarms, texts and units do not."""
    return c.action != "change" or any(f.field.split(".")[0] in _CONNECTOR_FIELDS for f in c.fields)


def _devices_of_tag_changes(old: Plant, new: Plant, tags: list[Change]) -> set[str]:
    """The devices whose points change (``_reads_differently``)."""
    olds = {t.path: t.device for t in old.tags}
    news = {t.path: t.device for t in new.tags}
    out: set[str] = set()
    for c in tags:
        if not _reads_differently(c):
            continue
        for d in (olds.get(c.path), news.get(c.path), olds.get(c.was or "")):
            if d is not None:
                out.add(d)
    return out


def _alarm_docs(plant: Plant) -> dict[str, Any]:
    return {f"{t.path}#{a.name}": a for t in plant.tags for a in t.tag.alarms}


def _alarm_changes(old: Plant, new: Plant, renames: Mapping[str, str]) -> list[Change]:
    olds, news = _alarm_docs(old), _alarm_docs(new)
    matched: set[str] = set()
    out = []
    for key in sorted(news):
        tag, _, name = key.partition("#")
        former = f"{renames.get(tag, tag)}#{name}"
        before = olds.get(former)
        if before is None:
            out.append(Change("add", "alarm", key, (FieldChange("type", None, news[key].type),),
                              effect=ALARM_EFFECT))
            continue
        matched.add(former)
        fields = field_changes(before, news[key])
        if fields:
            out.append(Change("change", "alarm", key, fields, effect=ALARM_EFFECT))
    for key in sorted(set(olds) - matched):
        out.append(Change("remove", "alarm", key, history="its past activations stay in the alarm journal",
                          effect=ALARM_EFFECT))
    return out


def _structure_changes(old: Plant, new: Plant) -> list[Change]:
    """Machines, lines, sites (their settings beyond their children) and the model's other sections."""
    out = []
    pairs = (("site", _sites, {"areas"}), ("line", _lines, {"machines"}), ("machine", _machines, {"tags"}))
    for kind, collect, children in pairs:
        a, b = collect(old), collect(new)
        for path in sorted(set(a) | set(b)):
            if path not in a:
                out.append(Change("add", kind, path))
            elif path not in b:
                out.append(Change("remove", kind, path))
            else:
                fields = field_changes(a[path].model_dump(mode="python", exclude={"name", *children}),
                                       b[path].model_dump(mode="python", exclude={"name", *children}))
                if fields:
                    out.append(Change("change", kind, path, fields, effect=_setting_effect(fields)))
    for section in ("enterprise", "notifications", "reports", "publish", "historian"):
        was, now = getattr(old.spec, section), getattr(new.spec, section)
        if section == "historian":  # a ClickHouse URL may hold a password
            was, now = _without_password(was), _without_password(now)
        fields = field_changes({section: was}, {section: now})
        if fields:
            effect = _SECTION_EFFECTS[section]  # added, changed or removed alike (``plantlink.reload``)
            out.append(Change("change", "model", section, fields, effect=effect))
    return out


def _without_password(url: str | None) -> str | None:
    """``url`` with its password shown as the mask (a resolved secret reference is masked whole already)."""
    if url is None or isinstance(url, SecretValue):
        return url
    parts = urlsplit(url)
    if parts.password is None:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", f":{MASK}@", 1)))


def _setting_effect(fields: Iterable[FieldChange]) -> str:
    """What the apply does with the changed settings of a machine, line or site (each effect once)."""
    effects = dict.fromkeys(_SETTING_EFFECTS.get(f.field.split(".")[0], _AT_ONCE) for f in fields)
    return "; ".join(effects)


def _sites(p: Plant) -> dict[str, Any]:
    return {s.name: s for s in p.sites}


def _lines(p: Plant) -> dict[str, Any]:
    return {f"{s.name}/{a.name}/{ln.name}": ln for s in p.sites for a in s.areas for ln in a.lines}


def _machines(p: Plant) -> dict[str, Any]:
    return dict(p.machines())
