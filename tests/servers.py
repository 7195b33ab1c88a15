"""Real protocol servers for tests: a pymodbus TCP server and an asyncua server on loopback ports."""

from __future__ import annotations

import asyncio
import contextlib
import struct
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from asyncua import Server, ua
from asyncua.crypto import cert_gen
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice


class ModbusTestServer:
    """A Modbus TCP server with ``registers`` holding registers (and as many coils) starting at address 0.

    Values are set by clients (the tests write them with a real pymodbus client), as on a real PLC.
    """

    def __init__(self, port: int, registers: int = 200, device_id: int = 1):
        self.port = port
        self.registers = registers
        self.device_id = device_id
        self.server: ModbusTcpServer | None = None
        self._task: asyncio.Task[Any] | None = None

    async def start(self) -> None:
        device = SimDevice(
            id=self.device_id,
            simdata=(
                [SimData(address=0, count=self.registers, values=False, datatype=DataType.BITS)],
                [SimData(address=0, count=self.registers, values=False, datatype=DataType.BITS)],
                [SimData(address=0, count=self.registers, values=0, datatype=DataType.REGISTERS)],
                [SimData(address=0, count=self.registers, values=0, datatype=DataType.REGISTERS)],
            ),
        )
        self.server = ModbusTcpServer(context=device, address=("127.0.0.1", self.port))
        await self.server.listen()

    async def stop(self) -> None:
        if self.server is not None:
            with contextlib.suppress(Exception):
                await self.server.shutdown()
            self.server = None


