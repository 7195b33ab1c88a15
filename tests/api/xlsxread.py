"""Read the first sheet of an XLSX back (rows of cell values) with zipfile and ElementTree: an independent reader
of what ``xlsxwriter`` wrote (shared or inline strings, numbers, booleans; empty cells as None)."""

from __future__ import annotations

import io
import re
import zipfile
from typing import Any
from xml.etree import ElementTree

NS = {"m": "http://schemas.openxmlformats.org/spreadsheetml/2006/main"}


def _column(ref: str) -> int:
    letters = re.match(r"[A-Z]+", ref)
    assert letters is not None, ref
    n = 0
    for ch in letters.group(0):
        n = n * 26 + ord(ch) - 64
    return n - 1


def _text(node: ElementTree.Element) -> str:
    return "".join(t.text or "" for t in node.iter(f"{{{NS['m']}}}t"))


def read_xlsx(data: bytes) -> list[list[Any]]:
    book = zipfile.ZipFile(io.BytesIO(data))
    shared: list[str] = []
    if "xl/sharedStrings.xml" in book.namelist():
        root = ElementTree.fromstring(book.read("xl/sharedStrings.xml"))
        shared = [_text(si) for si in root.findall("m:si", NS)]
    sheet = ElementTree.fromstring(book.read("xl/worksheets/sheet1.xml"))
    rows: list[list[Any]] = []
    for row in sheet.iter(f"{{{NS['m']}}}row"):
        cells: dict[int, Any] = {}
        for c in row.findall("m:c", NS):
            kind, v = c.get("t"), c.find("m:v", NS)
            if kind == "inlineStr":
                value: Any = _text(c)
            elif v is None:
                continue
            elif kind == "s":
                value = shared[int(v.text or 0)]
            elif kind == "b":
                value = v.text == "1"
            elif kind in ("str", "e"):
                value = v.text
            else:
                value = float(v.text or "nan")
            cells[_column(c.get("r", "A1"))] = value
        width = max(cells) + 1 if cells else 0
        rows.append([cells.get(i) for i in range(width)])
    return rows
