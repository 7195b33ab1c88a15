"""Transport security and user identity of the OPC UA client.

``configure(client, cfg, device_id)`` prepares an asyncua ``Client`` before ``connect()``:

* identity: username + password (``set_user``/``set_password``) or a user certificate + key;
* with a security policy: this client's application instance certificate (given, or generated once
  under ``pki_dir/own/``), and the server certificate to trust: the ``server_certificate`` file, or with
  ``trust_server: first_use`` the one the server presented at the first connection (pinned under
  ``pki_dir/trusted/<device>.der``). Before the secure channel is opened the server's endpoints are read
  (over the discovery channel, which needs no security) to name clearly what is wrong: an endpoint
  with the policy and mode missing, or a server certificate that is not the trusted one. The secure
  channel itself is then opened with the trusted certificate only, so a server holding another key
  cannot complete it even if that check were bypassed.
"""

from __future__ import annotations

import hashlib
import logging
import os
import socket
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from asyncua import Client, ua
from asyncua.crypto import cert_gen, security_policies
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID

from plantlink.connectors.opcua.config import OpcUaDevice
from plantlink.errors import ConnectorError

log = logging.getLogger("plantlink.connectors.opcua")

POLICIES: dict[str, type[security_policies.SecurityPolicy]] = {
    "Basic256Sha256": security_policies.SecurityPolicyBasic256Sha256,
    "Aes128_Sha256_RsaOaep": security_policies.SecurityPolicyAes128Sha256RsaOaep,
    "Aes256_Sha256_RsaPss": security_policies.SecurityPolicyAes256Sha256RsaPss,
}
MODES = {"Sign": ua.MessageSecurityMode.Sign, "SignAndEncrypt": ua.MessageSecurityMode.SignAndEncrypt}

#: Application URI of plantlink's generated certificate (the URI must be in the certificate's SAN).
APP_URI = f"urn:{socket.gethostname()}:plantlink"


class _WithholdIdentityTokens(logging.Filter):
    """asyncua logs every request it sends at DEBUG, and the ActivateSessionRequest carries the user's
    password in clear when the server's token policy does not encrypt it (common under SignAndEncrypt):
    such a record is rewritten to name the request only."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and any(isinstance(a, ua.ActivateSessionRequest) for a in args):
            record.args = tuple("ActivateSessionRequest(<withheld by plantlink: it carries the user identity>)"
                                if isinstance(a, ua.ActivateSessionRequest) else a for a in args)
        return True


_ASYNCUA_REQUEST_LOGGER = "asyncua.client.ua_client.UASocketProtocol"


def withhold_identity_tokens() -> None:
    """Install (once) the filter that keeps passwords out of asyncua's request log."""
    logger = logging.getLogger(_ASYNCUA_REQUEST_LOGGER)
    if not any(isinstance(f, _WithholdIdentityTokens) for f in logger.filters):
        logger.addFilter(_WithholdIdentityTokens())


class SecurityError(ConnectorError):
    """The server's security does not match the configuration (no such endpoint, untrusted certificate)."""


