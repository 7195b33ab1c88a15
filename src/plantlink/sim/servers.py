"""Real protocol servers for the simulated plant: a Modbus TCP server (pymodbus) and an OPC UA server (asyncua).

Each server holds the tags of one device of the plant model at the sources the model declares. ``refresh``
copies the simulation's current values into the server; a client's write to a writable tag is handed to
``sink(tag_path, value)`` (the simulation applies it at its next step). Writes to read-only Modbus
addresses are refused with exception 2 (illegal data address); OPC UA nodes of read-only tags are not
writable.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import logging
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from asyncua import Server, ua
from asyncua.common.callback import CallbackType, ServerItemCallback
from pymodbus.constants import ExcCodes
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from plantlink.connectors.modbus.config import ModbusDevice, ModbusPoint
from plantlink.connectors.opcua.config import OpcUaDevice, OpcUaPoint
from plantlink.errors import PlantlinkError
from plantlink.sim import codec
from plantlink.sim.machine import Value
from plantlink.sim.plant import Binding

log = logging.getLogger("plantlink.sim")

WriteSink = Callable[[str, Value], None]
#: The simulator's OPC UA server certificate and key: published on purpose (see pki/README.md).
SIM_PKI = Path(__file__).resolve().parent / "pki"
SIM_APP_URI = "urn:plantlink:sim:server"  # not the namespace URI urn:plantlink:sim
_starting_sim: contextvars.ContextVar[bool] = contextvars.ContextVar("plantlink_sim_starting", default=False)


class _NoHostNameWarning(logging.Filter):
    """asyncua warns at start that a server certificate does not name this host; the simulator's published
    certificate names only localhost and 127.0.0.1 on purpose. Dropped only inside a simulator's start."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (_starting_sim.get() and record.getMessage().startswith("certificate does not contain the host"))


_HOSTNAME_FILTER = _NoHostNameWarning()
TABLES = ("coil", "discrete", "holding", "input")
FC_TABLE = {1: "coil", 5: "coil", 15: "coil", 2: "discrete", 4: "input",
            3: "holding", 6: "holding", 16: "holding", 22: "holding", 23: "holding"}


@dataclass(frozen=True)
class _Slot:
    binding: Binding
    point: ModbusPoint
    start: int  # index of the point's first register (or bit) in its table's image

    @property
    def stop(self) -> int:
        return self.start + self.point.count


