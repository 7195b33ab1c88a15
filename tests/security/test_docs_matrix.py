"""docs/security.md carries the authorization matrix of tests/security/matrix.py, unchanged."""

from __future__ import annotations

import re
from pathlib import Path

from tests.security.matrix import COLUMNS, ROUTES, Rule, allowed, render_table

DOC = Path(__file__).resolve().parents[2] / "docs" / "security.md"


def test_the_doc_table_is_the_test_table() -> None:
    text = DOC.read_text(encoding="utf-8")
    found = re.search(r"<!-- matrix:start -->\n(.*?)<!-- matrix:end -->", text, re.S)
    assert found, "docs/security.md lost its matrix markers"
    assert found.group(1) == render_table(), "regenerate the table: tests.security.matrix.render_table()"


def test_the_table_has_a_row_per_route_and_a_cell_per_user() -> None:
    rows = [line for line in render_table().splitlines()[2:]]
    assert len(rows) == len(ROUTES)
    assert all(line.count("|") == 3 + len(COLUMNS) + 1 for line in rows)


def test_allowed_reads_the_rules_as_written() -> None:
    assert allowed(Rule("operator", "object"), {"windsor": "engineer"})
    assert not allowed(Rule("operator", "object"), {"windsor": "viewer"})
    assert not allowed(Rule("viewer", "object"), {"detroit": "admin"})
    assert allowed(Rule("viewer", "object"), {"*": "viewer"})
    assert not allowed(Rule("admin*", "-"), {"windsor": "admin"})
    assert allowed(Rule("admin*", "-"), {"*": "admin"})
    assert allowed(Rule("user", "-"), {"detroit": "viewer"})
    assert not allowed(Rule("user", "filtered"), {"detroit": "viewer"})
    assert allowed(Rule("public", "-"), {})
