"""An MQTT broker named by URL (``publish:``, ``edge: central:``, ``edges: broker:``): ``mqtt://host[:port]``
(port 1883) or ``mqtts://host[:port]`` (TLS, port 8883, with the options of ``tls:``; docs/security.md)."""

from __future__ import annotations

import ssl
from urllib.parse import urlsplit

from pydantic import ConfigDict, Field, field_validator, model_validator

from plantlink.model.schema_base import Strict
from plantlink.model.tls import MQTT_PORT, MQTTS_PORT, Secret, TlsSettings, start_context

_EXPECTED = "expected mqtt://host[:port] or, for TLS, mqtts://host[:port]"


def check_broker_url(value: str) -> str:
    """``mqtt://host[:port]`` or ``mqtts://host[:port]``, or a ValueError saying what is expected."""
    parts = urlsplit(value)
    if parts.scheme not in ("mqtt", "mqtts"):
        raise ValueError(f"broker {value!r}: {_EXPECTED}")
    try:
        port = parts.port
    except ValueError:
        raise ValueError(f"broker {value!r}: the port is not a number from 1 to 65535") from None
    if not parts.hostname or port == 0 or parts.path not in ("", "/") or parts.username or parts.query:
        raise ValueError(f"broker {value!r}: {_EXPECTED}, credentials in username/password")
    return value


class UrlBroker(Strict):
    """The connection settings every URL-named broker takes; TLS is on with ``mqtts://``."""

    # hide_input_in_errors: a ValidationError's text must never carry a password.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False, hide_input_in_errors=True)

    mqtt: str = Field(min_length=1)
    username: str | None = None
    password: Secret | None = None
    keepalive: int = Field(default=30, ge=5, le=3600)
    #: TLS options of an ``mqtts://`` broker (default: the system's CAs, no client certificate).
    tls: TlsSettings | None = None

    @field_validator("mqtt")
    @classmethod
    def _url(cls, value: str) -> str:
        return check_broker_url(value)

    @model_validator(mode="after")
    def _tls_needs_mqtts(self) -> UrlBroker:
        if self.tls is not None and not self.secure:
            raise ValueError(f"tls: options for a TLS connection, but the broker {self.mqtt!r} is plain MQTT: "
                             "write mqtts://host[:port] to connect with TLS (port 8883 by default), or remove tls")
        return self

    @property
    def secure(self) -> bool:
        return urlsplit(self.mqtt).scheme == "mqtts"

    @property
    def host(self) -> str:
        return urlsplit(self.mqtt).hostname or ""

    @property
    def port(self) -> int:
        return urlsplit(self.mqtt).port or (MQTTS_PORT if self.secure else MQTT_PORT)

    @property
    def tls_settings(self) -> TlsSettings | None:
        """The TLS settings in force: None for ``mqtt://``, ``tls`` or the defaults for ``mqtts://``."""
        return (self.tls or TlsSettings()) if self.secure else None

    def tls_context(self, what: str) -> ssl.SSLContext | None:
        """The context a client of this broker connects with (None: plain MQTT); logs ``verify: false``."""
        return start_context(self.tls_settings, what)
