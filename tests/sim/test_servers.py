"""The simulator's real servers, read and written with plain pymodbus, asyncua, snap7 and pylogix clients."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import socket
import struct
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import snap7
from asyncua import Client, ua
from asyncua.crypto.security_policies import SecurityPolicyBasic256Sha256
from asyncua.ua.uaerrors import UaStatusCodeError
from pylogix import PLC
from pymodbus.client import AsyncModbusTcpClient

from plantlink.connectors.logix.config import LogixPoint
from plantlink.connectors.modbus.config import ModbusPoint
from plantlink.connectors.opcua.config import OpcUaPoint
from plantlink.connectors.s7.config import S7Point
from plantlink.errors import PlantlinkError
from plantlink.model import Plant, TagInfo, load_plant, parse_plant
from plantlink.sim import Simulator, plant_with_ports
from plantlink.sim.machine import State

DEMO = Path(__file__).parents[2] / "examples" / "demo-plant.yaml"
PRESS = "windsor/stamping/press-line-1/press1"
CONV1 = "windsor/stamping/press-line-1/conveyor1"
CONV2 = "windsor/body-paint/body-line-1/conveyor2"
OVEN = "windsor/body-paint/body-line-1/oven1"
WELDER = "windsor/body-paint/body-line-1/welder1"
CNC2 = "detroit/machining/cnc-cell-2/cnc2"
FMT = {"int16": "h", "uint16": "H", "int32": "i", "uint32": "I", "int64": "q", "float32": "f", "float64": "d"}
S7_FMT = {"INT": ">h", "UINT": ">H", "DINT": ">i", "UDINT": ">I", "REAL": ">f", "LREAL": ">d"}


@pytest.fixture
def plant() -> Plant:
    return load_plant(DEMO)


@pytest.fixture
def ports(plant: Plant, free_port: Callable[[], int]) -> dict[str, int]:
    return {dev: free_port() for dev in plant.devices}


@contextlib.asynccontextmanager
async def ua_client(endpoint: str, pki: Path) -> AsyncIterator[Client]:
    """A plain asyncua client on the simulator's only endpoint: Basic256Sha256, SignAndEncrypt."""
    client = Client(endpoint)
    client.application_uri = "urn:plantlink:test:client"
    cert, key = await client.setup_self_signed_certificate(pki / "client-key.pem", pki / "client.der")
    await client.set_security(SecurityPolicyBasic256Sha256, cert, key, mode=ua.MessageSecurityMode.SignAndEncrypt)
    async with client:
        yield client


def decode(p: ModbusPoint, tag: TagInfo, regs: list[int]) -> Any:
    """Decode registers as a client would, written out with struct (independent of plantlink.sim.codec)."""
    words = [r.to_bytes(2, "big") for r in regs]
    if p.byte_order == "little":
        words = [w[::-1] for w in words]
    if p.word_order == "little":
        words.reverse()
    data = b"".join(words)
    if p.type == "string":
        return data.rstrip(b"\0").decode()
    if p.type == "bool":
        value = int.from_bytes(data, "big")
        return bool(value >> p.bit & 1) if p.bit is not None else value != 0
    eng = struct.unpack(">" + FMT[p.type], data)[0] * p.scale + p.offset
    s = tag.tag.scaling
    if s is not None:
        eng = s.eng_low + (eng - s.raw_low) * (s.eng_high - s.eng_low) / (s.raw_high - s.raw_low)
    return eng


def tolerance(p: ModbusPoint, tag: TagInfo, expected: float) -> float:
    """Half a raw step in engineering units for integer types; float32 rounding for float32."""
    if p.type == "float32":
        return abs(expected) * 1e-6 + 1e-9
    if p.type == "float64":
        return 1e-9
    s = tag.tag.scaling
    gain = abs((s.eng_high - s.eng_low) / (s.raw_high - s.raw_low)) if s else 1.0
    return abs(p.scale) * gain / 2 + 1e-9


def scaled(tag: TagInfo, raw: float) -> float:
    """A raw value through the tag's ``scaling`` (the identity without one)."""
    s = tag.tag.scaling
    if s is None:
        return raw
    return s.eng_low + (raw - s.raw_low) * (s.eng_high - s.eng_low) / (s.raw_high - s.raw_low)


