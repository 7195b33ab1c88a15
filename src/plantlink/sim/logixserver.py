"""The simulator's Logix controller: cm-ethernetip's Logix tag server holding the tags of one ``logix`` device.

``Controller`` is cm-ethernetip's ``LogixDispatcher`` + ``EipAdapter`` (asyncio, in the simulator's own event
loop) with two fixes of the server (not of the connector), each found against pylogix and reported in
docs/logix.md:

* a structure's Read Tag reply carries only its structure handle where a controller sends ``0x02A0`` and
  then the handle: a STRING read (handle ``0x0FCE``) is answered here as a controller answers it;
* Get Instance Attribute List (0x55, the tag-list upload) is served at class level only, so the second
  request of a list longer than one reply (the client asks from an instance) is refused, and the instance
  asked from is skipped rather than listed first; and it ignores the program a request names, listing
  the controller's tags again. Here it is served at both levels, from the instance asked for on, per scope
  (the controller's tags and ``Program:<name>`` entries; a program's tags by their own names).

The server resolves a symbolic path as one flat name (its segments joined by dots, the last element index
apart): a program tag ``Program:Main.Speed`` and a member ``Motor.Speed`` are served as tags of that name,
an array element ``Counts[3]`` as element 3 of ``Counts``.

``LogixSimServer.refresh`` writes the simulation's current values (little-endian, the tag's scaling
inverted) into the tags. A client's write is found at the next refresh (the bytes of a writable tag differ
from what the simulator last put there) and handed to ``sink(tag_path, value)``. Imported only when a plant
has a ``logix`` device (cm-ethernetip is the optional ``logix-sim`` extra).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import math
import re
import struct
from collections.abc import Callable, Sequence
from types import SimpleNamespace
from typing import Any, cast

from ethernetip.cip.identity_info import IdentityInfo
from ethernetip.cip.service import CipServiceRequest, CipServiceResponse
from ethernetip.logix import data_types as dt
from ethernetip.logix.logix_dispatcher import LogixDispatcher
from ethernetip.logix.symbol_object import SymbolObject
from ethernetip.logix.tag import Tag as SrvTag
from ethernetip.logix.tag_database import TagDatabase, TemplateMember
from ethernetip.protocol.eip_adapter import EipAdapter

from plantlink.connectors.logix.address import STRING_HANDLE
from plantlink.connectors.logix.config import LogixDevice, LogixPoint
from plantlink.errors import PlantlinkError
from plantlink.model.schema import Tag
from plantlink.sim.machine import Value
from plantlink.sim.plant import Binding

log = logging.getLogger("plantlink.sim")

WriteSink = Callable[[str, Value], None]
CODES = {"BOOL": dt.BOOL, "SINT": dt.SINT, "INT": dt.INT, "DINT": dt.DINT, "LINT": dt.LINT, "REAL": dt.REAL,
         "LREAL": dt.LREAL}
FMT = {"BOOL": "<?", "SINT": "<b", "INT": "<h", "DINT": "<i", "LINT": "<q", "REAL": "<f", "LREAL": "<d"}
STRING_SIZE, STRING_MAX = 88, 82
_INDEX = re.compile(r"\[(\d+)\]")


def split_name(name: str) -> tuple[str, int]:
    """(the flat server tag name, element index) of a tag name with at most one one-dimensional index."""
    found = _INDEX.findall(name)
    if len(found) > 1 or "," in name:
        raise ValueError(f"{name}: the simulated controller serves one array index per tag name at most")
    return _INDEX.sub("", name), int(found[0]) if found else 0


class _Dispatcher(LogixDispatcher):  # type: ignore[misc]
    """LogixDispatcher answering a structure's Read Tag with ``0x02A0`` + handle, as a controller does, and
    the tag-list upload from any instance (one that does not exist included) through ``list_tags``."""

    list_tags: Callable[[Any, Any], Any] | None = None

    def dispatch(self, service_code: int, path: Any, data: bytes) -> Any:
        if service_code == 0x55 and path.class_id == 0x6B and self.list_tags is not None:
            return self.list_tags(None, CipServiceRequest(service_code=service_code, path=path, data=data))
        return super().dispatch(service_code, path, data)

    def on_unhandled(self, service_code: int, path: Any, data: bytes, default_status: int | None = None) -> Any:
        resp = super().on_unhandled(service_code, path, data, default_status)
        name = path.symbolic_name
        if service_code == 0x4C and name is not None and resp.status.general_status == 0:
            tag = self.tags.find_by_name(name)
            if tag is not None and dt.is_struct(tag.symbol_type):
                return CipServiceResponse.success(service_code, struct.pack("<HH", 0x02A0, tag.tag_type)
                                                  + bytes(resp.data[2:]))
        return resp


class _Adapter(EipAdapter):  # type: ignore[misc]
    """EipAdapter that drops its clients' connections when it closes (as a controller that restarts does)."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.clients: set[Any] = set()

    async def _handle_client(self, reader: Any, writer: Any) -> None:
        self.clients.add(writer)
        try:
            await super()._handle_client(reader, writer)
        except asyncio.CancelledError:
            pass  # the server is closing: the session ends with it (not an error of the stream's callback)
        finally:
            self.clients.discard(writer)

    async def close(self) -> None:
        for w in list(self.clients):
            w.close()
        await super().close()


