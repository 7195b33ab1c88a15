"""One rule for named periods (issue 9): the API and the HMI resolve "today", "shift", "8h", "24h" and "7d"
alike, in the site's time zone and shift calendar; "shift" with no shift running starts at local midnight (the
HMI used to start it 8 h ago)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from plantlink.api import kpi
from plantlink.errors import QueryError
from plantlink.hmi.data import PERIODS, PlantView
from plantlink.model import Plant, parse_plant
from plantlink.services import Components, Services
from plantlink.services.latest import LatestValues

DEMO = Path(__file__).resolve().parents[2] / "examples" / "demo-plant.yaml"
DETROIT = ZoneInfo("America/Detroit")
HOUR_US = 3600 * 1_000_000


def _us(dt: datetime) -> int:
    return int(dt.timestamp() * 1_000_000)


@pytest.fixture(scope="module")
def services() -> Services:
    plant: Plant = parse_plant(DEMO.read_text(encoding="utf-8"), str(DEMO))
    nothing = Components(*(lambda: None for _ in range(8)))
    return Services.build(plant, {t.path: i for i, t in enumerate(plant.tags)}, LatestValues(), nothing)


def test_shift_with_no_shift_running_starts_at_midnight_everywhere(services: Services) -> None:
    """Detroit's shifts run 07:00-15:30 and 15:30-24:00: at 03:00 no shift runs."""
    night = _us(datetime(2026, 11, 24, 3, 0, tzinfo=DETROIT))
    midnight = _us(datetime(2026, 11, 24, 0, 0, tzinfo=DETROIT))
    assert services.periods.bounds("detroit", "shift", night) == (midnight, night)
    assert PlantView(services).period("detroit", "shift", night) == (midnight, night)  # the HMI
    assert kpi.period_bounds(services, "detroit", "shift", night) == (midnight, night)  # the API


def test_every_named_period_is_resolved_alike(services: Services) -> None:
    view = PlantView(services)
    t = _us(datetime(2026, 11, 24, 9, 30, tzinfo=DETROIT))
    expected = {"today": _us(datetime(2026, 11, 24, 0, 0, tzinfo=DETROIT)),
                "shift": _us(datetime(2026, 11, 24, 7, 0, tzinfo=DETROIT)),
                "8h": t - 8 * HOUR_US, "24h": t - 24 * HOUR_US, "7d": t - 7 * 24 * HOUR_US}
    assert set(expected) == set(PERIODS)
    for name, start in expected.items():
        assert view.period("detroit", name, t) == services.periods.bounds("detroit", name, t) == (start, t), name
    for name in ("today", "shift"):  # the API's live periods
        assert kpi.period_bounds(services, "detroit", name, t) == (expected[name], t)


def test_unknown_periods_are_refused_naming_the_field(services: Services) -> None:
    with pytest.raises(QueryError) as err:
        services.periods.bounds("detroit", "fortnight")
    assert err.value.field == "period"
    with pytest.raises(QueryError):  # the API's live OEE takes today and shift only, as before
        kpi.period_bounds(services, "detroit", "8h")
