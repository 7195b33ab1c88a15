"""Which endpoint of an OPC UA server to use, and whether to trust the certificate the server presents.

Endpoint (``choose_endpoint``): among what the server offers, SignAndEncrypt comes before Sign, and within a
mode Basic256Sha256 (the policy current servers implement) before Aes256_Sha256_RsaPss before
Aes128_Sha256_RsaOaep. None and the deprecated Basic128Rsa15 and Basic256 are never chosen: a server that
offers nothing else is refused unless the device says ``security: none``.

Certificate (``trusted_certificate``): the presented certificate is accepted when it is the one pinned in the
plant model (``server_certificate``: its SHA-256 fingerprint or the certificate file) or, without a pin, the
one recorded at the device's first connection (``pki_dir/trusted/<device>.der``, written 0600 and logged
once with the line that pins it). Any other certificate raises SecurityError. The secure channel is then
opened with the trusted certificate only, so a server without its private key cannot complete it.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Sequence
from pathlib import Path

from asyncua import ua
from asyncua.crypto import security_policies

from plantlink.connectors.opcua.config import OpcUaDevice
from plantlink.connectors.opcua.pki import SecurityError, der, describe, fingerprint, read_certificate, write_private

log = logging.getLogger("plantlink.connectors.opcua")

POLICIES: dict[str, type[security_policies.SecurityPolicy]] = {
    "Basic256Sha256": security_policies.SecurityPolicyBasic256Sha256,
    "Aes128_Sha256_RsaOaep": security_policies.SecurityPolicyAes128Sha256RsaOaep,
    "Aes256_Sha256_RsaPss": security_policies.SecurityPolicyAes256Sha256RsaPss,
}
#: The order in which offered (mode, policy) pairs are chosen.
RANKING = [(mode, policy) for mode in ("SignAndEncrypt", "Sign")
           for policy in ("Basic256Sha256", "Aes256_Sha256_RsaPss", "Aes128_Sha256_RsaOaep")]

_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")


def policy_name(ep: ua.EndpointDescription) -> str:
    return str(ep.SecurityPolicyUri).rpartition("#")[2]


def mode_name(ep: ua.EndpointDescription) -> str:
    return str(ep.SecurityMode.name).rstrip("_")  # MessageSecurityMode.None_ is "None"


def offered(endpoints: Sequence[ua.EndpointDescription]) -> str:
    """``Basic256Sha256/SignAndEncrypt, None/None``: what a server offers, sorted."""
    return ", ".join(sorted({f"{policy_name(e)}/{mode_name(e)}" for e in endpoints})) or "nothing"


def choose_endpoint(endpoints: Sequence[ua.EndpointDescription], policy: str = "auto",
                    mode: str | None = None) -> ua.EndpointDescription | None:
    """The best offered endpoint (see the module's doc) with ``policy`` (unless ``auto``) and ``mode`` (unless
    None), or None when the server offers no such endpoint."""
    for m, p in RANKING:
        if (policy != "auto" and p != policy) or (mode is not None and m != mode):
            continue
        hit = next((e for e in endpoints if policy_name(e) == p and mode_name(e) == m), None)
        if hit is not None:
            return hit
    return None


def endpoint_for(endpoints: Sequence[ua.EndpointDescription], cfg: OpcUaDevice,
                 device_id: str) -> ua.EndpointDescription:
    """The endpoint ``cfg`` asks for, or SecurityError saying what the server offers and what to do."""
    chosen = choose_endpoint(endpoints, cfg.security_policy, cfg.security_mode)
    if chosen is not None:
        return chosen
    if cfg.security_policy == "auto" and cfg.security_mode is None:
        raise SecurityError(
            f"device {device_id}: the server offers no secure endpoint (it offers: {offered(endpoints)}); "
            "connection refused. Enable Basic256Sha256 with SignAndEncrypt on the server, or, to connect "
            "without security, write security: none under the device in the plant model")
    policy = "any policy" if cfg.security_policy == "auto" else f"security_policy {cfg.security_policy}"
    mode = cfg.security_mode or "SignAndEncrypt or Sign"
    raise SecurityError(f"device {device_id}: the server offers no endpoint with {policy} and security_mode "
                        f"{mode} (it offers: {offered(endpoints)})")


def record_path(pki_dir: Path, device_id: str) -> Path:
    """Where the certificate trusted at ``device_id``'s first connection is recorded."""
    name = device_id
    if not _SAFE_NAME.fullmatch(device_id):  # a device id is any YAML key: keep it inside the folder
        digest = hashlib.sha256(device_id.encode()).hexdigest()[:12]
        name = f"{re.sub(r'[^A-Za-z0-9_.-]', '_', device_id)[:60].lstrip('.')}-{digest}"
    return pki_dir / "trusted" / f"{name}.der"


def trusted_certificate(presented: bytes, cfg: OpcUaDevice, pki_dir: Path, device_id: str) -> bytes:
    """``presented`` (DER) when the device trusts it (pinned, or recorded at first use), else SecurityError."""
    if not presented:
        raise SecurityError(f"device {device_id}: the server's endpoint carries no certificate")
    seen = describe(presented)
    pin = cfg.server_fingerprint
    if pin is not None:
        if fingerprint(presented) != pin:
            raise SecurityError(
                f"device {device_id}: the server's certificate ({seen}) is not the one pinned in the plant model "
                f"(server_certificate: sha256:{pin}); connection refused. If the server's certificate was renewed "
                "on purpose, check the new fingerprint on the server, then pin it")
        return presented
    if cfg.server_certificate is not None:
        source, hint = Path(cfg.server_certificate), "replace that file with the new certificate"
        trusted = der(read_certificate(source))
        what = "the trusted one"
    else:
        source = record_path(pki_dir, device_id)
        hint = "delete that file to trust the new one at the next connection, or pin it in the plant model"
        trusted = _first_use(source, presented, device_id)
        what = "the one trusted at first use"
    if presented != trusted:
        raise SecurityError(
            f"device {device_id}: the server's certificate ({seen}) is not {what} ({source}, "
            f"sha256 {fingerprint(trusted)}); connection refused. If the server's certificate was renewed on "
            f"purpose, {hint}")
    return trusted


def _first_use(path: Path, presented: bytes, device_id: str) -> bytes:
    if path.is_file():
        return der(read_certificate(path))
    write_private(path, presented)
    log.warning("opcua device %s: trusting the server certificate presented at first use (%s), recorded in %s; "
                "only it will be accepted from now on. Check the fingerprint on the server, then pin it in the "
                "plant model under the device: server_certificate: sha256:%s", device_id, describe(presented),
                path, fingerprint(presented))
    return presented
