"""Discover the variables of an OPC UA server and render them as plant-model tags.

``discover`` reads a server's endpoints (over the discovery channel, which needs no security): what security
it offers and its certificate. ``device_yaml`` renders that as the device entry to paste under ``devices:``,
with the ``server_certificate: sha256:...`` line that pins the certificate. ``browse`` walks the Objects
folder (or a given root) depth first, over the secure channel the connector would use when the server
offers one, and returns every variable with its node id, browse path, data type and access level.
``to_yaml`` turns such a list into tag YAML ready to paste under a machine's ``tags:`` in a plant file.
"""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from asyncua import Client, Node, ua

from plantlink.connectors.opcua.pki import fingerprint, first_cert, subject
from plantlink.connectors.opcua.security import open_secure, redact_url
from plantlink.connectors.opcua.trust import choose_endpoint, mode_name, offered, policy_name
from plantlink.connectors.opcua.values import TAG_TYPE_OF
from plantlink.errors import DeviceUnavailable

_CHUNK = 500
_NAME_MAX = 64
_BAD_CHARS = re.compile(r"[^A-Za-z0-9_.\-]+")


@dataclass(frozen=True)
class BrowsedVariable:
    """One variable found on a server."""

    node_id: str
    #: Browse names from the root down to this variable, joined with ``/``.
    path: str
    browse_name: str
    #: The data type's name: ``Double``, ``Int32``, ``Boolean``, ``String``, or a server-defined type.
    data_type: str
    #: ``read``, ``write``, ``read/write`` or ``none`` (the node's AccessLevel).
    access: str
    #: The node's ValueRank: -1 scalar, -2 any, -3 scalar or one dimension, 0 or more: an array.
    value_rank: int = -1

    @property
    def tag_type(self) -> str | None:
        """The plantlink tag type (float/int/bool/string), or None when plantlink cannot carry the value."""
        if self.value_rank >= 0:
            return None
        return TAG_TYPE_OF.get(self.data_type)

    @property
    def writable(self) -> bool:
        return "write" in self.access


@dataclass(frozen=True)
class ServerInfo:
    """What a server's discovery endpoint says: the endpoints it offers, each with its certificate."""

    endpoint: str
    endpoints: tuple[ua.EndpointDescription, ...]

    @property
    def secure(self) -> ua.EndpointDescription | None:
        """The endpoint plantlink would use by default (None: the server offers no security)."""
        return choose_endpoint(self.endpoints)

    @property
    def certificate(self) -> bytes:
        """The certificate (DER) the secure endpoint presents; empty without one."""
        ep = self.secure
        return first_cert(ep.ServerCertificate or b"") if ep is not None else b""

    @property
    def subject(self) -> str:
        return subject(self.certificate)

    def notes(self) -> list[str]:
        """What a person setting the device up should read (the CLI prints them on stderr)."""
        ep = self.secure
        if ep is None:
            return [f"the server offers no secure endpoint (it offers: {offered(self.endpoints)}): browsing "
                    "without security; plantlink connects to it only with security: none in the plant model"]
        return [f"server certificate: {self.subject}, sha256 {fingerprint(self.certificate)}",
                f"the server offers: {offered(self.endpoints)}; browsing over {policy_name(ep)}/{mode_name(ep)}"]


async def discover(endpoint: str, timeout: float = 5) -> ServerInfo:
    """The endpoints ``endpoint``'s server offers; DeviceUnavailable when it cannot be reached."""
    client = Client(endpoint, timeout=timeout)
    try:
        endpoints = await asyncio.wait_for(client.connect_and_get_server_endpoints(), timeout=timeout)
    except (TimeoutError, OSError, ua.UaError) as exc:
        client.disconnect_socket()
        raise DeviceUnavailable(f"cannot browse {redact_url(endpoint)}: {exc or type(exc).__name__}") from None
    return ServerInfo(endpoint, tuple(endpoints))


