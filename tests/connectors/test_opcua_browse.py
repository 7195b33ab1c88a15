"""browse() against a real asyncua server, and to_yaml() output loaded as a plant file and subscribed."""

from __future__ import annotations

import textwrap
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
import yaml
from asyncua import Server, ua

from plantlink.connectors.base import DeviceState
from plantlink.connectors.opcua import OpcUaConnector
from plantlink.connectors.opcua.browse import BrowsedVariable, browse, sanitize_name, to_yaml
from plantlink.errors import DeviceUnavailable
from plantlink.samples import Quality
from tests.conftest import _free_port
from tests.connectors.test_opcua_support import Collector, endpoint, plant_text, points_of
from tests.waiting import wait_for

module_loop = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def server() -> AsyncIterator[int]:
    """Line1/{Zone1,Zone2}/Temp (same browse name twice), a property, an array, odd names, numeric ids."""
    port = _free_port()
    srv = Server()
    await srv.init()
    srv.set_endpoint(endpoint(port))
    srv.set_security_policy([ua.SecurityPolicyType.NoSecurity])
    ns = await srv.register_namespace("urn:plantlink:browse")
    line = await srv.nodes.objects.add_folder(ua.NodeId("Line1", ns), "Line1")
    for zone in ("Zone1", "Zone2"):
        z = await line.add_object(ua.NodeId(f"Line1.{zone}", ns), zone)
        temp = await z.add_variable(ua.NodeId(f"Line1.{zone}.Temp", ns), "Temp", 20.0, ua.VariantType.Double)
        await temp.add_property(ua.NodeId(f"Line1.{zone}.Temp.EU", ns), "EngineeringUnit", "degC")
    motor = await line.add_object(ua.NodeId(5000, ns), "Motor 1")
    speed = await motor.add_variable(ua.NodeId(5001, ns), "Motor Speed (rpm)", 0, ua.VariantType.Int32)
    await speed.set_writable()
    await motor.add_variable(ua.NodeId(5002, ns), "Running", False, ua.VariantType.Boolean)
    await motor.add_variable(ua.NodeId(5003, ns), "_Recipe#", "R1", ua.VariantType.String)
    await motor.add_variable(ua.NodeId(5004, ns), "Curve", [1.0, 2.0], ua.VariantType.Double)
    await motor.add_variable(ua.NodeId(5005, ns), "Counter", 1, ua.VariantType.UInt16)
    deep = await (await (await line.add_folder(ns, "A")).add_folder(ns, "B")).add_folder(ns, "C")
    await deep.add_variable(ua.NodeId("Deep", ns), "Deep", 1.0, ua.VariantType.Float)
    await srv.start()
    yield port
    await srv.stop()


EXPECTED = {
    # node id: (path, data type, access)
    "ns=2;s=Line1.Zone1.Temp": ("Line1/Zone1/Temp", "Double", "read"),
    "ns=2;s=Line1.Zone2.Temp": ("Line1/Zone2/Temp", "Double", "read"),
    "ns=2;i=5001": ("Line1/Motor 1/Motor Speed (rpm)", "Int32", "read/write"),
    "ns=2;i=5002": ("Line1/Motor 1/Running", "Boolean", "read"),
    "ns=2;i=5003": ("Line1/Motor 1/_Recipe#", "String", "read"),
    "ns=2;i=5004": ("Line1/Motor 1/Curve", "Double", "read"),
    "ns=2;i=5005": ("Line1/Motor 1/Counter", "UInt16", "read"),
    "ns=2;s=Deep": ("Line1/A/B/C/Deep", "Float", "read"),
}


@module_loop
async def test_browse_lists_variables(server: int) -> None:
    found = await browse(endpoint(server))
    got = {v.node_id: (v.path, v.data_type, v.access) for v in found}
    assert got == EXPECTED  # properties and namespace 0 (the Server object) are not listed
    by_id = {v.node_id: v for v in found}
    assert by_id["ns=2;i=5004"].value_rank == 0 and by_id["ns=2;i=5004"].tag_type is None
    assert by_id["ns=2;i=5001"].tag_type == "int" and by_id["ns=2;i=5001"].writable
    assert by_id["ns=2;s=Deep"].tag_type == "float"