def decode_s7(p: S7Point, tag: TagInfo, area: bytes) -> Any:
    """The value of ``p`` in the bytes of its DB, written out with struct (independent of plantlink.sim.s7server)."""
    loc = p.location
    if loc.type == "BOOL":
        return bool(area[loc.start] >> (loc.bit or 0) & 1)
    if loc.type == "STRING":  # S7 string: maximum length, actual length, characters
        assert area[loc.start] == loc.length
        return area[loc.start + 2:loc.start + 2 + area[loc.start + 1]].decode("latin-1")
    (raw,) = struct.unpack_from(S7_FMT[loc.type], area, loc.start)
    return scaled(tag, float(raw))


def s7_tolerance(p: S7Point, tag: TagInfo, expected: float) -> float:
    """float32 rounding for a REAL, half a raw step in engineering units for an integer."""
    if p.location.type == "REAL":
        return abs(expected) * 1e-6 + 1e-9
    s = tag.tag.scaling
    return (abs((s.eng_high - s.eng_low) / (s.raw_high - s.raw_low)) if s else 1.0) / 2 + 1e-9


def read_s7(port: int, tags: list[TagInfo]) -> dict[str, Any]:
    """Tag path -> value read with a plain snap7 client, one read of each DB."""
    client = snap7.Client()
    client.connect("127.0.0.1", 0, 1, port)
    try:
        points = [(t, t.source) for t in tags if isinstance(t.source, S7Point)]
        dbs = {p.location.db: max(q.location.end for _, q in points if q.location.db == p.location.db)
               for _, p in points}
        areas = {db: bytes(client.db_read(db, 0, size)) for db, size in dbs.items()}
        return {t.path: decode_s7(p, t, areas[p.location.db]) for t, p in points}
    finally:
        client.disconnect()


def s7_bytes(port: int, reads: list[tuple[int, int, int]]) -> list[bytes]:
    """The bytes of each (db, start, size) read with a plain snap7 client."""
    client = snap7.Client()
    client.connect("127.0.0.1", 0, 1, port)
    try:
        return [bytes(client.db_read(db, start, size)) for db, start, size in reads]
    finally:
        client.disconnect()


def s7_write(port: int, db: int, start: int, data: bytes) -> None:
    client = snap7.Client()
    client.connect("127.0.0.1", 0, 1, port)
    try:
        client.db_write(db, start, bytearray(data))
    finally:
        client.disconnect()


def logix_write(port: int, tag: str, value: Any) -> None:
    with PLC("127.0.0.1") as plc:
        plc.Port = port
        r = plc.Write(tag, value)
        assert r.Status == "Success", (tag, r.Status)


def read_logix(port: int, tags: list[TagInfo]) -> dict[str, Any]:
    """Tag path -> value read by name with a plain pylogix client (engineering units through the scaling)."""
    with PLC("127.0.0.1") as plc:
        plc.Port = port
        out: dict[str, Any] = {}
        for t in tags:
            assert isinstance(t.source, LogixPoint)
            r = plc.Read(t.source.tag)
            assert r.Status == "Success", (t.path, r.Status)
            out[t.path] = r.Value if isinstance(r.Value, str | bool) else scaled(t, float(r.Value))
        return out


async def read_modbus(client: AsyncModbusTcpClient, p: ModbusPoint) -> list[int] | list[bool]:
    unit = p.unit_id or 1
    if p.table == "coil":
        rr = await client.read_coils(p.address, count=1, device_id=unit)
    elif p.table == "discrete":
        rr = await client.read_discrete_inputs(p.address, count=1, device_id=unit)
    elif p.table == "input":
        rr = await client.read_input_registers(p.address, count=p.count, device_id=unit)
    else:
        rr = await client.read_holding_registers(p.address, count=p.count, device_id=unit)
    assert not rr.isError(), (p, rr)
    return rr.bits[:1] if p.table in ("coil", "discrete") else rr.registers


