"""``plantlink report`` on a real data directory (written through a real Runtime, then stopped): the HTML and PDF
say the by-hand figures; a refused request names the scope or period and leaves no file (nor a .part)."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import pytest
from typer.testing import CliRunner

from plantlink.audit import AuditLog
from plantlink.cli import app
from plantlink.model import parse_plant
from plantlink.runtime import Runtime
from plantlink.store import Store, default_url
from tests.reports.cases import LINE, REPORT_PLANT, craft_report
from tests.reports.test_reports import parse

runner = CliRunner()
AT = "2026-03-10T15:00:00-04:00"  # after shift A (06:00-14:00, Toronto daylight time)


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("cli-report")
    model = root / "plant.yaml"
    model.write_text(REPORT_PLANT, encoding="utf-8")

    async def fill() -> None:
        rt = Runtime(parse_plant(REPORT_PLANT, str(model)), root / "data", flush_interval=0.2)
        await rt.start()
        try:
            await craft_report(rt)
        finally:
            await rt.stop()

    asyncio.run(fill())
    return root / "data", model


def _report(data: tuple[Path, Path], out: Path, *args: str) -> str:
    res = runner.invoke(app, ["report", "--data", str(data[0]), "--plant", str(data[1]), "--out", str(out), *args])
    assert res.exit_code == 0, res.output
    return res.output


def test_html_from_a_data_directory(data: tuple[Path, Path], tmp_path: Path) -> None:
    out = tmp_path / "shift.html"
    said = _report(data, out, "--scope", LINE, "--period", "shift", "--at", AT)
    assert "line report of windsor/a1/l1, shift A of 2026-03-10" in said
    page = parse(out.read_bytes())
    assert page.figures["OEE"] == "84.9 %" and page.figures["Cost of losses"] == "2,508.00 CAD"
    assert [row[0] for row in page.tables["Downtime Pareto (windsor/a1/l1)"][1:]] == ["No blanks", "Jam"]
    assert page.tables["Alarm system (EEMUA 191), site windsor"] == []  # not running here: said, not invented
    assert "alarm system is not running" in out.read_text(encoding="utf-8")
    assert not list(tmp_path.glob("*.part"))
    store = Store.open(default_url(data[0]))
    try:
        rec = next(AuditLog(store.engine).query(kind="export.report", newest_first=True, limit=1))
    finally:
        store.close()
    assert rec.target == LINE and rec.details["via"] == "cli" and rec.details["file"] == str(out.absolute())


def test_pdf_over_a_range(data: tuple[Path, Path], tmp_path: Path) -> None:
    from pypdf import PdfReader

    out = tmp_path / "m1.pdf"
    _report(data, out, "--scope", f"{LINE}/m1", "--from", "2026-03-10T06:00:00-04:00", "--to",
            "2026-03-10T14:00:00-04:00", "--format", "pdf")
    text = "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(out.read_bytes())).pages)
    assert "Machine report: windsor/a1/l1/m1" in text and "OEE 84.9 %" in text
    assert "Top reason No blanks (0.50 h)" in text


@pytest.mark.parametrize(("args", "said"), [
    (["--scope", "windsor/a1/nope", "--period", "shift"], "unknown line 'windsor/a1/nope'"),
    (["--scope", LINE, "--period", "month"], "period must be one of ['shift', 'day', 'week']"),
    (["--scope", LINE, "--period", "day", "--at", "2026-02-02T12:00:00-05:00"], "no data for windsor/a1/l1 in "
                                                                                "2026-02-01"),
    (["--scope", LINE, "--period", "day", "--format", "docx"], "format must be one of ['html', 'pdf']"),
    (["--scope", LINE], "give --period shift|day|week, or --from and --to"),
])
def test_refused_with_a_clear_error_and_no_file(data: tuple[Path, Path], tmp_path: Path, args: list[str],
                                                said: str) -> None:
    out = tmp_path / "r.html"
    res = runner.invoke(app, ["report", "--data", str(data[0]), "--plant", str(data[1]), "--out", str(out), *args])
    assert res.exit_code != 0 and said in " ".join(res.output.split()), res.output
    assert list(tmp_path.iterdir()) == []  # nothing written, not even a .part
