"""docs/mqtt.md, "Publishing": every YAML example there is a whole plant model that loads with the loader
``plantlink check`` calls, and its ``publish`` section is what the page says."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from plantlink.model import load_plant

DOC = Path(__file__).resolve().parents[2] / "docs" / "mqtt.md"


def publishing_blocks() -> list[str]:
    text = DOC.read_text(encoding="utf-8")
    section = text.split("\n## Publishing\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^```yaml\n(.*?)^```", section, re.S | re.M)


def test_publishing_examples_load(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MQTT_PASSWORD", "not-the-real-one")
    blocks = publishing_blocks()
    assert blocks, "docs/mqtt.md has no YAML example under Publishing"
    for i, body in enumerate(blocks):
        path = tmp_path / f"plant{i}.yaml"
        path.write_text(body, encoding="utf-8")
        plant = load_plant(path)
        pub = plant.spec.publish
        assert pub is not None
        paths = [t.path for t in plant.all_tags if pub.selects(t.path)]
        assert paths == ["windsor/press/l1/p1/temp", "windsor/press/l1/p1/strokes"]
        assert pub.sparkplug is not None and pub.password is not None
