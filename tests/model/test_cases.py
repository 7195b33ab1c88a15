"""Table-driven plant-model cases: each folder holds plant.yaml and the expected summary or errors."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from plantlink.errors import ConfigError
from plantlink.model import load_plant

CASES = Path(__file__).parent / "cases"


@pytest.mark.parametrize("case", sorted(p.name for p in CASES.iterdir() if p.is_dir()))
def test_case(case: str, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = CASES / case
    monkeypatch.chdir(CASES)
    expected_summary = folder / "expected_summary.json"
    if expected_summary.exists():
        plant = load_plant(os.path.join(case, "plant.yaml"))
        assert plant.summary() == json.loads(expected_summary.read_text())
        return
    with pytest.raises(ConfigError) as info:
        load_plant(os.path.join(case, "plant.yaml"))
    message = str(info.value)
    for line in (folder / "expected_error.txt").read_text().splitlines():
        assert line in message, f"expected {line!r} in:\n{message}"
    # every problem names the file
    assert all(p.file.endswith("plant.yaml") for p in info.value.problems)
