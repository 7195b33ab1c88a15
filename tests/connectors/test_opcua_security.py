"""OPC UA transport security and user identity against real asyncua servers with certificates made here.

One server offers Basic256Sha256 and Aes128_Sha256_RsaOaep in Sign and SignAndEncrypt and accepts a
username + password or one user certificate (no anonymous access); the first-use test starts a second
server with another certificate on the same device id.
"""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from asyncua import Server, ua
from asyncua.crypto import cert_gen
from asyncua.crypto.permission_rules import User, UserRole
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID

from plantlink.connectors.base import DeviceState
from plantlink.connectors.opcua import OpcUaConnector, security
from plantlink.connectors.opcua.security import fingerprint, redact_url
from plantlink.errors import ConfigError
from plantlink.model import parse_plant
from plantlink.samples import Quality
from tests.conftest import _free_port
from tests.connectors.test_opcua_support import Collector, plant_text, points_of, start_connector
from tests.servers import make_cert, secure
from tests.waiting import wait_for

pytestmark = pytest.mark.asyncio(loop_scope="module")

# ASCII only: a log may show them as bytes (b'...'), whose repr would hide non-ASCII characters.
PASSWORD = "Pa55-w0rd-7f3e"
WRONG = "not-the-Pa55-9c1d"
TAGS = '- {name: temp, source: {device: ua, node: "ns=2;s=Sec.Temp"}}\n'
POLICIES = [
    ua.SecurityPolicyType.Basic256Sha256_Sign,
    ua.SecurityPolicyType.Basic256Sha256_SignAndEncrypt,
    ua.SecurityPolicyType.Aes128Sha256RsaOaep_Sign,
    ua.SecurityPolicyType.Aes128Sha256RsaOaep_SignAndEncrypt,
    ua.SecurityPolicyType.Aes256Sha256RsaPss_SignAndEncrypt,
]
SECRET_LOGGERS = ("", "asyncua", "asyncua.client", "asyncua.server", "plantlink")


class Users:
    """Accepts ``operator`` with PASSWORD, or the one trusted user certificate (DER)."""

    def __init__(self, user_cert_der: bytes):
        self.user_cert_der = user_cert_der
        self.denied = 0

    def get_user(self, iserver: Any, username: str | None = None, password: str | None = None,
                 certificate: Any = None) -> User | None:
        if certificate is not None and certificate == self.user_cert_der:
            return User(role=UserRole.User, name="cert-user")
        if username == "operator" and password == PASSWORD:
            return User(role=UserRole.User, name="operator")
        self.denied += 1
        return None


async def secure_server(port: int, cert: Path, key: Path, users: Users) -> tuple[Server, Any]:
    server = Server(user_manager=users)  # type: ignore[arg-type]
    await server.init()
    server.set_endpoint(f"opc.tcp://127.0.0.1:{port}/test/")
    await secure(server, POLICIES, (cert, key))
    server.set_identity_tokens([ua.UserNameIdentityToken, ua.X509IdentityToken])
    ns = await server.register_namespace("urn:plantlink:test")
    folder = await server.nodes.objects.add_folder(ua.NodeId("Sec", ns), "Sec")
    node = await folder.add_variable(ua.NodeId("Sec.Temp", ns), "Temp", 20.0, varianttype=ua.VariantType.Double)
    await server.start()
    return server, node


@dataclass
class Env:
    port: int
    dir: Path
    server_cert: Path
    other_cert: Path
    client_cert: Path
    client_key: Path
    user_cert: Path
    user_key: Path
    users: Users
    node: Any


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def env(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Env]:
    d = tmp_path_factory.mktemp("pki")
    server_cert, server_key = make_cert(d, "server", "urn:plantlink:test:server", ExtendedKeyUsageOID.SERVER_AUTH,
                                        pem=True)
    other_cert, _ = make_cert(d, "other", "urn:plantlink:test:server", ExtendedKeyUsageOID.SERVER_AUTH, pem=False)
    client_cert, client_key = make_cert(d, "client", "urn:plantlink:test:client", ExtendedKeyUsageOID.CLIENT_AUTH,
                                        pem=True)
    user_cert, user_key = make_cert(d, "user", "urn:plantlink:test:user", ExtendedKeyUsageOID.CLIENT_AUTH, pem=False)
    user_der = x509.load_der_x509_certificate(user_cert.read_bytes()).public_bytes(serialization.Encoding.DER)
    users = Users(user_der)
    port = _free_port()
    server, node = await secure_server(port, server_cert, server_key, users)
    yield Env(port, d, server_cert, other_cert, client_cert, client_key, user_cert, user_key, users, node)
    await server.stop()


