"""The interlock grammar: what parses to what, what is rejected and where, and evaluation that fails closed."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from plantlink.control.grammar import MAX_DEPTH, MAX_LENGTH, BoolOp, Compare, ExprError, In, Lit, Not, Ref, parse
from plantlink.control.interlock import Interlock, Reading, resolve

M = "windsor/stamping/press-line-1/press1"


def test_precedence_not_binds_tighter_than_and_tighter_than_or() -> None:
    node = parse("a == 1 or not b and c != 'x'")
    assert isinstance(node, BoolOp) and node.op == "or"
    left, right = node.operands
    assert left == Compare("==", Ref(1, name="a"), Lit(1.0, 6), 3)
    assert isinstance(right, BoolOp) and right.op == "and"
    assert right.operands[0] == Not(Ref(15, name="b"), 11)
    assert right.operands[1] == Compare("!=", Ref(21, name="c"), Lit("x", 26), 23)


def test_parentheses_override_precedence() -> None:
    node = parse("(a or b) and c")
    assert isinstance(node, BoolOp) and node.op == "and"
    assert isinstance(node.operands[0], BoolOp) and node.operands[0].op == "or"


@pytest.mark.parametrize(("text", "value"), [
    ("1", 1.0), ("-2.5", -2.5), ("+3", 3.0), ("1e3", 1000.0), ("2.5E-1", 0.25), (".5", 0.5),
    ('"a b"', "a b"), ("'it\\'s'", "it's"), ('"back\\\\slash"', "back\\slash"), ("true", True), ("false", False),
])
def test_literals(text: str, value: object) -> None:
    node = parse(f"x == {text}")
    assert isinstance(node, Compare) and isinstance(node.right, Lit)
    assert node.right.value == value and type(node.right.value) is type(value)


def test_references_three_forms() -> None:
    node = parse('state in [1, 2] and press1.state != 4 and tag("detroit/a/b/c/d") == true')
    assert isinstance(node, BoolOp)
    first, second, third = node.operands
    assert isinstance(first, In) and first.item == Ref(1, name="state") and not first.negated
    assert isinstance(second, Compare) and second.left == Ref(21, name="state", machine="press1")
    assert isinstance(third, Compare) and third.left == Ref(43, path="detroit/a/b/c/d")
    assert resolve(Ref(1, name="state"), M) == f"{M}/state"
    assert resolve(Ref(1, name="speed", machine="conveyor1"), M) == "windsor/stamping/press-line-1/conveyor1/speed"
    assert resolve(Ref(1, path="x/y"), M) == "x/y"


def test_not_in_and_trailing_comma_and_names_with_dashes() -> None:
    node = parse("line-2_state not in [4, 5,]")
    assert isinstance(node, In) and node.negated and node.item == Ref(1, name="line-2_state")
    assert [o.value for o in node.options if isinstance(o, Lit)] == [4.0, 5.0]


@pytest.mark.parametrize(("text", "pos", "words"), [
    ('__import__("os")', 1, "unexpected character '_'"),
    ("x.__class__", 3, "unexpected character '_'"),
    ('open("/etc/passwd")', 5, "only call is tag"),
    ('eval("1")', 5, "cannot be called"),
    ("a.b.c", 4, "machine.tag"),
    ("a.b()", 4, "machine.tag"),
    ("a = 1", 3, "use =="),
    ("a && b", 3, "use 'and'"),
    ("!a", 1, "use 'not'"),
    ("a < b < c", 7, "cannot be chained"),
    ("a == 1 in [1]", 8, "cannot be chained"),
    ("a in []", 7, "at least one item"),
    ("a in 1", 6, "'[' after 'in'"),
    ("a and", 6, "expected a value"),
    ("", 1, "empty expression"),
    ("   ", 4, "empty expression"),
    ("(a == 1", 8, "expected ')'"),
    ("a == 1)", 7, "expected 'and', 'or' or the end"),
    ('a == "open', 6, "unterminated string"),
    ('a == "x\\n"', 8, "escapes"),
    ("a == 1.2.3", 6, "invalid number"),
    ("a == 1e999", 6, "out of range"),
    ("a == 12abc", 8, "number is followed by"),
    ("tag(a)", 5, "quoted full tag path"),
    ("a == True", 6, "lower case"),
    ("a == 1; b", 7, "unexpected character ';'"),
    ("lambda: 1", 7, "unexpected character ':'"),
    ("a == é", 6, "unexpected character"),
    ("a[0] == 1", 2, "expected 'and', 'or' or the end"),
    ("a == b ** 2", 8, "unexpected character '*'"),
])
def test_bad_input_is_rejected_with_its_position(text: str, pos: int, words: str) -> None:
    with pytest.raises(ExprError) as err:
        parse(text)
    assert err.value.pos == pos, str(err.value)
    assert words in err.value.message
    assert f"(at position {pos})" in str(err.value)


def test_very_long_input_is_rejected_before_tokenizing() -> None:
    text = " or ".join(["a == 1"] * 200)
    assert len(text) > MAX_LENGTH
    with pytest.raises(ExprError, match="too long"):
        parse(text)


@pytest.mark.parametrize("wrap", [lambda k: "(" * k + "a" + ")" * k, lambda k: "not " * k + "a"])
def test_deep_nesting_is_rejected_at_the_limit(wrap: object) -> None:
    assert callable(wrap)
    parse(wrap(MAX_DEPTH))  # exactly at the limit is fine
    with pytest.raises(ExprError, match="nested too deeply"):
        parse(wrap(MAX_DEPTH + 1))
    with pytest.raises(ExprError):
        parse(wrap(400))  # no RecursionError, a clear error


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=60))
def test_arbitrary_text_parses_or_raises_expr_error_only(text: str) -> None:
    try:
        parse(text)
    except ExprError as exc:
        assert 1 <= exc.pos <= len(text) + 1


# ----------------------------------------------------------------------------------------- evaluation

TYPES = {f"{M}/state": "int", f"{M}/fault": "bool", f"{M}/recipe": "string", f"{M}/speed": "float",
         "windsor/stamping/press-line-1/conveyor1/state": "int"}


def good(v: object) -> Reading:
    return Reading(v, True, None, 1)  # type: ignore[arg-type]


def status(expr: str, **values: Reading) -> tuple[bool, str]:
    lk = Interlock.compile(expr, M)
    lk.check(TYPES)
    names = {"conveyor1_state": "windsor/stamping/press-line-1/conveyor1/state"}
    readings = {names.get(k, f"{M}/{k}"): v for k, v in values.items()}
    st_ = lk.evaluate(readings)
    return st_.ok, st_.detail


def test_evaluation_truth_table() -> None:
    assert status("state == 1 and not fault", state=good(1.0), fault=good(False)) == (True, "holds")
    assert status("state == 1 and not fault", state=good(1.0), fault=good(True)) == (False, "does not hold")
    assert status("state in [0, 5] or speed < 0.5", state=good(1.0), speed=good(0.4))[0] is True
    assert status("state not in [0, 5]", state=good(5.0))[0] is False
    assert status('recipe == "E-COAT"', recipe=good("E-COAT"))[0] is True
    assert status("speed >= 10.5", speed=good(10.5))[0] is True
    assert status("conveyor1.state != 4", conveyor1_state=good(4.0))[0] is False


def test_fails_closed_on_bad_quality_stale_or_missing_even_if_or_would_pass() -> None:
    ok, detail = status("state == 1 or not fault", state=good(1.0), fault=Reading(False, False, "quality is bad"))
    assert not ok and detail == f"{M}/fault: quality is bad"
    ok, detail = status("state == 1", state=Reading(1.0, False, "stale: 9 s old"))
    assert not ok and "stale" in detail
    ok, detail = status("state == 1")
    assert not ok and "no value" in detail


@pytest.mark.parametrize(("expr", "words"), [
    ("nope == 1", "unknown tag 'nope'"),
    ("conveyor9.state == 1", "unknown tag 'conveyor9.state'"),
    ('tag("x/y") == 1', "unknown tag"),
    ('state == "1"', "cannot compare a number with a string"),
    ("fault == 1", "cannot compare true/false with a number"),
    ("recipe < 'b'", "needs numbers"),
    ("state", "must be a condition"),
    ("speed and fault", "needs conditions"),
    ("state in [1, 'x']", "list item is a string"),
])
def test_static_check_against_plant_types(expr: str, words: str) -> None:
    with pytest.raises(ExprError, match=words):
        Interlock.compile(expr, M).check(TYPES)
