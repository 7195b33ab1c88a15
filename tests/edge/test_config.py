"""The edge: and edges: sections are checked up front, with errors that name the field and what is expected;
``plantlink edge`` on a model without edge: says so."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from plantlink.errors import ConfigError
from plantlink.model import parse_plant
from tests.edge.harness import central_yaml, edge_yaml


def problems(text: str) -> str:
    with pytest.raises(ConfigError) as info:
        parse_plant(text)
    return "\n".join(str(p) for p in info.value.problems)


def test_a_good_edge_section_parses_with_its_sizes_and_percentage() -> None:
    plant = parse_plant(edge_yaml(1883, 1884, queue="max_size: 1GiB, alarm_at: 75%, segment_size: 8MiB"))
    e = plant.spec.edge
    assert e is not None and e.name == "e1" and (e.central.host, e.central.port) == ("127.0.0.1", 1883)
    assert (e.queue.max_size, e.queue.alarm_at, e.queue.segment_size) == (2**30, 0.75, 8 * 2**20)
    assert e.queue.when_full == "drop_oldest"
    c = parse_plant(central_yaml(1883)).spec.edges
    assert c is not None and c.expected == ["e1"] and c.broker.root == "plantlink/edge"


@pytest.mark.parametrize(("queue", "field", "says"), [
    ("max_size: 1 lot", "max_size", "is not a size"),
    ("alarm_at: 120%", "alarm_at", "less than or equal to 1"),
    ("when_full: block", "when_full", "drop_oldest"),
    ("max_size: 1MiB, segment_size: 512KiB", "queue", "at most a quarter of max_size"),
])
def test_a_bad_queue_setting_names_the_field(queue: str, field: str, says: str) -> None:
    text = problems(edge_yaml(1883, 1884, queue=queue))
    assert field in text and says in text, text


def test_a_bad_central_broker_is_refused() -> None:
    text = problems(edge_yaml(1883, 1884).replace("mqtt://127.0.0.1:1883", "http://central"))
    assert "central" in text and "expected mqtt://host[:port]" in text, text


def test_plantlink_edge_without_an_edge_section_says_what_is_missing(tmp_path: Path) -> None:
    f = tmp_path / "central.yaml"
    f.write_text(central_yaml(1883))
    r = subprocess.run([sys.executable, "-m", "plantlink.cli", "edge", str(f), "--data-dir", str(tmp_path / "d")],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 1
    assert "no edge: section" in r.stderr and "docs/edge.md" in r.stderr, r.stderr
