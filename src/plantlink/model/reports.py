"""Report schedules in the plant model (top-level ``reports:``): which reports are made after each shift, day or
week (site time) and e-mailed to which ``notifications.targets``.

Example::

    reports:
      - {scope: windsor/body-paint/body-line-1, period: shift, formats: [pdf], targets: [maintenance]}
      - {scope: windsor, period: week, formats: [html, pdf], targets: [plant-manager]}

Checked with located errors: the scope must be a site, area, line or machine path of the model; each target
must be an e-mail target of ``notifications.targets`` (an ``smtp:`` server is then required there too).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator

from plantlink.model.schema_base import Strict
from plantlink.model.types import Name

ReportPeriod = Literal["shift", "day", "week"]
ReportFormat = Literal["html", "pdf"]


def _pdf() -> list[ReportFormat]:
    return ["pdf"]


class ReportSchedule(Strict):
    scope: str = Field(min_length=1)
    period: ReportPeriod
    formats: list[ReportFormat] = Field(default_factory=_pdf, min_length=1)
    targets: list[Name] = Field(min_length=1)

    @field_validator("scope")
    @classmethod
    def _scope(cls, value: str) -> str:
        return value.strip().strip("/")

    @property
    def key(self) -> str:
        """What identifies the schedule in the record of reports sent (the same scope and period: one record)."""
        return f"{self.scope}|{self.period}|{','.join(sorted(self.formats))}|{','.join(sorted(self.targets))}"


def report_problems(spec: Any) -> list[tuple[tuple[Any, ...], str]]:
    """(location, message) of each schedule whose scope is not in the model or whose targets are not e-mail
    targets of ``notifications``; ``spec`` is the ``PlantFile``."""
    out: list[tuple[tuple[Any, ...], str]] = []
    scopes: set[str] = set()
    for s in spec.sites:
        scopes.add(s.name)
        for a in s.areas:
            scopes.add(f"{s.name}/{a.name}")
            for ln in a.lines:
                scopes.add(f"{s.name}/{a.name}/{ln.name}")
                scopes.update(f"{s.name}/{a.name}/{ln.name}/{m.name}" for m in ln.machines)
    n = spec.notifications
    targets = n.targets if n is not None else {}
    for i, r in enumerate(spec.reports):
        if r.scope not in scopes:
            out.append(((i, "scope"), f"reports[{i}]: unknown scope {r.scope!r} (a site, site/area, site/area/line "
                                      "or site/area/line/machine path of this model)"))
        for j, name in enumerate(r.targets):
            t = targets.get(name)
            if t is None:
                known = ", ".join(sorted(targets)) or "none declared"
                out.append(((i, "targets", j), f"reports[{i}]: unknown target {name!r} (notifications.targets: "
                                               f"{known})"))
            elif t.kind != "email":
                out.append(((i, "targets", j), f"reports[{i}]: target {name!r} is not an e-mail target (reports "
                                               "are e-mailed as attachments)"))
    return out
