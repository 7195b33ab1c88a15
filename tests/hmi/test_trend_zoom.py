"""The trend's zoom window stays inside its range whatever percentages the chart reports (a pan past an end,
a pair the wrong way round)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest

from plantlink.hmi.trend import Trend

DAY_US = 86_400 * 1_000_000
START = 1_700_000_000_000_000


def trend() -> tuple[Trend, list[tuple[int, int]]]:
    """A trend without a page: only its range, its zoom and what each load would fetch."""
    t = Trend.__new__(Trend)
    t.range, t.zoom, t._loading = (START, START + DAY_US), (0.0, 100.0), asyncio.Lock()
    loads: list[tuple[int, int]] = []

    async def load(set_zoom: bool = True) -> None:
        loads.append(t.window())

    t.load = load  # type: ignore[method-assign]
    return t, loads


@pytest.mark.parametrize(("start", "end", "window"), [
    (-0.0002, 100.00036, None),                        # past both ends: the whole range, no load
    (0.0, 50.0, (START, START + DAY_US // 2)),          # a real zoom: the first half
    (25.0, 100.2, (START + DAY_US // 4, START + DAY_US)),  # a pan past the end stops at the end
    (60.0, 40.0, None),                                # reversed: ignored
])
def test_zoom_is_clamped_to_the_range(start: float, end: float, window: tuple[int, int] | None) -> None:
    t, loads = trend()
    asyncio.run(t._on_zoom(SimpleNamespace(args={"start": start, "end": end})))
    assert loads == ([] if window is None else [window])
    lo, hi = t.window()
    assert START <= lo < hi <= START + DAY_US


def test_batched_event_as_the_slider_sends_it() -> None:
    t, loads = trend()
    asyncio.run(t._on_zoom(SimpleNamespace(args={"batch": [{"start": 50.0, "end": 100.0004}]})))
    assert loads == [(START + DAY_US // 2, START + DAY_US)]