def make_cert(directory: Path, name: str, uri: str = "urn:plantlink:test:server",
              usage: x509.ObjectIdentifier = ExtendedKeyUsageOID.SERVER_AUTH, pem: bool = True) -> tuple[Path, Path]:
    """A self-signed certificate + key written as PEM (``.crt``/``.key``) or DER (``.der``/``.pk8``)."""
    key = cert_gen.generate_private_key()
    cert = cert_gen.generate_self_signed_app_certificate(
        key, uri, {}, [x509.UniformResourceIdentifier(uri), x509.DNSName("localhost")], extended=[usage])
    enc = serialization.Encoding.PEM if pem else serialization.Encoding.DER
    cert_ext, key_ext = ("crt", "key") if pem else ("der", "pk8")
    cert_path, key_path = directory / f"{name}.{cert_ext}", directory / f"{name}.{key_ext}"
    cert_path.write_bytes(cert.public_bytes(enc))
    key_path.write_bytes(key.private_bytes(enc, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return cert_path, key_path


def der_of(cert_path: Path) -> bytes:
    """The DER bytes of a PEM or DER certificate file (what a server presents)."""
    data = cert_path.read_bytes()
    cert = x509.load_pem_x509_certificate(data) if data.startswith(b"-----") else x509.load_der_x509_certificate(data)
    return cert.public_bytes(serialization.Encoding.DER)


async def secure(server: Server, policies: Sequence[ua.SecurityPolicyType], cert: tuple[Path, Path] | None) -> None:
    """Offer ``policies`` on ``server`` (before start), presenting ``cert`` (a certificate + key file pair)."""
    server.set_security_policy(list(policies))
    if cert is not None:
        await server.set_application_uri("urn:plantlink:test:server")
        fmt = "pem" if cert[0].suffix == ".crt" else "der"
        await server.load_certificate(str(cert[0]), format=fmt)
        await server.load_private_key(str(cert[1]), format=fmt)


class OpcUaTestServer:
    """An asyncua server with writable variables ``ns=2;s=<name>`` of the given variant types.

    It offers ``policies`` (default: only None) and, when given, presents ``cert`` (certificate, key).
    """

    def __init__(self, port: int, variables: dict[str, tuple[Any, ua.VariantType]],
                 policies: Sequence[ua.SecurityPolicyType] = (ua.SecurityPolicyType.NoSecurity,),
                 cert: tuple[Path, Path] | None = None):
        self.port = port
        self.endpoint = f"opc.tcp://127.0.0.1:{port}/test/"
        self.variables = variables
        self.policies = policies
        self.cert = cert
        self.server: Server | None = None
        self.nodes: dict[str, Any] = {}

    async def start(self) -> None:
        server = Server()
        await server.init()
        server.set_endpoint(self.endpoint)
        await secure(server, self.policies, self.cert)
        ns = await server.register_namespace("urn:plantlink:test")
        folder = await server.nodes.objects.add_folder(ns, "Test")
        for name, (value, vtype) in self.variables.items():
            node = await folder.add_variable(ua.NodeId(name, ns), name, value, varianttype=vtype)
            await node.set_writable()
            self.nodes[name] = node
        await server.start()
        self.server = server

    async def set(self, name: str, value: Any, source_ts: datetime | None = None) -> None:
        """Publish ``value`` stamped ``source_ts`` (default: now). ``None`` publishes a good DataValue without a
        value (OPC UA's null)."""
        node = self.nodes[name]
        stamp = source_ts or datetime.now(UTC)
        if value is None:
            assert self.server is not None
            dv = ua.DataValue(SourceTimestamp=stamp)
            # asyncua would turn a missing value into a Null variant, which its server refuses on a typed node;
            # a DataValue with no value at all is accepted and goes on the wire without a value field.
            object.__setattr__(dv, "Value", None)
            await self.server.write_attribute_value(node.nodeid, dv)
            return
        vtype = self.variables[name][1]
        await node.write_value(ua.DataValue(ua.Variant(value, vtype), SourceTimestamp=stamp))

    async def stop(self) -> None:
        if self.server is not None:
            with contextlib.suppress(Exception):
                await self.server.stop()
            self.server = None


class RawModbusServer:
    """A Modbus TCP server written from the protocol, for replies pymodbus' server never sends.

    It serves ``registers`` (holding registers from address 0) and answers every read in ``mode``:
    ``"ok"`` (a correct reply), ``"wrong_function"`` (the same registers under function code 4, read input
    registers, whatever was asked: well-formed, plausible and wrong) or ``"exception"`` (exception 4,
    server device failure).
    """

    def __init__(self, port: int, registers: list[int], mode: str = "ok"):
        self.port = port
        self.registers = registers
        self.mode = mode
        self.requests = 0
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)
            self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readexactly(7)  # MBAP: transaction, protocol, length, unit
                tid, _proto, length, unit = struct.unpack(">HHHB", head)
                pdu = await reader.readexactly(length - 1)
                self.requests += 1
                writer.write(self._frame(tid, unit, self._answer(pdu)))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    def _answer(self, pdu: bytes) -> bytes:
        function, address, count = pdu[0], *struct.unpack(">HH", pdu[1:5])
        if self.mode == "exception":
            return bytes([function | 0x80, 4])
        regs = self.registers[address:address + count]
        body = struct.pack(f">B{len(regs)}H", 2 * len(regs), *regs)
        return bytes([4 if self.mode == "wrong_function" else function]) + body

    @staticmethod
    def _frame(tid: int, unit: int, pdu: bytes) -> bytes:
        return struct.pack(">HHHB", tid, 0, len(pdu) + 1, unit) + pdu


class SmtpInbox:
    """A real SMTP server (aiosmtpd) on 127.0.0.1:``port`` keeping every message it receives, in ``messages``."""

    def __init__(self, port: int):
        from aiosmtpd.controller import Controller
        from aiosmtpd.handlers import Message

        inbox = self

        class _Keep(Message):
            def handle_message(self, message: Any) -> None:
                inbox.messages.append(message)

        self.port = port
        self.messages: list[Any] = []
        self._ctl = Controller(_Keep(), hostname="127.0.0.1", port=port)

    def start(self) -> SmtpInbox:
        self._ctl.start()
        return self

    def stop(self) -> None:
        self._ctl.stop()


class WebhookReceiver:
    """An HTTP server on a free loopback port keeping each POST (``{"body": JSON, "key": X-Key header}``) in
    ``received`` and answering ``status``."""

    def __init__(self, status: int = 204):
        import json
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        receiver = self
        self.received: list[dict[str, Any]] = []
        self.status = status

        class _Hook(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.received.append({"body": json.loads(body), "key": self.headers.get("X-Key")})
                self.send_response(receiver.status)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self._srv = ThreadingHTTPServer(("127.0.0.1", 0), _Hook)
        self.port = int(self._srv.server_address[1])
        self._thread = threading.Thread(target=self._srv.serve_forever, daemon=True)

    def start(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._srv.shutdown()
        self._srv.server_close()
