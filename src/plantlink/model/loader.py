"""Load and validate a plant model YAML file, collecting every problem with file, line, column and path."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError

from plantlink import plugins
from plantlink.control.check import control_problems
from plantlink.errors import ConfigError, ConfigProblem, PluginError
from plantlink.model.alarms import machine_alarm_problems
from plantlink.model.analytics import analytics_problems
from plantlink.model.notify import notification_problems
from plantlink.model.plant import DeviceInfo, Plant, TagInfo, derived_tags
from plantlink.model.production import METER_UNITS, POWER_UNITS
from plantlink.model.publish import publish_problems
from plantlink.model.reports import report_problems
from plantlink.model.schema import PlantFile
from plantlink.model.secrets import resolve_secrets
from plantlink.model.textfile import read_model_file
from plantlink.model.yamlcompose import Loc
from plantlink.model.yamlmarks import MarkedYaml, load_marked

if TYPE_CHECKING:
    from plantlink.connectors.base import ConnectorPlugin

_LEVELS = ("sites", "areas", "lines", "machines", "tags")


def human_path(data: Any, loc: Loc) -> str:
    """``site/area/line/machine/tag`` names along ``loc`` (indices replaced by the items' names)."""
    names: list[str] = []
    trail: list[str] = []
    node = data
    for i, part in enumerate(loc):
        prev = loc[i - 1] if i else None
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            node = None
        if isinstance(part, int) and prev in _LEVELS:
            names.append(str(node.get("name", f"#{part}")) if isinstance(node, dict) else f"#{part}")
            trail = []
        elif prev == "devices" and i == 1:
            names.append(f"device {part}")
            trail = []
        elif part not in _LEVELS:
            trail.append(f"[{part}]" if isinstance(part, int) else str(part))
    where = "/".join(names)
    field = ".".join(trail).replace(".[", "[")
    return f"{where} {field}".strip() if where else field


def _describe(err: Any) -> str:
    msg = str(err["msg"])
    kind = err["type"]
    if kind == "extra_forbidden":
        return f"unknown field {err['loc'][-1]!r} (check the spelling; see docs/plant-model.md)"
    if kind == "missing":
        return f"missing required field {err['loc'][-1]!r}"
    if kind == "literal_error":
        return f"{msg}, got {err.get('input')!r}"
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, "):]
    if kind not in ("value_error",) and "input" in err and not isinstance(err["input"], dict | list):
        msg += f", got {err['input']!r}"
    return msg


def validation_problems(doc: MarkedYaml, exc: ValidationError, prefix: Loc = ()) -> list[ConfigProblem]:
    out = []
    for err in exc.errors():
        loc = (*prefix, *(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-"))))
        at_key = err["type"] == "extra_forbidden"
        out.append(doc.problem(loc, _describe(err), human_path(doc.data, loc), at_key))
    return out


def load_plant(path: str | Path) -> Plant:
    """Read, parse and validate ``path``; raise ConfigError listing every problem found."""
    p = Path(path)
    return parse_plant(read_model_file(p), str(p))


def parse_plant(text: str, file: str = "<plant>") -> Plant:
    """Parse and validate ``text`` (the content of ``file``); raise ConfigError listing every problem found."""
    doc = load_marked(text, file, human_path)
    if doc.problems and doc.data is None:
        raise ConfigError(doc.problems)
    if not isinstance(doc.data, dict):
        held = {type(None): "null", list: "a list"}.get(type(doc.data), f"the single value {doc.data!r:.40}")
        raise ConfigError([doc.problem((), "the file must hold a mapping with the keys enterprise, devices and "
                                           f"sites; it holds {held}")])
    problems = list(doc.problems) + resolve_secrets(doc, human_path)
    context = validation_context(file)
    try:
        spec = PlantFile.model_validate(doc.data, context=context)
    except ValidationError as exc:
        raise ConfigError(problems + validation_problems(doc, exc)) from None
    checker = _Checker(doc, spec, problems, context)
    plant = checker.run()
    if problems:
        raise ConfigError(problems)
    plant.text = text
    return plant


def validation_context(file: str) -> dict[str, Any]:
    """What the models' validators are given: ``base_dir``, the plant file's directory (relative paths in the
    model, such as ``tls.ca_file``, are relative to it; the working directory for a model without a file)."""
    return {"base_dir": Path(file).resolve().parent if Path(file).is_file() else Path.cwd()}


def _nonfinite(value: Any, loc: Loc = ()) -> Iterator[Loc]:
    """Where the validated ``value`` holds a float that is NaN or infinite."""
    if isinstance(value, float):
        if not math.isfinite(value):
            yield loc
    elif isinstance(value, BaseModel):
        for name in type(value).model_fields:
            yield from _nonfinite(getattr(value, name), (*loc, name))
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            yield from _nonfinite(item, (*loc, i))
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _nonfinite(item, (*loc, key))


class _Checker:
    """Cross-field checks: unique names, device references, protocol-specific validation by plugins."""

    def __init__(self, doc: MarkedYaml, spec: PlantFile, problems: list[ConfigProblem], context: dict[str, Any]):
        self.doc, self.spec, self.problems, self.context = doc, spec, problems, context
        self.derived: list[TagInfo] = []

    def add(self, loc: Loc, message: str) -> None:
        self.problems.append(self.doc.problem(loc, message, human_path(self.doc.data, loc)))

    def run(self) -> Plant:
        if self.spec.notifications is not None:
            sites = [s.name for s in self.spec.sites]
            for nloc, msg in notification_problems(self.spec.notifications, sites):
                self.add(("notifications", *nloc), msg)
        for rloc, msg in report_problems(self.spec):
            self.add(("reports", *rloc), msg)
        devices = self._devices()
        self._places(devices)
        tags = self._tags(devices)
        self._plugin_checks(devices, tags)
        for cloc, msg in control_problems(self.spec):
            self.add(cloc, msg)
        if self.spec.publish is not None:
            writable = [t.path for t in tags if t.tag.writable and t.tag.control is not None]
            for ploc, msg in publish_problems(self.spec.publish, [t.path for t in tags + self.derived], writable,
                                              [s.name for s in self.spec.sites]):
                self.add(("publish", *ploc), msg)
        return Plant(self.doc.file, self.spec, {k: v for k, v in devices.items() if v is not None}, tags,
                     self.derived)

    def _unique(self, items: list[Any], loc: Loc, what: str) -> None:
        first: dict[str, int] = {}
        for idx, item in enumerate(items):
            if item.name in first:
                line, _ = self.doc.mark((*loc, first[item.name]))
                self.add((*loc, idx, "name"),
                         f"duplicate {what} name {item.name!r} (first used on line {line}; names must be unique here)")
            else:
                first[item.name] = idx

    def _plugin(self, name: str, loc: Loc) -> ConnectorPlugin | None:
        try:
            plugin = plugins.load(plugins.CONNECTORS, name)
        except PluginError as exc:
            self.add(loc, str(exc))
            return None
        return plugin  # type: ignore[no-any-return]

    def _devices(self) -> dict[str, DeviceInfo | None]:
        out: dict[str, DeviceInfo | None] = {}
        for dev_id, dev in self.spec.devices.items():
            loc: Loc = ("devices", dev_id)
            plugin = self._plugin(dev.protocol, (*loc, "protocol"))
            if plugin is None:
                out[dev_id] = None
                continue
            cfg = self._validate(plugin.device_model, dev.fields(), loc)
            out[dev_id] = DeviceInfo(dev_id, dev.protocol, dev.enabled, cfg) if cfg is not None else None
        return out

    def _places(self, devices: dict[str, DeviceInfo | None]) -> None:
        """The lines a device's settings name (``model_places()``, e.g. where an MQTT device creates the tags of
        Sparkplug births) must exist."""
        lines = {f"{s.name}/{a.name}/{ln.name}" for s in self.spec.sites for a in s.areas for ln in a.lines}
        for dev_id, dev in devices.items():
            places = getattr(dev.config, "model_places", None) if dev is not None else None
            for floc, place in places() if places is not None else ():
                if place not in lines:
                    known = ", ".join(sorted(lines)[:10]) or "none"
                    self.add(("devices", dev_id, *floc), f"no line {place!r} in the model (its lines: {known})")

    def _validate(self, model: type[BaseModel], data: dict[str, Any], loc: Loc) -> BaseModel | None:
        """A plugin's config model of ``data``; None after reporting its problems (NaN and infinities too,
        whatever the plugin's model allows)."""
        try:
            cfg = model.model_validate(data, context=self.context)
        except ValidationError as exc:
            self.problems.extend(validation_problems(self.doc, exc, loc))
            return None
        bad = list(_nonfinite(cfg))
        for floc in bad:
            self.add((*loc, *floc), "expected a finite number (NaN and infinities are refused)")
        return None if bad else cfg

    def _tags(self, devices: dict[str, DeviceInfo | None]) -> list[TagInfo]:
        tags: list[TagInfo] = []
        self._unique(self.spec.sites, ("sites",), "site")
        for si, s in enumerate(self.spec.sites):
            self._unique(s.areas, ("sites", si, "areas"), "area")
            for ai, a in enumerate(s.areas):
                self._unique(a.lines, ("sites", si, "areas", ai, "lines"), "line")
                for li, ln in enumerate(a.lines):
                    mloc: Loc = ("sites", si, "areas", ai, "lines", li, "machines")
                    self._unique(ln.machines, mloc, "machine")
                    for mi, m in enumerate(ln.machines):
                        self._unique(m.tags, (*mloc, mi, "tags"), "tag")
                        self._tag_refs(m, (*mloc, mi))
                        for aloc, msg in machine_alarm_problems(m) + analytics_problems(m):
                            self.add((*mloc, mi, *aloc), msg)
                        self.derived += derived_tags(m, (s.name, a.name, ln.name, m.name))
                        for ti, t in enumerate(m.tags):
                            loc: Loc = (*mloc, mi, "tags", ti, "source")
                            path = f"{s.name}/{a.name}/{ln.name}/{m.name}/{t.name}"
                            info = self._bind(t, path, (s.name, a.name, ln.name, m.name), devices, loc)
                            if info is not None:
                                tags.append(info)
        return tags

    def _tag_refs(self, m: Any, loc: Loc) -> None:
        """State rules and production counters must name tags of their own machine."""
        names = {t.name for t in m.tags}
        for section in ("states", "production", "energy"):
            sec = getattr(m, section)
            if sec is None:
                continue
            for fname in ("faulted_if", "state_tag", "counter", "produced", "good", "reject", "power", "meter"):
                ref = getattr(sec, fname, None)
                if ref is not None and ref not in names:
                    known = ", ".join(sorted(names)) or "none"
                    self.add((*loc, section, fname), f"no tag {ref!r} on machine {m.name!r} (its tags: {known})")
        self._energy_units(m, loc)
        for ti, t in enumerate(m.tags):
            ref = t.spc.subgroup.part_counter if t.spc is not None and t.spc.subgroup is not None else None
            if ref is not None and (ref not in names or ref == t.name):
                known = ", ".join(sorted(names - {t.name})) or "none"
                self.add((*loc, "tags", ti, "spc", "subgroup", "part_counter"),
                         f"no other tag {ref!r} on machine {m.name!r} (its tags: {known})")

    def _energy_units(self, m: Any, loc: Loc) -> None:
        """An energy tag is numeric and in a unit the engine converts (W/kW/MW, Wh/kWh/MWh)."""
        if m.energy is None:
            return
        tags = {t.name: t for t in m.tags}
        for fname, units in (("power", POWER_UNITS), ("meter", METER_UNITS)):
            t = tags.get(getattr(m.energy, fname) or "")
            if t is None:
                continue
            if t.type not in ("float", "int"):
                self.add((*loc, "energy", fname), f"tag {t.name!r} is {t.type}: an energy {fname} tag is numeric")
            elif t.unit not in units:
                self.add((*loc, "energy", fname), f"tag {t.name!r} has unit {t.unit!r}: an energy {fname} tag needs "
                                                  f"unit {', '.join(units)} (set the tag's unit)")

    def _bind(self, t: Any, path: str, names: tuple[str, str, str, str],
              devices: dict[str, DeviceInfo | None], loc: Loc) -> TagInfo | None:
        dev_id = t.source.device
        if dev_id not in devices:
            known = ", ".join(sorted(devices)) or "none declared"
            self.add((*loc, "device"), f"unknown device {dev_id!r} (declared devices: {known})")
            return None
        dev = devices[dev_id]
        if dev is None:
            return None  # the device itself is invalid; already reported
        plugin: ConnectorPlugin = plugins.load(plugins.CONNECTORS, dev.protocol)
        src = self._validate(plugin.source_model, t.source.fields(), loc)
        if src is None:
            return None
        return TagInfo(path, *names, tag=t, device=dev_id, protocol=dev.protocol, source=src)

    def _plugin_checks(self, devices: dict[str, DeviceInfo | None], tags: list[TagInfo]) -> None:
        locs = self._tag_locs()
        for dev_id, dev in devices.items():
            if dev is None:
                continue
            plugin: ConnectorPlugin = plugins.load(plugins.CONNECTORS, dev.protocol)
            if plugin.check is None:
                continue
            mine = [t for t in tags if t.device == dev_id]
            for issue in plugin.check(dev.config, [(t.tag, t.source) for t in mine]):
                t = mine[issue.index]
                self.add((*locs[t.path], "source", issue.field), issue.message)

    def _tag_locs(self) -> dict[str, Loc]:
        out: dict[str, Loc] = {}
        for si, s in enumerate(self.spec.sites):
            for ai, a in enumerate(s.areas):
                for li, ln in enumerate(a.lines):
                    for mi, m in enumerate(ln.machines):
                        for ti, t in enumerate(m.tags):
                            path = f"{s.name}/{a.name}/{ln.name}/{m.name}/{t.name}"
                            out[path] = ("sites", si, "areas", ai, "lines", li, "machines", mi, "tags", ti)
        return out
