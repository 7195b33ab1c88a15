"""Plant-wide checks of the write settings (``control:`` of tags), for the plant loader.

``control_problems(spec)`` returns ``(loc, message)`` pairs where ``loc`` is the YAML location (as the loader
uses it: ``("sites", 0, "areas", 1, ..., "tags", 3, "control", "interlocks", 0)``), so the loader turns each
into a ConfigProblem with file, line and column::

    for loc, message in control_problems(self.spec):
        self.add(loc, message)
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from plantlink.control.grammar import ExprError
from plantlink.control.interlock import Interlock

if TYPE_CHECKING:
    from plantlink.model.schema import PlantFile, Tag

Loc = tuple[str | int, ...]
Problem = tuple[Loc, str]


def _walk(spec: PlantFile) -> Iterator[tuple[Loc, str, Tag]]:
    """Every tag with its YAML location and full path."""
    for si, s in enumerate(spec.sites):
        for ai, a in enumerate(s.areas):
            for li, ln in enumerate(a.lines):
                for mi, m in enumerate(ln.machines):
                    for ti, t in enumerate(m.tags):
                        loc: Loc = ("sites", si, "areas", ai, "lines", li, "machines", mi, "tags", ti)
                        yield loc, f"{s.name}/{a.name}/{ln.name}/{m.name}/{t.name}", t


def control_problems(spec: PlantFile) -> list[Problem]:
    """Every problem of the tags' write settings: not writable, values that do not fit the type, interlocks
    that name unknown tags or compare values of different kinds."""
    types = {path: t.type for _, path, t in _walk(spec)}
    out: list[Problem] = []
    for loc, path, tag in _walk(spec):
        if tag.control is None:
            continue
        cloc = (*loc, "control")
        if not tag.writable:
            out.append((cloc, "control settings on a tag that is not writable (add writable: true, or remove "
                              "control)"))
        out += [((*cloc, *f), m) for f, m in _value_problems(tag)]
        machine = path.rsplit("/", 1)[0]
        for k, expr in enumerate(tag.control.interlocks):
            try:
                Interlock.compile(expr, machine).check(types)
            except ExprError as exc:
                out.append(((*cloc, "interlocks", k), f"interlock {expr!r}: {exc}"))
    return out


def _value_problems(tag: Tag) -> list[Problem]:
    """Limits and allowed values that do not fit the tag's type."""
    spec = tag.control
    assert spec is not None
    out: list[Problem] = []
    if tag.type in ("bool", "string"):
        for f in ("min", "max", "max_step"):
            if getattr(spec, f) is not None:
                out.append(((f,), f"{f} does not apply to a {tag.type} tag"))
    for i, v in enumerate(spec.allowed or []):
        why = _misfit(tag.type, v)
        if why:
            out.append((("allowed", i), f"allowed value {v!r} {why}"))
        elif isinstance(v, float) and ((spec.min is not None and v < spec.min)
                                       or (spec.max is not None and v > spec.max)):
            out.append((("allowed", i), f"allowed value {v!r} is outside min..max ({spec.min}..{spec.max})"))
    if tag.type == "int":
        for f in ("min", "max", "max_step"):
            v = getattr(spec, f)
            if v is not None and not float(v).is_integer():
                out.append(((f,), f"{f} must be a whole number for an int tag, got {v}"))
    return out


def _misfit(tag_type: str, v: Any) -> str | None:
    """Why ``v`` cannot be written to a tag of ``tag_type``, or None."""
    if tag_type == "bool":
        return None if isinstance(v, bool) else "is not true/false (the tag is bool)"
    if tag_type == "string":
        return None if isinstance(v, str) else "is not a string (the tag is string)"
    if isinstance(v, bool | str):
        return f"is not a number (the tag is {tag_type})"
    if tag_type == "int" and not float(v).is_integer():
        return "is not a whole number (the tag is int)"
    return None
