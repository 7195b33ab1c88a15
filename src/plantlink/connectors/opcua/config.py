"""Configuration models of the OPC UA connector: a server endpoint (with its security) and a point (a node)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, SecretStr, ValidationInfo, field_validator

from plantlink.connectors.opcua.nodeid import parse_node_id
from plantlink.model.types import DeviceCommon, Duration, PositiveDuration

#: Security policies of the secure channel (names as in the OPC UA specification); ``auto``: the strongest the
#: server offers (see ``trust.choose_endpoint``).
SecurityPolicyName = Literal["auto", "Basic256Sha256", "Aes128_Sha256_RsaOaep", "Aes256_Sha256_RsaPss"]
SecurityModeName = Literal["Sign", "SignAndEncrypt"]

_FINGERPRINT_PREFIX = "sha256:"


def _scalar_to_str(value: Any) -> Any:
    """A password written as a YAML number (``password: 1234``) is the string of its digits."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return value


#: A secret string: its repr and JSON dump show ``**********``; a YAML number is taken as its text.
Secret = Annotated[SecretStr, BeforeValidator(_scalar_to_str)]


def _fingerprint(text: str) -> str:
    """``AB:CD:...`` (upper case) from a SHA-256 fingerprint written with or without colons or spaces."""
    digits = "".join(ch for ch in text if ch not in ": ")
    try:
        raw = bytes.fromhex(digits)
    except ValueError:
        raw = b""
    if len(raw) != 32:
        raise ValueError(f"not a SHA-256 fingerprint: {text!r} (a SHA-256 fingerprint is 32 bytes in hex, "
                         "like AB:CD:...:EF, as plantlink browse prints it)")
    return ":".join(f"{b:02X}" for b in raw)


def _existing_file(value: Path | None, info: ValidationInfo) -> Path | None:
    if value is not None and not value.is_file():
        where = "" if value.is_absolute() else f" (relative to the working directory {Path.cwd()})"
        raise ValueError(f"{info.field_name}: file not found: {value}{where}")
    return value


