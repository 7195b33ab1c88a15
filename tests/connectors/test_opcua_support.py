"""Shared helpers of the OPC UA tests: a real asyncua server, a plant file, a collecting sink (no tests here)."""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
from asyncua import Node, Server, ua

from plantlink.connectors.base import DeviceState, Point
from plantlink.connectors.opcua import OpcUaConnector
from plantlink.model import parse_plant
from plantlink.samples import values_of
from tests.servers import secure
from tests.waiting import wait_for

NS_URI = "urn:plantlink:test"

for _name in ("asyncua", "asyncua.server", "asyncua.client"):
    logging.getLogger(_name).setLevel(logging.ERROR)


NONE_ONLY = (ua.SecurityPolicyType.NoSecurity,)


async def make_server(port: int, policies: Sequence[ua.SecurityPolicyType] = NONE_ONLY,
                      cert: tuple[Path, Path] | None = None) -> tuple[Server, dict[str, Node]]:
    """A started server with folder Plant/Oven holding variables of the four tag types (string node ids).

    It offers ``policies`` (default: None only) and presents ``cert`` (certificate, key files) when given.
    """
    server = Server()
    await server.init()
    server.set_endpoint(f"opc.tcp://127.0.0.1:{port}/test/")
    await secure(server, policies, cert)
    ns = await server.register_namespace(NS_URI)
    plant = await server.nodes.objects.add_folder(ua.NodeId("Plant", ns), "Plant")
    oven = await plant.add_object(ua.NodeId("Plant.Oven", ns), "Oven")
    specs: list[tuple[str, Any, ua.VariantType, bool]] = [
        ("Temp", 20.0, ua.VariantType.Double, False),
        ("Count", 7, ua.VariantType.Int32, False),
        ("Running", True, ua.VariantType.Boolean, False),
        ("Recipe", "A", ua.VariantType.String, False),
        ("Pressure", 0.0, ua.VariantType.Double, False),
        ("Level", 0.0, ua.VariantType.Double, False),
        ("Setpoint", 0.0, ua.VariantType.Double, True),
        ("Speed", 0, ua.VariantType.Int32, True),
        ("Mode", "auto", ua.VariantType.String, True),
    ]
    nodes: dict[str, Node] = {}
    for name, value, vtype, writable in specs:
        node = await oven.add_variable(ua.NodeId(f"Plant.Oven.{name}", ns), name, value, varianttype=vtype)
        if writable:
            await node.set_writable()
        nodes[name] = node
    await server.start()
    return server, nodes


def endpoint(port: int) -> str:
    return f"opc.tcp://127.0.0.1:{port}/test/"


def plant_text(port: int, tags: str, device_extra: str = "", security: str | None = "none") -> str:
    """A plant file with one OPC UA device ``ua`` and machine ``oven`` holding ``tags`` (YAML list items).

    ``security: none`` is written unless ``security`` is None (the servers of the data-flow tests offer
    None only; the security tests set their own keys in ``device_extra``).
    """
    body = "\n".join("                  " + line for line in tags.strip("\n").splitlines())
    if security is not None:
        device_extra = f"    security: {security}\n{device_extra}"
    return f"""
enterprise: Test
devices:
  ua:
    protocol: opcua
    endpoint: "{endpoint(port)}"
    publishing_interval: 50ms
    sampling_interval: 0ms
    timeout: 2s
    reconnect_min: 100ms
    reconnect_max: 400ms
    watchdog_interval: 200ms
    keepalive: 1s
{device_extra}
sites:
  - name: s
    timezone: UTC
    areas:
      - name: a
        lines:
          - name: l
            machines:
              - name: oven
                tags:
{body}
"""


def points_of(text: str) -> tuple[Any, list[Point]]:
    plant = parse_plant(text)
    points = [Point(tag_id=i, path=t.path, tag=t.tag, source=t.source) for i, t in enumerate(plant.tags)]
    return plant.devices["ua"].config, points


class Collector:
    """A sink keeping every batch; ``rows(tag_id)`` lists (ts_us, value, quality) of one tag in arrival order."""

    def __init__(self) -> None:
        self.batches: list[pa.RecordBatch] = []

    def __call__(self, batch: pa.RecordBatch) -> None:
        self.batches.append(batch)

    def rows(self, tag_id: int) -> list[tuple[int, Any, int]]:
        out = []
        for b in self.batches:
            ids = b.column("tag_id").to_pylist()
            ts = b.column("ts").cast(pa.int64()).to_pylist()
            vals = values_of(b)
            qs = b.column("quality").to_pylist()
            out.extend((t, v, q) for i, t, v, q in zip(ids, ts, vals, qs, strict=True) if i == tag_id)
        return out

    def values(self, tag_id: int) -> list[Any]:
        return [v for _, v, _ in self.rows(tag_id)]

    def last(self, tag_id: int) -> tuple[int, Any, int] | None:
        rows = self.rows(tag_id)
        return rows[-1] if rows else None


def same(a: Any, b: Any) -> bool:
    """Equality that treats NaN as equal to NaN."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return bool(a == b)


async def start_connector(text: str, state: DeviceState = DeviceState.CONNECTED, data_dir: Path | None = None,
                          timeout: float = 20) -> tuple[OpcUaConnector, Collector]:
    """A started connector for device ``ua`` of plant ``text`` (``data_dir`` as the runtime sets it), once in
    ``state``; stopped again if it does not get there."""
    config, points = points_of(text)
    sink = Collector()
    conn = OpcUaConnector("ua", config, points, sink)
    conn.data_dir = data_dir
    await conn.start()
    try:
        await wait_for(lambda: conn.health.state == state, timeout=timeout, what=state.value)
    except BaseException:
        await conn.stop()
        raise
    return conn, sink
