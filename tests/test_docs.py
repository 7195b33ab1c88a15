"""Docs are tested: every ```python block in these pages runs as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[1] / "docs"
PAGES = ["analytics.md", "engines.md", "historian.md", "plugins.md"]


@pytest.mark.parametrize("page", PAGES)
def test_python_blocks_run(page: str) -> None:
    blocks = re.findall(r"```python\n(.*?)```", (DOCS / page).read_text(encoding="utf-8"), re.S)
    assert blocks, f"{page} has no python example"
    for code in blocks:
        exec(compile(code, f"{page}", "exec"), {"__name__": "__docs__"})
