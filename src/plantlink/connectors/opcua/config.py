"""Configuration models of the OPC UA connector: a server endpoint (with its security) and a point (a node)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, SecretStr, ValidationInfo, field_validator

from plantlink.model.types import DeviceCommon, Duration, PositiveDuration

#: Security policies of the secure channel (names as in the OPC UA specification).
SecurityPolicyName = Literal["None", "Basic256Sha256", "Aes128_Sha256_RsaOaep", "Aes256_Sha256_RsaPss"]
SecurityModeName = Literal["None", "Sign", "SignAndEncrypt"]


def _scalar_to_str(value: Any) -> Any:
    """A password written as a YAML number (``password: 1234``) is the string of its digits."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return value


#: A secret string: its repr and JSON dump show ``**********``; a YAML number is taken as its text.
Secret = Annotated[SecretStr, BeforeValidator(_scalar_to_str)]


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
    security_policy: SecurityPolicyName = "None"
    #: ``None`` when no policy is set, else ``SignAndEncrypt`` unless given.
    security_mode: SecurityModeName | None = Field(default=None, validate_default=True)
    #: This client's application instance certificate and private key (PEM or DER); generated under
    #: ``pki_dir`` when a policy is set and they are not given.
    certificate: Path | None = None
    private_key: Path | None = Field(default=None, validate_default=True)
    private_key_password: Secret | None = None
    #: The server's certificate to trust (PEM or DER): only a server presenting exactly it is accepted.
    server_certificate: Path | None = None
    #: ``first_use``: without ``server_certificate``, pin the certificate the server presents at the first
    #: connection (stored under ``pki_dir/trusted/``) and accept only it afterwards.
    trust_server: Literal["certificate", "first_use"] = Field(default="certificate", validate_default=True)
    #: Where generated certificates and pinned server certificates are kept (relative: to the working directory).
    pki_dir: Path = Path("pki")
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

    @field_validator("security_mode")
    @classmethod
    def _mode(cls, value: SecurityModeName | None, info: ValidationInfo) -> SecurityModeName:
        if "security_policy" not in info.data:
            return value or "None"  # the policy itself is invalid; already reported
        policy = info.data["security_policy"]
        if value is None:
            return "None" if policy == "None" else "SignAndEncrypt"
        if value != "None" and policy == "None":
            raise ValueError(f"security_mode {value} needs a security_policy "
                             "(Basic256Sha256, Aes128_Sha256_RsaOaep or Aes256_Sha256_RsaPss)")
        if value == "None" and policy != "None":
            raise ValueError(f"security_policy {policy} needs security_mode Sign or SignAndEncrypt, not None")
        return value

    @field_validator("certificate", "server_certificate", "user_certificate")
    @classmethod
    def _files(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        if value is not None and info.data.get("security_policy", "None") == "None" \
                and info.field_name != "user_certificate":
            raise ValueError(f"{info.field_name} is used only with a security_policy (none is set)")
        return _existing_file(value, info)

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
    def _trust(cls, value: str, info: ValidationInfo) -> str:
        policy = info.data.get("security_policy", "None")
        if policy == "None" or "server_certificate" not in info.data:
            return value
        pinned = info.data["server_certificate"] is not None
        if value == "first_use" and pinned:
            raise ValueError("trust_server: first_use and server_certificate exclude each other; keep one")
        if value == "certificate" and not pinned:
            raise ValueError(f"security_policy {policy} needs server_certificate: the server's certificate file "
                             "to trust (or trust_server: first_use to pin the certificate the server presents "
                             "at the first connection)")
        return value

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


class OpcUaPoint(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    #: The node id as OPC UA writes it: ``ns=2;s=Oven.Zone1.Temp`` or ``ns=2;i=1042``.
    node: str = Field(min_length=1)
    #: Sampling interval of this node; defaults to the device's.
    sampling_interval: Duration | None = Field(default=None, ge=0)

    @field_validator("node")
    @classmethod
    def _node(cls, value: str) -> str:
        from asyncua import ua

        try:
            ua.NodeId.from_string(value)
        except Exception:
            raise ValueError(f"not an OPC UA node id: {value!r} (expected like ns=2;s=Name or ns=2;i=1042)") from None
        return value
