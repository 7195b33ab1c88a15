"""One data directory with known contents for the embedded mode, one server with the same for the remote mode."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import plantlink
from plantlink.client import Connection
from tests.client.plantdata import Server, make_data_dir, plant_file, running_server


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return plant_file(tmp_path_factory.mktemp("model"))


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory, model: Path) -> Path:
    d = tmp_path_factory.mktemp("embedded") / "data"
    make_data_dir(d, model)
    return d


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, model: Path) -> Iterator[Server]:
    with running_server(tmp_path_factory.mktemp("remote") / "data", model) as s:
        yield s


@pytest.fixture(scope="module", params=["embedded", "remote"])
def pl(request: pytest.FixtureRequest) -> Iterator[Connection]:
    """The same calls on both modes: a data directory (its model found in its audit trail), or a server."""
    if request.param == "embedded":
        conn = plantlink.connect(request.getfixturevalue("data_dir"))
    else:
        s: Server = request.getfixturevalue("server")
        conn = plantlink.connect(s.url, token=s.token)
    with conn:
        yield conn
