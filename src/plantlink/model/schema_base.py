"""The base of every plant-model section."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Strict(BaseModel):
    """Base for config models: unknown keys are errors (a typo must not pass silently), and so are NaN and
    infinities in number fields (``"nan"``, ``"inf"`` written as text; YAML's ``.nan`` is refused earlier)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)
