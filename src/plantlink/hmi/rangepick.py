"""The time-range picker every page with a period shares (issue 10, item 9): presets, a from/to in the site's
zone (named), and "compare with the previous period". The range lives in the page's address (see
``hmi.timerange``): a choice opens the page again at the new address, so reload, back and a shared link keep
it, and every panel of the page reads the one range. A refused from/to is said under the picker and the page
keeps the range it shows (its panels do not change); a refused range in the address is said the same way and
the page shows its default range."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from urllib.parse import urlencode

from nicegui import ui

from plantlink.hmi.timerange import Limits, Picked, RangeError, custom, from_query, local_input
from plantlink.hmi.widgets import Hmi, local_time, zone_note
from plantlink.samples import now_us
from plantlink.services.kpi import OeeResult

__all__ = ["RangePicker", "open_range", "versus"]


def open_range(h: Hmi, site: str, tz: str, q: Mapping[str, str], limits: Limits) -> tuple[Picked, str | None]:
    """The range the address asks for (or the page's default and why the asked one is refused)."""
    return from_query(h.services.periods, site, tz, q, now_us(), limits)


def versus(current: OeeResult | None, previous: OeeResult | None) -> str:
    """The change of OEE from the previous period in points of percentage, ``+3.2 pts`` (the difference of the
    two figures as shown, to one decimal); "—" when either is missing or a data problem."""
    if current is None or previous is None or current.data_problem or previous.data_problem:
        return "—"
    a, b = current.oee, previous.oee
    if a is None or b is None or a != a or b != b:
        return "—"
    d = round(100 * a, 1) - round(100 * b, 1)
    return f"{d:+.1f} pts".replace("+0.0", "±0.0").replace("-0.0", "±0.0")


class RangePicker:
    """Presets, From/To (``datetime-local`` inputs in the site's zone) with **Show**, the compare switch, the
    range shown (with the zone) and the message of a refused range. ``url(query)`` is the page's address for a
    range's query (the page adds its own parameters: scope, tag...)."""

    def __init__(self, tz: str, picked: Picked, limits: Limits, refused: str | None,
                 url: Callable[[dict[str, str]], str]):
        self.tz, self.picked, self.limits, self.url = tz, picked, limits, url
        self.refused = refused

    def go(self, query: dict[str, str]) -> None:
        ui.navigate.to(self.url(query))

    def choose(self, name: str | None) -> None:
        if name:
            self.go({"period": name, **({"compare": "1"} if self.picked.compare else {})})

    def build(self) -> None:
        p, tz = self.picked, self.tz
        with ui.element("div").classes("pl-panel w-full").props('data-testid="range-picker"'):
            with ui.row().classes("items-center gap-3 w-full flex-wrap"):
                ui.toggle(self.limits.presets, value=p.preset, on_change=lambda e: self.choose(e.value)
                          ).props('data-testid="period" no-caps').classes("pl-touch").style(
                    "flex-wrap: wrap")  # eight presets: on a phone, two or three rows
                if self.limits.compare:
                    ui.switch("Compare with the previous period", value=p.compare,
                              on_change=lambda e: self.go(p.query(compare=bool(e.value)))
                              ).props('data-testid="compare-switch"').classes("pl-touch")
            with ui.row().classes("items-center gap-3 w-full flex-wrap"):
                self.first = ui.input(f"From ({tz})", value=local_input(p.start_us, tz)).props(
                    'type=datetime-local stack-label data-testid="from"')
                self.last = ui.input(f"To ({tz})", value=local_input(p.end_us, tz)).props(
                    'type=datetime-local stack-label data-testid="to"')
                ui.button("Show", on_click=self.apply).props('data-testid="apply" no-caps').classes("pl-touch")
            ui.label(self.caption()).classes("pl-muted text-sm").props(
                f'data-testid="range" data-start-us="{p.start_us}" data-end-us="{p.end_us}"')
            self.error = ui.label(self.refused or "").classes("pl-dataproblem text-base").props(
                'data-testid="range-error" role="alert"')
            self.error.set_visibility(bool(self.refused))

    def caption(self) -> str:
        p, tz = self.picked, self.tz
        text = f"{local_time(p.start_us, tz, True)} to {local_time(p.end_us, tz, True)}"
        if p.compare:
            a, b = p.previous
            text += f", compared with {local_time(a, tz, True)} to {local_time(b, tz, True)}"
        return f"{text}. {zone_note(tz)}"

    def apply(self) -> None:
        """Show the typed from/to, or say why not and keep the range shown."""
        try:
            chosen = custom(str(self.first.value or ""), str(self.last.value or ""), self.tz, now_us(), self.limits,
                            self.picked.compare)
        except RangeError as exc:
            self.error.set_text(str(exc))
            self.error.set_visibility(True)
            return
        self.go(chosen.query())


def address(base: str, query: Mapping[str, str]) -> str:
    """``base`` with the query (for ``ui.navigate.to``; ``base`` from ``Hmi.page``)."""
    return f"{base}?{urlencode(dict(query))}" if query else base
