"""Interlocks: expressions bound to a machine, type-checked against the plant, evaluated on live values.

Evaluation fails closed: when any tag an interlock names has no value, a bad or uncertain quality, a stale
value or a device that is down, the interlock does not hold, whatever the rest of the expression says.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from plantlink.control.grammar import Compare, ExprError, In, Lit, Node, Not, Ref, parse, refs

Kind = Literal["num", "bool", "str"]
Value = float | str | bool
_KIND_OF_TYPE: dict[str, Kind] = {"float": "num", "int": "num", "bool": "bool", "string": "str"}
_KIND_NAMES = {"num": "a number", "bool": "true/false", "str": "a string"}


@dataclass(frozen=True)
class Reading:
    """A tag's live value as the control path sees it: usable (``ok``) or why not."""

    value: Value | None
    ok: bool
    why: str | None = None
    ts_us: int | None = None


@dataclass(frozen=True)
class InterlockStatus:
    """One interlock's expression, whether it holds now, and the values it was judged on."""

    expression: str
    ok: bool
    detail: str
    values: dict[str, Value | None] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        values = {k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in self.values.items()}
        return {"expression": self.expression, "ok": self.ok, "detail": self.detail, "values": values}


class EvalError(Exception):
    """A value of the wrong kind met at evaluation (the static check should have caught it)."""


def resolve(ref: Ref, machine_path: str) -> str:
    """The full tag path ``ref`` names, seen from the machine at ``machine_path`` (site/area/line/machine)."""
    if ref.path is not None:
        return ref.path
    if ref.machine is None:
        return f"{machine_path}/{ref.name}"
    line = machine_path.rsplit("/", 1)[0]
    return f"{line}/{ref.machine}/{ref.name}"


def kind_of(tag_type: str) -> Kind:
    return _KIND_OF_TYPE[tag_type]


@dataclass(frozen=True)
class Interlock:
    """A parsed interlock of the machine at ``machine_path``; ``paths`` are the full paths it reads."""

    expression: str
    machine_path: str
    node: Node
    paths: tuple[str, ...]

    @classmethod
    def compile(cls, expression: str, machine_path: str) -> Interlock:
        """Parse ``expression`` (ExprError with the position when it is not valid)."""
        node = parse(expression)
        paths = tuple(dict.fromkeys(resolve(r, machine_path) for r in refs(node)))
        return cls(expression, machine_path, node, paths)

    def check(self, tag_types: Mapping[str, str]) -> None:
        """Every reference names a known tag and the kinds fit; ExprError (with the position) otherwise."""
        for r in refs(self.node):
            path = resolve(r, self.machine_path)
            if path not in tag_types:
                raise ExprError(f"unknown tag {r.text!r} (resolves to {path!r})", r.pos)

        def kind(r: Ref) -> Kind:
            return kind_of(tag_types[resolve(r, self.machine_path)])

        got = typecheck(self.node, kind)
        if got != "bool":
            raise ExprError(f"an interlock must be a condition (true/false), this is {_KIND_NAMES[got]}; "
                            "compare it, e.g. state == 1", _pos(self.node))

    def evaluate(self, values: Mapping[str, Reading]) -> InterlockStatus:
        """Whether the interlock holds on ``values`` (full path -> reading); fails closed on any doubt."""
        seen = {p: (values[p].value if p in values else None) for p in self.paths}
        for p in self.paths:
            reading = values.get(p)
            if reading is None or not reading.ok:
                why = reading.why if reading is not None else "no value"
                return InterlockStatus(self.expression, False, f"{p}: {why}", seen)
        try:
            ok = _truth(_eval(self.node, self.machine_path, values))
        except EvalError as exc:
            return InterlockStatus(self.expression, False, f"cannot evaluate: {exc}", seen)
        return InterlockStatus(self.expression, ok, "holds" if ok else "does not hold", seen)


def _pos(node: Node) -> int:
    return node.pos


def typecheck(node: Node, kind_of_ref: Callable[[Ref], Kind]) -> Kind:
    """The kind of ``node``'s value; ExprError at the first operation whose operands do not fit."""
    if isinstance(node, Lit):
        return "bool" if isinstance(node.value, bool) else "str" if isinstance(node.value, str) else "num"
    if isinstance(node, Ref):
        return kind_of_ref(node)
    if isinstance(node, Compare):
        left, right = typecheck(node.left, kind_of_ref), typecheck(node.right, kind_of_ref)
        if left != right:
            raise ExprError(f"cannot compare {_KIND_NAMES[left]} with {_KIND_NAMES[right]}", node.pos)
        if node.op not in ("==", "!=") and left != "num":
            raise ExprError(f"{node.op} needs numbers, not {_KIND_NAMES[left]}", node.pos)
        return "bool"
    if isinstance(node, In):
        item = typecheck(node.item, kind_of_ref)
        for opt in node.options:
            k = typecheck(opt, kind_of_ref)
            if k != item:
                raise ExprError(f"list item is {_KIND_NAMES[k]} but the value tested is {_KIND_NAMES[item]}",
                                _pos(opt))
        return "bool"
    operands = (node.operand,) if isinstance(node, Not) else node.operands
    for o in operands:
        k = typecheck(o, kind_of_ref)
        if k != "bool":
            op = "not" if isinstance(node, Not) else node.op
            raise ExprError(f"'{op}' needs conditions (true/false), not {_KIND_NAMES[k]}; compare it, "
                            "e.g. state == 1", _pos(o))
    return "bool"


def _kind(v: Value) -> str:
    return "bool" if isinstance(v, bool) else "str" if isinstance(v, str) else "num"


def _truth(v: Value) -> bool:
    if not isinstance(v, bool):
        raise EvalError(f"a condition must be true or false, got {v!r}")
    return v


def _equal(a: Value, b: Value) -> bool:
    if _kind(a) != _kind(b):
        raise EvalError(f"cannot compare {a!r} with {b!r}")
    return a == b


def _compare(op: str, a: Value, b: Value) -> bool:
    if op == "==":
        return _equal(a, b)
    if op == "!=":
        return not _equal(a, b)
    if isinstance(a, bool) or isinstance(b, bool) or not isinstance(a, float | int) or not isinstance(b, float | int):
        raise EvalError(f"{op} needs numbers, got {a!r} and {b!r}")
    return {"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[op]


def _eval(node: Node, machine_path: str, values: Mapping[str, Reading]) -> Value:
    if isinstance(node, Lit):
        return node.value
    if isinstance(node, Ref):
        v = values[resolve(node, machine_path)].value
        if v is None:
            raise EvalError(f"{node.text} has no value")
        return v
    if isinstance(node, Compare):
        return _compare(node.op, _eval(node.left, machine_path, values), _eval(node.right, machine_path, values))
    if isinstance(node, In):
        item = _eval(node.item, machine_path, values)
        found = any(_equal(item, _eval(o, machine_path, values)) for o in node.options)
        return found != node.negated
    if isinstance(node, Not):
        return not _truth(_eval(node.operand, machine_path, values))
    if node.op == "and":
        return all(_truth(_eval(o, machine_path, values)) for o in node.operands)
    return any(_truth(_eval(o, machine_path, values)) for o in node.operands)
