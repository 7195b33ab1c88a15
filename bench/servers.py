"""Load servers for bench/pipeline.py, run in their own process so that their CPU is not counted.

A pymodbus server whose N holding registers change every 1/rate seconds (computed on read), and an asyncua
server with M Double variables rewritten every 1/rate seconds. The OPC UA server offers None, and with
--secure also Basic256Sha256 SignAndEncrypt (with a certificate generated at start). Prints one JSON line
with the endpoints when ready, then runs until killed (or --duration elapses).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import tempfile
import time
from pathlib import Path

import numpy as np
from asyncua import Server, ua
from asyncua.crypto import cert_gen
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice


def modbus_server(port: int, registers: int, rate: float) -> ModbusTcpServer:
    async def fill(fc: int, start: int, address: int, count: int, regs: list[int], values: object) -> None:
        if values:
            return None
        tick = int(time.time() * rate)
        off = address - start
        regs[off : off + count] = ((np.arange(address, address + count) * 7 + tick) & 0xFFFF).tolist()
        return None

    device = SimDevice(
        id=1,
        simdata=[SimData(address=0, count=registers, values=0, datatype=DataType.REGISTERS)],
        action=fill,
    )
    return ModbusTcpServer(context=device, address=("127.0.0.1", port))


async def secure(server: Server) -> None:
    """Offer Basic256Sha256 SignAndEncrypt besides None, with a self-signed certificate made here."""
    uri = "urn:plantlink:bench:server"  # not the namespace URI
    key = cert_gen.generate_private_key()
    cert = cert_gen.generate_self_signed_app_certificate(
        key, uri, {}, [x509.UniformResourceIdentifier(uri), x509.DNSName("localhost")],
        extended=[ExtendedKeyUsageOID.SERVER_AUTH])
    with tempfile.TemporaryDirectory(prefix="plantlink-bench-pki-") as tmp:
        cert_path, key_path = Path(tmp) / "server.der", Path(tmp) / "server.pem"
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.DER))
        key_path.write_bytes(cert_gen.dump_private_key_as_pem(key))
        await server.load_certificate(str(cert_path), format="der")
        await server.load_private_key(str(key_path), format="pem")
    await server.set_application_uri(uri)
    server.set_security_policy([ua.SecurityPolicyType.NoSecurity, ua.SecurityPolicyType.Basic256Sha256_SignAndEncrypt])


async def opcua_server(port: int, variables: int, with_security: bool = False) -> tuple[Server, list[ua.NodeId]]:
    server = Server()
    await server.init()
    server.set_endpoint(f"opc.tcp://127.0.0.1:{port}/bench/")
    server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
    if with_security:
        await secure(server)
    ns = await server.register_namespace("urn:plantlink:bench")
    folder = await server.nodes.objects.add_folder(ns, "Bench")
    ids = []
    for i in range(variables):
        node = await folder.add_variable(ua.NodeId(f"V{i}", ns), f"V{i}", 0.0, varianttype=ua.VariantType.Double)
        ids.append(node.nodeid)
    return server, ids


async def update_loop(server: Server, ids: list[ua.NodeId], rate: float) -> None:
    period = 1.0 / rate
    nxt = time.monotonic()
    k = 0
    while True:
        k += 1
        vals = np.sin(np.arange(len(ids)) + k * 0.1) * 100.0 + k
        now = ua.DateTime.now() if hasattr(ua, "DateTime") else None
        for nid, v in zip(ids, vals.tolist(), strict=True):
            dv = ua.DataValue(ua.Variant(v, ua.VariantType.Double), SourceTimestamp=now)
            await server.write_attribute_value(nid, dv)
        nxt += period
        await asyncio.sleep(max(0.0, nxt - time.monotonic()))


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--modbus-port", type=int, required=True)
    ap.add_argument("--opcua-port", type=int, required=True)
    ap.add_argument("--registers", type=int, default=5000)
    ap.add_argument("--variables", type=int, default=5000)
    ap.add_argument("--rate", type=float, default=1.0)
    ap.add_argument("--duration", type=float, default=3600.0)
    ap.add_argument("--secure", action="store_true", help="OPC UA: offer Basic256Sha256 SignAndEncrypt too")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("pymodbus").setLevel(logging.ERROR)
    mb = modbus_server(args.modbus_port, args.registers, args.rate)
    await mb.listen()
    tasks = []
    if args.variables:
        ua_server, ids = await opcua_server(args.opcua_port, args.variables, args.secure)
        await ua_server.start()
        tasks.append(asyncio.create_task(update_loop(ua_server, ids, args.rate)))
    print(json.dumps({"ready": True, "modbus_port": args.modbus_port, "opcua_port": args.opcua_port}), flush=True)
    await asyncio.sleep(args.duration)


if __name__ == "__main__":
    asyncio.run(main())
