"""No clipped content on any page at 1920, 1400, 1024 and 390 px (issue 10, item 4).

For each page and width a real Chromium lays the page out and a script looks for what a person could not
read: the page scrolling sideways, an element whose content is cut (wider than its box, with overflow not
visible), and text broken letter by letter (a box narrower than three characters holding a long word).
A screenshot of each is kept in test-artifacts/hmi/layout-*.png for a person to look at.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.hmi.conftest import ARTIFACTS, LINE, PRESS, Visit

WIDTHS = (1920, 1400, 1024, 390)
PAGES = {"overview": "/hmi/", "line": f"/hmi/line/{LINE}", "machine": f"/hmi/machine/{PRESS}",
         "alarms": "/hmi/alarms", "audit": "/hmi/audit", "system": "/hmi/system",
         "oee": f"/hmi/oee?scope={LINE}&range=30d"}

FIND_CLIPPED = """() => {
  const out = [];
  const root = document.scrollingElement;
  if (root.scrollWidth > window.innerWidth + 1)
    out.push(`page scrolls sideways: ${root.scrollWidth} > ${window.innerWidth}`);
  // inside a box that scrolls sideways (a wide table on a phone) content is reachable, not cut
  const inScroller = (e) => { for (let a = e.parentElement; a; a = a.parentElement) {
      const o = getComputedStyle(a).overflowX;
      if ((o === 'auto' || o === 'scroll') && a.scrollWidth > a.clientWidth + 1)
        return a.getBoundingClientRect().right <= window.innerWidth + 1;
    } return false; };
  const cls = (e) => typeof e.className === 'string' && e.className ?
                     '.' + e.className.split(' ').slice(0, 3).join('.') : '';
  const name = (e) => e.tagName.toLowerCase() + (e.dataset.testid ? `[${e.dataset.testid}]` : '') + cls(e);
  for (const e of document.querySelectorAll('body *')) {
    const s = getComputedStyle(e);
    if (s.display === 'none' || s.visibility === 'hidden') continue;
    if (e.closest('.q-menu, .q-dialog, canvas, svg, .q-icon')) continue;  // popups, charts, icon ligatures
    const r = e.getBoundingClientRect();
    if (r.width === 0 || r.height === 0) continue;
    const text = (e.innerText || '').trim();
    const cut = e.scrollWidth > e.clientWidth + 1 && s.overflowX !== 'visible' && e.clientWidth > 0;
    if (cut && text && !['auto', 'scroll'].includes(s.overflowX))
      out.push(`cut: ${name(e)} ${e.scrollWidth} > ${e.clientWidth}: ${text.slice(0, 60)}`);
    if (e.children.length === 0 && text.length > 8 && !text.includes(' ') && r.width < 3 * parseFloat(s.fontSize))
      out.push(`letter by letter: ${name(e)} ${Math.round(r.width)} px: ${text.slice(0, 60)}`);
    if (r.right > window.innerWidth + 1 && text && e.children.length === 0 && !inScroller(e))
      out.push(`beyond the right edge: ${name(e)} right ${Math.round(r.right)}: ${text.slice(0, 60)}`);
  }
  return [...new Set(out)].slice(0, 40);
}"""


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("page", sorted(PAGES))
def test_nothing_is_cut_at_any_width(visit: Any, page: str, width: int) -> None:
    v: Visit = visit("admin", viewport=(width, 900))
    v.goto(PAGES[page])
    v.page.wait_for_load_state("networkidle")  # the page's data has come (goto waited for its socket)
    problems = v.page.evaluate(FIND_CLIPPED)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    v.page.screenshot(path=str(ARTIFACTS / f"layout-{page}-{width}.png"), full_page=True)
    assert problems == [], f"{page} at {width} px:\n" + "\n".join(problems)