async def test_every_tag_of_the_demo_plant_is_served_with_its_value(plant: Plant, ports: dict[str, int],
                                                                    tmp_path: Path) -> None:
    sim = Simulator(plant, seed=3, speed=0, ports=ports)
    await sim.start()
    try:
        await sim.advance(30)
        snap = sim.snapshot()
        assert set(snap) == {t.path for t in plant.tags}
        clients = {"sim-modbus": AsyncModbusTcpClient("127.0.0.1", port=ports["sim-modbus"])}
        for c in clients.values():
            assert await c.connect()
        checked = 0
        for t in plant.tags:
            if t.protocol != "modbus":
                continue
            p = t.source
            assert isinstance(p, ModbusPoint)
            raw = await read_modbus(clients[t.device], p)
            got = bool(raw[0]) if p.table in ("coil", "discrete") else decode(p, t, list(raw))  # type: ignore[arg-type]
            want = snap[t.path]
            if isinstance(want, str | bool):
                assert got == want, t.path
            else:
                assert abs(got - want) <= tolerance(p, t, float(want)), (t.path, got, want)
            checked += 1
        for c in clients.values():
            c.close()
        async with ua_client(sim.endpoints()["sim-opcua"], tmp_path) as client:
            tags = [t for t in plant.tags if t.protocol == "opcua"]
            nodes = [client.get_node(t.source.node) for t in tags if isinstance(t.source, OpcUaPoint)]
            values = await client.read_values(nodes)
            for t, node, got in zip(tags, nodes, values, strict=True):
                want = snap[t.path]
                vtype = await node.read_data_type_as_variant_type()
                if vtype == ua.VariantType.Float:
                    want = struct.unpack("<f", struct.pack("<f", want))[0]
                assert got == want, (t.path, got, want)
                checked += 1
        s7_tags = [t for t in plant.tags if t.protocol == "s7"]
        got_s7 = await asyncio.to_thread(read_s7, ports["sim-s7-detroit"], s7_tags)
        for t in s7_tags:
            assert isinstance(t.source, S7Point)
            want = snap[t.path]
            if isinstance(want, str | bool):
                assert got_s7[t.path] == want, t.path
            else:
                assert abs(got_s7[t.path] - want) <= s7_tolerance(t.source, t, float(want)), (t.path, got_s7[t.path])
            checked += 1
        logix_tags = [t for t in plant.tags if t.protocol == "logix"]
        got_logix = await asyncio.to_thread(read_logix, ports["sim-logix"], logix_tags)  # the server is in this loop
        for t in logix_tags:
            assert isinstance(t.source, LogixPoint)
            want = snap[t.path]
            if isinstance(want, str | bool) or t.source.type == "DINT":
                assert got_logix[t.path] == want, t.path
            else:  # REAL: single precision
                assert got_logix[t.path] == pytest.approx(float(want), rel=1e-6), t.path
            checked += 1
        assert len(s7_tags) == 12 and len(logix_tags) == 7
        assert checked == len(plant.tags) == 96
        # a few spot checks of the wire format, by hand
        async with AsyncModbusTcpClient("127.0.0.1", port=ports["sim-modbus"]) as c:
            rr = await c.read_input_registers(102, count=4, device_id=1)
            cycles, good = snap[f"{PRESS}/cycle_count"], snap[f"{PRESS}/good_count"]
            assert rr.registers[:2] == [int(cycles) >> 16, int(cycles) & 0xFFFF]  # big word order
            assert rr.registers[2:] == [int(good) & 0xFFFF, int(good) >> 16]  # little word order
            rr = await c.read_input_registers(110, count=1, device_id=1)
            assert rr.registers == [round(float(snap[f"{PRESS}/spm"]) * 10)]
        cycles_b, energy_b = await asyncio.to_thread(s7_bytes, ports["sim-s7-detroit"], [(10, 4, 4), (10, 28, 4)])
        assert cycles_b == int(snap[f"{CNC2}/cycle_count"]).to_bytes(4, "big")  # UDINT, big-endian as the CPU
        assert int.from_bytes(energy_b, "big") == round(float(snap[f"{CNC2}/energy_kwh"]) * 10)  # 0.1 kWh
    finally:
        await sim.stop()


