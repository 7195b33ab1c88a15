"""What the plant model checks of SPC settings, without numpy (``plantlink check`` must not import it): the
subgroup sizes the constants are tabulated for, the rule names and their groups."""

from __future__ import annotations

from collections.abc import Iterable

from plantlink.errors import AnalysisError

#: subgroup sizes with tabulated control chart constants (``constants``)
N_MIN, N_MAX = 2, 25
#: every rule: Western Electric 1-4, Nelson 1-8 (``spc_rules`` evaluates them)
RULES = ("we1", "we2", "we3", "we4", "n1", "n2", "n3", "n4", "n5", "n6", "n7", "n8")
#: Names for sets of rules (as the plant model's ``rules:`` may give them).
GROUPS = {"western_electric": ("we1", "we2", "we3", "we4"), "nelson": tuple(f"n{i}" for i in range(1, 9))}
#: Rules that only compare with the limits (the only ones for R, S, MR, EWMA and CUSUM charts).
LIMIT_RULES = ("we1", "n1")


def expand(names: Iterable[str]) -> tuple[str, ...]:
    """Rule names with the groups spelled out, in first-seen order; an unknown name is an error."""
    out: list[str] = []
    for name in names:
        for r in GROUPS.get(name, (name,)):
            if r not in RULES:
                raise AnalysisError(f"unknown rule {name!r}; choose from {sorted(RULES + tuple(GROUPS))}", "rules")
            if r not in out:
                out.append(r)
    return tuple(out)
