"""The OPC UA connector's secure default, against real asyncua servers on loopback.

Without any security key a device connects signed and encrypted (Basic256Sha256 where offered, else the
strongest policy offered), refuses a server that offers no security unless the model says ``security: none``,
and trusts the server certificate pinned in the model (``server_certificate: sha256:...``) or, without a pin,
the one it saw first (recorded under the data directory) and no other.
"""

from __future__ import annotations

import asyncio
import logging
import stat
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import yaml
from asyncua import Server, ua
from asyncua.crypto.truststore import TrustStore
from asyncua.crypto.validator import CertificateValidator, CertificateValidatorOptions

from plantlink.connectors.base import DeviceState
from plantlink.connectors.opcua import OpcUaConnector
from plantlink.connectors.opcua.security import fingerprint
from plantlink.errors import ConfigError
from plantlink.model import load_plant, parse_plant
from plantlink.model.lint import model_warnings
from plantlink.samples import Quality
from tests.conftest import _free_port
from tests.connectors.test_opcua_support import (
    Collector,
    make_server,
    plant_text,
    points_of,
    start_connector,
)
from tests.servers import der_of, make_cert, secure
from tests.waiting import wait_for

module_loop = pytest.mark.asyncio(loop_scope="module")

TAGS = '- {name: temp, source: {device: ua, node: "ns=2;s=Plant.Oven.Temp"}}\n'
P = ua.SecurityPolicyType
MIXED = [P.NoSecurity, P.Basic256Sha256_Sign, P.Basic256Sha256_SignAndEncrypt, P.Aes128Sha256RsaOaep_SignAndEncrypt]
NO_BASIC_ENCRYPT = [P.Basic256Sha256_Sign, P.Aes128Sha256RsaOaep_SignAndEncrypt, P.Aes256Sha256RsaPss_SignAndEncrypt]


@dataclass
class Env:
    dir: Path
    cert: tuple[Path, Path]  # the certificate the servers of this module present, and its key
    other: tuple[Path, Path]  # another key pair (an impostor's)
    mixed: int  # port of a server offering None, Basic256Sha256 (Sign, SignAndEncrypt), Aes128 SignAndEncrypt
    none_only: int  # port of a server offering no security
    servers: list[Server]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def env(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Env]:
    d = tmp_path_factory.mktemp("trust")
    cert, other = make_cert(d, "server"), make_cert(d, "other")
    mixed, none_only = _free_port(), _free_port()
    servers = [(await make_server(mixed, MIXED, cert))[0], (await make_server(none_only))[0]]
    yield Env(d, cert, other, mixed, none_only, servers)
    for s in servers:
        await s.stop()


async def start(port: int, data_dir: Path, extra: str = "", security: str | None = None,
                state: DeviceState = DeviceState.CONNECTED) -> tuple[OpcUaConnector, Collector]:
    """A connector for device ``ua`` as ``plantlink run --data-dir data_dir`` makes it, once in ``state``."""
    return await start_connector(plant_text(port, TAGS, extra, security=security), state, data_dir)


def channel(conn: OpcUaConnector) -> tuple[str, str]:
    """(policy, mode) of the connector's open secure channel."""
    assert conn._client is not None
    policy = conn._client.security_policy
    return policy.URI.rpartition("#")[2], policy.Mode.name


def good(sink: Collector, since: int = 0) -> list[Any]:
    return [v for _, v, q in sink.rows(0)[since:] if q == Quality.GOOD]


# -- the secure default ---------------------------------------------------------------------------------

@module_loop
async def test_default_connects_with_basic256sha256_sign_and_encrypt(env: Env, tmp_path: Path) -> None:
    conn, sink = await start(env.mixed, tmp_path)  # the server offers None too: it is not taken
    try:
        assert channel(conn) == ("Basic256Sha256", "SignAndEncrypt")
        await wait_for(lambda: bool(good(sink)), what="a good value")
    finally:
        await conn.stop()


