"""The python example of docs/analytics.md's "Predictive maintenance" section runs as written."""

from __future__ import annotations

import re
from pathlib import Path

DOC = Path(__file__).resolve().parents[2] / "docs" / "analytics.md"


def test_rul_example_runs() -> None:
    text = DOC.read_text(encoding="utf-8")
    section = text.split("\n## Predictive maintenance (remaining useful life)\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    assert blocks, "the Predictive maintenance section has no python example"
    for code in blocks:
        exec(compile(code, str(DOC), "exec"), {"__name__": "__docs__"})
