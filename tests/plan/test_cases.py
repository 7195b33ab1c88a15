"""Table-driven plans: each folder of ``cases/`` holds before.yaml (the running model), after.yaml (the new
one), history.txt (the tags of before.yaml that have samples) and expected.txt (the plan's text).

``PLANTLINK_WRITE_PLANS=1`` writes expected.txt from the code: read every diff before committing it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from plantlink.model import parse_plant
from plantlink.model.diff import diff_plants
from plantlink.model.plan_text import render

CASES = Path(__file__).parent / "cases"


def plan_text(folder: Path) -> str:
    before = parse_plant((folder / "before.yaml").read_text(), "before.yaml")
    after = parse_plant((folder / "after.yaml").read_text(), "after.yaml")
    history = set((folder / "history.txt").read_text().split())
    plan = diff_plants(before, after, history.__contains__).to_dict()
    assert plan["digest_before"].startswith("sha256:")
    # the digests hang on every schema default: the cases name them only by their (in)equality
    same = plan["digest_before"] == plan["digest_after"]
    plan |= {"digest_before": "sha256:before", "digest_after": "sha256:before" if same else "sha256:after"}
    return render(plan)


@pytest.mark.parametrize("case", sorted(p.name for p in CASES.iterdir() if p.is_dir()))
def test_plan(case: str) -> None:
    folder = CASES / case
    got = plan_text(folder)
    if os.environ.get("PLANTLINK_WRITE_PLANS"):
        (folder / "expected.txt").write_text(got)
    assert got == (folder / "expected.txt").read_text()


def test_a_history_loss_is_red_on_a_terminal() -> None:
    """The lines saying a tag's history would be lost are bold red on a terminal (rich markup rendered to ANSI);
    the other lines of a removal are not."""
    import io
    import re

    from rich.console import Console

    folder = CASES / "tag_removed_with_history"
    before = parse_plant((folder / "before.yaml").read_text(), "before.yaml")
    after = parse_plant((folder / "after.yaml").read_text(), "after.yaml")
    plan = diff_plants(before, after, {"windsor/a/l/m/count"}.__contains__).to_dict()
    buf = io.StringIO()
    Console(file=buf, force_terminal=True, color_system="standard", width=400).print(render(plan, color=True))
    red = [re.sub(r"\x1b\[[0-9;]*m", "", line) for line in buf.getvalue().splitlines() if "\x1b[1;31m" in line]
    assert len(red) == 2, buf.getvalue()
    assert "history: LOST" in red[0] and "History loss: 1 tag(s)" in red[1] and "--allow-history-loss" in red[1]
    assert "\x1b[1;31m" not in next(line for line in buf.getvalue().splitlines() if "Plan:" in line)
