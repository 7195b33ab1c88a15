"""The quickstart notebook and docs/python-api.md cannot rot: the notebook's code cells run in order, as a
reader runs them, and so does the page's python example, on the data directory of a real (short, headless)
``plantlink demo`` run."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "examples" / "notebooks" / "plantlink-quickstart.ipynb"
DOC = ROOT / "docs" / "python-api.md"


def code_cells(path: Path) -> list[str]:
    nb = json.loads(path.read_text(encoding="utf-8"))
    assert nb["nbformat"] == 4 and nb["cells"], path
    for cell in nb["cells"]:
        assert cell["cell_type"] in ("code", "markdown") and isinstance(cell["source"], list)
    return ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code"]


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("demo") / "plantlink-demo"
    env = {k: v for k, v in os.environ.items() if k != "PLANTLINK_DATA_DIR"}
    done = subprocess.run([sys.executable, "-m", "plantlink.cli", "demo", "--data-dir", str(d), "--duration", "8",
                           "--speed", "5", "--json"], env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.strip().splitlines()[-1])["samples_stored"] > 0
    return d


def test_the_quickstart_notebook_runs_on_a_demo_data_dir(demo_dir: Path, monkeypatch: pytest.MonkeyPatch,
                                                         tmp_path: Path) -> None:
    monkeypatch.setenv("PLANTLINK_DATA_DIR", str(demo_dir))
    monkeypatch.chdir(tmp_path)
    ns: dict[str, Any] = {"__name__": "__main__"}
    cells = code_cells(NOTEBOOK)
    for i, source in enumerate(cells):
        try:
            exec(compile(source, f"{NOTEBOOK.name}[code cell {i + 1}]", "exec"), ns)
        except Exception as exc:
            raise AssertionError(f"code cell {i + 1} of {NOTEBOOK.name} failed: {exc!r}\n{source}") from exc
    # what the cells left behind holds data, in the documented shapes
    raw, per_10s = ns["raw"], ns["per_10s"]
    assert raw.columns == ["tag", "ts", "value", "quality"] and raw.height > 0
    assert set(raw["tag"].to_list()) == set(ns["temperatures"]) and ns["temperatures"]
    assert per_10s.columns == ["tag", "ts", "mean", "max", "count"] and per_10s["count"].sum() > 0
    assert ns["now"].height == len(ns["temperatures"]) + len(ns["power"])


def test_the_docs_example_runs_on_a_demo_data_dir(demo_dir: Path, monkeypatch: pytest.MonkeyPatch,
                                                  tmp_path: Path) -> None:
    monkeypatch.setenv("PLANTLINK_DATA_DIR", str(demo_dir))
    monkeypatch.chdir(tmp_path)
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)
    assert blocks, f"{DOC.name} has no python example"
    spaces: list[dict[str, Any]] = []
    for code in blocks:
        spaces.append({"__name__": "__docs__"})
        exec(compile(code, DOC.name, "exec"), spaces[-1])
    ns, energy = spaces[0], spaces[1]
    assert ns["raw"].height > 0 and ns["per_min"].columns == ["tag", "ts", "mean", "max"]
    assert ns["oee"]["scope"].to_list()[0] == "windsor/stamping/press-line-1"
    assert energy["line"]["scope"][0] == "windsor/stamping/press-line-1" and energy["line"]["total_kwh"][0] > 0
