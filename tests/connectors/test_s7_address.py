"""The S7 address parser and the read planner, on tables of known answers."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from plantlink.connectors.s7.address import parse_address
from plantlink.connectors.s7.config import S7Device, S7Point
from plantlink.connectors.s7.plan import max_item_bytes, pack, plan_reads

# (address, type, area, db, start, bit, size, type)
VALID = [
    ("DB10.DBD4", "REAL", "DB", 10, 4, None, 4, "REAL"),
    ("DB10.DBX6.3", None, "DB", 10, 6, 3, 1, "BOOL"),
    ("db10.dbx6.3", "bool", "DB", 10, 6, 3, 1, "BOOL"),
    ("DB1.DBB0", None, "DB", 1, 0, None, 1, "BYTE"),
    ("DB1.DBW2", None, "DB", 1, 2, None, 2, "INT"),
    ("DB1.DBW2", "WORD", "DB", 1, 2, None, 2, "WORD"),
    ("DB1.DBD8", None, "DB", 1, 8, None, 4, "DINT"),
    ("DB1.DBD8", "DWORD", "DB", 1, 8, None, 4, "DWORD"),
    ("DB2.DBB16", "LREAL", "DB", 2, 16, None, 8, "LREAL"),
    ("DB2.DBB30", "STRING[10]", "DB", 2, 30, None, 12, "STRING"),
    ("DB2.DBB30", "STRING", "DB", 2, 30, None, 256, "STRING"),
    ("MW20", "INT", "M", 0, 20, None, 2, "INT"),
    ("M5.1", None, "M", 0, 5, 1, 1, "BOOL"),
    ("MB7", "SINT", "M", 0, 7, None, 1, "SINT"),
    ("MD24", "REAL", "M", 0, 24, None, 4, "REAL"),
    ("I0.0", None, "I", 0, 0, 0, 1, "BOOL"),
    ("E1.7", None, "I", 0, 1, 7, 1, "BOOL"),
    ("IW2", "UINT", "I", 0, 2, None, 2, "UINT"),
    ("Q0.1", None, "Q", 0, 0, 1, 1, "BOOL"),
    ("QW2", None, "Q", 0, 2, None, 2, "INT"),
    ("A3.2", None, "Q", 0, 3, 2, 1, "BOOL"),
    ("DB65535.DBB65535", None, "DB", 65535, 65535, None, 1, "BYTE"),
]

# (address, type, words the message must contain)
INVALID = [
    ("DB10", None, "not an S7 address"),
    ("DB10.DBX6", None, "needs its bit"),
    ("DB10.DBX6.8", None, "bit 8 out of 0..7"),
    ("DB0.DBW0", None, "DB number 0"),
    ("DB10.DBW4.1", None, "only a bit address"),
    ("DB10.DBD4", "INT", "addresses 4 byte(s) but INT has 2"),
    ("DB10.DBW4", "REAL", "addresses 2 byte(s) but REAL has 4"),
    ("DB10.DBD4", "LREAL", "LREAL starts at a byte address"),
    ("DB10.DBX0.0", "INT", "type must be BOOL"),
    ("MW2", "BOOL", "needs a bit address"),
    ("MW2", "FLOAT", "unknown S7 type"),
    ("DB1.DBB0", "STRING[300]", "1..254"),
    ("MB65535", "INT", "addresses 1 byte(s)"),
    ("DB1.DBB65530", "LREAL", "runs past byte 65535"),
    ("X10", None, "not an S7 address"),
    ("M70000.0", None, "byte offset 70000"),
]


@pytest.mark.parametrize(("text", "type_", "area", "db", "start", "bit", "size", "name"), VALID)
def test_valid_addresses(text: str, type_: str | None, area: str, db: int, start: int, bit: int | None,
                         size: int, name: str) -> None:
    a = parse_address(text, type_)
    assert (a.area, a.db, a.start, a.bit, a.size, a.type) == (area, db, start, bit, size, name)


@pytest.mark.parametrize(("text", "type_", "words"), INVALID)
def test_invalid_addresses(text: str, type_: str | None, words: str) -> None:
    with pytest.raises(ValueError, match=None) as err:
        parse_address(text, type_)
    assert words in str(err.value)


def _plan(addresses: list[tuple[str, str | None]], pdu: int = 240, **dev: object) -> list[object]:
    device = S7Device(host="h", **dev)  # type: ignore[arg-type]
    points = [S7Point(address=a, type=t) for a, t in addresses]
    return plan_reads(device, points, pdu)  # type: ignore[return-value]


def test_neighbours_join_across_small_gaps_and_areas_stay_apart() -> None:
    (g,) = _plan([("DB1.DBD0", "REAL"), ("DB1.DBW10", None), ("DB1.DBX100.0", None), ("DB2.DBW0", None),
                  ("MW4", None), ("M0.1", None)], max_gap=32)
    spans = [(r.area, r.db, r.start, r.size, r.members) for r in g.ranges]  # type: ignore[attr-defined]
    # DB1 0..3 and 10..11 join (gap 6); 100 is 88 bytes past 12: its own range
    assert spans == [("DB", 1, 0, 12, (0, 1)), ("DB", 1, 100, 1, (2,)), ("DB", 2, 0, 2, (3,)),
                     ("M", 0, 0, 6, (5, 4))]
    assert len(g.requests) == 1 and len(g.requests[0]) == 4  # type: ignore[attr-defined]


def test_pdu_240_cuts_items_at_222_bytes_and_packs_requests() -> None:
    assert max_item_bytes(240) == 222 and max_item_bytes(480) == 462
    (g,) = _plan([("DB1.DBB0", None), ("DB1.DBB499", None)], max_gap=200)
    # one range of 500 bytes? no: the gap 498 > 200 -> two ranges of 1 byte, one request
    assert [r.size for r in g.ranges] == [1, 1] and len(g.requests) == 1  # type: ignore[attr-defined]
    (g,) = _plan([("DB1.DBB0", "STRING[254]"), ("DB1.DBB256", "STRING[254]")], max_gap=0)
    # one range of 512 bytes -> items 222 + 222 + 68; replies: 14 + 226 = 240 (full), 14 + 226, 14 + 72
    assert [(r.start, r.size) for r in g.ranges] == [(0, 512)]  # type: ignore[attr-defined]
    sizes = [[it.size for it in req] for req in g.requests]  # type: ignore[attr-defined]
    assert sizes == [[222], [222], [68]]
    (g,) = _plan([("DB1.DBB0", "STRING[254]"), ("DB1.DBB256", "STRING[254]")], pdu=960, max_gap=0)
    # PDU 960: item limit 942 -> one item of 512 bytes, one request
    assert [[it.size for it in req] for req in g.requests] == [[512]]  # type: ignore[attr-defined]


def test_at_most_twenty_items_and_the_request_fits_the_pdu() -> None:
    far = [(f"DB1.DBW{i * 100}", None) for i in range(45)]  # 45 ranges of 2 bytes, gap 98 > max_gap 16
    (g,) = _plan(far, pdu=960, max_gap=16)
    assert [len(r) for r in g.requests] == [20, 20, 5]  # type: ignore[attr-defined]
    (g,) = _plan(far, pdu=240, max_gap=16)
    # PDU 240: request 14 + 12 * n <= 240 -> n <= 18; replies 14 + 6 * 18 = 122 fit
    assert [len(r) for r in g.requests] == [18, 18, 9]  # type: ignore[attr-defined]


def test_poll_periods_make_separate_groups() -> None:
    device = S7Device(host="h", poll=1.0)
    points = [S7Point(address="DB1.DBW0"), S7Point(address="DB1.DBW2", poll=0.1)]
    groups = plan_reads(device, points, 240)
    assert [(g.period, [r.members for r in g.ranges]) for g in groups] == [(0.1, [(1,)]), (1.0, [(0,)])]


def test_pack_keeps_reply_within_pdu() -> None:
    from plantlink.connectors.s7.plan import Range
    ranges = [Range("DB", 1, i * 1000, 100, (i,)) for i in range(5)]
    # PDU 240: reply 14 + 104 = 118, + 104 = 222, + 104 > 240 -> 2 items per request
    assert [len(r) for r in pack(ranges, 240)] == [2, 2, 1]


def test_check_validates_s7_without_importing_snap7(tmp_path: Path) -> None:
    """`plantlink check` validates S7 devices and addresses through the plugin alone: no snap7, numpy,
    pyarrow or connector client imported; a bad address is reported at its line."""
    from tests.connectors.test_s7_connector import plant_text

    stack = ("snap7", "numpy", "pyarrow", "plantlink.connectors.s7.client", "plantlink.connectors.base")
    prog = ("import sys; from plantlink.cli import app\n"
            "try:\n    app(['check', sys.argv[1]])\nexcept SystemExit as e:\n    print(e.code)\n"
            f"print(sorted(m for m in {stack!r} if m in sys.modules))")
    good = tmp_path / "good.yaml"
    good.write_text(plant_text(102, ["{name: t, source: {device: plc, address: DB1.DBD2, type: REAL}}"]))
    bad = tmp_path / "bad.yaml"
    bad.write_text(plant_text(102, ["{name: t, source: {device: plc, address: DB1.DBX2, type: BOOL}}"]))
    for model, code in ((good, "0"), (bad, "1")):
        res = subprocess.run([sys.executable, "-c", prog, str(model)], capture_output=True, text=True, timeout=60,
                             check=False)
        assert res.stdout.splitlines()[-2:] == [code, "[]"], res.stdout + res.stderr
    assert "needs its bit" in res.stdout + res.stderr
    assert "bad.yaml:" in res.stdout + res.stderr


def test_the_docs_example_is_a_valid_plant() -> None:
    import re

    from plantlink.model import parse_plant

    text = (Path(__file__).parents[2] / "docs" / "s7.md").read_text(encoding="utf-8")
    (block,) = re.findall(r"```yaml\n(.*?)```", text, re.S)
    plant = parse_plant(block, "docs/s7.md")
    assert plant.devices["press-plc"].protocol == "s7"
    assert [t.source.location.type for t in plant.tags_of_device("press-plc")] == [  # type: ignore[attr-defined]
        "REAL", "BOOL", "DINT", "STRING", "INT", "BOOL", "REAL"]
