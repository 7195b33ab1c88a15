"""A machine's analytics blocks: ``anomaly:`` (a multivariate detector over some of its tags, trained on a
baseline period a user picks) and ``rul:`` (the remaining useful life of a wearing part from its wear
indicator tags). docs/analytics.md shows them; checks that name the machine's tags are in
``analytics_problems`` (the loader reports them with file, line and column).

Each block gives the machine a derived tag that the runtime writes and the historian stores like any tag:
``<machine>/anomaly_score`` and ``<machine>/rul_hours`` (``SCORE_TAG``, ``RUL_TAG``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field, StrictInt, model_validator

from plantlink.model.alarms import Priority
from plantlink.model.schema_base import Strict
from plantlink.model.types import PositiveDuration

SCORE_TAG = "anomaly_score"
RUL_TAG = "rul_hours"
#: upper bounds of the anomaly block's lags and smooth (the same as plantlink.analytics.dynamic's; a test
#: pins them equal, the model stays free of numpy)
MAX_LAGS, MAX_SMOOTH = 10, 120


class Baseline(Strict):
    """A default baseline period (the train API takes another)."""

    start: datetime = Field(alias="from")
    end: datetime = Field(alias="to")

    @model_validator(mode="after")
    def _order(self) -> Baseline:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("give from and to with a time zone (e.g. 2026-05-01T06:00:00Z)")
        if not self.start < self.end:
            raise ValueError(f"from ({self.start.isoformat()}) must be before to ({self.end.isoformat()})")
        return self


class AnomalySettings(Strict):
    """``tags``: two or more numeric tags of the machine; ``detector``: ``pca`` (T² and Q, score 1 = the
    limit) or ``iforest``; ``mode``: ``shadow`` (score, store and log only) or ``alarm``; ``limit``: the score
    above which it alarms (default: the detector's own threshold); ``interval``: the baseline is read as the
    tags' means per interval; ``lags`` (pca only): dynamic PCA, each row extended with the tags' values
    ``lags`` rows earlier; ``smooth`` (pca only): T² and Q each the trailing median over ``smooth`` rows;
    ``variance`` and ``alpha`` (pca only): the share of variance the components keep and each limit's
    false-alarm probability (default the detector's, 0.90 and 0.01). ``detector: pca, variance: 0.85,
    alpha: 0.001, lags: 1, smooth: 5`` is the configuration measured on SKAB (docs/analytics.md)."""

    tags: list[str] = Field(min_length=2)
    detector: Literal["pca", "iforest"] = "pca"
    lags: StrictInt = Field(default=0, ge=0, le=MAX_LAGS)
    smooth: StrictInt = Field(default=1, ge=1, le=MAX_SMOOTH)
    variance: float | None = Field(default=None, gt=0, le=1)
    alpha: float | None = Field(default=None, gt=0, lt=1)
    mode: Literal["shadow", "alarm"] = "shadow"
    limit: float | None = Field(default=None, gt=0)
    interval: PositiveDuration = 10.0
    priority: Priority = "medium"
    baseline: Baseline | None = None

    @model_validator(mode="after")
    def _pca_options(self) -> AnomalySettings:
        if self.detector != "pca" and (self.lags or self.smooth != 1 or self.variance or self.alpha):
            raise ValueError(f"lags, smooth, variance and alpha apply to detector pca only, not {self.detector}")
        return self


class RulSettings(Strict):
    """``tags``: wear indicator tags; ``fault_tag`` turning to ``failure_code`` marks a failure (the part is
    replaced then); ``threshold_hours``: alarm when the expected remaining life falls below it; ``every``:
    how often it is estimated; ``interval``: one estimator cycle (the tags' ``max`` per interval)."""

    tags: list[str] = Field(min_length=1)
    fault_tag: str
    failure_code: int
    threshold_hours: float = Field(gt=0)
    every: PositiveDuration = 600.0
    interval: PositiveDuration = 3600.0
    history: PositiveDuration = 30 * 86400.0
    priority: Priority = "high"


def analytics_problems(machine: Any) -> list[tuple[tuple[str | int, ...], str]]:
    """Tags named by the machine's ``anomaly:`` and ``rul:`` blocks exist on it and are numeric; the derived
    tag names are free."""
    tags = {t.name: t for t in machine.tags}
    known = ", ".join(sorted(tags)) or "none"
    out: list[tuple[tuple[str | int, ...], str]] = []

    def check(section: str, loc: tuple[str | int, ...], name: str, numeric: bool = True) -> None:
        t = tags.get(name)
        if t is None:
            out.append(((section, *loc), f"no tag {name!r} on machine {machine.name!r} (its tags: {known})"))
        elif numeric and t.type == "string":
            out.append(((section, *loc), f"tag {name!r} is a string: {section} needs numeric tags"))

    for section, derived in (("anomaly", SCORE_TAG), ("rul", RUL_TAG)):
        block = getattr(machine, section)
        if block is None:
            continue
        if derived in tags:
            out.append(((section,), f"machine {machine.name!r} has a tag {derived!r}: the {section} block writes "
                                    "a tag of that name; rename the tag"))
        for i, name in enumerate(block.tags):
            check(section, ("tags", i), name)
        if len(set(block.tags)) != len(block.tags):
            out.append(((section, "tags"), "a tag is named twice"))
        if section == "rul":
            check(section, ("fault_tag",), block.fault_tag, numeric=True)
    return out
