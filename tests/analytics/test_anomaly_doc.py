"""The python examples of docs/analytics.md's "Anomaly detection" section run as written."""

from __future__ import annotations

import re
from pathlib import Path

DOC = Path(__file__).resolve().parents[2] / "docs" / "analytics.md"


def test_anomaly_detection_examples_run() -> None:
    text = DOC.read_text(encoding="utf-8")
    section = text.split("\n## Anomaly detection\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    assert blocks, "the Anomaly detection section has no python example"
    for code in blocks:
        exec(compile(code, str(DOC), "exec"), {"__name__": "__docs__"})
