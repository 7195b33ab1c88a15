"""OPC UA node ids as a tag's ``node:`` writes them, parsed without asyncua (``plantlink check`` must not import it).

``parse_node_id`` accepts exactly the strings ``asyncua.ua.NodeId.from_string`` accepts (asyncua 2.1) and reads
them the same way (``tests/connectors/test_opcua_nodeid.py`` runs both over a table of cases and generated ones):
``;``-separated ``key=value`` parts, left to right, empty parts skipped; ``ns=`` the namespace index, ``i=`` a
number, ``s=`` a string (which takes the whole rest, ``;`` and ``=`` included), ``g=`` a GUID, ``b=`` a byte
string (base64, or hex after ``0x``), ``nsu=`` a namespace URI, ``srv=`` a server index; other keys are ignored.
A part without ``=``, a number or GUID that does not parse, or no identifier at all is refused.
"""

from __future__ import annotations

import binascii
import uuid
from base64 import b64decode
from dataclasses import dataclass
from typing import Literal

NodeIdKind = Literal["i", "s", "g", "b"]


@dataclass(frozen=True)
class NodeIdText:
    """A parsed node id: its identifier and kind (``i`` numeric, ``s`` string, ``g`` GUID, ``b`` bytes), its
    namespace index and, for an expanded node id, its namespace URI and server index."""

    identifier: int | str | uuid.UUID | bytes
    kind: NodeIdKind
    namespace: int = 0
    namespace_uri: str | None = None
    server_index: int | None = None

    @property
    def expanded(self) -> bool:
        return self.namespace_uri is not None or self.server_index is not None


def parse_node_id(text: str) -> NodeIdText:
    """The node id ``text`` names; ValueError when asyncua would refuse it."""
    parts = text.split(";")
    namespace, srv, nsu = 0, None, None
    found: tuple[int | str | uuid.UUID | bytes, NodeIdKind] | None = None
    while parts:
        part = parts.pop(0)
        if not part:
            continue
        key, eq, value = part.partition("=")
        if not eq:
            raise ValueError(f"{part!r} is not key=value")
        key = key.strip()
        if key == "ns":
            namespace = int(value.strip())
        elif key == "srv":
            srv = int(value.strip())
        elif key == "nsu":
            nsu = value
        elif key == "s":
            found = ";".join((value, *parts)), "s"  # a string identifier takes the rest, separators included
            parts = []
        elif key == "i":
            found = int(value.strip()), "i"
        elif key == "g":
            found = uuid.UUID(f"urn:uuid:{value}"), "g"
        elif key == "b":
            found = _bytes(value), "b"
    if found is None:
        raise ValueError("no identifier (i=, s=, g= or b=)")
    return NodeIdText(found[0], found[1], namespace, nsu, srv)


def _bytes(value: str) -> bytes:
    """A byte string identifier: hex after ``0x``, else base64, else the (ASCII) text itself."""
    if value[0:2] == "0x":
        return bytes.fromhex(value[2:])
    try:
        return b64decode(value.encode("ascii"))
    except (binascii.Error, ValueError):
        return value.encode("ascii")  # not base64: the text itself (non-ASCII text raises ValueError)
