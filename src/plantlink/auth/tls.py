"""TLS for the web server: an ``ssl.SSLContext`` or uvicorn arguments for a certificate and key, or a
self-signed certificate generated under the data directory for ``--tls`` without one."""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import socket
import ssl
from pathlib import Path

from plantlink.errors import AuthError

TLS_DIR = "tls"
RENEW_BEFORE = dt.timedelta(days=30)


def ssl_context(cert: str | Path, key: str | Path) -> ssl.SSLContext:
    """A server context (TLS 1.2+) for ``cert`` + ``key``; a clear error when they are missing or don't match."""
    for what, path in (("certificate", cert), ("key", key)):
        if not Path(path).is_file():
            raise AuthError(f"TLS {what} file not found: {path}")
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        ctx.load_cert_chain(str(cert), str(key))
    except ssl.SSLError as exc:
        raise AuthError(f"cannot use TLS certificate {cert} with key {key}: {exc.reason or exc}") from None
    return ctx


def uvicorn_ssl_args(cert: str | Path, key: str | Path) -> dict[str, str]:
    """Keyword arguments for ``uvicorn.Config`` (checked first with ``ssl_context``)."""
    ssl_context(cert, key)
    return {"ssl_certfile": str(cert), "ssl_keyfile": str(key)}


def self_signed(data_dir: str | Path, hostnames: tuple[str, ...] = ("localhost",), days: int = 825) -> tuple[
        Path, Path]:
    """``data_dir/tls/{cert,key}.pem``: reused while valid for 30 more days, else (re)generated (EC P-256,
    key file 0600). Covers ``hostnames``, this machine's name, 127.0.0.1 and ::1."""
    d = Path(data_dir) / TLS_DIR
    d.mkdir(parents=True, exist_ok=True)
    cert, key = d / "cert.pem", d / "key.pem"
    if cert.is_file() and key.is_file() and _still_valid(cert):
        return cert, key
    _generate(cert, key, (*hostnames, socket.gethostname()), days)
    return cert, key


def tls_args(data_dir: str | Path, cert: str | Path | None = None, key: str | Path | None = None) -> dict[str, str]:
    """uvicorn arguments for ``--tls``: the given certificate and key, or the self-signed one."""
    if (cert is None) != (key is None):
        raise AuthError("give both a TLS certificate and its key, or neither (self-signed)")
    if cert is None or key is None:
        cert, key = self_signed(data_dir)
    return uvicorn_ssl_args(cert, key)


def _still_valid(cert: Path) -> bool:
    from cryptography import x509

    try:
        c = x509.load_pem_x509_certificate(cert.read_bytes())
    except ValueError:
        return False
    return c.not_valid_after_utc - RENEW_BEFORE > dt.datetime.now(dt.UTC)


def _generate(cert_path: Path, key_path: Path, hostnames: tuple[str, ...], days: int) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostnames[0]),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "plantlink (self-signed)")])
    alt: list[x509.GeneralName] = [x509.DNSName(h) for h in dict.fromkeys(hostnames) if h]
    alt += [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.IPAddress(ipaddress.ip_address("::1"))]
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=days))
            .add_extension(x509.SubjectAlternativeName(alt), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    pem_key = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    tmp = key_path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem_key)
    os.chmod(tmp, 0o600)
    os.replace(tmp, key_path)
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