@dataclasses.dataclass(frozen=True)
class _Listed:
    """What a tag-list reply shows of a tag (a program's tag by its own name, a program entry)."""

    instance_id: int
    name: str
    symbol_type: int
    element_count: int


class Controller:
    """A Logix controller on ``host:port``: ``add`` tags, ``set`` / ``get`` their values, ``start`` / ``stop``."""

    def __init__(self, name: str = "plantlink-sim"):
        self.tags = TagDatabase()
        self.identity = IdentityInfo(product_name=name)
        self.dispatcher = _Dispatcher(self.tags, self.identity)
        self.dispatcher.list_tags = self._list_tags
        self._string = self.tags.add_template("STRING", TemplateMember("LEN", dt.DINT),
                                              TemplateMember("DATA", dt.SINT, STRING_MAX))
        self._string.struct_handle = STRING_HANDLE
        self.types: dict[str, str] = {}
        self.adapter: EipAdapter | None = None
        self.port = 0

    def _list_tags(self, instance: Any, request: Any) -> Any:
        """Get Instance Attribute List of one scope: the controller's tags and its programs, or (a request
        under ``Program:<name>``) that program's tags by their own names; from the instance asked for on."""
        program = request.path.symbolic_name
        start = request.path.instance_id or 0
        shown: list[Any] = []
        programs: dict[str, int] = {}
        for t in sorted(self.tags.all_tags, key=lambda t: t.instance_id):
            name = str(t.name)
            scope, dot, own = name.partition(".")
            if scope.lower().startswith("program:") and dot:
                programs.setdefault(scope, 0xF000 + len(programs))
                if program is not None and scope.lower() == program.lower():
                    shown.append(_Listed(t.instance_id, own, t.symbol_type, t.element_count))
            elif program is None and t.tag_type == STRING_HANDLE and dt.is_struct(t.symbol_type):
                shown.append(_Listed(t.instance_id, name, 0x8000 | STRING_HANDLE | (t.symbol_type & 0x6000),
                                     t.element_count))  # a controller's STRING symbol type
            elif program is None:
                shown.append(t)
        if program is None:
            shown += [_Listed(i, p, 0x1068, 1) for p, i in programs.items()]
        view = SimpleNamespace(_tags=SimpleNamespace(all_tags=shown), ensure_instance=lambda t: None)
        path = dataclasses.replace(request.path, instance_id=max(start - 1, 0))  # "from N" includes N
        return SymbolObject._handle_browse(view, instance, dataclasses.replace(request, path=path))

    def add(self, name: str, type_: str, count: int = 1) -> None:
        if type_ == "STRING":
            self.tags.add_struct_tag(name, self._string, count)
        else:
            self.tags.add_tag(name, CODES[type_], count)
        self.types[name.lower()] = type_

    def _at(self, name: str) -> tuple[SrvTag, str, int, int]:
        flat, index = split_name(name)
        tag = self.tags.find_by_name(flat)
        if tag is None:
            raise KeyError(name)
        type_ = self.types[flat.lower()]
        size = STRING_SIZE if type_ == "STRING" else struct.calcsize(FMT[type_])
        return tag, type_, index * size, size

    def raw(self, name: str) -> bytes:
        tag, _, at, size = self._at(name)
        return bytes(tag.get_data(at, size))

    def set_raw(self, name: str, data: bytes) -> None:
        tag, _, at, _ = self._at(name)
        tag.set_data(data, at)

    def set(self, name: str, value: Any) -> None:
        _, type_, _, _ = self._at(name)
        self.set_raw(name, pack(type_, value))

    def get(self, name: str) -> Any:
        _, type_, _, _ = self._at(name)
        return unpack(type_, self.raw(name))

    async def start(self, host: str, port: int) -> None:
        adapter = _Adapter(self.dispatcher, self.identity)
        await adapter.listen(host, port)
        self.adapter, self.port = adapter, int(adapter.port)

    async def stop(self) -> None:
        adapter, self.adapter = self.adapter, None
        if adapter is not None:
            await adapter.close()


