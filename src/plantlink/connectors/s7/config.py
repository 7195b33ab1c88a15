"""Configuration models of the S7 connector: a device (an S7-300/400/1200/1500 CPU) and a point."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

from plantlink.connectors.s7.address import S7Address, parse_address
from plantlink.model.types import DeviceCommon, PositiveDuration


class S7Device(DeviceCommon):
    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str = Field(min_length=1)
    port: int = Field(default=102, ge=1, le=65535)
    rack: int = Field(default=0, ge=0, le=7)
    #: 2 for an S7-300, 1 (or 0) for an S7-1200/1500 and most S7-400 set-ups.
    slot: int = Field(default=1, ge=0, le=31)
    #: PDU size to ask for; the CPU answers with what it allows (240 on an S7-300/1200, 480/960 on others).
    pdu_size: int = Field(default=480, ge=240, le=960)
    timeout: PositiveDuration = 2.0
    #: Default poll period of the device's points.
    poll: PositiveDuration = 1.0
    #: Unused bytes a read may span to join two neighbouring points of one area into one item.
    max_gap: int = Field(default=32, ge=0, le=200)
    reconnect_min: PositiveDuration = 0.5
    reconnect_max: PositiveDuration = 30.0


class S7Point(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    #: S7 notation: DB10.DBD4, DB10.DBX6.3, MW20, I0.1, QB2 ...
    address: str = Field(min_length=1)
    #: BOOL, BYTE, SINT, USINT, CHAR, INT, UINT, WORD, DINT, UDINT, DWORD, REAL, LREAL, STRING[n]; by default
    #: from the address' width letter (X: BOOL, B: BYTE, W: INT, D: DINT).
    type: str | None = None
    #: Poll period of this point; defaults to the device's.
    poll: PositiveDuration | None = None

    @model_validator(mode="after")
    def _parse(self) -> S7Point:
        parse_address(self.address, self.type)  # raises ValueError naming what was expected
        return self

    @property
    def location(self) -> S7Address:
        return parse_address(self.address, self.type)
