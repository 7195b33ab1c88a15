"""End to end on real servers: Modbus TCP and OPC UA -> connectors -> bus -> DuckDB historian.

Values set on the servers arrive in the historian with the right scaling, type, timestamp and quality; a
server restart is survived without restarting plantlink; a dead device marks its tags bad while the
others keep flowing; everything reported stored is there after a restart. The OPC UA device has no security
setting: it connects signed and encrypted, trusting the server's certificate at first use, recorded in the
data directory.
"""

from __future__ import annotations

import math
import stat
import struct
import time
from pathlib import Path
from typing import Any

import pytest
from asyncua import ua
from pymodbus.client import AsyncModbusTcpClient

from plantlink.historian import default_path, open_historian
from plantlink.model import parse_plant
from plantlink.runtime import Runtime
from plantlink.samples import Quality
from tests.plants import plant_yaml
from tests.servers import ModbusTestServer, OpcUaTestServer, der_of, make_cert
from tests.waiting import wait_for

PLANT = plant_yaml(
    site="windsor", timezone="America/Toronto", area="press",
    devices="""
    plc: {{protocol: modbus, host: 127.0.0.1, port: {mb}, poll: 200ms, timeout: 500ms,
           reconnect_min: 100ms, reconnect_max: 500ms}}
    dead: {{protocol: modbus, host: 127.0.0.1, port: {dead}, poll: 200ms, timeout: 300ms,
            reconnect_min: 100ms, reconnect_max: 500ms}}
    ua: {{protocol: opcua, endpoint: "opc.tcp://127.0.0.1:{ua}/test/", sampling_interval: 100ms,
          publishing_interval: 100ms, watchdog_interval: 300ms, reconnect_min: 200ms, reconnect_max: 1s}}
    """,
    machines="""
    - name: p1
      kind: press
      tags:
        - {{name: tonnage, unit: t, source: {{device: plc, address: 0, type: float32}}}}
        - {{name: temp, unit: degC,
           source: {{device: plc, address: 2, type: int16, scale: 0.1, offset: -20}}}}
        - name: pressure
          unit: bar
          scaling: {{raw_low: 0, raw_high: 27648, eng_low: 0, eng_high: 250}}
          source: {{device: plc, address: 3, type: uint16}}
        - {{name: strokes, type: int, source: {{device: plc, address: 4, type: uint32, word_order: little}}}}
        - {{name: running, type: bool, source: {{device: plc, table: coil, address: 5}}}}
    - name: old
      tags:
        - {{name: a, source: {{device: dead, address: 0}}}}
        - {{name: b, source: {{device: dead, address: 1}}}}
    - name: oven
      kind: oven
      tags:
        - {{name: zone1, unit: degC, source: {{device: ua, node: "ns=2;s=Zone1"}}}}
        - {{name: recipe, type: string, source: {{device: ua, node: "ns=2;s=Recipe"}}}}
    """)


async def write_plc(port: int, tonnage: float, temp_raw: int, pressure_raw: int, strokes: int, running: bool) -> None:
    client = AsyncModbusTcpClient("127.0.0.1", port=port)
    await client.connect()
    try:
        f_hi, f_lo = struct.unpack(">HH", struct.pack(">f", tonnage))
        (t_raw,) = struct.unpack(">H", struct.pack(">h", temp_raw))
        s_hi, s_lo = struct.unpack(">HH", struct.pack(">I", strokes))
        regs = [f_hi, f_lo, t_raw, pressure_raw, s_lo, s_hi]  # strokes word-swapped (little word order)
        r = await client.write_registers(0, regs, device_id=1)
        assert not r.isError()
        r = await client.write_coil(5, running, device_id=1)
        assert not r.isError()
    finally:
        client.close()


def latest(rt: Runtime, path: str) -> dict[str, Any]:
    assert rt.historian is not None
    row = rt.historian.latest([rt.tag_ids[path]]).to_pylist()
    return row[0] if row else {}


@pytest.fixture
async def servers(free_port, tmp_path_factory):  # type: ignore[no-untyped-def]
    mb = ModbusTestServer(free_port())
    cert = make_cert(tmp_path_factory.mktemp("ua-pki"), "server")
    ua_srv = OpcUaTestServer(free_port(), {"Zone1": (0.0, ua.VariantType.Double),
                                           "Recipe": ("", ua.VariantType.String)},
                             policies=[ua.SecurityPolicyType.Basic256Sha256_SignAndEncrypt], cert=cert)
    await mb.start()
    await ua_srv.start()
    yield mb, ua_srv
    await mb.stop()
    await ua_srv.stop()


