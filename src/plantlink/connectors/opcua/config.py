"""Configuration models of the OPC UA connector: a server endpoint and a point (a node)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

from plantlink.model.types import Duration, PositiveDuration


class OpcUaDevice(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

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

    @field_validator("endpoint")
    @classmethod
    def _endpoint(cls, value: str) -> str:
        if not value.startswith("opc.tcp://"):
            raise ValueError(f"expected an endpoint URL like opc.tcp://host:4840/path, got {value!r}")
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
