"""Transport security and user identity of the OPC UA client.

``configure(client, cfg, device_id, pki_dir)`` prepares an asyncua ``Client`` before ``connect()``:

* identity: username + password (``set_user``/``set_password``) or a user certificate + key;
* unless the device says ``security: none``: the server's endpoints are read over the discovery channel
  (which needs no security), the endpoint to use is chosen (``trust.endpoint_for``: SignAndEncrypt with
  Basic256Sha256 where offered, else the strongest offered; a server offering no security is refused), the
  certificate it presents is checked (``trust.trusted_certificate``: pinned in the model, or trusted at first
  use), and the secure channel is set up with this client's application instance certificate (given, or
  generated once under ``pki_dir/own/``) and the trusted server certificate only, so a server holding
  another key cannot complete it even if those checks were bypassed.
"""

from __future__ import annotations

import logging
from pathlib import Path

from asyncua import Client, ua

from plantlink.connectors.opcua.config import OpcUaDevice, device_warnings, redact_url
from plantlink.connectors.opcua.pki import (
    SecurityError,
    app_uri,
    der,
    fingerprint,
    first_cert,
    key_der,
    own_certificate,
    read_certificate,
    read_private_key,
)
from plantlink.connectors.opcua.trust import POLICIES, endpoint_for, policy_name, trusted_certificate

__all__ = ["SecurityError", "configure", "device_warnings", "fingerprint", "open_secure", "own_certificate_refused",
           "read_certificate", "read_private_key", "redact_url", "withhold_identity_tokens"]

log = logging.getLogger("plantlink.connectors.opcua")


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


async def configure(client: Client, cfg: OpcUaDevice, device_id: str, pki_dir: Path) -> None:
    """Set the identity and (unless ``security: none``) the secure channel of ``client``; call before
    ``connect()``. Raises SecurityError when the server offers no acceptable endpoint or certificate."""
    _set_identity(client, cfg)
    if cfg.security == "none":
        return
    endpoint = endpoint_for(await client.connect_and_get_server_endpoints(), cfg, device_id)
    server_der = _server_certificate(endpoint, cfg, device_id, pki_dir)
    password = cfg.private_key_password.get_secret_value() if cfg.private_key_password else None
    await open_secure(client, endpoint, server_der, pki_dir, cfg.certificate, cfg.private_key, password)


def _server_certificate(endpoint: ua.EndpointDescription, cfg: OpcUaDevice, device_id: str,
                              pki_dir: Path) -> bytes:
    """The certificate (DER) the secure channel is opened with: the presented one, once trusted."""
    return trusted_certificate(first_cert(endpoint.ServerCertificate or b""), cfg, pki_dir, device_id)


async def open_secure(client: Client, endpoint: ua.EndpointDescription, server_der: bytes, pki_dir: Path,
                      certificate: Path | None = None, private_key: Path | None = None,
                      password: str | None = None) -> None:
    """Set ``client`` to open its channel with ``endpoint``'s policy and mode, to the server holding
    ``server_der``'s key, with ``certificate`` + ``private_key`` (default: generated under ``pki_dir/own``)."""
    cert_path, key_path = (certificate, private_key) if certificate is not None else own_certificate(pki_dir)
    assert key_path is not None  # the config pairs certificate and private_key
    cert = read_certificate(cert_path)
    key = read_private_key(key_path, password)
    client.application_uri = app_uri(cert) or client.application_uri
    await client.set_security(POLICIES[policy_name(endpoint)], der(cert), key_der(key),
                              server_certificate=server_der, mode=endpoint.SecurityMode)


def own_certificate_refused(exc: BaseException, cfg: OpcUaDevice, pki_dir: Path) -> tuple[str, bool] | None:
    """When ``exc`` says the server refused plantlink's application certificate: (what to do, whether it is
    certain: a BadCertificate* answer) ; None for any other error. BadSecurityChecksFailed is only a maybe:
    many servers answer it for an untrusted client certificate, but not only for that."""
    if not isinstance(exc, ua.UaStatusCodeError) or cfg.security == "none":
        return None
    name = ua.StatusCode(ua.UInt32(exc.code)).name
    cert = cfg.certificate or pki_dir / "own" / "plantlink.der"
    todo = (f"trust plantlink's certificate {cert} on the server (most servers keep a refused certificate in a "
            "'rejected' folder, to be moved to 'trusted'); the next attempt then connects")
    if name.startswith("BadCertificate"):
        return f"the server refused plantlink's certificate: {todo}", True
    if name == "BadSecurityChecksFailed":
        return f"if the server does not trust plantlink's certificate yet, {todo}", False
    return None


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
