"""``plantlink browse logix://...`` against cm-ethernetip's Logix server: controller and program tags, more than
one reply's worth (the tag-list continuation), as YAML that pastes into a valid plant model."""

from __future__ import annotations

import asyncio
import struct

import yaml
from typer.testing import CliRunner

from plantlink.cli import app
from plantlink.connectors.logix.browse import browse_text, parse_endpoint
from plantlink.errors import PlantlinkError
from plantlink.model import parse_plant
from tests.conftest import _free_port
from tests.connectors.logix_server import CmServer

SERVED = {"Speed": ("REAL", 1), "Count": ("DINT", 1), "Run": ("BOOL", 1), "Recipe": ("STRING", 1),
          "Program:Main.Rate": ("LREAL", 1), "Counts": ("DINT", 10),
          **{f"Extra_{i:03d}": ("INT", 1) for i in range(60)}}  # > one 480-byte reply of the tag list


async def test_browse_lists_controller_and_program_tags_as_yaml() -> None:
    srv = await CmServer(_free_port(), SERVED).start()
    try:
        srv.controller.set_raw("Count", struct.pack("<i", 5))
        text, n = await asyncio.to_thread(browse_text, f"logix://127.0.0.1:{srv.port}", "plc")
    finally:
        await srv.stop()
    assert n == len(SERVED)
    body = yaml.safe_load(text)
    by_tag = {t["source"]["tag"]: t for t in body}
    assert by_tag["Speed"] == {"name": "Speed", "type": "float", "source": {"device": "plc", "tag": "Speed",
                                                                             "type": "REAL"}}
    assert by_tag["Count"]["source"]["type"] == "DINT" and by_tag["Count"]["type"] == "int"
    assert by_tag["Run"]["type"] == "bool" and by_tag["Recipe"]["type"] == "string"
    assert by_tag["Program:Main.Rate"]["name"] == "Main.Rate"
    assert "Extra_059" in by_tag  # the last tag: the list went past its first reply
    assert "#   Counts: DINT (1-dimensional array)" in text
    assert "#     protocol: logix" in text
    plant = {"enterprise": "T", "devices": {"plc": {"protocol": "logix", "host": "127.0.0.1"}},
             "sites": [{"name": "s", "timezone": "UTC", "areas": [{"name": "a", "lines": [
                 {"name": "l", "machines": [{"name": "m", "tags": body}]}]}]}]}
    assert len(parse_plant(yaml.safe_dump(plant)).tags) == len(body)  # pastes into a valid plant model


def test_a_bad_endpoint_is_named() -> None:
    assert parse_endpoint("logix://10.0.4.30:2222/3") == ("10.0.4.30", 2222, 3)
    try:
        parse_endpoint("logix://host/x")
    except PlantlinkError as exc:
        assert "slot" in str(exc)
    else:
        raise AssertionError("no error")


def test_the_cli_reports_an_unreachable_controller() -> None:
    res = CliRunner().invoke(app, ["browse", f"logix://127.0.0.1:{_free_port()}", "--timeout", "2"])
    assert res.exit_code == 1
    assert "cannot list the tags" in res.output or "error" in res.output
