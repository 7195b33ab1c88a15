"""The HMI's Tailwind stylesheet is compiled ahead (``scripts/hmi_css.py``, ``make css``), not in the browser:
it must be built for the classes the HMI's sources name, and served with the pages (the crawl in
``test_navigation.py`` checks the classes the pages really carry)."""

from __future__ import annotations

from typing import Any

from scripts import hmi_css


def test_the_stylesheet_is_built_for_the_classes_the_sources_name() -> None:
    css = hmi_css.OUT.read_text(encoding="utf-8")
    assert hmi_css.built_for(css) == hmi_css.digest(hmi_css.candidates()), "run make css"


def test_a_new_class_in_the_sources_makes_the_stylesheet_out_of_date(tmp_path: Any) -> None:
    (tmp_path / "page.py").write_text('ui.label("x").classes("grid-cols-7 gap-9")\n', encoding="utf-8")
    found = hmi_css.candidates(tmp_path)
    assert {"grid-cols-7", "gap-9"} <= set(found)
    assert hmi_css.digest(found) != hmi_css.digest(hmi_css.candidates())


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
