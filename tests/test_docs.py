"""Docs are tested: every ```python block in these pages runs as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[1] / "docs"
PAGES = ["analytics.md", "engines.md", "historian.md", "mqtt.md", "plugins.md", "reports.md"]


@pytest.mark.parametrize("page", PAGES)
def test_python_blocks_run(page: str) -> None:
    blocks = re.findall(r"```python\n(.*?)```", (DOCS / page).read_text(encoding="utf-8"), re.S)
    assert blocks, f"{page} has no python example"
    for code in blocks:
        exec(compile(code, f"{page}", "exec"), {"__name__": "__docs__"})


def test_each_analytics_section_has_a_python_example() -> None:
    """SPC, anomaly detection, remaining useful life: each is shown in code (run by ``test_python_blocks_run``)."""
    sections = (DOCS / "analytics.md").read_text(encoding="utf-8").split("\n## ")[1:]
    assert len(sections) >= 3
    for section in sections:
        assert "```python\n" in section, f"analytics.md section {section.splitlines()[0]!r} has no python example"
