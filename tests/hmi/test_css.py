"""The HMI's Tailwind stylesheet is compiled ahead (``scripts/hmi_css.py``, ``make css``), not in the browser:
it must be built for the classes the HMI's sources name, and served with the pages (the crawl in
``test_navigation.py`` checks the classes the pages really carry)."""

from __future__ import annotations

from typing import Any

from scripts import hmi_css


def test_the_stylesheet_is_what_make_css_makes_of_the_sources(browser: Any) -> None:
    page = browser.new_page()
    try:
        now = hmi_css.generate(page, hmi_css.candidates())
        assert hmi_css.body(hmi_css.OUT.read_text(encoding="utf-8")) == now, "the HMI's classes changed: make css"
        # a class the sources did not name (yet) changes it: the check above would see it
        more = hmi_css.generate(page, [*hmi_css.candidates(), "grid-cols-7"])
        assert "grid-cols-7" in hmi_css.utilities(more) and "grid-cols-7" not in hmi_css.utilities(now)
    finally:
        page.close()


def test_the_candidates_are_every_token_of_the_sources_string_literals(tmp_path: Any) -> None:
    (tmp_path / "page.py").write_text('ui.label("Hello").classes("grid-cols-7 " + ("2xl:gap-9" if x else ""))\n',
                                      encoding="utf-8")
    assert {"grid-cols-7", "2xl:gap-9", "absolute"} <= set(hmi_css.candidates(tmp_path))  # and the components'


def test_the_pages_load_the_compiled_stylesheet_not_the_browser_compiler(visit: Any) -> None:
    v = visit()
    v.goto("/hmi/")
    page = v.page
    page.wait_for_selector(".pl-tile")
    sheets = page.evaluate("() => [...document.styleSheets].map(s => s.href || '')")
    assert any("/_plantlink/tailwind-" in h for h in sheets), sheets
    assert not page.evaluate("() => [...document.scripts].some(s => s.src.includes('tailwindcss'))")
    # Tailwind utilities take effect: text-2xl is 1.5rem (24 px), font-semibold is 600
    style = page.evaluate("() => { const s = getComputedStyle(document.querySelector('.text-2xl.font-semibold'));"
                          " return [s.fontSize, s.fontWeight]; }")
    assert style == ["24px", "600"]
