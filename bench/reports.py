"""Report benchmark: the line report of the tests' shift (tests/reports/cases.py: OEE, costs, two stops, an SPC
tag, energy, one alarm) on a real Runtime, assembled and rendered.

Figures (one JSON line each, the median of 5 runs after a first one that loads the libraries):
- report_assemble_s: seconds for ``services.reports.report`` (every service it calls);
- report_html_s, report_pdf_s: seconds to render it (four charts each: SVG, PNG);
- report_html_bytes, report_pdf_bytes: the files' sizes.

Run: .venv/bin/python -m bench.reports
"""

from __future__ import annotations

import asyncio
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from tests.api.test_oee_downtime import local_us
from tests.reports.cases import LINE, REPORT_PLANT, craft_report

from plantlink.identity import Principal
from plantlink.model import parse_plant
from plantlink.reports import render
from plantlink.runtime import Runtime

WHO = Principal("bench", {"windsor": "viewer"})


def figure(name: str, value: float, unit: str) -> None:
    print(json.dumps({"name": name, "value": round(value, 4), "unit": unit}))


def median_s(fn: Callable[[], object], n: int = 5) -> float:
    fn()
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


async def main() -> None:
    with tempfile.TemporaryDirectory() as d:
        rt = Runtime(parse_plant(REPORT_PLANT, "bench.yaml"), Path(d) / "data", flush_interval=0.2)
        await rt.start()
        try:
            await craft_report(rt)
            assert rt.services is not None
            svc = rt.services
            r = svc.reports.report(WHO, LINE, "shift", at_us=local_us(15))
            figure("report_assemble_s", median_s(lambda: svc.reports.report(WHO, LINE, "shift", at_us=local_us(15))),
                   "s")
            for fmt in ("html", "pdf"):
                figure(f"report_{fmt}_s", median_s(lambda f=fmt: render(r, f)), "s")  # type: ignore[misc]
                figure(f"report_{fmt}_bytes", len(render(r, fmt)), "bytes")
        finally:
            await rt.stop()


if __name__ == "__main__":
    asyncio.run(main())