@module_loop
async def test_browse_root_and_depth(server: int) -> None:
    under_motor = await browse(endpoint(server), root="ns=2;i=5000")
    assert sorted(v.path for v in under_motor) == sorted(
        ["Motor Speed (rpm)", "Running", "_Recipe#", "Curve", "Counter"]
    )
    shallow = await browse(endpoint(server), max_depth=3)
    assert "ns=2;s=Deep" not in {v.node_id for v in shallow}
    assert "ns=2;s=Line1.Zone1.Temp" in {v.node_id for v in shallow}


@module_loop
async def test_browse_unreachable_server_is_a_clear_error() -> None:
    port = _free_port()
    with pytest.raises(DeviceUnavailable, match=f"127.0.0.1:{port}"):
        await browse(endpoint(port), timeout=1)


def test_sanitize_name() -> None:
    assert sanitize_name("Motor Speed (rpm)") == "Motor_Speed_rpm_"
    assert sanitize_name("_Recipe#") == "Recipe_"
    assert sanitize_name("Température") == "Temp_rature"
    assert sanitize_name("###") == "tag"
    assert len(sanitize_name("x" * 100)) == 64


@module_loop
async def test_to_yaml_pastes_into_a_plant_and_subscribes(server: int) -> None:
    found = await browse(endpoint(server))
    text = to_yaml(found, device="ua")
    assert "Line1/Motor 1/Curve" in text.split("# not supported")[1]  # the array is listed as a comment
    plant_yaml = plant_text(server, "").rstrip() + "\n" + textwrap.indent(text, " " * 18)
    config, points = points_of(plant_yaml)
    tags = {p.tag.name: p for p in points}
    assert set(tags) == {"Zone1.Temp", "Zone2.Temp", "Motor_Speed_rpm_", "Running", "Recipe_", "Counter", "Deep"}
    assert {n: (p.tag.type, p.tag.writable, p.source.node) for n, p in tags.items()} == {  # type: ignore[attr-defined]
        "Zone1.Temp": ("float", False, "ns=2;s=Line1.Zone1.Temp"),
        "Zone2.Temp": ("float", False, "ns=2;s=Line1.Zone2.Temp"),
        "Motor_Speed_rpm_": ("int", True, "ns=2;i=5001"),
        "Running": ("bool", False, "ns=2;i=5002"),
        "Recipe_": ("string", False, "ns=2;i=5003"),
        "Counter": ("int", False, "ns=2;i=5005"),
        "Deep": ("float", False, "ns=2;s=Deep"),
    }
    # The generated tags are usable as they are: every one subscribes and reads good.
    sink = Collector()
    conn = OpcUaConnector("ua", config, points, sink)
    await conn.start()
    try:
        await wait_for(lambda: conn.health.state == DeviceState.CONNECTED, what="connected")
        await wait_for(lambda: all(sink.rows(p.tag_id) for p in points), what="all browsed tags")
        assert all(sink.last(p.tag_id)[2] == Quality.GOOD for p in points)
        assert sink.last(tags["Recipe_"].tag_id)[1] == "R1"
    finally:
        await conn.stop()


def test_to_yaml_names_stay_unique_and_valid() -> None:
    def var(name: str, path: str, dtype: str = "Double") -> BrowsedVariable:
        return BrowsedVariable(node_id=f"ns=2;s={path}", path=path, browse_name=name, data_type=dtype, access="read")

    vs = [var("T", "a/T"), var("T", "a/T"), var("T", "b/T"), var("Ok", "Ok"), var("Date", "Date", "DateTime")]
    tags: list[Any] = yaml.safe_load(to_yaml(vs, "dev"))
    names = [t["name"] for t in tags]
    assert names == ["a.T", "a.T_2", "b.T", "Ok"]
    assert all(t["source"]["device"] == "dev" for t in tags)
    assert to_yaml([], "dev").strip() == "[]"
