"""TLS to an MQTT broker: the one settings model (``tls:``) every MQTT client of plantlink takes (the connector's
devices, ``publish:``, ``edge: central:``, ``edges: broker:``), and the one ``ssl.SSLContext`` built from it
(aiomqtt's ``tls_context=``, paho's ``tls_set_context``; docs/security.md, "MQTT over TLS").

Files are checked when the model is loaded (they exist, they are readable, they hold what is expected: the
context is built once at validation), so a wrong path or a key that does not match its certificate is a
ConfigError at ``plantlink check``, never a reconnect loop at run time. A relative path is relative to the plant
file's directory (like ``${file:...}``). ``verify: false`` must be written and is warned about at every start.
"""

from __future__ import annotations

import logging
import os
import ssl
from pathlib import Path
from socket import socket
from typing import Annotated, Any

from pydantic import BeforeValidator, ConfigDict, Field, SecretStr, ValidationInfo, field_validator, model_validator

from plantlink.model.schema_base import Strict

log = logging.getLogger("plantlink.tls")

#: The MQTT ports: plain, and TLS (IANA ``secure-mqtt``).
MQTT_PORT, MQTTS_PORT = 1883, 8883

#: What ``plantlink check`` says of ``tls: {verify: false}``.
UNVERIFIED = ("tls.verify: false: the broker's certificate is not checked: the connection is encrypted, but any "
              "server answering there is taken for the broker (and gets the password). Give tls.ca_file instead")

_WHAT = {"ca_file": "a PEM file of the CA certificate(s) that signed the broker's certificate",
         "cert_file": "a PEM file of this client's certificate (chain)",
         "key_file": "a PEM file of the private key of cert_file"}