async def test_writes_over_every_protocol_change_the_simulation(plant: Plant, ports: dict[str, int],
                                                                tmp_path: Path) -> None:
    sim = Simulator(plant, seed=5, speed=0, ports=ports)
    for m in sim.sim.machines.values():
        m.mtbf_s = float("inf")
    await sim.start()
    try:
        await sim.advance(5)
        async with AsyncModbusTcpClient("127.0.0.1", port=ports["sim-modbus"]) as c:
            assert not (await c.write_register(100, 220, device_id=1)).isError()  # spm_setpoint 22.0
            assert not (await c.write_coil(200, False, device_id=1)).isError()  # stop conveyor1
            refused = await c.write_register(101, 7, device_id=1)  # no writable point there
            assert refused.isError() and refused.exception_code == 2
            await sim.advance(1)
            snap = sim.snapshot()
            assert snap[f"{PRESS}/spm_setpoint"] == pytest.approx(22.0)
            assert sim.sim.machine(PRESS).cycle_time() == pytest.approx(60.0 / 22.0)
            assert snap[f"{CONV1}/state"] == State.PLANNED_STOP
            assert snap[f"{PRESS}/state"] == State.BLOCKED  # the press cannot unload any more
            assert (await c.read_holding_registers(100, count=1, device_id=1)).registers == [220]
            assert (await c.read_input_registers(200, count=1, device_id=1)).registers == [State.PLANNED_STOP]
        # the Logix controller: the conveyor's UDT member, written by name (the server runs in this loop)
        await asyncio.to_thread(logix_write, ports["sim-logix"], "Conv2.SpeedSetpoint", 18.5)
        await asyncio.to_thread(logix_write, ports["sim-logix"], "Program:BodyLine.Conv2Run", False)
        await sim.publish()  # the controller's and the CPU's writes are found at a refresh, applied at the next step
        await sim.advance(1)
        snap = sim.snapshot()
        assert snap[f"{CONV2}/speed_setpoint"] == pytest.approx(18.5)
        assert snap[f"{CONV2}/state"] == State.PLANNED_STOP
        assert snap[f"{WELDER}/state"] == State.BLOCKED  # the transfer conveyor stopped: the welder cannot unload
        assert (await asyncio.to_thread(read_logix, ports["sim-logix"],
                                        [sim.plant.tag(f"{CONV2}/state")]))[f"{CONV2}/state"] == State.PLANNED_STOP
        # the S7 CPU: bit 0 of DB11's command byte cleared (the whole byte written, as an HMI does)
        (cmd,) = await asyncio.to_thread(s7_bytes, ports["sim-s7-detroit"], [(11, 0, 1)])
        assert cmd[0] & 1 == 1
        await asyncio.to_thread(s7_write, ports["sim-s7-detroit"], 11, 0, bytes([cmd[0] & ~1 & 0xFF]))
        await sim.publish()
        await sim.advance(1)
        assert sim.snapshot()[f"{CNC2}/state"] == State.PLANNED_STOP
        (state,) = await asyncio.to_thread(s7_bytes, ports["sim-s7-detroit"], [(10, 0, 2)])
        assert struct.unpack(">h", state) == (State.PLANNED_STOP,)
        async with ua_client(sim.endpoints()["sim-opcua"], tmp_path) as client:
            sp = client.get_node("ns=2;s=Windsor.Paint.Oven1.Zone2.Setpoint")
            temp = client.get_node("ns=2;s=Windsor.Paint.Oven1.Zone2.Temperature")
            before = await temp.read_value()
            await sp.write_value(ua.DataValue(ua.Variant(235.0, ua.VariantType.Double)))
            run = client.get_node("ns=2;s=Windsor.Body.Welder1.RunCommand")
            await run.write_value(ua.DataValue(ua.Variant(False, ua.VariantType.Boolean)))
            await sim.advance(600)  # 60 s at dt 0.1
            assert sim.snapshot()[f"{OVEN}/zone2_setpoint"] == 235.0
            assert await sp.read_value() == 235.0
            assert await temp.read_value() > before + 5.0  # heating toward the new setpoint
            assert await client.get_node("ns=2;s=Windsor.Body.Welder1.State").read_value() == State.PLANNED_STOP
            with pytest.raises(UaStatusCodeError):  # read-only tags are not writable
                await temp.write_value(ua.DataValue(ua.Variant(1.0, ua.VariantType.Double)))
    finally:
        await sim.stop()


