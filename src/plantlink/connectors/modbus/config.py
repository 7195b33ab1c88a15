"""Configuration models of the Modbus TCP connector: a device (a PLC or gateway) and a point (a tag's source)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from plantlink.model.types import DeviceCommon, PositiveDuration

Table = Literal["holding", "input", "coil", "discrete"]
RegType = Literal["int16", "uint16", "int32", "uint32", "int64", "float32", "float64", "bool", "string"]
Order = Literal["big", "little"]

#: Registers each type occupies (``string`` uses ``length``).
REGISTERS: dict[str, int] = {
    "int16": 1, "uint16": 1, "bool": 1, "int32": 2, "uint32": 2, "float32": 2, "int64": 4, "float64": 4,
}


class ModbusDevice(DeviceCommon):
    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str = Field(min_length=1)
    port: int = Field(default=502, ge=1, le=65535)
    unit_id: int = Field(default=1, ge=0, le=255)
    timeout: PositiveDuration = 1.0
    #: Default poll period of the device's points.
    poll: PositiveDuration = 1.0
    #: Largest block read (registers); the protocol allows 125 registers and 2000 bits.
    max_block: int = Field(default=125, ge=1, le=125)
    #: Unused registers a block may span to join two neighbouring points into one read.
    max_gap: int = Field(default=16, ge=0, le=124)
    reconnect_min: PositiveDuration = 0.5
    reconnect_max: PositiveDuration = 30.0


class ModbusPoint(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    table: Table = "holding"
    address: int = Field(ge=0, le=65535)
    type: RegType = "uint16"
    word_order: Order = "big"
    byte_order: Order = "big"
    #: Registers of a ``string`` point (two characters each).
    length: int | None = Field(default=None, ge=1, le=125)
    #: For ``bool`` in a register table: the bit (0 = least significant); absent means "register != 0".
    bit: int | None = Field(default=None, ge=0, le=15)
    scale: float = 1.0
    offset: float = 0.0
    #: Poll period of this point; defaults to the device's.
    poll: PositiveDuration | None = None
    #: Unit id of this point when a gateway fronts several slaves; defaults to the device's.
    unit_id: int | None = Field(default=None, ge=0, le=255)

    @model_validator(mode="before")
    @classmethod
    def _bits_default_to_bool(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("table") in ("coil", "discrete") and "type" not in data:
            return {**data, "type": "bool"}
        return data

    @model_validator(mode="after")
    def _shape(self) -> ModbusPoint:
        bit_table = self.table in ("coil", "discrete")
        if bit_table and self.type != "bool":
            raise ValueError(f"table {self.table!r} holds single bits: type must be 'bool', not {self.type!r}")
        if self.type == "string" and self.length is None:
            raise ValueError("type 'string' needs 'length' (registers, two characters each)")
        if self.type != "string" and self.length is not None:
            raise ValueError("'length' applies only to type 'string'")
        if self.bit is not None and (bit_table or self.type != "bool"):
            raise ValueError("'bit' applies only to type 'bool' in a holding or input register")
        if self.address + self.count > 65536:
            raise ValueError(f"address {self.address} + {self.count} registers runs past 65535")
        return self

    @property
    def count(self) -> int:
        """Registers (or bits) this point occupies."""
        if self.table in ("coil", "discrete"):
            return 1
        if self.type == "string":
            return self.length or 1
        return REGISTERS[self.type]
