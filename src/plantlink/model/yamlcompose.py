"""Build plain Python data from YAML text with bounded work, keeping the line and column of every value.

PyYAML's own composer recurses once per nesting level and its constructors expand aliases without bound, so
a deeply nested file or a "billion laughs" file (aliases of aliases) exhausts the stack or the machine. This
builder reads the parser's events (libyaml's, or PyYAML's pure-Python parser where libyaml is missing) with
an explicit stack and stops at the first of:

* nesting deeper than ``MAX_DEPTH`` collections (aliases count with the depth of what they repeat);
* more than ``MAX_VALUES`` values once every alias is expanded (an alias counts all the values it repeats;
  the data shares the anchor's object, so nothing is copied);
* a mapping key that is a list or a mapping (``? [a, b]``) or a merge key (``<<``);
* a second document in the stream; an alias before (or inside) its anchor.

Only plain values are built: text, integers, numbers, true/false, null, dates and times, lists and mappings.
Any other tag (``!!binary``, ``!!set``, ``!!omap``, ``!!python/...``, ``!custom``) is refused, as are
invalid dates (``2026-02-30``), integers too long to read and non-finite numbers (``.nan``, ``.inf``,
``1e999``): a plant model has no use for them. These are reported together, each at its value.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.constructor import SafeConstructor
from yaml.events import (
    AliasEvent,
    CollectionStartEvent,
    DocumentStartEvent,
    Event,
    MappingEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
)
from yaml.resolver import Resolver

Loc = tuple[str | int, ...]
Mark = tuple[int, int]

#: Deepest nesting of lists and mappings (a plant model needs about 15).
MAX_DEPTH = 64
#: Most values in a document once aliases are expanded (a plant of 20,000 tags has about 400,000).
MAX_VALUES = 1_000_000

_STD = "tag:yaml.org,2002:"
_SCALAR_TAGS = {f"{_STD}{t}" for t in ("str", "int", "float", "bool", "null", "timestamp")}
_COLLECTION_TAGS = {f"{_STD}map", f"{_STD}seq"}
_STR, _MERGE = f"{_STD}str", f"{_STD}merge"
_AS_TEXT = {_MERGE, f"{_STD}value"}  # ``<<`` and ``=`` as values are just text
_WHAT = {"int": "whole number", "float": "number", "bool": "true/false value", "null": "null",
         "timestamp": "date or time (dates are YYYY-MM-DD; quote the value to keep it as text)"}
_NO_KEY = object()
_KNOWN = 10_000  # distinct scalars whose tag and value are remembered (most values of a model repeat)

try:
    _Parser: type = yaml.CSafeLoader  # libyaml
except AttributeError:  # pragma: no cover - PyYAML built without libyaml
    _Parser = yaml.SafeLoader


class YamlStop(Exception):
    """A problem after which the rest of the document is not read."""

    def __init__(self, mark: Mark | None, message: str):
        super().__init__(message)
        self.mark, self.message = mark, message


@dataclass
class Composed:
    """The document's data (None when it is empty or null), where each value and key stands, and the problems
    found as (location, mark, message); ``broken`` when a value could not be read (data holds it as text)."""

    data: Any = None
    empty: bool = True
    broken: bool = False
    marks: dict[Loc, Mark] = field(default_factory=dict)
    key_marks: dict[Loc, Mark] = field(default_factory=dict)
    problems: list[tuple[Loc, Mark, str]] = field(default_factory=list)


@dataclass
class _Frame:
    value: dict[Any, Any] | list[Any]
    loc: Loc
    anchor: str | None
    count: int = 1
    height: int = 1
    key: Any = _NO_KEY
    key_mark: Mark = (0, 0)


def _mark(m: Any) -> Mark:
    return (m.line + 1, m.column + 1)


def _short(tag: str) -> str:
    return "!!" + tag[len(_STD):] if tag.startswith(_STD) else tag


class _Builder:
    def __init__(self) -> None:
        self.out = Composed()
        self.resolver = Resolver()
        self.constructor = SafeConstructor()
        self.anchors: dict[str, tuple[Any, int, int]] = {}
        self.stack: list[_Frame] = []
        self.values = 0
        self.documents = 0
        self.known: dict[tuple[str | None, tuple[bool, bool], str], tuple[str, Any]] = {}  # scalars read before

    # -- placing values

    def _slot(self) -> Loc | None:
        """Where the next value goes; None when it is a mapping key."""
        if not self.stack:
            return ()
        top = self.stack[-1]
        if isinstance(top.value, list):
            return (*top.loc, len(top.value))
        return None if top.key is _NO_KEY else (*top.loc, top.key)

    def _count(self, n: int, mark: Mark) -> None:
        self.values += n
        if self.values > MAX_VALUES:
            raise YamlStop(mark, f"the document holds more than {MAX_VALUES:,} values, counting each alias (*name) as "
                                 "the values it repeats; a plant model needs far fewer (aliases of aliases multiply)")

    def _place(self, value: Any, count: int, height: int, mark: Mark) -> None:
        if not self.stack:
            self.out.data, self.out.empty = value, False
            return
        top = self.stack[-1]
        top.count += count
        top.height = max(top.height, height + 1)
        if isinstance(top.value, list):
            top.value.append(value)
        elif top.key is _NO_KEY:
            top.key, top.key_mark = value, mark
        else:
            key, loc = top.key, (*top.loc, top.key)
            if key in top.value:
                self.out.problems.append((top.loc, top.key_mark, f"duplicate key {key!r} (each key may appear once in "
                                                            "a mapping)"))
            top.value[key] = value
            self.out.key_marks[loc] = top.key_mark
            top.key = _NO_KEY

    # -- events

    def event(self, ev: Event) -> None:
        kind = type(ev)
        if kind is ScalarEvent:
            self._scalar(ev)  # type: ignore[arg-type]
        elif kind is MappingStartEvent or kind is SequenceStartEvent:
            self._start(ev)  # type: ignore[arg-type]
        elif kind is MappingEndEvent or kind is SequenceEndEvent:
            self._end()
        elif kind is AliasEvent:
            self._alias(ev)  # type: ignore[arg-type]
        elif kind is DocumentStartEvent:
            self.documents += 1
            if self.documents > 1:
                raise YamlStop(_mark(ev.start_mark), "a second YAML document (---): a plant model is one document")

    def _scalar(self, ev: ScalarEvent) -> None:
        mark = _mark(ev.start_mark)
        self._count(1, mark)
        loc = self._slot()
        seen = (ev.tag, ev.implicit, ev.value)
        known = self.known.get(seen)
        if known is not None:
            tag, value = known
        else:
            tag = ev.tag if ev.tag not in (None, "!") else self.resolver.resolve(yaml.ScalarNode, ev.value, ev.implicit)
            value, ok = self._construct(ev, tag, loc, mark)
            if ok and len(self.known) < _KNOWN:
                self.known[seen] = (tag, value)
        if tag == _MERGE and loc is None and ev.implicit[0]:
            raise YamlStop(mark, "merge keys (<<) are not supported: write the keys out, or give the whole value an "
                                 "anchor (&name) and repeat it with an alias (*name)")
        if loc is not None:
            self.out.marks[loc] = mark
        if ev.anchor is not None:
            self.anchors[ev.anchor] = (value, 1, 0)
        self._place(value, 1, 0, mark)

    def _construct(self, ev: ScalarEvent, tag: str, loc: Loc | None, mark: Mark) -> tuple[Any, bool]:
        """The scalar's value and whether it is good (else a problem is recorded and the value is its text)."""
        if tag == _STR or tag in _AS_TEXT:
            return ev.value, True
        if tag not in _SCALAR_TAGS:
            self._bad(loc, mark, f"the tag {_short(tag)} is not allowed in a plant model: only plain values (text, "
                                 "numbers, true/false, dates, null), lists and mappings")
            return ev.value, False
        node = yaml.ScalarNode(tag, ev.value, None, None, ev.style)  # marks: ours are on the problem
        try:
            value = self.constructor.yaml_constructors[tag](self.constructor, node)
        except (ValueError, ArithmeticError, TypeError, yaml.YAMLError) as exc:
            reason = exc.problem if isinstance(exc, yaml.MarkedYAMLError) else str(exc).split("; use sys.")[0]
            self._bad(loc, mark, f"{ev.value[:40]!r} is not a valid {_WHAT[tag[len(_STD):]]}: {reason}")
            return ev.value, False
        except (IndexError, AttributeError):  # PyYAML's constructors on '' (!!float) or on no date (!!timestamp)
            reason = "empty" if not ev.value else "not of that form"
            self._bad(loc, mark, f"{ev.value[:40]!r} is not a valid {_WHAT[tag[len(_STD):]]}: {reason}")
            return ev.value, False
        if isinstance(value, float) and not math.isfinite(value):
            self._bad(loc, mark, f"{ev.value[:40]!r} is not a finite number: every number in a plant model must be "
                                 "finite (NaN and infinity are refused)")
            return value, False
        return value, True

    def _bad(self, loc: Loc | None, mark: Mark, message: str) -> None:
        self.out.broken = True
        self.out.problems.append((loc if loc is not None else self.stack[-1].loc, mark, message))

    def _start(self, ev: CollectionStartEvent) -> None:
        mark = _mark(ev.start_mark)
        loc = self._slot()
        if loc is None:
            raise YamlStop(mark, "a mapping key must be plain text, not a list or a mapping (? [a, b])")
        if len(self.stack) >= MAX_DEPTH:
            raise YamlStop(mark, f"nested more than {MAX_DEPTH} levels deep; a plant model needs far fewer")
        self._count(1, mark)
        mapping = isinstance(ev, MappingStartEvent)
        if ev.tag not in (None, "!") and ev.tag not in _COLLECTION_TAGS:
            self._bad(loc, mark, f"the tag {_short(ev.tag)} is not allowed in a plant model: only plain values (text,"
                                 " numbers, true/false, dates, null), lists and mappings")
        elif ev.tag == f"{_STD}{'seq' if mapping else 'map'}":
            self._bad(loc, mark, f"the tag {_short(ev.tag)} does not fit a {'mapping' if mapping else 'list'}")
        self.out.marks[loc] = mark
        self.stack.append(_Frame({} if mapping else [], loc, ev.anchor))

    def _end(self) -> None:
        frame = self.stack.pop()
        if frame.anchor is not None:
            self.anchors[frame.anchor] = (frame.value, frame.count, frame.height)
        self._place(frame.value, frame.count, frame.height, self.out.marks[frame.loc])

    def _alias(self, ev: AliasEvent) -> None:
        mark = _mark(ev.start_mark)
        name = ev.anchor
        if name not in self.anchors:
            inside = any(f.anchor == name for f in self.stack)
            raise YamlStop(mark, f"the alias *{name} is inside its own anchor &{name} (a value cannot contain "
                                 "itself)" if inside else f"the alias *{name} comes before any anchor &{name}")
        value, count, height = self.anchors[name]
        loc = self._slot()
        if loc is None and isinstance(value, dict | list):
            raise YamlStop(mark, "a mapping key must be plain text, not a list or a mapping (an alias of one)")
        if len(self.stack) + height > MAX_DEPTH:
            raise YamlStop(mark, f"the alias *{name} nests values more than {MAX_DEPTH} levels deep")
        self._count(count, mark)
        if loc is not None:
            self.out.marks[loc] = mark
        self._place(value, count, height, mark)


def compose(text: str) -> Composed:
    """Build ``text``'s single document; raise ``YamlStop`` (or a ``yaml.YAMLError`` from the parser)."""
    builder = _Builder()
    parser = _Parser(text)
    try:
        while parser.check_event():
            builder.event(parser.get_event())
    finally:
        parser.dispose()
    return builder.out