def ts_us(row: dict[str, Any]) -> int:
    ts = row["ts"]
    return int(ts.timestamp() * 1e6) if hasattr(ts, "timestamp") else int(ts)


async def test_values_flow_survive_restart_and_are_durable(servers, free_port, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    mb, ua_srv = servers
    plant = parse_plant(PLANT.format(mb=mb.port, dead=free_port(), ua=ua_srv.port))
    await write_plc(mb.port, 812.5, 653, 13824, 70_000, True)
    await ua_srv.set("Zone1", 181.25)
    await ua_srv.set("Recipe", "BRKT-4471")
    t0 = time.time()
    rt = Runtime(plant, tmp_path, flush_interval=0.2)
    await rt.start()
    try:
        p = "windsor/press/l1/p1/"
        await wait_for(lambda: latest(rt, p + "running").get("value") == 1.0)
        await wait_for(lambda: latest(rt, "windsor/press/l1/oven/recipe").get("text") == "BRKT-4471")
        assert latest(rt, p + "tonnage")["value"] == 812.5
        assert latest(rt, p + "temp")["value"] == pytest.approx(653 * 0.1 - 20)
        assert latest(rt, p + "pressure")["value"] == pytest.approx(13824 / 27648 * 250)
        assert latest(rt, p + "strokes")["value"] == 70_000
        zone = await wait_for(lambda: latest(rt, "windsor/press/l1/oven/zone1") or None)
        assert zone["value"] == 181.25 and zone["quality"] == Quality.GOOD
        policy = rt.connectors["ua"]._client.security_policy  # type: ignore[attr-defined]
        assert policy.URI.endswith("#Basic256Sha256") and policy.Mode == ua.MessageSecurityMode.SignAndEncrypt
        record = tmp_path / "pki" / "trusted" / "ua.der"  # trusted at first use, kept in the data directory
        assert record.read_bytes() == der_of(ua_srv.cert[0]) and stat.S_IMODE(record.stat().st_mode) == 0o600
        assert t0 - 1 <= ts_us(zone) / 1e6 <= time.time() + 1
        for name in ("tonnage", "temp", "pressure", "strokes", "running"):
            row = latest(rt, p + name)
            assert row["quality"] == Quality.GOOD
            assert t0 - 1 <= ts_us(row) / 1e6 <= time.time() + 1

        # the dead device: its tags are bad, its health says why, the others keep flowing
        dead = await wait_for(lambda: latest(rt, "windsor/press/l1/old/a") or None)
        assert dead["quality"] == Quality.BAD and (dead["value"] is None or math.isnan(dead["value"]))
        health = rt.connectors["dead"].health
        assert health.state.value in ("reconnecting", "down") and health.last_error
        before = rt.connectors["plc"].health.samples
        await wait_for(lambda: rt.connectors["plc"].health.samples >= before + 4 * 5, 2.0,
                       "the live PLC keeps being polled (4 polls of 5 tags) beside the dead device")

        # Modbus server restart: tags go bad, then new values arrive without restarting plantlink
        await mb.stop()
        await wait_for(lambda: latest(rt, p + "tonnage").get("quality") == Quality.BAD)
        await mb.start()
        await write_plc(mb.port, 900.0, 700, 0, 70_001, False)
        await wait_for(lambda: latest(rt, p + "tonnage").get("value") == 900.0)
        assert latest(rt, p + "tonnage")["quality"] == Quality.GOOD
        assert rt.connectors["plc"].health.state.value == "connected"

        # OPC UA server restart: the connector re-subscribes
        await ua_srv.stop()
        await wait_for(lambda: latest(rt, "windsor/press/l1/oven/zone1").get("quality") == Quality.BAD)
        await ua_srv.start()
        await ua_srv.set("Zone1", 190.5)
        await wait_for(lambda: latest(rt, "windsor/press/l1/oven/zone1").get("value") == 190.5, timeout=15)
    finally:
        await rt.stop()

    status = rt.status()
    stored = status["samples_stored"]
    assert stored == status["historian_status"]["received"] > 0
    # durability: reopen the store; every sample reported stored is there
    h = open_historian("duckdb", path=default_path(tmp_path))
    try:
        ids = h.register_tags([])  # no new tags
        assert ids == {}
        total = 0
        for tag_id in rt.tag_ids.values():
            total += h.raw(tag_id, 0, int(time.time() * 1e6) + 10_000_000, limit=10_000_000).num_rows
        assert total == stored
    finally:
        h.close()
