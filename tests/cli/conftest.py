"""A data directory with known contents (tests.client.plantdata: written through a real Runtime)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.client.plantdata import make_data_dir, plant_file


@pytest.fixture()
def data_dir(tmp_path: Path) -> Path:
    model = plant_file(tmp_path / "model")
    d = tmp_path / "data"
    make_data_dir(d, model)
    return d
