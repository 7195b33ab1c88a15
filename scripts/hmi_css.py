"""Build the HMI's stylesheet: the Tailwind CSS that NiceGUI's in-browser Tailwind would generate for the
classes the HMI uses, compiled once here instead of in every browser on every page load.

Tailwind's own approach is followed: every whitespace-separated token of every string literal in the HMI's
sources is a candidate class (tokens that are no Tailwind utility produce nothing). The candidates are put on
one element of a blank page in headless Chromium with NiceGUI's ``tailwindcss.min.js`` (the same engine,
version and configuration the pages used) and the CSS it generates is written to
``src/plantlink/hmi/static/tailwind.css``. ``tests/hmi/test_css.py`` compiles again and fails when the
result differs (the HMI's sources name a class the file was not built for): run ``make css``.

    .venv/bin/python scripts/hmi_css.py [--check]
"""

from __future__ import annotations

import argparse
import ast
import re
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
HMI = ROOT / "src" / "plantlink" / "hmi"
OUT = HMI / "static" / "tailwind.css"
#: a token that could be a Tailwind class (letters, digits and Tailwind's punctuation)
TOKEN = re.compile(r"^!?-?[a-z0-9@][a-z0-9:/\[\]().%#_,=&>*-]*$")
#: classes that NiceGUI's and Quasar's components put on their own elements and that Tailwind also styles (the
#: in-browser compiler saw them in the page): found by the crawl of every page in tests/hmi/test_navigation.py
COMPONENT_CLASSES = ("absolute", "block", "cursor-pointer", "inline", "justify-center", "self-stretch", "text-left")
HEADER = "/* plantlink HMI: Tailwind {version}, compiled by scripts/hmi_css.py (make css): do not edit */\n"
#: the configuration NiceGUI's page template gives the in-browser Tailwind
CONFIG = "@custom-variant dark (&:where(body.body--dark, body.body--dark *));"


def candidates(root: Path = HMI) -> list[str]:
    """Every token of every string literal in the HMI's Python sources that could be a class, sorted."""
    found: set[str] = set()
    for path in sorted(root.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                found.update(t for t in node.value.split() if TOKEN.match(t))
    return sorted(found | set(COMPONENT_CLASSES))


def body(css: str) -> str:
    """A stylesheet without its header line."""
    return css.split("\n", 1)[1] if css.startswith("/* plantlink HMI") else css


def tailwind_js() -> Path:
    import nicegui

    return Path(nicegui.__file__).parent / "static" / "tailwindcss.min.js"


def generate(page: Any, tokens: list[str]) -> str:
    """The CSS that NiceGUI's in-browser Tailwind generates for ``tokens``, on a Playwright ``page``."""
    html = (f'<!doctype html><html><head><style type="text/tailwindcss">{CONFIG}</style></head>'
            f'<body><div class="{" ".join(tokens)}"></div></body></html>')
    page.set_content(html)
    page.add_script_tag(content=tailwind_js().read_text(encoding="utf-8"))
    page.wait_for_function("() => [...document.querySelectorAll('style')].some(s => "
                           "s.type !== 'text/tailwindcss' && s.textContent.includes('@layer utilities'))")
    return str(page.evaluate("() => [...document.querySelectorAll('style')]"
                             ".filter(s => s.type !== 'text/tailwindcss').map(s => s.textContent).join('\\n')"))


def utilities(css: str) -> list[str]:
    """The class selectors of the utilities layer of generated CSS."""
    at = css.find("@layer utilities {")
    return sorted(set(re.findall(r"^  \.([^ {,]+)", css[at:], re.MULTILINE))) if at >= 0 else []


def version() -> str:
    m = re.search(r'var \w+="(\d+\.\d+\.\d+)"', tailwind_js().read_text(encoding="utf-8")[:200])
    return m.group(1) if m else "?"


def compile_css(tokens: list[str]) -> str:
    """:func:`generate` in a headless Chromium of its own."""
    from playwright.sync_api import sync_playwright
    from tests.hmi.harness import CHROMIUM, CHROMIUM_ARGS

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            return generate(browser.new_page(), tokens)
        finally:
            browser.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="only say whether the stylesheet is up to date")
    args = ap.parse_args()
    tokens = candidates()
    css = compile_css(tokens)
    if args.check:
        ok = OUT.exists() and body(OUT.read_text(encoding="utf-8")) == css
        print("up to date" if ok else f"out of date: run make css ({OUT.relative_to(ROOT)})")
        return 0 if ok else 1
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(HEADER.format(version=version()) + css, encoding="utf-8")
    print(f"{OUT.relative_to(ROOT)}: {len(css):,} bytes, {len(utilities(css))} utilities for {len(tokens)} "
          f"candidates (Tailwind {version()})")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