def device(**fields: Any) -> str:
    return "".join(f"    {k}: {json.dumps(str(v))}\n" for k, v in fields.items())


async def run(env: Env, extra: str, state: DeviceState = DeviceState.CONNECTED,
              port: int | None = None) -> tuple[OpcUaConnector, Collector]:
    return await start_connector(plant_text(port or env.port, TAGS, extra, security=None), state)


def leaked(caplog: pytest.LogCaptureFixture, *secrets: str) -> list[str]:
    texts = [r.getMessage() + (str(r.exc_info[1]) if r.exc_info else "") for r in caplog.records]
    return [t for t in texts if any(s in t for s in secrets)]


def log_everything(caplog: pytest.LogCaptureFixture) -> None:
    for name in SECRET_LOGGERS:
        caplog.set_level(logging.DEBUG, logger=name)


@pytest.mark.parametrize("policy,mode", [("Basic256Sha256", "Sign"), ("Basic256Sha256", "SignAndEncrypt"),
                                         ("Aes128_Sha256_RsaOaep", "Sign"),
                                         ("Aes128_Sha256_RsaOaep", "SignAndEncrypt"),
                                         ("Aes256_Sha256_RsaPss", "SignAndEncrypt")])
async def test_values_flow_with_username_over_each_policy_and_mode(
        env: Env, policy: str, mode: str, caplog: pytest.LogCaptureFixture) -> None:
    log_everything(caplog)
    extra = device(security_policy=policy, security_mode=mode, certificate=env.client_cert,
                   private_key=env.client_key, server_certificate=env.server_cert, username="operator",
                   password=PASSWORD)
    conn, sink = await run(env, extra)
    try:
        await wait_for(lambda: sink.last(0) is not None, what="first value")
        await env.node.write_value(21.25)
        await wait_for(lambda: 21.25 in sink.values(0), what="a changed value")
        assert sink.last(0)[1:] == (21.25, Quality.GOOD)
        policy_uri = conn._client.security_policy.URI  # the channel really is secured as configured
        assert policy_uri.endswith("#" + policy) and conn._client.security_policy.Mode.name == mode
    finally:
        await conn.stop()
    assert not leaked(caplog, PASSWORD)


async def test_generated_client_certificate_and_certificate_identity(env: Env, tmp_path: Path) -> None:
    extra = device(security_policy="Basic256Sha256", pki_dir=tmp_path / "pki", server_certificate=env.server_cert,
                   user_certificate=env.user_cert, user_private_key=env.user_key)
    conn, sink = await run(env, extra)
    try:
        await wait_for(lambda: sink.last(0) is not None, what="first value")
        assert conn._client.security_policy.Mode == ua.MessageSecurityMode.SignAndEncrypt  # the default mode
    finally:
        await conn.stop()
    own = tmp_path / "pki" / "own" / "plantlink.der"
    cert = x509.load_der_x509_certificate(own.read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.UniformResourceIdentifier) == [f"urn:{socket.gethostname()}:plantlink"]
    key = tmp_path / "pki" / "own" / "private" / "plantlink.pem"
    assert key.stat().st_mode & 0o077 == 0  # the private key is readable by its owner only
    before = own.read_bytes()
    conn, sink = await run(env, extra)  # a second start reuses the generated pair
    await conn.stop()
    assert own.read_bytes() == before


async def test_wrong_password_health_says_why_and_no_secret_is_disclosed(
        env: Env, caplog: pytest.LogCaptureFixture) -> None:
    log_everything(caplog)
    denied = env.users.denied
    extra = device(security_policy="Basic256Sha256", security_mode="SignAndEncrypt", certificate=env.client_cert,
                   private_key=env.client_key, server_certificate=env.server_cert, username="operator",
                   password=WRONG)
    conn, sink = await run(env, extra, DeviceState.RECONNECTING)
    try:
        assert env.users.denied > denied  # the server saw (and refused) the password: the channel worked
        assert "BadUserAccessDenied" in (conn.health.last_error or "")
        assert all(q == Quality.BAD for _, _, q in sink.rows(0))
        assert WRONG not in json.dumps(conn.health.to_dict())
        assert WRONG not in repr(conn.cfg) and WRONG not in str(conn.cfg.model_dump(mode="json"))
    finally:
        await conn.stop()
    assert not leaked(caplog, WRONG)
    assert any("BadUserAccessDenied" in r.getMessage() for r in caplog.records if r.name.startswith("plantlink"))