class OpcUaDevice(DeviceCommon):
    # hide_input_in_errors: a ValidationError's text must never carry a password.
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    endpoint: str
    timeout: PositiveDuration = 4.0
    #: How often the server sends the changes it collected (the subscription's publishing interval).
    publishing_interval: PositiveDuration = 0.5
    #: Default sampling interval of the device's points.
    sampling_interval: Duration = Field(default=1.0, ge=0)
    reconnect_min: PositiveDuration = 0.5
    reconnect_max: PositiveDuration = 30.0
    #: How often the connection is probed (a read of the server's state); a failed probe means the server is lost.
    watchdog_interval: PositiveDuration = 1.0
    #: Longest quiet time of the subscription: the server sends a keep-alive at least this often, and a
    #: subscription silent for three times this long is treated as lost.
    keepalive: PositiveDuration = 10.0

    # -- transport security (see docs/plant-model.md "OPC UA security"; the order of the fields matters:
    # each validator sees the fields above it) --
    #: ``required``: signed and encrypted where the server offers it, else signed; a server offering neither is
    #: refused. ``none`` (only when written): no security at all; ``plantlink check`` warns about it.
    security: Literal["required", "none"] = "required"
    security_policy: SecurityPolicyName = "auto"
    #: ``None``: SignAndEncrypt where the server offers it (with the policy above), else Sign.
    security_mode: SecurityModeName | None = None
    #: This client's application instance certificate and private key (PEM or DER); generated under
    #: ``pki_dir`` when not given.
    certificate: Path | None = None
    private_key: Path | None = Field(default=None, validate_default=True)
    private_key_password: Secret | None = None
    #: The server's certificate to trust: its SHA-256 fingerprint (``sha256:AB:CD:...``, as ``plantlink browse``
    #: prints it) or a certificate file (PEM or DER). Only a server presenting exactly it is accepted.
    server_certificate: str | None = None
    #: ``first_use`` (the default without ``server_certificate``): trust the certificate the server presents at
    #: the first connection, recorded under ``pki_dir/trusted/``, and accept only it afterwards.
    #: ``certificate``: require ``server_certificate``.
    trust_server: Literal["certificate", "first_use"] | None = Field(default=None, validate_default=True)
    #: Where generated certificates and first-use records are kept; default: ``pki`` under the data directory.
    pki_dir: Path | None = None
    # -- user identity: anonymous (default), username + password, or a user certificate + key --
    username: str | None = Field(default=None, min_length=1)
    password: Secret | None = Field(default=None, validate_default=True)
    user_certificate: Path | None = None
    user_private_key: Path | None = Field(default=None, validate_default=True)
    user_private_key_password: Secret | None = None

    @field_validator("endpoint", mode="before")
    @classmethod
    def _endpoint(cls, value: Any) -> Any:
        # mode="before": the raw input, so that a secret reference's value stays masked in the message
        if isinstance(value, str) and not value.startswith("opc.tcp://"):
            raise ValueError(f"expected an endpoint URL like opc.tcp://host:4840/path, got {value!r}")
        return value

    @field_validator("security", mode="before")
    @classmethod
    def _security(cls, value: Any) -> Any:
        return value.lower() if isinstance(value, str) else value

    @field_validator("security_policy", "security_mode", mode="before")
    @classmethod
    def _not_none(cls, value: Any, info: ValidationInfo) -> Any:
        if isinstance(value, str) and value.lower() == "none":
            raise ValueError(f"{info.field_name} {value}: to connect without security write security: none "
                             "(an explicit choice; plantlink check warns about it)")
        return value

    @field_validator("security_policy", "security_mode", "certificate", "server_certificate")
    @classmethod
    def _secured_only(cls, value: Any, info: ValidationInfo) -> Any:
        default = cls.model_fields[str(info.field_name)].default
        if value != default and info.data.get("security") == "none":
            raise ValueError(f"{info.field_name} is used only with security: required (this device has "
                             "security: none)")
        return value

    @field_validator("certificate", "user_certificate")
    @classmethod
    def _files(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        return _existing_file(value, info)

    @field_validator("server_certificate")
    @classmethod
    def _server_certificate(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        if value.lower().startswith(_FINGERPRINT_PREFIX):
            return _FINGERPRINT_PREFIX + _fingerprint(value[len(_FINGERPRINT_PREFIX):])
        _existing_file(Path(value), info)
        return value

    @field_validator("private_key", "user_private_key")
    @classmethod
    def _keys(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        cert = "certificate" if info.field_name == "private_key" else "user_certificate"
        if cert not in info.data:
            return value  # the certificate itself is invalid; already reported
        if value is None and info.data[cert] is not None:
            raise ValueError(f"{cert} needs its {info.field_name} (the key file of the certificate)")
        if value is not None and info.data[cert] is None:
            raise ValueError(f"{info.field_name} needs its {cert}")
        return _existing_file(value, info)

    @field_validator("trust_server")
    @classmethod
    def _trust(cls, value: str | None, info: ValidationInfo) -> str | None:
        if info.data.get("security") == "none":
            if value is not None:
                raise ValueError("trust_server is used only with security: required (this device has security: none)")
            return None
        if "server_certificate" not in info.data:
            return value  # server_certificate itself is invalid; already reported
        pinned = info.data["server_certificate"] is not None
        if value == "first_use" and pinned:
            raise ValueError("trust_server: first_use and server_certificate exclude each other; keep one")
        if value == "certificate" and not pinned:
            raise ValueError("trust_server: certificate needs server_certificate: the server's certificate "
                             "fingerprint (sha256:..., printed by plantlink browse) or certificate file")
        return value or ("certificate" if pinned else "first_use")

    @field_validator("password")
    @classmethod
    def _password(cls, value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        if value is not None and info.data.get("username") is None and "username" in info.data:
            raise ValueError("password needs a username")
        return value

    @field_validator("user_certificate")
    @classmethod
    def _one_identity(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        if value is not None and info.data.get("username") is not None:
            raise ValueError("choose one user identity: username + password or user_certificate, not both")
        return value

    @property
    def server_fingerprint(self) -> str | None:
        """The pinned fingerprint (``AB:CD:...``) when ``server_certificate`` is one, else None."""
        pin = self.server_certificate
        return pin[len(_FINGERPRINT_PREFIX):] if pin is not None and pin.startswith(_FINGERPRINT_PREFIX) else None


class OpcUaPoint(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    #: The node id as OPC UA writes it: ``ns=2;s=Oven.Zone1.Temp`` or ``ns=2;i=1042``.
    node: str = Field(min_length=1)
    #: Sampling interval of this node; defaults to the device's.
    sampling_interval: Duration | None = Field(default=None, ge=0)

    @field_validator("node")
    @classmethod
    def _node(cls, value: str) -> str:
        try:
            parse_node_id(value)
        except ValueError:
            raise ValueError(f"not an OPC UA node id: {value!r} (expected like ns=2;s=Name or ns=2;i=1042)") from None
        return value


def redact_url(url: str) -> str:
    """``url`` without the user and password an ``opc.tcp://user:pass@host`` URL may carry."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc="***@" + parts.netloc.rpartition("@")[2]))


def device_warnings(cfg: BaseModel) -> list[tuple[str, str]]:
    """What ``plantlink check`` warns about in a device's settings: ``security: none``."""
    if not isinstance(cfg, OpcUaDevice) or cfg.security != "none":
        return []
    password = "; the user's password too, unless the server encrypts it" if cfg.username else ""
    return [("security", f"security: none: values and writes travel neither signed nor encrypted{password}, and "
                         f"any server answering at {redact_url(cfg.endpoint)} is accepted. Remove it to require "
                         "security (SignAndEncrypt with Basic256Sha256 where the server offers it)")]
