"""``AnomalyEngine.reload`` and ``RulEngine.reload`` (a model applied while running): a machine whose settings
and tags did not change keeps its scorer (trained detector, stream, condition) or its trained estimator; a
changed one is built again (its saved detector loaded again; its estimator trained again); a removed one is
dropped."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from plantlink.engines.anomaly import AnomalyEngine, ModelFiles
from plantlink.engines.rul import RulEngine
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


RUL = "rul: {tags: [vibration, bearing_temperature], fault_tag: fault_code, failure_code: 31, threshold_hours: 24}"


def test_rul_reload_keeps_unchanged_estimators_and_retrains_changed_ones() -> None:
    text = DEMO.read_text()
    assert RUL in text
    before = parse_plant(text)
    ids = {t.path: i + 1 for i, t in enumerate(before.all_tags)}
    eng = RulEngine(before, ids, SimpleNamespace(), lambda batch: None, lambda: None)
    (path, kept), = eng.machines.items()
    kept.trained_us = 123
    eng.reload(before, ids)
    assert eng.machines[path] is kept and kept.trained_us == 123
    eng.reload(parse_plant(text.replace(RUL, RUL.replace("threshold_hours: 24", "threshold_hours: 48"))), ids)
    assert eng.machines[path] is not kept and eng.machines[path].settings.threshold_hours == 48
    assert eng.machines[path].trained_us is None  # trains again at its next round
