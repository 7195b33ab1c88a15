"""The line page's energy panel formats what the energy service answers (no browser)."""

from __future__ import annotations

import math

import pytest

from plantlink.hmi.energypanel import kwh, per_part


@pytest.mark.parametrize(("value", "shown"), [
    (None, "—"), (math.nan, "—"), (0.25, "0.250 kWh"), (0.1, "0.100 kWh"), (12.3456, "12.346 kWh"),
    (0.03, "30 Wh"), (0.0000312, "0.0312 Wh"), (0.0, "0 Wh"),
])
def test_energy_per_part_keeps_its_digits_when_small(value: float | None, shown: str) -> None:
    assert per_part(value) == shown


def test_energy_totals_in_kwh() -> None:
    assert kwh(1234.56) == "1,234.6 kWh" and kwh(None) == "—"
