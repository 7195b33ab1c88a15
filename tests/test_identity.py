"""Roles and callers are defined once, in ``plantlink.identity``."""

from __future__ import annotations

import re
from pathlib import Path
from typing import get_args

from plantlink.identity import ALL_SITES, ROLE_RANK, ROLES, Principal, WriteRole

SRC = Path(__file__).resolve().parents[1] / "src" / "plantlink"


def test_roles_are_ranked_lowest_first() -> None:
    assert ROLES == ("viewer", "operator", "engineer", "admin")
    assert [ROLE_RANK[r] for r in ROLES] == [0, 1, 2, 3]
    assert set(get_args(WriteRole)) == set(ROLES) - {"viewer"}


def test_principal_role_per_site_and_everywhere() -> None:
    p = Principal("ann", {"windsor": "operator", ALL_SITES: "viewer"})
    assert p.can("windsor", "operator") and not p.can("windsor", "engineer")
    assert p.can("detroit", "viewer") and not p.can("detroit", "operator")
    assert p.sites(["windsor", "detroit"], "operator") == ["windsor"]


def test_no_other_module_defines_roles() -> None:
    pattern = re.compile(r"Literal\[\s*\"(viewer|operator)\"")
    defining = sorted(str(p.relative_to(SRC)) for p in SRC.rglob("*.py") if pattern.search(p.read_text("utf-8")))
    assert defining == ["identity.py"]
