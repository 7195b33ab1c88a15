"""Malformed plant-model files that are bytes rather than YAML (not practical as case folders), the limits,
and a bounded answer for every one: a located ConfigError within a second of CPU time, never another exception.
The YAML-level cases (tags, merge keys, billion laughs, NaN, ...) are folders under ``cases/``.
"""

from __future__ import annotations

import codecs
import contextlib
import random
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from plantlink.errors import ConfigError
from plantlink.model import load_plant
from plantlink.model.textfile import MAX_FILE_BYTES
from plantlink.model.yamlcompose import MAX_DEPTH, MAX_VALUES

CASES = Path(__file__).parent / "cases"
GOOD = (CASES / "ok_minimal" / "plant.yaml").read_text(encoding="utf-8")


def refused(path: Path) -> ConfigError:
    """Load ``path``: it must be refused with a ConfigError within one second of CPU time."""
    start = time.process_time()
    with pytest.raises(ConfigError) as info:
        load_plant(path)
    spent = time.process_time() - start
    assert spent < 1.0, f"{path.name}: {spent:.2f} s of CPU"
    assert info.value.problems, "a refusal names at least one problem"
    return info.value


def write(tmp_path: Path, data: bytes) -> Path:
    path = tmp_path / "plant.yaml"
    path.write_bytes(data)
    return path


def one(err: ConfigError) -> tuple[int | None, int | None, str]:
    assert len(err.problems) == 1, err
    p = err.problems[0]
    return p.line, p.column, p.message


@pytest.mark.parametrize("encoding, name", [("utf-16", "UTF-16"), ("utf-16-be", "UTF-16"), ("utf-16-le", "UTF-16"),
                                            ("utf-32", "UTF-32"), ("utf-32-be", "UTF-32")])
def test_utf16_and_utf32_files_are_named(tmp_path: Path, encoding: str, name: str) -> None:
    data = GOOD.encode(encoding)
    if encoding.endswith(("-be", "-le")):  # with the byte order mark the editor would have written
        data = (codecs.BOM_UTF16_BE if encoding == "utf-16-be" else codecs.BOM_UTF16_LE if encoding == "utf-16-le"
                else codecs.BOM_UTF32_BE) + data
    line, col, msg = one(refused(write(tmp_path, data)))
    assert (line, col, msg) == (1, 1, f"the file is {name}; save it as UTF-8")


def test_utf16_without_byte_order_mark(tmp_path: Path) -> None:
    line, col, msg = one(refused(write(tmp_path, GOOD.encode("utf-16-le"))))
    assert (line, col) == (1, 1) and "looks like UTF-16" in msg and "save it as UTF-8" in msg


def test_utf8_byte_order_mark_is_accepted(tmp_path: Path) -> None:
    plant = load_plant(write(tmp_path, codecs.BOM_UTF8 + GOOD.encode()))
    assert plant.spec.enterprise == "Acme"


def test_latin1_names_line_column_and_byte(tmp_path: Path) -> None:
    text = GOOD.replace("timezone: America/Detroit", "description: Usine de Montréal\n    timezone: America/Detroit")
    data = text.encode("latin-1")
    offset = data.index(b"\xe9")
    line = data[:offset].count(b"\n") + 1
    col = offset - data.rfind(b"\n", 0, offset)
    err = refused(write(tmp_path, data))
    got_line, got_col, msg = one(err)
    assert (got_line, got_col) == (line, col)
    assert f"byte {offset} (0xe9) is not UTF-8" in msg and "Latin-1" in msg
    assert str(err).startswith(f"{tmp_path / 'plant.yaml'}:{line}:{col}: ")


def test_random_bytes(tmp_path: Path) -> None:
    rng = random.Random(8)
    for _ in range(50):
        refused(write(tmp_path, bytes(rng.randrange(256) for _ in range(rng.randrange(1, 5000)))))


@pytest.mark.parametrize("char, what", [("\x00", "a NUL byte"), ("\x07", "the control character U+0007"),
                                        ("\x1b", "the control character U+001B"), ("\ufffe", "the character U+FFFE")])
def test_nul_and_control_characters(tmp_path: Path, char: str, what: str) -> None:
    text = GOOD.replace("Acme", f"Ac{char}me")
    line, col, msg = one(refused(write(tmp_path, text.encode("utf-8"))))
    assert (line, col) == (1, len("enterprise: Ac") + 1)
    assert msg.startswith(f"{what} is not allowed in a YAML file")


def test_file_over_the_size_limit_is_refused_unread(tmp_path: Path) -> None:
    path = tmp_path / "plant.yaml"
    with path.open("wb") as f:  # 40 MB: a valid start, then comments
        f.write(GOOD.encode())
        f.write((b"# " + b"x" * 97 + b"\n") * 400_000)
    line, _, msg = one(refused(path))
    assert line is None and f"at most {MAX_FILE_BYTES // 2**20} MiB" in msg and f"{MAX_FILE_BYTES:,} bytes" in msg


