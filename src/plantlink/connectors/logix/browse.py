"""``plantlink browse logix://host[:port][/slot]``: a Logix controller's controller and program tags as
ready-to-paste plant-model tag YAML (the tag-list upload, Get Instance Attribute List, through pylogix)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import yaml

from plantlink.connectors.logix.address import NAMES, STRING_HANDLE
from plantlink.errors import DeviceUnavailable, PlantlinkError

_BAD = re.compile(r"[^A-Za-z0-9_.\-]+")
TAG_TYPES = {"BOOL": "bool", "REAL": "float", "LREAL": "float", "STRING": "string"}


@dataclass(frozen=True)
class BrowsedTag:
    """One tag of the controller: its name (with ``Program:<name>.`` for a program tag) and Logix type."""

    name: str
    #: The Logix type (BOOL ... LREAL, STRING), a structure's type name, or the type code in hex.
    type: str
    #: Array dimensions (0 for a scalar).
    dims: int = 0

    @property
    def usable(self) -> bool:
        return self.dims == 0 and (self.type in NAMES.values() or self.type == "STRING")


def parse_endpoint(url: str) -> tuple[str, int, int]:
    """(host, port, slot) of ``logix://host[:port][/slot]``."""
    parts = urlsplit(url)
    if parts.scheme != "logix" or not parts.hostname:
        raise PlantlinkError(f"{url!r}: expected logix://host[:port][/slot], e.g. logix://10.0.4.30/0")
    slot = parts.path.strip("/")
    if slot and not slot.isdigit():
        raise PlantlinkError(f"{url!r}: the slot after the host must be a number, not {slot!r}")
    return parts.hostname, parts.port or 44818, int(slot or 0)


def _type(t: Any) -> str:
    code = int(t.DataTypeValue)
    if t.Struct:
        if (code & 0xFFF) == STRING_HANDLE or str(t.DataType).upper() == "STRING":
            return "STRING"
        return str(t.DataType) or f"structure 0x{code & 0xFFF:03X}"
    return NAMES.get(code & 0xFF, f"type 0x{code & 0xFF:02X}")


def list_tags(host: str, port: int = 44818, slot: int = 0, timeout: float = 5.0) -> list[BrowsedTag]:
    """The controller's and programs' tags (system tags and program entries left out), in the list's order."""
    from pylogix import PLC

    with PLC(host, slot=slot, timeout=timeout) as plc:
        plc.Port = port
        try:
            reply = plc.GetTagList(allTags=True)
        except Exception:  # its structure templates could not be parsed: the list without them
            reply = plc._get_tag_list(True)
        if reply.Status != "Success" or reply.Value is None:
            raise DeviceUnavailable(f"logix://{host}:{port}/{slot}: cannot list the tags: {reply.Status}")
        out: list[BrowsedTag] = []
        seen: set[str] = set()
        for t in reply.Value:
            name = str(t.TagName)
            if name.startswith("__") or (":" in name and not (name.startswith("Program:") and "." in name)):
                continue  # system tags, and Program:/Map:/Task:/Routine: entries that are not tags
            if name.lower() in seen:
                continue
            seen.add(name.lower())
            out.append(BrowsedTag(name, _type(t), int(t.Array or 0)))
        return out


def _plant_name(name: str, taken: set[str]) -> str:
    base = _BAD.sub("_", name.removeprefix("Program:")).strip("_.-")[:60] or "tag"
    candidate, n = base, 1
    while candidate.lower() in taken:
        n += 1
        candidate = f"{base}_{n}"
    taken.add(candidate.lower())
    return candidate


def device_yaml(host: str, port: int, slot: int, device: str) -> str:
    return "\n".join(["# The device (paste under devices: in the plant model):", f"#   {device}:",
                      "#     protocol: logix", f"#     host: {host}"]
                     + ([f"#     port: {port}"] if port != 44818 else [])
                     + [f"#     slot: {slot}", "# Its tags (paste under a machine's tags:):"]) + "\n"


def to_yaml(tags: Sequence[BrowsedTag], device: str) -> str:
    """Plant-model tag YAML for the tags plantlink can read as they are; arrays and structures as comments."""
    taken: set[str] = set()
    out = []
    for t in tags:
        if not t.usable:
            continue
        tag_type = TAG_TYPES.get(t.type, "int")
        out.append({"name": _plant_name(t.name, taken), "type": tag_type,
                    "source": {"device": device, "tag": t.name, "type": t.type}})
    text = yaml.safe_dump(out, sort_keys=False, default_flow_style=False) if out else "[]\n"
    skipped = [t for t in tags if not t.usable]
    if skipped:
        text += "# arrays and structures: read an element (Tag[3]) or a member (Tag.Member) by its own tag:\n"
        text += "".join(f"#   {t.name}: {t.type}{f' ({t.dims}-dimensional array)' if t.dims else ''}\n"
                        for t in skipped)
    return text


def browse_text(url: str, device: str, timeout: float = 5.0) -> tuple[str, int]:
    """(the device entry as comments + the tag YAML, how many tags were listed) for ``plantlink browse``."""
    host, port, slot = parse_endpoint(url)
    try:
        tags = list_tags(host, port, slot, timeout)
    except OSError as exc:
        raise DeviceUnavailable(f"{url}: {exc or type(exc).__name__}") from exc
    return device_yaml(host, port, slot, device) + to_yaml(tags, device), len(tags)