class _Table:
    """The image of one table of one unit: registers (holding, input) or bits (coil, discrete)."""

    def __init__(self, name: str, members: list[tuple[Binding, ModbusPoint]]):
        self.name = name
        self.bits = name in ("coil", "discrete")
        lo = min((p.address for _, p in members), default=0)
        hi = max((p.address + p.count for _, p in members), default=1)
        self.base = lo // 16 * 16 if self.bits else lo
        size = hi - self.base
        self.size = -(-size // 16) * 16 if self.bits else size
        self.image: list[int] = [0] * self.size
        self.packed: list[int] = [0] * (self.size // 16)
        self.slots = [_Slot(b, p, p.address - self.base) for b, p in members]
        self.writable = [False] * self.size
        for s in self.slots:
            if s.binding.signal.writable and s.binding.tag.tag.writable:
                self.writable[s.start:s.stop] = [True] * s.point.count
        self.used = bool(members)

    def simdata(self) -> SimData:
        if self.bits:
            return SimData(self.base, values=[False] * self.size, datatype=DataType.BITS)
        if not self.used:
            return SimData(0, datatype=DataType.INVALID)
        return SimData(self.base, values=[0] * self.size, datatype=DataType.REGISTERS)

    def refresh(self) -> None:
        img = self.image
        for s in self.slots:
            v = s.binding.value()
            if self.bits:
                img[s.start] = 1 if v else 0
            elif s.point.type == "bool" and s.point.bit is not None:
                mask = 1 << codec.wire_bit(s.point)
                img[s.start] = (img[s.start] | mask) if v else (img[s.start] & ~mask)
            else:
                img[s.start:s.stop] = codec.encode(s.point, s.binding.tag.tag, v)
        if self.bits:
            self._pack()

    def _pack(self) -> None:
        img = self.image
        self.packed = [sum(img[i + j] << j for j in range(16)) for i in range(0, self.size, 16)]

    def read_into(self, registers: list[int]) -> None:
        src = self.packed if self.bits else self.image
        registers[:len(src)] = src

    def write(self, address: int, values: Sequence[int | bool]) -> ExcCodes | list[_Slot]:
        """Apply a client's write; the writable slots it touched, or an exception code."""
        first = address - self.base
        last = first + len(values)
        if first < 0 or last > self.size or not all(self.writable[first:last]):
            return ExcCodes.ILLEGAL_ADDRESS
        self.image[first:last] = [int(v) for v in values]
        if self.bits:
            self._pack()
        return [s for s in self.slots if s.start < last and s.stop > first and self.writable[s.start]]

    def decode(self, slot: _Slot) -> Value:
        if self.bits:
            return bool(self.image[slot.start])
        return codec.decode(slot.point, slot.binding.tag.tag, self.image[slot.start:slot.stop])


class ModbusSimServer:
    """A Modbus TCP server holding the tags of one modbus device (one SimDevice per unit id)."""

    def __init__(self, device_id: str, config: ModbusDevice, bindings: Sequence[Binding], sink: WriteSink,
                 host: str = "127.0.0.1", port: int | None = None):
        self.device_id, self.sink, self.host = device_id, sink, host
        self.port = config.port if port is None else port
        units: dict[int, dict[str, list[tuple[Binding, ModbusPoint]]]] = defaultdict(lambda: defaultdict(list))
        for b in bindings:
            p = cast(ModbusPoint, b.tag.source)
            codec.check_point(p, b.tag.tag)
            units[config.unit_id if p.unit_id is None else p.unit_id][p.table].append((b, p))
        self.units = {u: {t: _Table(t, tabs.get(t, [])) for t in TABLES} for u, tabs in units.items()}
        self.server: ModbusTcpServer | None = None

    def _device(self, unit: int) -> SimDevice:
        tables = self.units[unit]
        data = tuple([tables[t].simdata()] for t in TABLES)

        async def action(fc: int, start: int, address: int, count: int, registers: list[int],
                         values: list[int] | list[bool] | None) -> ExcCodes | None:
            return self._action(unit, fc, address, registers, values)

        return SimDevice(id=unit, simdata=data, action=action)  # type: ignore[arg-type]

    def _action(self, unit: int, fc: int, address: int, registers: list[int],
                values: list[int] | list[bool] | None) -> ExcCodes | None:
        table = self.units[unit][FC_TABLE.get(fc, "holding")]
        if values is None:
            table.read_into(registers)
            return None
        touched = table.write(address, values)
        if isinstance(touched, ExcCodes):
            return touched
        for slot in touched:
            try:
                self.sink(slot.binding.path, table.decode(slot))
            except (PlantlinkError, KeyError, ValueError) as exc:
                log.warning("modbus write to %s refused: %s", slot.binding.path, exc)
        return None

    def refresh(self) -> None:
        for tables in self.units.values():
            for t in tables.values():
                if t.used:
                    t.refresh()

    async def start(self) -> None:
        self.refresh()
        devices = [self._device(u) for u in sorted(self.units)]
        self.server = ModbusTcpServer(devices, address=(self.host, self.port))
        try:
            await self.server.serve_forever(background=True)
        except RuntimeError as exc:
            raise PlantlinkError(f"device {self.device_id}: cannot listen on {self.host}:{self.port} "
                                 f"(port in use? override it with ports={{...}})") from exc
        transport: Any = self.server.transport
        sockets = getattr(transport, "sockets", None)
        if sockets:
            self.port = int(sockets[0].getsockname()[1])

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.shutdown()
            self.server = None

    @property
    def endpoint(self) -> str:
        return f"modbus://{self.host}:{self.port}"


class OpcUaSimServer:
    """An OPC UA server holding the tags of one opcua device: Basic256Sha256 with SignAndEncrypt only, with the
    simulator's published certificate (``SIM_PKI``), any client certificate accepted, anonymous sessions."""

    def __init__(self, device_id: str, config: OpcUaDevice, bindings: Sequence[Binding], sink: WriteSink,
                 host: str = "127.0.0.1", port: int | None = None):
        self.device_id, self.sink, self.host = device_id, sink, host
        url = config.endpoint[len("opc.tcp://"):]
        hostport, _, path = url.partition("/")
        self.path = "/" + path
        default_port = int(hostport.rsplit(":", 1)[1]) if ":" in hostport else 4840
        self.port = default_port if port is None else port
        self.bindings = list(bindings)
        self.nodes = {b.path: ua.NodeId.from_string(cast(OpcUaPoint, b.tag.source).node) for b in self.bindings}
        self.writable = {self.nodes[b.path]: b.path for b in self.bindings
                         if b.signal.writable and b.tag.tag.writable}
        self.last: dict[str, Value] = {}
        self.server: Server | None = None

    @property
    def endpoint(self) -> str:
        return f"opc.tcp://{self.host}:{self.port}{self.path}"

    async def start(self) -> None:
        server = Server()
        await server.init()
        server.set_endpoint(self.endpoint)
        server.set_server_name(f"plantlink simulator ({self.device_id})")
        await server.set_application_uri(SIM_APP_URI)
        server.set_security_policy([ua.SecurityPolicyType.Basic256Sha256_SignAndEncrypt])
        await server.load_certificate(str(SIM_PKI / "server.der"), format="der")
        await server.load_private_key(str(SIM_PKI / "server-key.pem"), format="pem")
        await self._build(server)
        server.subscribe_server_callback(CallbackType.PostWrite, self._on_write)
        logging.getLogger("asyncua.crypto.uacrypto").addFilter(_HOSTNAME_FILTER)  # added once (same object)
        token = _starting_sim.set(True)
        try:
            await server.start()
        except OSError as exc:
            raise PlantlinkError(f"device {self.device_id}: cannot listen on {self.endpoint} "
                                 f"(port in use? override it with ports={{...}})") from exc
        finally:
            _starting_sim.reset(token)
        if server.bserver is not None and server.bserver.port:
            self.port = int(server.bserver.port)
        self.server = server

    async def _build(self, server: Server) -> None:
        top = max((n.NamespaceIndex for n in self.nodes.values()), default=2)
        ns = await server.register_namespace("urn:plantlink:sim")
        while len(await server.get_namespace_array()) <= top:
            await server.register_namespace(f"urn:plantlink:sim:{len(await server.get_namespace_array())}")
        by_machine: dict[str, list[Binding]] = defaultdict(list)
        for b in self.bindings:
            by_machine[b.machine.path].append(b)
        for mpath, bindings in by_machine.items():
            oid = ua.NodeId(f"plantlink.sim/{mpath}", ns)  # type: ignore[arg-type]
            obj = await server.nodes.objects.add_object(oid,
                                                        ua.QualifiedName(mpath.rsplit("/", 1)[1], ns))
            for b in bindings:
                node = self.nodes[b.path]
                var = await obj.add_variable(node, ua.QualifiedName(b.tag.tag.name, node.NamespaceIndex),
                                             _variant(b))
                if node in self.writable:
                    await var.set_writable()
                self.last[b.path] = b.value()

    async def refresh(self) -> None:
        if self.server is None:
            return
        now = dt.datetime.now(dt.UTC)
        for b in self.bindings:
            v = b.value()
            if self.last.get(b.path) == v:
                continue
            self.last[b.path] = v
            dv = ua.DataValue(_variant(b), SourceTimestamp=now, ServerTimestamp=now)  # type: ignore[arg-type]
            await self.server.write_attribute_value(self.nodes[b.path], dv)

    def _on_write(self, event: ServerItemCallback, _dispatcher: Any) -> None:
        results = event.response_params or []
        for wv, status in zip(event.request_params.NodesToWrite, results, strict=False):
            path = self.writable.get(wv.NodeId)
            if path is None or wv.AttributeId != ua.AttributeIds.Value or not status.is_good():
                continue
            try:
                self.sink(path, wv.Value.Value.Value)
            except (PlantlinkError, KeyError, ValueError, TypeError) as exc:
                log.warning("opc ua write to %s refused: %s", path, exc)

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.stop()
            self.server = None


def _variant(b: Binding) -> ua.Variant:
    vt = getattr(ua.VariantType, b.signal.variant)
    v = b.value()
    if b.signal.type == "string":
        return ua.Variant(str(v), vt)
    if b.signal.type == "bool":
        return ua.Variant(bool(v), vt)
    if b.signal.type == "int":
        return ua.Variant(int(v), vt)
    return ua.Variant(float(v), vt)
