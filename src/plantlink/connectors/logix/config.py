"""Configuration models of the Logix connector: a device (a ControlLogix / CompactLogix controller) and a point."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

from plantlink.connectors.logix.address import LogixTag, parse_tag, parse_type
from plantlink.model.types import DeviceCommon, PositiveDuration


class LogixDevice(DeviceCommon):
    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str = Field(min_length=1)
    port: int = Field(default=44818, ge=1, le=65535)
    #: Backplane slot of the controller (ControlLogix: where the CPU sits; CompactLogix: 0).
    slot: int = Field(default=0, ge=0, le=31)
    #: Bytes of the connection to ask for (Large Forward Open up to 4002; 504 for older controllers); the
    #: multi-service read packets are cut to it.
    connection_size: int = Field(default=4002, ge=500, le=4002)
    timeout: PositiveDuration = 2.0
    #: Default poll period of the device's points.
    poll: PositiveDuration = 1.0
    reconnect_min: PositiveDuration = 0.5
    reconnect_max: PositiveDuration = 30.0


class LogixPoint(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    #: The tag's name in the controller: Speed, Program:Main.Speed, Counts[3], Motor.Status.Running ...
    tag: str = Field(min_length=1)
    #: BOOL, SINT, INT, DINT, LINT, USINT, UINT, UDINT, ULINT, REAL, LREAL or STRING. When given, the
    #: controller's type is checked against it (a mismatch leaves the point BAD, the reason in the health);
    #: when omitted, whatever numeric type the controller has is taken.
    type: str | None = None
    #: Poll period of this point; defaults to the device's.
    poll: PositiveDuration | None = None

    @field_validator("tag")
    @classmethod
    def _tag(cls, v: str) -> str:
        parse_tag(v)  # raises ValueError naming what was expected
        return v.strip()

    @field_validator("type")
    @classmethod
    def _type(cls, v: str | None) -> str | None:
        return None if v is None else parse_type(v)

    @property
    def location(self) -> LogixTag:
        return parse_tag(self.tag)