@module_loop
async def test_the_strongest_offered_policy_when_basic256sha256_does_not_encrypt(tmp_path: Path) -> None:
    port = _free_port()
    server, nodes = await make_server(port, NO_BASIC_ENCRYPT, make_cert(tmp_path, "s"))
    try:
        conn, sink = await start(port, tmp_path)
        try:  # encryption first, then the policy: Aes256_Sha256_RsaPss ranks before Aes128_Sha256_RsaOaep
            assert channel(conn) == ("Aes256_Sha256_RsaPss", "SignAndEncrypt")
            await nodes["Temp"].write_value(31.5)
            await wait_for(lambda: 31.5 in good(sink), what="the written value")
        finally:
            await conn.stop()
    finally:
        await server.stop()


def endpoints(*offers: tuple[str, str]) -> list[ua.EndpointDescription]:
    out = []
    for policy, mode in offers:
        ep = ua.EndpointDescription()
        ep.EndpointUrl = "opc.tcp://h:4840/"
        ep.SecurityPolicyUri = f"http://opcfoundation.org/UA/SecurityPolicy#{policy}"
        ep.SecurityMode = getattr(ua.MessageSecurityMode, "None_" if mode == "None" else mode)
        ep.ServerCertificate = b"\x30\x03\x02\x01\x01"
        out.append(ep)
    return out


def test_the_choice_among_offered_endpoints() -> None:
    from plantlink.connectors.opcua.trust import choose_endpoint

    def pick(*offers: tuple[str, str], policy: str = "auto", mode: str | None = None) -> tuple[str, str] | None:
        chosen = choose_endpoint(endpoints(*offers), policy, mode)
        return None if chosen is None else (chosen.SecurityPolicyUri.rpartition("#")[2], chosen.SecurityMode.name)

    everything = [(p, m) for p in ("None", "Basic128Rsa15", "Basic256", "Aes128_Sha256_RsaOaep", "Basic256Sha256",
                                   "Aes256_Sha256_RsaPss") for m in ("Sign", "SignAndEncrypt")]
    assert pick(*everything) == ("Basic256Sha256", "SignAndEncrypt")
    assert pick(*everything, mode="Sign") == ("Basic256Sha256", "Sign")
    assert pick(*everything, policy="Aes128_Sha256_RsaOaep") == ("Aes128_Sha256_RsaOaep", "SignAndEncrypt")
    assert pick(("Basic256Sha256", "Sign"), ("Aes128_Sha256_RsaOaep", "Sign")) == ("Basic256Sha256", "Sign")
    assert pick(("Aes128_Sha256_RsaOaep", "Sign"), ("Aes256_Sha256_RsaPss", "Sign")) == ("Aes256_Sha256_RsaPss",
                                                                                            "Sign")
    # deprecated policies (Basic128Rsa15, Basic256) and None are never chosen
    assert pick(("None", "None"), ("Basic128Rsa15", "SignAndEncrypt"), ("Basic256", "SignAndEncrypt")) is None
    assert pick(("Basic256Sha256", "Sign"), mode="SignAndEncrypt") is None


@module_loop
async def test_a_server_offering_no_security_is_refused(env: Env, tmp_path: Path) -> None:
    conn, sink = await start(env.none_only, tmp_path, state=DeviceState.DOWN)
    await conn.stop()
    error = conn.health.last_error or ""
    assert f"opc.tcp://127.0.0.1:{env.none_only}/test/" in error and "device ua" in error
    assert "offers no secure endpoint (it offers: None/None)" in error
    assert "security: none" in error  # what to write to connect anyway
    assert sink.rows(0) and not good(sink)  # marked bad, never a value


@module_loop
async def test_explicit_security_none_connects_without_security(
        env: Env, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="plantlink.connectors.opcua")
    conn, sink = await start(env.none_only, tmp_path, security="none")
    try:
        assert channel(conn) == ("None", "None_")
        await wait_for(lambda: bool(good(sink)), what="a good value")
    finally:
        await conn.stop()
    assert any("security: none" in r.getMessage() and "device ua" in r.getMessage() for r in caplog.records)
    assert not (tmp_path / "pki").exists()  # no certificate made, nothing recorded


# -- trusting the server's certificate ------------------------------------------------------------------