def test_endless_file_is_read_only_up_to_the_limit() -> None:
    _, _, msg = one(refused(Path("/dev/zero")))
    assert "at most" in msg


@pytest.mark.parametrize("make", [
    lambda n: "enterprise: " + "[" * n + "]" * n + "\n",
    lambda n: "enterprise: " + "{a: " * n + "1" + "}" * n + "\n",
    lambda n: "enterprise:\n" + "".join(" " * i + "- \n" for i in range(1, n)) + " " * n + "- x\n",
    lambda n: "enterprise:\n" + "".join(" " * i + f"k{i}:\n" for i in range(n)) + " " * n + "v: 1\n",
], ids=["flow-lists", "flow-maps", "block-lists", "block-maps"])
def test_deep_nesting(tmp_path: Path, make: Callable[[int], str]) -> None:
    for depth in (MAX_DEPTH + 1, 3_000):
        line, col, msg = one(refused(write(tmp_path, make(depth).encode())))
        assert line is not None and col is not None
        assert "nest" in msg or "depth" in msg


def test_aliases_nesting_too_deep(tmp_path: Path) -> None:
    """Each alias repeats a value one level deeper: the depth counts what the aliases repeat."""
    lines = ["a0: &a0 [1]"] + [f"a{i}: &a{i} [*a{i - 1}]" for i in range(1, MAX_DEPTH + 2)]
    line, _, msg = one(refused(write(tmp_path, "\n".join(lines).encode())))
    assert "*a" in msg and f"more than {MAX_DEPTH} levels" in msg and line is not None


def test_too_many_values_once_aliases_are_expanded(tmp_path: Path) -> None:
    """1,001 values repeated by 1,000 aliases: a million values, but from a small file."""
    text = "a: &a [" + ", ".join(["1"] * 1000) + "]\nb: [" + ", ".join(["*a"] * 1000) + "]\n"
    # values counted before each alias of b: the key a, its list and 1,000 items, the key b and b's list
    before = 4 + 1000
    stops_at = next(i for i in range(1000) if before + 1001 * (i + 1) > MAX_VALUES)
    line, col, msg = one(refused(write(tmp_path, text.encode())))
    assert (line, col) == (2, len("b: [") + 1 + 4 * stops_at)
    assert f"more than {MAX_VALUES:,} values" in msg


def test_integer_too_long_to_read(tmp_path: Path) -> None:
    text = GOOD.replace("port: 5020", "port: " + "9" * 5000)
    line, col, msg = one(refused(write(tmp_path, text.encode())))
    assert (line, col) == (3, GOOD.splitlines()[2].index("5020") + 1)
    assert "is not a valid whole number" in msg and "sys." not in msg


def test_every_case_and_example_answers_within_a_second() -> None:
    """The table-driven cases (good and bad) and the examples take well under a second of CPU each."""
    load_plant(CASES / "ok_minimal" / "plant.yaml")  # imports the connector plugins (seconds for OPC UA)
    for path in [*sorted(CASES.glob("*/plant.yaml")), *sorted((CASES.parents[2] / "examples").glob("*.yaml"))]:
        start = time.process_time()
        with contextlib.suppress(ConfigError):
            load_plant(path)
        assert time.process_time() - start < 1.0, path


def test_an_alias_shares_its_anchor() -> None:
    plant = load_plant(CASES / "aliases_ok" / "plant.yaml")
    first, second = (t.tag.control for t in plant.tags)
    assert first is not None and first == second and (first.min, first.max, first.role) == (0, 40, "operator")


def test_pure_python_parser_reads_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    """Where PyYAML has no libyaml, its pure-Python parser feeds the same builder: same data, same places,
    same problems (syntax errors aside, whose wording differs)."""
    import yaml

    from plantlink.model import yamlcompose
    from plantlink.model.yamlmarks import load_marked

    paths = [*sorted(CASES.glob("*/plant.yaml")), *sorted((CASES.parents[2] / "examples").glob("*.yaml"))]
    seen = {}
    for parser in (yaml.CSafeLoader, yaml.SafeLoader):
        monkeypatch.setattr(yamlcompose, "_Parser", parser)
        for path in paths:
            doc = load_marked(path.read_text(encoding="utf-8"), str(path))
            problems = [(p.line, p.column, p.path, "syntax" if "syntax" in p.message else p.message)
                        for p in doc.problems]
            seen.setdefault(path, []).append((doc.data, doc.marks, doc.key_marks, problems))
    for path, (libyaml, python) in seen.items():
        assert libyaml == python, path