async def test_a_server_whose_certificate_is_not_the_trusted_one_is_refused(env: Env) -> None:
    extra = device(security_policy="Aes128_Sha256_RsaOaep", security_mode="SignAndEncrypt",
                   certificate=env.client_cert, private_key=env.client_key, server_certificate=env.other_cert,
                   username="operator", password=PASSWORD)
    denied = env.users.denied
    conn, sink = await run(env, extra, DeviceState.DOWN)  # refused for its security: a person must act
    await conn.stop()
    error = conn.health.last_error or ""
    presented = x509.load_pem_x509_certificate(env.server_cert.read_bytes()).public_bytes(serialization.Encoding.DER)
    assert "is not the trusted one" in error and str(env.other_cert) in error
    assert fingerprint(presented) in error and fingerprint(env.other_cert.read_bytes()) in error
    assert env.users.denied == denied and not [v for _, v, q in sink.rows(0) if q != Quality.BAD]


@pytest.mark.parametrize("mode", ["Sign", "SignAndEncrypt"])
async def test_the_secure_channel_itself_refuses_another_server_key(
        env: Env, mode: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Even with the endpoint check bypassed, a channel opened with the trusted certificate cannot be
    completed by a server holding another key: no session is created, the password never reaches it."""
    other = env.other_cert.read_bytes()

    def unchecked(*args: Any) -> bytes:
        return other

    monkeypatch.setattr(security, "_server_certificate", unchecked)
    extra = device(security_policy="Basic256Sha256", security_mode=mode, certificate=env.client_cert,
                   private_key=env.client_key, server_certificate=env.other_cert, username="operator",
                   password=PASSWORD)
    denied = env.users.denied
    conn, sink = await run(env, extra, DeviceState.RECONNECTING)
    await conn.stop()
    assert conn.health.last_error and env.users.denied == denied
    assert not [v for _, v, q in sink.rows(0) if q != Quality.BAD]


async def test_trust_on_first_use_pins_the_certificate_and_refuses_another(env: Env, tmp_path: Path) -> None:
    pki = tmp_path / "pki"
    extra = device(security_policy="Basic256Sha256", security_mode="Sign", trust_server="first_use", pki_dir=pki,
                   username="operator", password=PASSWORD)
    conn, sink = await run(env, extra)
    await wait_for(lambda: sink.last(0) is not None, what="first value")
    await conn.stop()
    pinned = pki / "trusted" / "ua.der"
    expected = x509.load_pem_x509_certificate(env.server_cert.read_bytes()).public_bytes(serialization.Encoding.DER)
    assert pinned.read_bytes() == expected
    # Another server (another key pair) answering for the same device is refused.
    cert2, key2 = make_cert(tmp_path, "impostor", "urn:plantlink:test:server", ExtendedKeyUsageOID.SERVER_AUTH,
                            pem=True)
    port2 = _free_port()
    server2, _ = await secure_server(port2, cert2, key2, Users(b""))
    try:
        conn, _ = await run(env, extra, DeviceState.DOWN, port=port2)
        await conn.stop()
    finally:
        await server2.stop()
    assert "is not the one trusted at first use" in (conn.health.last_error or "")
    assert str(pinned) in (conn.health.last_error or "") and "delete that file" in (conn.health.last_error or "")
    assert pinned.read_bytes() == expected


async def test_a_policy_the_server_does_not_offer_is_named(env: Env) -> None:
    extra = device(security_policy="Aes256_Sha256_RsaPss", security_mode="Sign", certificate=env.client_cert,
                   private_key=env.client_key, server_certificate=env.server_cert, username="operator",
                   password=PASSWORD)
    conn, _ = await run(env, extra, DeviceState.DOWN)
    await conn.stop()
    error = conn.health.last_error or ""
    assert "offers no endpoint with security_policy Aes256_Sha256_RsaPss and security_mode Sign " in error
    offered = error.partition("(it offers: ")[2].rstrip(")").split(", ")
    assert offered == ["Aes128_Sha256_RsaOaep/Sign", "Aes128_Sha256_RsaOaep/SignAndEncrypt",
                       "Aes256_Sha256_RsaPss/SignAndEncrypt", "Basic256Sha256/Sign", "Basic256Sha256/SignAndEncrypt"]


async def test_credentials_in_the_endpoint_url_are_not_shown(env: Env, caplog: pytest.LogCaptureFixture) -> None:
    log_everything(caplog)
    port = _free_port()  # nothing listens there
    config, points = points_of(plant_text(env.port, TAGS).replace(
        f"127.0.0.1:{env.port}", f"operator:{PASSWORD}@127.0.0.1:{port}"))
    conn = OpcUaConnector("ua", config, points, Collector())
    await conn.start()
    await wait_for(lambda: conn.health.state == DeviceState.RECONNECTING, what="refused")
    await conn.stop()
    assert conn.health.last_error and f"opc.tcp://***@127.0.0.1:{port}/test/" in conn.health.last_error
    assert not leaked(caplog, PASSWORD)
    assert redact_url("opc.tcp://h:4840/x") == "opc.tcp://h:4840/x"


# -- validation (no server) ------------------------------------------------------------------------------

def problems(extra: str) -> list[str]:
    with pytest.raises(ConfigError) as err:
        parse_plant(plant_text(4840, TAGS, extra, security=None), "p.yaml")
    assert PASSWORD not in str(err.value)
    return [str(p) for p in err.value.problems]


async def test_validation_messages_are_located(env: Env) -> None:
    # plant_text puts the device's extra lines from line 14 on
    assert problems("    security: none\n    security_mode: Sign") == [
        "p.yaml:15:20: [device ua security_mode] security_mode is used only with security: required "
        "(this device has security: none)"]
    assert problems(f"    password: {PASSWORD}") == ["p.yaml:14:15: [device ua password] password needs a username"]
    missing = env.dir / "missing.pem"
    [msg] = problems(device(security_policy="Basic256Sha256", certificate=missing, private_key=env.client_key,
                            server_certificate=env.server_cert))
    assert msg.startswith("p.yaml:15:18: [device ua certificate]") and f"file not found: {missing}" in msg
    assert problems(device(security_policy="Basic1", security_mode="Sign", trust_server="first_use")) == [
        "p.yaml:14:22: [device ua security_policy] Input should be 'auto', 'Basic256Sha256', "
        "'Aes128_Sha256_RsaOaep' or 'Aes256_Sha256_RsaPss', got 'Basic1'"]
    [msg] = problems(device(security_policy="Basic256Sha256", security_mode="None", trust_server="first_use"))
    assert msg.endswith("security_mode None: to connect without security write security: none (an explicit "
                        "choice; plantlink check warns about it)")
    [msg] = problems(device(security_policy="Basic256Sha256", trust_server="certificate"))
    assert "trust_server: certificate needs server_certificate" in msg
    [msg] = problems(device(server_certificate=env.server_cert, trust_server="first_use"))
    assert "trust_server: first_use and server_certificate exclude each other" in msg
    [msg] = problems(device(security_policy="Basic256Sha256", certificate=env.client_cert, trust_server="first_use"))
    assert "[device ua private_key] certificate needs its private_key" in msg
    [msg] = problems(device(security="none", server_certificate=env.server_cert))
    assert "server_certificate is used only with security: required" in msg
    [msg] = problems(device(server_certificate=env.dir / "missing.der"))
    assert "[device ua server_certificate] server_certificate: file not found" in msg
    [msg] = problems(device(username="u", password=PASSWORD, user_certificate=env.user_cert,
                            user_private_key=env.user_key))
    assert "choose one user identity" in msg
    [msg] = problems(device(user_certificate=env.user_cert))
    assert "[device ua user_private_key] user_certificate needs its user_private_key" in msg


async def test_an_encrypted_private_key_needs_its_password(tmp_path: Path) -> None:
    key = cert_gen.generate_private_key()
    path = tmp_path / "enc.key"
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.BestAvailableEncryption(PASSWORD.encode())))
    loaded = security.read_private_key(path, PASSWORD)
    assert loaded.private_numbers() == key.private_numbers()  # type: ignore[union-attr]
    for wrong in (WRONG, None):
        with pytest.raises(security.SecurityError) as err:
            security.read_private_key(path, wrong)
        assert str(path) in str(err.value) and "password is wrong or missing" in str(err.value)
        assert PASSWORD not in str(err.value) and WRONG not in str(err.value)


async def test_valid_security_settings_load_with_defaults(env: Env) -> None:
    config, _ = points_of(plant_text(4840, TAGS, device(security_policy="Aes128_Sha256_RsaOaep",
                                                         trust_server="first_use", username="u", password=1234),
                                     security=None))
    assert config.security_mode is None and config.pki_dir is None  # SignAndEncrypt where offered; data dir
    assert config.password.get_secret_value() == "1234" and "1234" not in repr(config)
    config, _ = points_of(plant_text(4840, TAGS, security=None))
    assert (config.security, config.security_policy, config.username) == ("required", "auto", None)