@module_loop
async def test_a_pinned_fingerprint_is_required(env: Env, tmp_path: Path) -> None:
    presented = fingerprint(der_of(env.cert[0]))
    plain = presented.replace(":", "").lower()  # the pin may be written without colons, in lower case
    conn, sink = await start(env.mixed, tmp_path, f'    server_certificate: "sha256:{plain}"\n')
    try:
        assert channel(conn) == ("Basic256Sha256", "SignAndEncrypt")
        await wait_for(lambda: bool(good(sink)), what="a good value")
    finally:
        await conn.stop()
    assert not (tmp_path / "pki" / "trusted").exists()  # a pinned device records nothing

    pinned = fingerprint(der_of(env.other[0]))
    conn, sink = await start(env.mixed, tmp_path, f'    server_certificate: "sha256:{pinned}"\n',
                             state=DeviceState.DOWN)
    await conn.stop()
    error = conn.health.last_error or ""
    assert f"sha256 {presented}" in error and f"server_certificate: sha256:{pinned}" in error
    assert "connection refused" in error and not good(sink)


@module_loop
async def test_first_use_records_the_certificate_and_refuses_another_on_the_same_endpoint(
        env: Env, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="plantlink.connectors.opcua")
    port, data = _free_port(), tmp_path / "data"
    genuine, impostor = make_cert(tmp_path, "genuine"), make_cert(tmp_path, "impostor")
    server, _ = await make_server(port, MIXED, genuine)
    conn, sink = await start(port, data)
    try:
        await wait_for(lambda: bool(good(sink)), what="a good value")
        record = data / "pki" / "trusted" / "ua.der"
        assert record.read_bytes() == der_of(genuine[0])
        assert stat.S_IMODE(record.stat().st_mode) == 0o600
        assert stat.S_IMODE(record.parent.stat().st_mode) == 0o700
        pin = f"server_certificate: sha256:{fingerprint(der_of(genuine[0]))}"
        hints = [r for r in caplog.records if pin in r.getMessage()]
        assert len(hints) == 1 and hints[0].levelno == logging.WARNING and str(record) in hints[0].getMessage()

        await server.stop()  # another server answers at the same endpoint, with another certificate
        server, _ = await make_server(port, MIXED, impostor)
        await wait_for(lambda: conn.health.state == DeviceState.DOWN, timeout=20, what="refused")
        seen = len(sink.rows(0))
        error = conn.health.last_error or ""
        assert f"sha256 {fingerprint(der_of(impostor[0]))}" in error and str(record) in error
        assert "not the one trusted at first use" in error
        await asyncio.sleep(1.0)  # it keeps being refused
        assert not good(sink, seen) and conn.health.state != DeviceState.CONNECTED
        assert record.read_bytes() == der_of(genuine[0])

        await server.stop()  # the genuine server is back: accepted again, no new record or hint
        server, nodes = await make_server(port, MIXED, genuine)
        await wait_for(lambda: conn.health.state == DeviceState.CONNECTED, timeout=20, what="reconnected")
        await nodes["Temp"].write_value(42.5)
        await wait_for(lambda: 42.5 in good(sink), what="values again")
        assert len([r for r in caplog.records if pin in r.getMessage()]) == 1
    finally:
        await conn.stop()
        await server.stop()


@module_loop
async def test_a_server_refusing_plantlinks_certificate_says_which_file_to_trust(tmp_path: Path) -> None:
    """A server that checks client certificates against its trust list (asyncua's TrustStore)."""
    trusted, port, data = tmp_path / "server-trusts", _free_port(), tmp_path / "data"
    trusted.mkdir()
    make_cert(trusted, "someone-else", "urn:someone:else", pem=False)  # an asyncua TrustStore cannot be empty
    store = TrustStore([trusted], [])
    await store.load()
    server = Server()
    await server.init()
    server.set_endpoint(f"opc.tcp://127.0.0.1:{port}/test/")
    await secure(server, [P.Basic256Sha256_SignAndEncrypt], make_cert(tmp_path, "s"))
    server.set_certificate_validator(CertificateValidator(
        CertificateValidatorOptions.TRUSTED_VALIDATION | CertificateValidatorOptions.PEER_CLIENT, store))
    ns = await server.register_namespace("urn:plantlink:test")
    await server.nodes.objects.add_variable(ua.NodeId("Plant.Oven.Temp", ns), "Temp", 20.5)
    await server.start()
    try:
        conn, sink = await start(port, data, state=DeviceState.DOWN)
        try:
            own = data / "pki" / "own" / "plantlink.der"
            error = conn.health.last_error or ""
            assert "BadCertificateUntrusted" in error and f"trust plantlink's certificate {own} on the server" in error
            assert not good(sink)
            (trusted / "plantlink.der").write_bytes(own.read_bytes())  # what the server's operator does
            await store.load()
            await wait_for(lambda: conn.health.state == DeviceState.CONNECTED, timeout=20, what="trusted")
            await wait_for(lambda: 20.5 in good(sink), what="a value")
        finally:
            await conn.stop()
    finally:
        await server.stop()