def device_yaml(server: ServerInfo, device: str) -> str:
    """The device entry for ``server`` as YAML comments (so that the output stays a pastable tag list)."""
    lines = []
    if server.secure is not None:
        lines.append(f"# The server's certificate: {server.subject}, sha256 {fingerprint(server.certificate)}.")
        lines.append("# Check this fingerprint on the server itself before you pin it.")
    lines += ["# The device (paste under devices: in the plant model):", f"#   {device}:", "#     protocol: opcua",
              f"#     endpoint: {redact_url(server.endpoint)}"]
    if server.secure is not None:
        lines.append(f"#     server_certificate: sha256:{fingerprint(server.certificate)}")
    else:
        lines.append("#     security: none   # the server offers no security: values travel unsigned, in clear")
    lines.append("# Its tags (paste under a machine's tags:):")
    return "\n".join(lines) + "\n"


async def browse(
    endpoint: str, root: str | None = None, max_depth: int = 10, timeout: float = 5, *,
    pki_dir: Path | None = None, server: ServerInfo | None = None,
) -> list[BrowsedVariable]:
    """List the variables under ``root`` (a node id; default: the Objects folder) down to ``max_depth``.

    With ``pki_dir`` (where plantlink's client certificate is kept) the session is secured as the connector
    would secure it, when the server offers security (``server``: its endpoints, when already read);
    without, it is not. Without ``root``, namespace 0 (the server's own diagnostics and types) is skipped.
    Raises DeviceUnavailable when the server cannot be reached or refuses the session.
    """
    client = Client(endpoint, timeout=timeout)
    secure = None
    if pki_dir is not None:
        server = server or await discover(endpoint, timeout)
        secure = server.secure
        if secure is not None:
            await open_secure(client, secure, server.certificate, pki_dir)
    try:
        await asyncio.wait_for(client.connect(), timeout=timeout)
    except (TimeoutError, OSError, ua.UaError) as exc:
        client.disconnect_socket()
        hint = "" if secure is None else (
            f" (if the server does not trust plantlink's certificate yet, trust {pki_dir}/own/plantlink.der on "
            "the server, then browse again)")
        raise DeviceUnavailable(f"cannot browse {redact_url(endpoint)}: {exc or type(exc).__name__}{hint}") from None
    try:
        start = client.get_node(root) if root else client.nodes.objects
        found: list[tuple[Node, str, str]] = []
        await _walk(start, "", 1, max_depth, skip_ns0=root is None, seen=set(), found=found)
        return await _describe(client, found)
    finally:
        try:
            await asyncio.wait_for(client.disconnect(), timeout=timeout)
        except Exception:
            client.disconnect_socket()


async def _walk(node: Node, prefix: str, depth: int, max_depth: int, skip_ns0: bool, seen: set[str],
                found: list[tuple[Node, str, str]]) -> None:
    """Depth-first walk collecting (node, path, browse name) of variables; properties are skipped."""
    if depth > max_depth:
        return
    for ref in await node.get_children_descriptions():
        nid = ref.NodeId
        if _is_property(ref) or (skip_ns0 and nid.NamespaceIndex == 0):
            continue
        key = nid.to_string()
        if key in seen:
            continue
        seen.add(key)
        name = ref.BrowseName.Name or key
        path = f"{prefix}/{name}" if prefix else name
        child = Node(node.session, nid)
        if ref.NodeClass == ua.NodeClass.Variable:
            found.append((child, path, name))
        if ref.NodeClass in (ua.NodeClass.Object, ua.NodeClass.Variable):
            await _walk(child, path, depth + 1, max_depth, skip_ns0, seen, found)


def _is_property(ref: ua.ReferenceDescription) -> bool:
    rt = ref.ReferenceTypeId
    return bool(rt.NamespaceIndex == 0 and rt.Identifier == ua.ObjectIds.HasProperty)


async def _read(client: Client, nodes: Sequence[Node], attr: ua.AttributeIds) -> list[ua.DataValue]:
    out: list[ua.DataValue] = []
    for i in range(0, len(nodes), _CHUNK):
        out.extend(await client.read_attributes(nodes[i : i + _CHUNK], attr))
    return out


def _value(dv: ua.DataValue, default: Any) -> Any:
    if dv.StatusCode is not None and not dv.StatusCode.is_good():
        return default
    return dv.Value.Value if dv.Value is not None and dv.Value.Value is not None else default