def pack(type_: str, value: Any) -> bytes:
    if type_ == "STRING":
        raw = str(value).encode("utf-8", "replace")[:STRING_MAX]
        return struct.pack("<i", len(raw)) + raw.ljust(STRING_MAX, b"\0") + b"\0\0"
    if type_ == "BOOL":
        return b"\x01" if value else b"\x00"
    if type_ in ("REAL", "LREAL"):
        return struct.pack(FMT[type_], float(value))
    bits = struct.calcsize(FMT[type_]) * 8
    v = float(value)
    v = 0 if math.isnan(v) else min(max(round(v), -(2 ** (bits - 1))), 2 ** (bits - 1) - 1)
    return struct.pack(FMT[type_], v)


def unpack(type_: str, data: bytes) -> Any:
    if type_ == "STRING":
        n = max(0, min(struct.unpack_from("<i", data)[0], STRING_MAX))
        return data[4:4 + n].decode("utf-8", "replace")
    return struct.unpack(FMT[type_], data[:struct.calcsize(FMT[type_])])[0]


def type_of(src: LogixPoint, tag: Tag) -> str:
    """The Logix type the simulator serves a point as (its configured type, else from the tag's type)."""
    return src.type or {"bool": "BOOL", "int": "DINT", "string": "STRING"}.get(tag.type, "REAL")


class LogixSimServer:
    """A Logix controller (cm-ethernetip) serving the tags of one ``logix`` device on ``host:port``."""

    def __init__(self, device_id: str, config: LogixDevice, bindings: Sequence[Binding], sink: WriteSink,
                 host: str = "127.0.0.1", port: int | None = None):
        self.device_id, self.sink, self.host = device_id, sink, host
        self.port = config.port if port is None else port
        self.controller = Controller(f"plantlink-sim {device_id}")
        self.slots: list[tuple[Binding, str, str]] = []  # (binding, tag name, type)
        sizes: dict[str, tuple[str, int]] = {}
        for b in bindings:
            src = cast(LogixPoint, b.tag.source)
            try:
                flat, index = split_name(src.tag)
            except ValueError as exc:
                log.warning("device %s: %s; not served", device_id, exc)
                continue
            type_ = type_of(src, b.tag.tag)
            sizes[flat] = (type_, max(sizes.get(flat, (type_, 1))[1], index + 1))
            self.slots.append((b, src.tag, type_))
        for flat, (type_, count) in sizes.items():
            self.controller.add(flat, type_, count)
        self._served: dict[int, bytes] = {}

    def refresh(self) -> None:
        c = self.controller
        for k, (b, name, type_) in enumerate(self.slots):
            now, served = c.raw(name), self._served.get(k)
            if b.signal.writable and served is not None and now != served:
                try:
                    self.sink(b.path, _eng(b.tag.tag, unpack(type_, now)))
                except (PlantlinkError, KeyError, ValueError) as exc:
                    log.warning("logix write to %s refused: %s", b.path, exc)
            fresh = pack(type_, _raw(b.tag.tag, b.value()) if type_ not in ("STRING", "BOOL") else b.value())
            c.set_raw(name, fresh)
            self._served[k] = fresh

    async def start(self) -> None:
        self.refresh()
        try:
            await self.controller.start(self.host, self.port)
        except OSError as exc:
            raise PlantlinkError(f"device {self.device_id}: cannot listen on {self.host}:{self.port} "
                                 f"(port in use? override it with ports={{...}})") from exc
        self.port = self.controller.port

    async def stop(self) -> None:
        await self.controller.stop()

    @property
    def endpoint(self) -> str:
        return f"logix://{self.host}:{self.port}"


def _raw(tag: Tag, value: Value) -> float:
    v = float(cast(float, value))
    s = tag.scaling
    if s is not None:
        v = s.raw_low + (v - s.eng_low) * (s.raw_high - s.raw_low) / (s.eng_high - s.eng_low)
    return v


def _eng(tag: Tag, raw: Any) -> Value:
    if isinstance(raw, (str, bool)):
        return raw
    v = float(raw)
    s = tag.scaling
    if s is not None:
        v = s.eng_low + (v - s.raw_low) * (s.eng_high - s.eng_low) / (s.raw_high - s.raw_low)
    return int(v) if tag.type == "int" and v == round(v) else v
