from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from plantlink.model import parse_plant
from plantlink.runtime import Runtime
from tests.api.conftest import client as client  # the API fixture, over this runtime
from tests.reports.cases import REPORT_PLANT


@pytest.fixture
async def runtime(tmp_path: Path) -> AsyncIterator[Runtime]:
    rt = Runtime(parse_plant(REPORT_PLANT, "test-plant.yaml"), tmp_path / "data", flush_interval=0.2)
    await rt.start()
    try:
        yield rt
    finally:
        await rt.stop()