async def test_opc_ua_offers_only_sign_and_encrypt_with_the_certificate_the_demo_pins(
        plant: Plant, ports: dict[str, int]) -> None:
    sim = Simulator(plant, seed=1, speed=0, ports=ports)
    await sim.start()
    try:
        endpoints = await Client(sim.endpoints()["sim-opcua"]).connect_and_get_server_endpoints()
    finally:
        await sim.stop()
    assert {(e.SecurityPolicyUri, e.SecurityMode) for e in endpoints} == {
        (SecurityPolicyBasic256Sha256.URI, ua.MessageSecurityMode.SignAndEncrypt)}
    digest = hashlib.sha256(endpoints[0].ServerCertificate).digest()
    pin = plant.devices["sim-opcua"].config.server_certificate  # type: ignore[attr-defined]
    assert pin == "sha256:" + ":".join(f"{b:02X}" for b in digest)


async def test_running_clock_and_ports_rewritten_for_clients(ports: dict[str, int]) -> None:
    text = DEMO.read_text()
    rewritten = plant_with_ports(text, ports)
    plant = parse_plant(rewritten, "rewritten.yaml")
    assert plant.devices["sim-modbus"].config.port == ports["sim-modbus"]  # type: ignore[attr-defined]
    assert f":{ports['sim-opcua']}/plantlink/sim/" in plant.devices["sim-opcua"].config.endpoint  # type: ignore[attr-defined]
    assert rewritten.count("\n") == text.count("\n") and "# Great Lakes Components" in rewritten
    sim = Simulator(plant, seed=1, speed=600)  # ports come from the rewritten model
    assert sim.dt == 10.0
    await sim.start()
    try:
        assert sim.ports() == ports
        async with AsyncModbusTcpClient("127.0.0.1", port=ports["sim-modbus"]) as c:
            first = (await c.read_input_registers(117, count=4, device_id=1)).registers
            await asyncio.sleep(0.6)
            later = (await c.read_input_registers(117, count=4, device_id=1)).registers
        energy = [struct.unpack(">d", struct.pack(">4H", *r))[0] for r in (first, later)]
        assert energy[1] > energy[0]  # the press's energy meter integrates on simulated time
        assert sim.sim_time >= 200.0  # 0.6 s wall at 600x, give or take the ticks
    finally:
        await sim.stop()


async def test_port_in_use_is_a_clear_error(plant: Plant, ports: dict[str, int]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", ports["sim-modbus"]))
        taken.listen()
        sim = Simulator(plant, speed=0, ports=ports)
        with pytest.raises(PlantlinkError, match="sim-modbus"):
            await sim.start()
    assert sim._started == []


def test_plant_with_ports_handles_block_flow_and_missing_port() -> None:
    text = (
        "devices:\n"
        "  a: {protocol: modbus, host: 127.0.0.1}\n"
        "  b:\n"
        "    protocol: modbus\n"
        "    host: 10.0.0.1   # the gateway\n"
        "  c: {protocol: opcua, endpoint: 'opc.tcp://localhost:4840/x/'}\n"
    )
    out = plant_with_ports(text, {"a": 1502, "b": 1503, "c": 1504})
    assert "a: {protocol: modbus, host: 127.0.0.1, port: 1502}" in out
    assert "    host: 10.0.0.1   # the gateway\n    port: 1503\n" in out
    assert "endpoint: 'opc.tcp://localhost:1504/x/'" in out
    with pytest.raises(PlantlinkError, match="zzz"):
        plant_with_ports(text, {"zzz": 1})


def test_a_missing_protocol_package_names_its_extra(plant: Plant, monkeypatch: pytest.MonkeyPatch) -> None:
    """`plantlink sim` of a plant with an S7 device, without python-snap7: the extra to install, before any port."""
    monkeypatch.setitem(sys.modules, "snap7", None)  # `import snap7` now raises ImportError
    with pytest.raises(PlantlinkError, match=r"needs python-snap7 \(pip install 'plantlink\[s7\]'\)"):
        Simulator(plant, speed=0)
