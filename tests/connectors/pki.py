"""Certificates for the TLS tests, made at test time with ``cryptography`` in a temporary directory (no key is
ever committed): a CA, a server certificate for 127.0.0.1 and localhost signed by it, a client certificate signed
by it, its key encrypted too, and another CA that signed nothing the broker shows (the "wrong CA")."""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

KEY_PASSWORD = "k3y-Pa55-for-tests"


@dataclass(frozen=True)
class Pki:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    #: ``client_key`` encrypted with ``KEY_PASSWORD``
    client_key_encrypted: Path
    #: a CA that signed neither the server's nor the client's certificate
    other_ca: Path
    #: a client certificate and key signed by ``other_ca`` (the broker does not trust it)
    stranger_cert: Path
    stranger_key: Path


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _cert(subject: str, key: ec.EllipticCurvePrivateKey, issuer: tuple[str, ec.EllipticCurvePrivateKey] | None,
          ca: bool = False, server: bool = False) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    issuer_name, issuer_key = (subject, key) if issuer is None else issuer
    b = (x509.CertificateBuilder().subject_name(_name(subject)).issuer_name(_name(issuer_name))
         .public_key(key.public_key()).serial_number(x509.random_serial_number())
         .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=2))
         .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if ca:
        b = b.add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                          content_commitment=False, key_encipherment=False, data_encipherment=False,
                                          key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
        b = b.add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    else:
        usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
        b = b.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        b = b.add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
                            critical=False)
    if server:
        b = b.add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                         x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                            critical=False)
    return b.sign(issuer_key, hashes.SHA256())


def _write(path: Path, cert: x509.Certificate | None = None, key: ec.EllipticCurvePrivateKey | None = None,
           password: str | None = None) -> Path:
    if cert is not None:
        path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    if key is not None:
        enc: serialization.KeySerializationEncryption = (
            serialization.BestAvailableEncryption(password.encode()) if password else serialization.NoEncryption())
        path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, enc))
    return path


def make_pki(folder: Path) -> Pki:
    folder.mkdir(parents=True, exist_ok=True)
    keys = {n: ec.generate_private_key(ec.SECP256R1()) for n in ("ca", "server", "client", "other", "stranger")}
    ca = _cert("plantlink test CA", keys["ca"], None, ca=True)
    other = _cert("another CA", keys["other"], None, ca=True)
    return Pki(
        ca=_write(folder / "ca.pem", ca),
        server_cert=_write(folder / "server.pem", _cert("broker", keys["server"], ("plantlink test CA", keys["ca"]),
                                                        server=True)),
        server_key=_write(folder / "server.key", key=keys["server"]),
        client_cert=_write(folder / "client.pem", _cert("plantlink", keys["client"],
                                                        ("plantlink test CA", keys["ca"]))),
        client_key=_write(folder / "client.key", key=keys["client"]),
        client_key_encrypted=_write(folder / "client-encrypted.key", key=keys["client"], password=KEY_PASSWORD),
        other_ca=_write(folder / "other-ca.pem", other),
        stranger_cert=_write(folder / "stranger.pem", _cert("stranger", keys["stranger"],
                                                            ("another CA", keys["other"]))),
        stranger_key=_write(folder / "stranger.key", key=keys["stranger"]),
    )