# -- the plant model -----------------------------------------------------------------------------------

def problems(extra: str) -> list[str]:
    with pytest.raises(ConfigError) as err:
        parse_plant(plant_text(4840, TAGS, extra, security=None), "p.yaml")
    return [str(p) for p in err.value.problems]


def test_security_settings_in_the_model(tmp_path: Path) -> None:
    config, _ = points_of(plant_text(4840, TAGS, security=None))
    assert (config.security, config.security_policy, config.security_mode) == ("required", "auto", None)
    fp = fingerprint(der_of(make_cert(tmp_path, "s")[0]))
    config, _ = points_of(plant_text(4840, TAGS, f"    server_certificate: sha256:{fp.replace(':', ' ').lower()}",
                                     security=None))
    assert config.server_certificate == f"sha256:{fp}"
    # plant_text puts the device's extra lines from line 14 on
    assert problems("    security: none\n    security_policy: Basic256Sha256") == [
        "p.yaml:15:22: [device ua security_policy] security_policy is used only with security: required "
        "(this device has security: none)"]
    [msg] = problems(f"    security: none\n    server_certificate: sha256:{fp}")
    assert "[device ua server_certificate] server_certificate is used only with security: required" in msg
    [msg] = problems("    security_policy: None")
    assert msg.startswith("p.yaml:14:22: [device ua security_policy]") and "write security: none" in msg
    [msg] = problems("    security: off")
    assert "'required' or 'none'" in msg
    [msg] = problems("    server_certificate: sha256:AB:CD")
    assert "a SHA-256 fingerprint is 32 bytes" in msg
    [msg] = problems("    trust_server: certificate")
    assert "trust_server: certificate needs server_certificate" in msg


async def run_cli(*args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "plantlink.cli", *args,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


@module_loop
async def test_check_warns_about_security_none(tmp_path: Path) -> None:
    text = plant_text(4840, TAGS, security="none")
    plant = tmp_path / "plant.yaml"
    plant.write_text(text)
    line = text.splitlines().index("    security: none") + 1
    code, _, err = await run_cli("check", str(plant))
    assert code == 0, err
    [warning] = [ln for ln in err.splitlines() if ln.startswith("warning ")]
    assert warning.startswith(f"warning {plant}:{line}:15: [device ua security] ")
    assert "neither signed nor encrypted" in warning
    code, _, err = await run_cli("check", str(plant), "--json")
    assert code == 0 and "warning " in err
    plant.write_text(plant_text(4840, TAGS, security=None))
    assert model_warnings(load_plant(plant)) == []  # the secure default: nothing to warn about


@module_loop
async def test_browse_prints_the_certificate_and_the_pin_line(env: Env, tmp_path: Path) -> None:
    fp = fingerprint(der_of(env.cert[0]))
    code, out, err = await run_cli("browse", f"opc.tcp://127.0.0.1:{env.mixed}/test/", "--device", "oven-ua",
                                   "--data-dir", str(tmp_path))
    assert code == 0, err
    assert f"#     server_certificate: sha256:{fp}\n" in out and "#   oven-ua:\n" in out
    assert "CN=urn:plantlink:test:server" in out and f"sha256 {fp}" in err
    assert "Basic256Sha256/SignAndEncrypt" in err  # how browse itself connected
    tags = yaml.safe_load(out)  # the comments keep the output a pastable tag list
    assert {t["source"]["node"] for t in tags} >= {"ns=2;s=Plant.Oven.Temp", "ns=2;s=Plant.Oven.Setpoint"}

    code, out, err = await run_cli("browse", f"opc.tcp://127.0.0.1:{env.none_only}/test/", "--device", "old",
                                   "--data-dir", str(tmp_path))
    assert code == 0, err
    assert "#     security: none" in out and "server_certificate" not in out
    assert "offers no secure endpoint" in err
