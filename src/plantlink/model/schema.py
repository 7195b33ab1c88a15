"""The plant model: an ISA-95 hierarchy (enterprise / site / area / line / machine / tag) and its devices.

Protocol-specific parts (a device's settings, a tag's ``source``) are validated by the connector plugin
named by the device's ``protocol``; this module knows no protocol.
"""

from __future__ import annotations

from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from plantlink.model.alarms import AlarmDef
from plantlink.model.analytics import AnomalySettings, RulSettings
from plantlink.model.control import WriteSpec
from plantlink.model.edge import EdgeSettings, EdgesSettings
from plantlink.model.notify import Notifications
from plantlink.model.production import Calendar, Costs, Downtime, Energy, Production, StateRules
from plantlink.model.publish import PublishSettings
from plantlink.model.reports import ReportSchedule
from plantlink.model.schema_base import Strict
from plantlink.model.spc import SpcSettings
from plantlink.model.types import Name

DataType = Literal["float", "int", "bool", "string"]
MachineKind = Literal["press", "welder", "oven", "cnc", "conveyor", "robot", "other"]


class Scaling(Strict):
    """Linear scaling from a raw range to an engineering range."""

    raw_low: float
    raw_high: float
    eng_low: float
    eng_high: float
    clamp: bool = False

    @model_validator(mode="after")
    def _distinct(self) -> Scaling:
        if self.raw_low == self.raw_high:
            raise ValueError("raw_low and raw_high must differ")
        return self


class SourceRef(BaseModel):
    """Where a tag's value comes from: a device plus protocol-specific fields (checked by the plugin)."""

    model_config = ConfigDict(extra="allow", frozen=True)

    device: str

    def fields(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class Tag(Strict):
    name: Name
    #: The tag's former name (same machine) or path (``site/area/line/machine/tag``) when it was renamed: the
    #: tag keeps its id and history (``plantlink plan`` / ``apply``, docs/plan-apply.md).
    was: str | None = Field(default=None, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-/]*$", max_length=400)
    description: str = ""
    #: What people read on pages and in messages ("Die temperature"); the name when empty.
    display_name: str = Field(default="", max_length=80)
    unit: str = ""
    type: DataType = "float"
    #: Decimals shown for a float tag (by default: by magnitude, 1 to 3 significant places).
    decimals: int | None = Field(default=None, ge=0, le=9)
    #: Words for the codes of an int or bool tag (a state or fault code): ``{0: idle, 1: running}``.
    value_texts: dict[int, str] = Field(default_factory=dict)
    scaling: Scaling | None = None
    deadband: float = Field(default=0.0, ge=0)
    source: SourceRef
    writable: bool = False
    #: Limits, role and interlocks of writes (control path); only for writable tags.
    control: WriteSpec | None = None
    alarms: list[AlarmDef] = Field(default_factory=list)
    #: Statistical process control: chart, subgroups, specification limits, rules (docs/plant-model.md).
    spc: SpcSettings | None = None

    @model_validator(mode="after")
    def _texts_for_codes(self) -> Tag:
        if self.value_texts and self.type not in ("int", "bool"):
            raise ValueError(f"value_texts name the codes of an int or bool tag; this tag is {self.type}")
        if self.decimals is not None and self.type != "float":
            raise ValueError(f"decimals apply to a float tag; this tag is {self.type}")
        if self.spc is not None and self.type not in ("float", "int"):
            raise ValueError(f"spc applies to a numeric (float or int) tag; this tag is {self.type}")
        return self

    @property
    def label(self) -> str:
        return self.display_name or self.name


class Machine(Strict):
    name: Name
    description: str = ""
    kind: MachineKind = "other"
    tags: list[Tag] = Field(default_factory=list)
    #: How the machine's state is derived from its tags (see production.StateRules).
    states: StateRules | None = None
    #: Counters and ideal cycle time, for OEE.
    production: Production | None = None
    #: The tag its energy comes from (power or meter), for kWh per part and idle energy.
    energy: Energy | None = None
    #: Anomaly detection over some of its tags, and remaining useful life (``model.analytics``).
    anomaly: AnomalySettings | None = None
    rul: RulSettings | None = None


class Line(Strict):
    name: Name
    description: str = ""
    machines: list[Machine] = Field(default_factory=list)
    downtime: Downtime = Field(default_factory=Downtime)
    costs: Costs | None = None


class Area(Strict):
    name: Name
    description: str = ""
    lines: list[Line] = Field(default_factory=list)


class Site(Strict):
    name: Name
    description: str = ""
    timezone: str

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a folder of tzdata ("America")
            raise ValueError(f"unknown IANA time zone {value!r} (for example America/Toronto)") from None
        return value

    areas: list[Area] = Field(default_factory=list)
    #: Shifts, breaks and holidays in the site's time zone; without shifts every hour is planned.
    calendar: Calendar = Field(default_factory=Calendar)


class Device(BaseModel):
    """A device entry: ``protocol`` plus that protocol's settings (checked by the plugin)."""

    model_config = ConfigDict(extra="allow", frozen=True)

    protocol: str
    description: str = ""
    enabled: bool = True

    def fields(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class PlantFile(Strict):
    """The whole YAML file as written."""

    enterprise: str = Field(min_length=1)
    devices: dict[str, Device] = Field(default_factory=dict)
    sites: list[Site] = Field(min_length=1)
    #: Alarm notifications: SMTP, webhooks, routing, on-call, escalation (see docs/alarms.md).
    notifications: Notifications | None = None
    #: Report schedules: a report after each shift, day or week, e-mailed (see docs/reports.md).
    reports: list[ReportSchedule] = Field(default_factory=list)
    #: Publishing the tags to an MQTT broker: a Unified Namespace, optionally a Sparkplug B edge node (docs/mqtt.md).
    publish: PublishSettings | None = None
    #: This box is an edge: ``plantlink edge`` forwards its samples to a central over MQTT (docs/edge.md).
    edge: EdgeSettings | None = None
    #: This ``plantlink run`` is a central that stores the batches of edges (docs/edge.md).
    edges: EdgesSettings | None = None
    #: The historian backend: ``duckdb`` (the default: one file in the data directory), ``clickhouse`` (the
    #: ClickHouse engine in this process, in the data directory) or a ClickHouse server's URL
    #: (``clickhouse://user:password@host:8123/database``); ``plantlink run --historian`` overrides it
    #: (docs/historian-clickhouse.md).
    historian: str | None = Field(default=None, min_length=1)
