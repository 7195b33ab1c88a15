"""``AnomalyEngine.reload`` (a model applied while running): a machine whose anomaly settings and tags did not
change keeps its scorer (trained detector, stream, condition); a changed one is built again and named for its
saved detector to be loaded again; a removed one is dropped."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from plantlink.engines.anomaly import AnomalyEngine, ModelFiles
from plantlink.model import parse_plant

DEMO = Path(__file__).resolve().parents[2] / "examples" / "demo-plant.yaml"
PRESS = "windsor/stamping/press-line-1/press1"
SETTINGS = "anomaly: {tags: [tonnage, die_temperature, lube_pressure], detector: pca, mode: shadow, interval: 10s}"


def test_reload_keeps_unchanged_scorers_and_rebuilds_changed_ones(tmp_path: Path) -> None:
    text = DEMO.read_text()
    assert SETTINGS in text
    before = parse_plant(text)
    ids = {t.path: i + 1 for i, t in enumerate(before.all_tags)}
    alarms = SimpleNamespace(condition=lambda key: False)
    eng = AnomalyEngine(before, ids, alarms, lambda batch: None, ModelFiles(tmp_path))
    assert PRESS in eng.machines
    kept = eng.machines[PRESS]
    assert eng.reload(before, ids) == [] and eng.machines[PRESS] is kept

    changed = parse_plant(text.replace(SETTINGS, SETTINGS.replace("interval: 10s", "interval: 30s")))
    assert eng.reload(changed, ids) == [PRESS]
    assert eng.machines[PRESS] is not kept and eng.machines[PRESS].settings.interval == 30.0
    assert eng.load(only=[PRESS]) == 0  # nothing saved: nothing loaded, and no problem

    at = text.index(SETTINGS)
    removed = parse_plant(text[:text.rindex("\n", 0, at) + 1] + text[at + len(SETTINGS) + 1:])
    assert eng.reload(removed, ids) == [] and PRESS not in eng.machines