def _scalar_to_str(value: Any) -> Any:
    """A password written as a YAML number is the string of its digits."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return value


Secret = Annotated[SecretStr, BeforeValidator(_scalar_to_str)]


class TlsSettings(Strict):
    """``tls:`` of an MQTT client. Without ``ca_file`` the broker's certificate is checked against the system's
    CA store; ``cert_file`` + ``key_file``: a client certificate (brokers with ``require_certificate``)."""

    # hide_input_in_errors: a ValidationError's text must never carry the key's password.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False, hide_input_in_errors=True)

    ca_file: str | None = Field(default=None, min_length=1)
    cert_file: str | None = Field(default=None, min_length=1)
    key_file: str | None = Field(default=None, min_length=1)
    #: The password of an encrypted ``key_file`` (never logged: ``${env:...}`` or ``${file:...}``).
    key_password: Secret | None = None
    #: The name the broker's certificate must carry, when not the host connected to (an address, a tunnel).
    server_name: str | None = Field(default=None, min_length=1, max_length=253)
    #: ``false``: any certificate is accepted (encrypted, not authenticated); warned at every start.
    verify: bool = True

    @field_validator("ca_file", "cert_file", "key_file")
    @classmethod
    def _readable(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        base = (info.context or {}).get("base_dir")
        path = Path(value).expanduser()
        if not path.is_absolute() and base is not None:
            path = Path(base) / path
        what = _WHAT[str(info.field_name)]
        if not path.exists():
            raise ValueError(f"{info.field_name} {str(path)!r} does not exist: expected {what}")
        if not path.is_file():
            raise ValueError(f"{info.field_name} {str(path)!r} is not a file: expected {what}")
        if not os.access(path, os.R_OK):
            raise ValueError(f"{info.field_name} {str(path)!r} cannot be read by this user: expected {what}, "
                             "readable by the user plantlink runs as")
        return str(path.absolute())

    @model_validator(mode="after")
    def _consistent(self) -> TlsSettings:
        if (self.cert_file is None) != (self.key_file is None):
            given, missing = ("cert_file", "key_file") if self.key_file is None else ("key_file", "cert_file")
            raise ValueError(f"tls.{given} without tls.{missing}: a client certificate needs both cert_file (the "
                             "certificate) and key_file (its private key)")
        if self.key_password is not None and self.key_file is None:
            raise ValueError("tls.key_password without tls.key_file: it is the password of the key_file's key")
        if not self.verify and self.ca_file is not None:
            raise ValueError("tls.ca_file with tls.verify: false: the CA would never be used. Remove verify: false "
                             "to check the broker's certificate against ca_file")
        client_context(self)  # a file that is no PEM, a key that does not fit: said now, not at every reconnect
        return self


def tls_switch(value: Any) -> Any:
    """``tls: true`` is ``tls: {}`` (TLS, the system's CAs); ``tls: false`` is no TLS."""
    if value is True:
        return {}
    if value is False:
        return None
    return value


class _ClientContext(ssl.SSLContext):
    """A client context that names ``server_name`` (SNI and the name checked) instead of the host connected to."""

    server_name: str | None = None

    def wrap_socket(self, sock: socket, server_side: bool = False, do_handshake_on_connect: bool = True,
                    suppress_ragged_eofs: bool = True, server_hostname: str | bytes | None = None,
                    session: ssl.SSLSession | None = None) -> ssl.SSLSocket:
        return super().wrap_socket(sock, server_side, do_handshake_on_connect, suppress_ragged_eofs,
                                   self.server_name or server_hostname, session)

    def wrap_bio(self, incoming: ssl.MemoryBIO, outgoing: ssl.MemoryBIO, server_side: bool = False,
                 server_hostname: str | bytes | None = None, session: ssl.SSLSession | None = None
                 ) -> ssl.SSLObject:
        return super().wrap_bio(incoming, outgoing, server_side, self.server_name or server_hostname, session)


def client_context(tls: TlsSettings) -> ssl.SSLContext:
    """The TLS 1.2+ client context of ``tls``: a ValueError naming the field and the file when one does not
    load."""
    ctx = _ClientContext(ssl.PROTOCOL_TLS_CLIENT)  # CERT_REQUIRED and check_hostname
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.server_name = tls.server_name
    if not tls.verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    elif tls.ca_file is not None:
        try:
            ctx.load_verify_locations(cafile=tls.ca_file)
        except (ssl.SSLError, ValueError) as exc:
            raise ValueError(f"tls.ca_file {tls.ca_file!r}: no CA certificate in it ({_reason(exc)}): expected "
                             f"{_WHAT['ca_file']}") from None
    else:
        ctx.load_default_certs()
    if tls.cert_file is not None and tls.key_file is not None:
        password = tls.key_password.get_secret_value() if tls.key_password is not None else ""
        try:  # a callable password: an encrypted key without one fails here instead of prompting on a terminal
            ctx.load_cert_chain(tls.cert_file, tls.key_file, password=lambda: password)
        except (ssl.SSLError, ValueError) as exc:
            raise ValueError(_chain_problem(tls, exc)) from None
    return ctx


def _reason(exc: BaseException) -> str:
    return str(getattr(exc, "reason", None) or exc).replace("_", " ").lower()


def _chain_problem(tls: TlsSettings, exc: BaseException) -> str:
    """What is wrong with ``cert_file`` + ``key_file`` that OpenSSL refused (it says "PEM lib" for most)."""
    reason = _reason(exc)
    key = _key_problem(tls)
    if key is not None:
        return key
    if "key values mismatch" in reason:
        return (f"tls.key_file {tls.key_file!r} is not the private key of tls.cert_file {tls.cert_file!r}: expected "
                "the key the certificate was made for")
    return (f"tls.cert_file {tls.cert_file!r} / tls.key_file {tls.key_file!r} do not load ({reason}): expected "
            f"{_WHAT['cert_file']} and {_WHAT['key_file']}")


def _key_problem(tls: TlsSettings) -> str | None:
    """The key file's own problem (not a key, encrypted without the right password), or None."""
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    assert tls.key_file is not None
    password = tls.key_password.get_secret_value().encode() if tls.key_password is not None else None
    try:
        load_pem_private_key(Path(tls.key_file).read_bytes(), password)
    except TypeError:  # encrypted and no password, or a password for a key that is not encrypted
        if password is None:
            return f"tls.key_file {tls.key_file!r} is encrypted and tls.key_password is missing"
        return None
    except ValueError as exc:
        if "decrypt" in str(exc).lower() or "password" in str(exc).lower():
            return f"tls.key_file {tls.key_file!r} is encrypted and tls.key_password is wrong"
        return f"tls.key_file {tls.key_file!r} holds no private key in PEM: expected {_WHAT['key_file']}"
    except OSError as exc:
        return f"tls.key_file {tls.key_file!r} cannot be read: {exc.strerror}"
    return None


def start_context(tls: TlsSettings | None, what: str) -> ssl.SSLContext | None:
    """The context of a client that starts (None: plain MQTT); ``verify: false`` is logged as a warning, naming
    ``what`` (``mqtt device broker``, ``publisher``, ...)."""
    if tls is None:
        return None
    if not tls.verify:
        log.warning("%s: TLS without certificate verification (tls.verify: false in the plant model): the "
                    "connection is encrypted, but any server is accepted as the broker", what)
    return client_context(tls)


_HINTS = (("certificate verify failed", "the broker's certificate is not trusted: is tls.ca_file the CA that signed "
                                        "it, and does it name the host (or tls.server_name)?"),
          ("certificate required", "the broker wants a client certificate: give tls.cert_file and tls.key_file"),
          ("unknown ca", "the broker does not trust this client's certificate (tls.cert_file): is it signed by "
                         "the broker's CA?"),
          ("wrong version number", "is the broker's port a TLS listener (8883)? it does not answer TLS"))


def explain(error: object) -> str:
    """An MQTT client's connection error, with what to check when it is a TLS failure."""
    text = str(error)
    low = text.lower()
    if "(tls: " in low:  # explained already
        return text
    hint = next((h for key, h in _HINTS if key in low), None)
    return f"{text} (TLS: {hint})" if hint else text
