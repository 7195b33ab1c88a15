"""Certificates and keys of the OPC UA client: reading them, fingerprints, and the files plantlink keeps.

Everything plantlink writes under its ``pki`` folder (its own certificate and key, the server certificates
trusted at first use) is created readable by its owner only: files 0600, folders 0700.
"""

from __future__ import annotations

import hashlib
import logging
import os
import socket
import tempfile
import time
from pathlib import Path

from asyncua.crypto import cert_gen
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID

from plantlink.errors import ConnectorError

log = logging.getLogger("plantlink.connectors.opcua")

#: Application URI of plantlink's generated certificate (the URI must be in the certificate's SAN).
APP_URI = f"urn:{socket.gethostname()}:plantlink"


class SecurityError(ConnectorError):
    """The server's security does not match the configuration (no such endpoint, untrusted certificate)."""


def fingerprint(der: bytes) -> str:
    """SHA-256 fingerprint of a DER certificate, as ``AB:CD:...`` (what certificate tools print)."""
    return ":".join(f"{b:02X}" for b in hashlib.sha256(der).digest())


def subject(der: bytes) -> str:
    """The subject of a DER certificate, as ``CN=...,O=...``."""
    try:
        return x509.load_der_x509_certificate(der).subject.rfc4514_string() or "no subject"
    except ValueError:
        return "not a valid X.509 certificate"


def describe(der: bytes) -> str:
    """``sha256 AB:CD:..., CN=...``: how messages name a certificate."""
    return f"sha256 {fingerprint(der)}, {subject(der)}"


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


def der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


def key_der(key: PrivateKeyTypes) -> bytes:
    return key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def first_cert(chain: bytes) -> bytes:
    """The first certificate of a DER chain (servers may send their chain)."""
    if len(chain) < 4 or chain[0] != 0x30:
        return chain
    n = chain[1]
    if n < 0x80:
        return chain[: 2 + n]
    width = n & 0x7F
    return chain[: 2 + width + int.from_bytes(chain[2: 2 + width], "big")]


def private_dir(path: Path) -> None:
    """Create ``path`` and its missing parents with mode 0700 (existing folders are left as they are)."""
    missing = [p for p in (path, *path.parents) if not p.exists()]
    for folder in reversed(missing):
        folder.mkdir(mode=0o700, exist_ok=True)
        folder.chmod(0o700)  # mkdir's mode is masked by the umask


def write_private(path: Path, data: bytes) -> None:
    """Write ``path`` atomically, mode 0600, creating missing folders 0700."""
    private_dir(path.parent)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, 0o600)
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
    write_private(key_path, cert_gen.dump_private_key_as_pem(key))
    write_private(cert_path, der(cert))
    log.info("opcua: generated the application instance certificate %s (sha256 %s)", cert_path,
             fingerprint(der(cert)))
    return cert_path, key_path


def app_uri(cert: x509.Certificate) -> str | None:
    """The application URI in a certificate's subject alternative names."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return None
    uris = san.value.get_values_for_type(x509.UniformResourceIdentifier)
    return uris[0] if uris else None
