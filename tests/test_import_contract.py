"""The layers (issue 9): no module of plantlink.api or plantlink.hmi imports the runtime, the store, the engines
or the historian; they go through plantlink.services. The contract is in pyproject.toml ([tool.importlinter])
with the imports still allowed listed one by one; a new direct import fails this test."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _run(config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(LINT_IMPORTS), "--config", str(config), "--no-cache"], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)


def test_api_and_hmi_keep_to_the_services() -> None:
    done = _run(ROOT / "pyproject.toml")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 kept, 0 broken" in done.stdout


def test_the_contract_catches_a_direct_import(tmp_path: Path) -> None:
    """Without its list of allowed imports the same contract breaks, naming them: it is checked for real."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["importlinter"]
    (contract,) = config["contracts"]
    allowed = contract.pop("ignore_imports")
    lines = [f'root_package = "{config["root_package"]}"', "", "[[tool.importlinter.contracts]]"]
    lines += [f"{k} = {v!r}".replace("'", '"').replace("True", "true") for k, v in contract.items()]
    strict = tmp_path / "strict.toml"
    strict.write_text("[tool.importlinter]\n" + "\n".join(lines) + "\n", encoding="utf-8")
    done = _run(strict)
    assert done.returncode != 0 and "BROKEN" in done.stdout, done.stdout + done.stderr
    for rule in allowed:
        importer, imported = rule.split(" -> ")
        assert importer in done.stdout and imported in done.stdout, rule