def redact_url(url: str) -> str:
    """``url`` without the user and password an ``opc.tcp://user:pass@host`` URL may carry."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc="***@" + parts.netloc.rpartition("@")[2]))


def fingerprint(der: bytes) -> str:
    """SHA-256 fingerprint of a DER certificate, as ``AB:CD:...`` (what certificate tools print)."""
    return ":".join(f"{b:02X}" for b in hashlib.sha256(der).digest())


def read_certificate(path: Path) -> x509.Certificate:
    """A certificate from a PEM or DER file (whatever its file name)."""
    data = path.read_bytes()
    try:
        if data.lstrip().startswith(b"-----BEGIN"):
            return x509.load_pem_x509_certificate(data)
        return x509.load_der_x509_certificate(data)
    except ValueError:
        raise SecurityError(f"{path}: not a PEM or DER X.509 certificate") from None


def read_private_key(path: Path, password: str | None) -> PrivateKeyTypes:
    """A private key from a PEM or DER file, decrypted with ``password`` when it is encrypted."""
    data = path.read_bytes()
    secret = password.encode() if password is not None else None
    try:
        if data.lstrip().startswith(b"-----BEGIN"):
            return serialization.load_pem_private_key(data, secret)
        return serialization.load_der_private_key(data, secret)
    except (ValueError, TypeError):
        # the message of cryptography never carries the password; ours names only the file
        raise SecurityError(f"{path}: not a private key, or the key is encrypted and its password is wrong "
                            "or missing") from None


def _der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


def _key_der(key: PrivateKeyTypes) -> bytes:
    return key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _write_atomic(path: Path, data: bytes, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def own_certificate(pki_dir: Path, app_uri: str = APP_URI) -> tuple[Path, Path]:
    """This client's self-signed application instance certificate (DER) and key (PEM) under ``pki_dir/own``.

    Generated once (2048-bit RSA, valid 365 days, ``app_uri`` and this host's name in its SAN) and reused
    while it exists; regenerated when missing. Synchronous, so two devices starting at once cannot race.
    """
    cert_path, key_path = pki_dir / "own" / "plantlink.der", pki_dir / "own" / "private" / "plantlink.pem"
    if cert_path.is_file() and key_path.is_file():
        cert = read_certificate(cert_path)
        if cert.not_valid_after_utc.timestamp() > time.time() + 86400:
            return cert_path, key_path
    key = cert_gen.generate_private_key()
    host = socket.gethostname()
    cert = cert_gen.generate_self_signed_app_certificate(
        key, app_uri, {}, [x509.UniformResourceIdentifier(app_uri), x509.DNSName(host)],
        extended=[ExtendedKeyUsageOID.CLIENT_AUTH], days=365,
    )
    _write_atomic(key_path, cert_gen.dump_private_key_as_pem(key), mode=0o600)
    _write_atomic(cert_path, _der(cert))
    log.info("opcua: generated the application instance certificate %s (sha256 %s)", cert_path,
             fingerprint(_der(cert)))
    return cert_path, key_path


def _app_uri(cert: x509.Certificate) -> str | None:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return None
    uris = san.value.get_values_for_type(x509.UniformResourceIdentifier)
    return uris[0] if uris else None


def _first_cert(der: bytes) -> bytes:
    """The first certificate of a DER chain (servers may send their chain)."""
    if len(der) < 4 or der[0] != 0x30:
        return der
    n = der[1]
    if n < 0x80:
        return der[: 2 + n]
    width = n & 0x7F
    return der[: 2 + width + int.from_bytes(der[2: 2 + width], "big")]


async def configure(client: Client, cfg: OpcUaDevice, device_id: str) -> None:
    """Set the identity and (with a policy) the secure channel of ``client``; call before ``connect()``."""
    _set_identity(client, cfg)
    if cfg.security_policy == "None":
        return
    cert_path, key_path = (cfg.certificate, cfg.private_key) if cfg.certificate is not None \
        else own_certificate(cfg.pki_dir)
    assert key_path is not None  # the config pairs certificate and private_key
    cert = read_certificate(cert_path)
    password = cfg.private_key_password.get_secret_value() if cfg.private_key_password else None
    key = read_private_key(key_path, password)
    client.application_uri = _app_uri(cert) or client.application_uri
    server_der = await _server_certificate(client, cfg, device_id)
    await client.set_security(POLICIES[cfg.security_policy], _der(cert), _key_der(key),
                              server_certificate=server_der, mode=MODES[str(cfg.security_mode)])


def _set_identity(client: Client, cfg: OpcUaDevice) -> None:
    withhold_identity_tokens()
    if cfg.username is not None:
        client.set_user(cfg.username)
        if cfg.password is not None:
            client.set_password(cfg.password.get_secret_value())
    if cfg.user_certificate is not None and cfg.user_private_key is not None:
        password = cfg.user_private_key_password.get_secret_value() if cfg.user_private_key_password else None
        client.user_certificate = read_certificate(cfg.user_certificate)
        client.user_private_key = read_private_key(cfg.user_private_key, password)


async def _server_certificate(client: Client, cfg: OpcUaDevice, device_id: str) -> bytes:
    """The trusted server certificate (DER), after checking the server offers the endpoint and presents it."""
    endpoints = await client.connect_and_get_server_endpoints()
    policy_uri, mode = POLICIES[cfg.security_policy].URI, MODES[str(cfg.security_mode)]
    match = [e for e in endpoints if e.SecurityPolicyUri == policy_uri and e.SecurityMode == mode]
    if not match:
        offered = sorted({f"{e.SecurityPolicyUri.rpartition('#')[2]}/{e.SecurityMode.name}" for e in endpoints})
        raise SecurityError(f"the server offers no endpoint with security_policy {cfg.security_policy} and "
                            f"security_mode {cfg.security_mode} (it offers: {', '.join(offered) or 'none'})")
    presented = _first_cert(match[0].ServerCertificate or b"")
    if not presented:
        raise SecurityError("the server's endpoint carries no certificate")
    if cfg.server_certificate is not None:
        source, hint = cfg.server_certificate, "replace that file with the new certificate"
        trusted = _der(read_certificate(source))
    else:
        source, hint = cfg.pki_dir / "trusted" / f"{device_id}.der", "delete that file to pin the new one"
        trusted = _pin_first_use(source, presented, device_id)
    if presented != trusted:
        raise SecurityError(
            f"the server's certificate (sha256 {fingerprint(presented)}) is not the trusted one ({source}, "
            f"sha256 {fingerprint(trusted)}); connection refused. If the server's certificate was renewed "
            f"on purpose, {hint}")
    return trusted


def _pin_first_use(path: Path, presented: bytes, device_id: str) -> bytes:
    if path.is_file():
        return _der(read_certificate(path))
    _write_atomic(path, presented)
    cert = x509.load_der_x509_certificate(presented)
    log.warning("opcua device %s: trusting the server certificate presented at first use (%s, sha256 %s), "
                "pinned in %s; only it will be accepted from now on", device_id, cert.subject.rfc4514_string(),
                fingerprint(presented), path)
    return presented