async def _describe(client: Client, found: list[tuple[Node, str, str]]) -> list[BrowsedVariable]:
    nodes = [f[0] for f in found]
    types = [_value(dv, ua.NodeId()) for dv in await _read(client, nodes, ua.AttributeIds.DataType)]
    levels = [_value(dv, 0) for dv in await _read(client, nodes, ua.AttributeIds.AccessLevel)]
    ranks = [_value(dv, -1) for dv in await _read(client, nodes, ua.AttributeIds.ValueRank)]
    names = await _type_names(client, types)
    return [
        BrowsedVariable(
            node_id=node.nodeid.to_string(),
            path=path,
            browse_name=name,
            data_type=names.get(t.to_string(), t.to_string()),
            access=_access(int(level)),
            value_rank=int(rank),
        )
        for (node, path, name), t, level, rank in zip(found, types, levels, ranks, strict=True)
    ]


async def _type_names(client: Client, types: list[ua.NodeId]) -> dict[str, str]:
    """Names of data types: built-in ones from the standard table, the others read from the server."""
    names: dict[str, str] = {}
    unknown: dict[str, ua.NodeId] = {}
    for t in types:
        key = t.to_string()
        if t.NamespaceIndex == 0 and isinstance(t.Identifier, int) and t.Identifier in ua.ObjectIdNames:
            names[key] = ua.ObjectIdNames[t.Identifier]
        elif not t.is_null():
            unknown[key] = t
    if unknown:
        dvs = await _read(client, [client.get_node(n) for n in unknown.values()], ua.AttributeIds.BrowseName)
        for key, dv in zip(unknown, dvs, strict=True):
            qn = _value(dv, None)
            names[key] = qn.Name if isinstance(qn, ua.QualifiedName) and qn.Name else key
    return names


def _access(level: int) -> str:
    read = bool(level & ua.AccessLevel.CurrentRead.mask)
    write = bool(level & ua.AccessLevel.CurrentWrite.mask)
    return {(True, True): "read/write", (True, False): "read", (False, True): "write"}.get((read, write), "none")


def sanitize_name(text: str) -> str:
    """A tag name matching the plant model's pattern ``^[A-Za-z0-9][A-Za-z0-9_.\\-]*$`` (max 64)."""
    name = _BAD_CHARS.sub("_", text).lstrip("_.-")
    name = name[-_NAME_MAX:].lstrip("_.-") or "tag"
    return name


def _suffix_names(variables: Sequence[BrowsedVariable], depth: int) -> list[str]:
    return [sanitize_name(".".join(v.path.split("/")[-depth:])) for v in variables]


def _unique_names(variables: Sequence[BrowsedVariable]) -> list[str]:
    """Browse names where unique; else the shortest path suffix (joined with ``.``) that tells them apart;
    a numeric suffix as last resort."""
    names = [sanitize_name(v.browse_name) for v in variables]
    max_depth = max((v.path.count("/") + 1 for v in variables), default=1)
    for depth in range(2, max_depth + 1):
        counts = Counter(names)
        clash = [i for i, n in enumerate(names) if counts[n] > 1]
        if not clash:
            break
        longer = _suffix_names([variables[i] for i in clash], depth)
        for i, name in zip(clash, longer, strict=True):
            names[i] = name
    taken: set[str] = set()
    out = []
    for name in names:
        candidate, n = name, 1
        while candidate in taken:
            n += 1
            suffix = f"_{n}"
            candidate = name[: _NAME_MAX - len(suffix)] + suffix
        taken.add(candidate)
        out.append(candidate)
    return out


def to_yaml(variables: Sequence[BrowsedVariable], device: str) -> str:
    """Plant-model tag YAML (a list, to paste under a machine's ``tags:``) for the variables plantlink can carry.

    Variables of other types (arrays, structures, dates...) are listed as comments at the end.
    """
    usable = [v for v in variables if v.tag_type is not None]
    skipped = [v for v in variables if v.tag_type is None]
    tags = []
    for name, v in zip(_unique_names(usable), usable, strict=True):
        tag: dict[str, Any] = {"name": name, "description": v.path, "type": v.tag_type}
        if v.writable:
            tag["writable"] = True
        tag["source"] = {"device": device, "node": v.node_id}
        tags.append(tag)
    text = yaml.safe_dump(tags, sort_keys=False, default_flow_style=False, allow_unicode=True) if tags else "[]\n"
    if skipped:
        text += "# not supported by plantlink (arrays or non-scalar types):\n"
        text += "".join(f"#   {v.path} ({v.node_id}): {v.data_type}"
                        f"{' array' if v.value_rank >= 0 else ''}\n" for v in skipped)
    return text
