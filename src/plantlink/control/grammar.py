"""The interlock expression language: a hand-written tokenizer and recursive-descent parser producing an AST.

Nothing here evaluates Python: the only names are tag references, the only call is ``tag("site/.../tag")``.

Grammar (``docs/control.md``)::

    expr     := or
    or       := and ("or" and)*
    and      := not ("and" not)*
    not      := "not" not | compare
    compare  := operand [ ("==" | "!=" | "<" | "<=" | ">" | ">=") operand | ["not"] "in" list ]
    operand  := NUMBER | STRING | "true" | "false" | ref | "(" expr ")"
    ref      := NAME | NAME "." NAME | "tag" "(" STRING ")"
    list     := "[" operand ("," operand)* [","] "]"

``NAME`` is a tag of the same machine; ``machine.NAME`` a tag of another machine on the same line;
``tag("site/area/line/machine/tag")`` any tag by its full path. Positions in errors are 1-based characters.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

MAX_LENGTH = 1000
MAX_DEPTH = 20
MAX_LIST = 64

CompareOp = Literal["==", "!=", "<", "<=", ">", ">="]
KEYWORDS = frozenset({"and", "or", "not", "in", "true", "false"})
_PUNCT2 = ("==", "!=", "<=", ">=")
_PUNCT1 = "()[],.<>"
_HINTS = {
    "=": "use == to compare",
    "!": "use 'not' (or != to compare)",
    "&": "use 'and'",
    "|": "use 'or'",
    "_": "names start with a letter or a digit; use tag(\"...\") for a full path",
}


class ExprError(ValueError):
    """An expression that cannot be parsed; ``pos`` is the 1-based character position of the problem."""

    def __init__(self, message: str, pos: int):
        self.message, self.pos = message, pos
        super().__init__(f"{message} (at position {pos})")


@dataclass(frozen=True)
class Token:
    kind: Literal["num", "str", "name", "kw", "op", "end"]
    text: str
    pos: int
    value: float | str | None = None


@dataclass(frozen=True)
class Lit:
    value: float | str | bool
    pos: int


@dataclass(frozen=True)
class Ref:
    """A tag reference: ``name`` (same machine), ``machine.name`` (same line) or a full ``path``."""

    pos: int
    name: str = ""
    machine: str | None = None
    path: str | None = None

    @property
    def text(self) -> str:
        if self.path is not None:
            return f'tag("{self.path}")'
        return f"{self.machine}.{self.name}" if self.machine else self.name


@dataclass(frozen=True)
class Compare:
    op: CompareOp
    left: Node
    right: Node
    pos: int


@dataclass(frozen=True)
class In:
    item: Node
    options: tuple[Node, ...]
    negated: bool
    pos: int


@dataclass(frozen=True)
class Not:
    operand: Node
    pos: int


@dataclass(frozen=True)
class BoolOp:
    op: Literal["and", "or"]
    operands: tuple[Node, ...]
    pos: int


Node = Lit | Ref | Compare | In | Not | BoolOp


def _name_char(c: str, first: bool) -> bool:
    if c.isascii() and c.isalpha():
        return True
    return not first and c.isascii() and (c.isdigit() or c in "_-")


class _Lexer:
    def __init__(self, text: str):
        self.text, self.i = text, 0

    def tokens(self) -> list[Token]:
        out: list[Token] = []
        while True:
            tok = self._next()
            out.append(tok)
            if tok.kind == "end":
                return out

    def _next(self) -> Token:
        text = self.text
        while self.i < len(text) and text[self.i] in " \t\r\n":
            self.i += 1
        start = self.i
        if start >= len(text):
            return Token("end", "", start + 1)
        c = text[start]
        if (c.isascii() and c.isdigit()) or (c in "-+." and self._digit_at(start + 1)):
            return self._number(start)
        if c in "\"'":
            return self._string(start, c)
        if _name_char(c, True):
            return self._name(start)
        two = text[start:start + 2]
        if two in _PUNCT2:
            self.i += 2
            return Token("op", two, start + 1)
        if c in _PUNCT1:
            self.i += 1
            return Token("op", c, start + 1)
        hint = _HINTS.get(c, "")
        raise ExprError(f"unexpected character {c!r}" + (f": {hint}" if hint else ""), start + 1)

    def _digit_at(self, i: int) -> bool:
        return i < len(self.text) and self.text[i].isascii() and self.text[i].isdigit()

    def _number(self, start: int) -> Token:
        text, i = self.text, start + (1 if self.text[start] in "-+" else 0)
        while i < len(text) and ((text[i].isascii() and text[i].isdigit()) or text[i] in ".eE_"
                                 or (text[i] in "+-" and text[i - 1] in "eE")):
            i += 1
        raw = text[start:i]
        if "_" in raw or raw.count(".") > 1:
            raise ExprError(f"invalid number {raw!r}", start + 1)
        try:
            value = float(raw)
        except ValueError:
            raise ExprError(f"invalid number {raw!r}", start + 1) from None
        if value != value or value in (float("inf"), float("-inf")):
            raise ExprError(f"number out of range {raw!r}", start + 1)
        if i < len(text) and _name_char(text[i], True):
            raise ExprError(f"a number is followed by {text[i]!r}: put a space or an operator between", i + 1)
        self.i = i
        return Token("num", raw, start + 1, value)

    def _string(self, start: int, quote: str) -> Token:
        text, i = self.text, start + 1
        chars: list[str] = []
        while i < len(text):
            c = text[i]
            if c == quote:
                self.i = i + 1
                return Token("str", text[start:i + 1], start + 1, "".join(chars))
            if c == "\\":
                if i + 1 >= len(text) or text[i + 1] not in "\\\"'":
                    raise ExprError("only \\\\, \\\" and \\' escapes are allowed in a string", i + 1)
                chars.append(text[i + 1])
                i += 2
                continue
            if c in "\r\n":
                break
            chars.append(c)
            i += 1
        raise ExprError("unterminated string", start + 1)

    def _name(self, start: int) -> Token:
        i = start + 1
        while i < len(self.text) and _name_char(self.text[i], False):
            i += 1
        self.i = i
        word = self.text[start:i]
        return Token("kw" if word in KEYWORDS else "name", word, start + 1)


def tokenize(text: str) -> list[Token]:
    """The tokens of ``text`` ending with an ``end`` token; ExprError on the first bad character."""
    if len(text) > MAX_LENGTH:
        raise ExprError(f"expression too long ({len(text)} characters, at most {MAX_LENGTH})", MAX_LENGTH + 1)
    return _Lexer(text).tokens()


class _Parser:
    def __init__(self, tokens: list[Token]):
        self.toks, self.k, self.depth = tokens, 0, 0

    @property
    def tok(self) -> Token:
        return self.toks[self.k]

    def take(self) -> Token:
        tok = self.toks[self.k]
        self.k += 1
        return tok

    def at(self, kind: str, text: str | None = None) -> bool:
        return self.tok.kind == kind and (text is None or self.tok.text == text)

    def expect(self, kind: str, text: str, what: str) -> Token:
        if not self.at(kind, text):
            raise ExprError(f"expected {what}, found {_describe(self.tok)}", self.tok.pos)
        return self.take()

    def nest(self, pos: int) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise ExprError(f"expression nested too deeply (at most {MAX_DEPTH} levels)", pos)

    def parse(self) -> Node:
        if self.at("end"):
            raise ExprError("empty expression", self.tok.pos)
        node = self.or_()
        if not self.at("end"):
            raise ExprError(f"expected 'and', 'or' or the end, found {_describe(self.tok)}", self.tok.pos)
        return node

    def or_(self) -> Node:
        return self._chain("or", self.and_)

    def and_(self) -> Node:
        return self._chain("and", self.not_)

    def _chain(self, op: Literal["and", "or"], sub: Callable[[], Node]) -> Node:
        pos = self.tok.pos
        items = [sub()]
        while self.at("kw", op):
            self.take()
            items.append(sub())
        return items[0] if len(items) == 1 else BoolOp(op, tuple(items), pos)

    def not_(self) -> Node:
        if self.at("kw", "not"):
            tok = self.take()
            self.nest(tok.pos)
            node = Not(self.not_(), tok.pos)
            self.depth -= 1
            return node
        return self.compare()

    def compare(self) -> Node:
        left = self.operand()
        tok = self.tok
        if tok.kind == "op" and tok.text in ("==", "!=", "<", "<=", ">", ">="):
            self.take()
            node: Node = Compare(tok.text, left, self.operand(), tok.pos)  # type: ignore[arg-type]
        elif self.at("kw", "in") or (self.at("kw", "not") and self.toks[self.k + 1].text == "in"):
            negated = self.take().text == "not"
            if negated:
                self.take()
            node = In(left, self.list_(), negated, tok.pos)
        else:
            return left
        nxt = self.tok
        if (nxt.kind == "op" and nxt.text in ("==", "!=", "<", "<=", ">", ">=")) or self.at("kw", "in"):
            raise ExprError("comparisons cannot be chained: join them with 'and'", nxt.pos)
        return node

    def list_(self) -> tuple[Node, ...]:
        self.expect("op", "[", "'[' after 'in'")
        items: list[Node] = []
        while not self.at("op", "]"):
            if len(items) >= MAX_LIST:
                raise ExprError(f"too many list items (at most {MAX_LIST})", self.tok.pos)
            items.append(self.value())
            if not self.at("op", ","):
                break
            self.take()
        if not items:
            raise ExprError("an 'in' list needs at least one item", self.tok.pos)
        self.expect("op", "]", "',' or ']'")
        return tuple(items)

    def operand(self) -> Node:
        if self.at("op", "("):
            tok = self.take()
            self.nest(tok.pos)
            node = self.or_()
            self.expect("op", ")", "')'")
            self.depth -= 1
            return node
        return self.value()

    def value(self) -> Node:
        tok = self.tok
        if tok.kind in ("num", "str"):
            self.take()
            assert tok.value is not None
            return Lit(tok.value, tok.pos)
        if tok.kind == "kw" and tok.text in ("true", "false"):
            self.take()
            return Lit(tok.text == "true", tok.pos)
        if tok.kind == "name":
            return self.ref()
        raise ExprError(f"expected a value (number, string, true/false or tag), found {_describe(tok)}", tok.pos)

    def ref(self) -> Ref:
        tok = self.take()
        if tok.text in ("True", "False", "TRUE", "FALSE"):
            raise ExprError(f"write {tok.text.lower()} in lower case", tok.pos)
        if self.at("op", "("):
            if tok.text != "tag":
                raise ExprError(f"{tok.text!r} cannot be called: the only call is tag(\"full/path\")", self.tok.pos)
            self.take()
            arg = self.tok
            if arg.kind != "str":
                raise ExprError(f"tag() takes one quoted full tag path, found {_describe(arg)}", arg.pos)
            self.take()
            self.expect("op", ")", "')' after the tag path")
            assert isinstance(arg.value, str)
            return Ref(tok.pos, path=arg.value)
        if not self.at("op", "."):
            return Ref(tok.pos, name=tok.text)
        self.take()
        name = self.tok
        if name.kind != "name":
            raise ExprError(f"expected a tag name after '{tok.text}.', found {_describe(name)}", name.pos)
        self.take()
        if self.at("op", ".") or self.at("op", "("):
            raise ExprError("a reference is 'tag' or 'machine.tag'; write tag(\"site/area/line/machine/tag\") "
                            "for any other tag", self.tok.pos)
        return Ref(tok.pos, name=name.text, machine=tok.text)


def _describe(tok: Token) -> str:
    return "the end" if tok.kind == "end" else repr(tok.text)


def parse(text: str) -> Node:
    """The AST of ``text``; ExprError (with the 1-based position) when it is not a valid expression."""
    return _Parser(tokenize(text)).parse()


def refs(node: Node) -> list[Ref]:
    """Every tag reference in ``node``, in source order."""
    if isinstance(node, Ref):
        return [node]
    if isinstance(node, Lit):
        return []
    if isinstance(node, Compare):
        return refs(node.left) + refs(node.right)
    if isinstance(node, In):
        return refs(node.item) + [r for o in node.options for r in refs(o)]
    if isinstance(node, Not):
        return refs(node.operand)
    return [r for o in node.operands for r in refs(o)]
