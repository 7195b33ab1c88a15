"""The ``publish:`` section of the plant model: plantlink's own tags published to an MQTT broker as a Unified
Namespace (a topic per tag named after its ISA-95 path, a JSON payload, retained) and, optionally, as a
Sparkplug B edge node (docs/mqtt.md, "Publishing")."""

from __future__ import annotations

from fnmatch import fnmatchcase
from typing import Annotated, Literal

from pydantic import ConfigDict, Field, field_validator

from plantlink.identity import ALL_SITES, WriteRole
from plantlink.model.broker import UrlBroker
from plantlink.model.schema_base import Strict
from plantlink.model.types import PositiveDuration
from plantlink.model.yamlcompose import Loc

_WILDCARDS = ("+", "#", "\0")


#: A Sparkplug group or node id: no MQTT wildcards, no '/' (spec 3.0, 4.1.1).
SparkplugId = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[^/+#]+$")]


class UnsSettings(Strict):
    #: ``false``: no UNS topics (only the Sparkplug edge node, when configured).
    enabled: bool = True
    #: A topic prefix before the enterprise (``plantlink/v1``); none by default.
    root: str = Field(default="", max_length=1024)
    qos: Literal[0, 1] = 1
    retain: bool = True

    @field_validator("root")
    @classmethod
    def _root(cls, value: str) -> str:
        value = value.strip("/")
        if any(c in value for c in _WILDCARDS):
            raise ValueError(f"root {value!r}: a topic prefix without the wildcards + and #")
        if value.startswith("spBv1.0"):
            raise ValueError(f"root {value!r} is in the Sparkplug namespace")
        return value


class SparkplugEdgeSettings(Strict):
    """plantlink as a Sparkplug B edge node ``spBv1.0/{group}/N*/{node}``."""

    group: SparkplugId
    node: SparkplugId = "plantlink"
    #: NDATA metrics carry their name as well as their alias: for host applications that resolve no aliases
    #: (mqtt-spb-wrapper 2.1.2's fails on an alias-only metric; docs/mqtt.md). Off: by alias only, as 3.0 allows.
    names_in_data: bool = False


class CommandSettings(Strict):
    """Writes asked over MQTT (a UNS ``<tag topic>/set``, an NCMD to plantlink's edge node): refused unless
    ``enabled``; each runs as the service principal ``as`` with ``roles`` (site -> role), on the tags
    ``include`` names only, through the control path like the HMI's (docs/control.md, "MQTT as a caller")."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False, populate_by_name=True)

    enabled: bool = False
    #: The principal every MQTT command runs as (its name in the audit trail).
    as_: str | None = Field(default=None, alias="as", min_length=1, max_length=128, pattern=r"^[^\s/]+$")
    #: Its role per site (``*`` = every site): operator, engineer or admin.
    roles: dict[str, WriteRole] = Field(default_factory=dict)
    #: The tags MQTT may write, by path patterns (``windsor/press/*/speed_setpoint``): none by default.
    include: list[str] = Field(default_factory=list)
    #: Commands judged at the same time; more are refused as busy.
    max_in_flight: int = Field(default=16, ge=1, le=1000)

    def allows(self, path: str) -> bool:
        return self.enabled and any(fnmatchcase(path, p) for p in self.include)


class PublishSettings(UrlBroker):
    """The broker (``mqtt``: ``mqtt://host[:port]``, or ``mqtts://`` for TLS with ``tls``), credentials, and what
    is published there."""

    client_id: str = Field(default="", max_length=128)
    reconnect_min: PositiveDuration = 0.5
    reconnect_max: PositiveDuration = 30.0
    uns: UnsSettings = Field(default_factory=UnsSettings)
    sparkplug: SparkplugEdgeSettings | None = None
    #: Writes asked over MQTT: off unless enabled (deny by default).
    commands: CommandSettings = Field(default_factory=CommandSettings)
    #: Which tags, by path patterns (``windsor/press/*``, ``*/temp``; ``*`` matches across ``/``): all by
    #: default; ``exclude`` removes from what ``include`` chose.
    include: list[str] = Field(default_factory=lambda: ["*"])
    exclude: list[str] = Field(default_factory=list)

    def selects(self, path: str) -> bool:
        return (any(fnmatchcase(path, p) for p in self.include)
                and not any(fnmatchcase(path, p) for p in self.exclude))


def publish_problems(settings: PublishSettings, paths: list[str], writable: list[str] | None = None,
                     sites: list[str] | None = None) -> list[tuple[Loc, str]]:
    """A pattern that matches no tag of the model is a mistake (a misspelt site or tag name). ``writable``: the
    tags with ``writable: true`` and a ``control:`` section; ``sites``: the site names."""
    out = _command_problems(settings, writable or [], sites)
    for key in ("include", "exclude"):
        for i, pattern in enumerate(getattr(settings, key)):
            if not any(fnmatchcase(p, pattern) for p in paths):
                out.append(((key, i), f"pattern {pattern!r} matches no tag (tag paths are site/area/line/machine/tag)"))
    if not settings.uns.enabled and settings.sparkplug is None:
        out.append((("uns", "enabled"), "nothing would be published: enable uns or configure sparkplug"))
    if paths and not any(settings.selects(p) for p in paths):
        out.append(((), "include and exclude leave no tag to publish"))
    return out


def _command_problems(settings: PublishSettings, writable: list[str], sites: list[str] | None) -> list[tuple[Loc, str]]:
    cmd = settings.commands
    if not cmd.enabled:
        return []
    out: list[tuple[Loc, str]] = []
    if cmd.as_ is None:
        out.append((("commands", "as"), "enabled commands need 'as': the principal they run as (audited)"))
    if not cmd.roles:
        out.append((("commands", "roles"), "enabled commands need 'roles' (site: operator), or none may write"))
    for site in cmd.roles:
        if sites is not None and site != ALL_SITES and site not in sites:
            out.append((("commands", "roles", site), f"no site {site!r} (sites: {', '.join(sites)})"))
    if not cmd.include:
        out.append((("commands", "include"), "enabled commands need 'include': the tags MQTT may write"))
    for i, pattern in enumerate(cmd.include):
        if not any(fnmatchcase(p, pattern) for p in writable):
            out.append((("commands", "include", i), f"pattern {pattern!r} matches no writable tag with a control: "
                                                    "section"))
    if writable and not any(settings.selects(p) for p in writable if cmd.allows(p)):
        out.append((("commands", "include"), "no tag MQTT may write is published (include/exclude of publish)"))
    return out
