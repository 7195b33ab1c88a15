"""Every YAML example of docs/plant-model.md is a plant model that loads (issue: the reference documents every
section, and its examples must not rot).

Convention, read from the page's Markdown source: a ```yaml block is

* a whole model when nothing marks it: it loads as it is;
* a piece of a model when the line before it is ``<!-- fragment: KIND -->``: it is put into the minimal model
  below and that loads. KIND says where: ``top`` (keys of the file), ``devices`` (entries of ``devices``),
  ``site`` (keys of the site), ``line`` (keys of the line), ``machine`` (a whole machine, added to the line);
* not checked when the line before it is ``<!-- yaml-example: not checked, REASON -->`` (a reason is required:
  an example naming files and secrets of a real site).

The loader is ``plantlink.model.load_plant``, the one ``plantlink check`` calls (``plantlink.cli``), on a file
written to a temporary directory.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from plantlink.model import load_plant

DOC = Path(__file__).resolve().parents[2] / "docs" / "plant-model.md"
BLOCK = re.compile(r"(?:^(<!--[^\n]*-->)\n)?^```yaml\n(.*?)^```", re.S | re.M)
KINDS = ("top", "devices", "site", "line", "machine")
SECTIONS = ("states", "production", "calendar", "downtime", "costs", "control", "alarms", "notifications", "spc",
            "energy", "reports", "publish")


def minimal() -> dict[str, Any]:
    return {"enterprise": "Doc Co", "devices": {"plc": {"protocol": "modbus", "host": "127.0.0.1", "port": 1502}},
            "sites": [{"name": "windsor", "timezone": "America/Toronto", "areas": [{"name": "a1", "lines": [
                {"name": "l1", "machines": [{"name": "m0", "tags": [
                    {"name": "t", "source": {"device": "plc", "address": 900, "type": "uint16"}}]}]}]}]}]}


def blocks() -> list[tuple[str | None, str, int]]:
    text = DOC.read_text(encoding="utf-8")
    return [(m.group(1), m.group(2), text.count("\n", 0, m.start(2)) + 1) for m in BLOCK.finditer(text)]


def wrapped(kind: str, piece: Any) -> dict[str, Any]:
    model = minimal()
    site = model["sites"][0]
    line = site["areas"][0]["lines"][0]
    assert isinstance(piece, dict), f"a {kind} fragment is a mapping"
    target = {"top": model, "devices": model["devices"], "site": site, "line": line}.get(kind)
    if kind == "machine":
        line["machines"].append(piece)
    else:
        assert target is not None, f"unknown fragment kind {kind!r}: one of {KINDS}"
        target.update(piece)
    return model


def _id(b: tuple[str | None, str, int]) -> str:
    return f"line{b[2]}"


UNCHECKED = "<!-- yaml-example: not checked"


def _unchecked(b: tuple[str | None, str, int]) -> bool:
    return b[0] is not None and b[0].startswith(UNCHECKED)


def test_an_unchecked_example_says_why() -> None:
    """An example left out of the check (no test is skipped for it) names its reason in its mark."""
    for mark, _, line in filter(_unchecked, blocks()):
        assert mark is not None and re.match(r"<!-- yaml-example: not checked, \S.+ -->", mark), \
            f"line {line}: give the reason"


@pytest.mark.parametrize("block", [b for b in blocks() if not _unchecked(b)], ids=_id)
def test_each_yaml_example_loads(block: tuple[str | None, str, int], tmp_path: Path) -> None:
    mark, body, line = block
    if mark is None:
        text = body
    else:
        found = re.fullmatch(r"<!-- fragment: (\w+) -->", mark)
        assert found and found.group(1) in KINDS, f"line {line}: unknown mark {mark!r}"
        text = yaml.safe_dump(wrapped(found.group(1), yaml.safe_load(body)), sort_keys=False)
    path = tmp_path / "plant.yaml"
    path.write_text(text, encoding="utf-8")
    load_plant(path)  # raises with every problem, located, when the example is wrong


def test_every_section_of_the_model_has_an_example() -> None:
    checked = [b for b in blocks() if b[0] is None or "fragment" in b[0]]
    for section in SECTIONS:
        assert any(re.search(rf"^\s*(- )?{section}:", body, re.M) for _, body, _ in checked), \
            f"docs/plant-model.md has no checked YAML example of {section}"
    text = DOC.read_text(encoding="utf-8")
    for section in SECTIONS:
        assert re.search(rf"^## .*`{section}`", text, re.M), f"docs/plant-model.md has no section on {section}"


def test_a_wrong_example_would_fail(tmp_path: Path) -> None:
    """The check can fail: a fragment with a mistake does not load."""
    path = tmp_path / "plant.yaml"
    path.write_text(yaml.safe_dump(wrapped("line", {"costs": {"currency": "CAD", "downtime_per_hour": -1}})))
    with pytest.raises(Exception, match="downtime_per_hour"):
        load_plant(path)
