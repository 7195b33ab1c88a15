"""``plantlink discover --mqtt URL --group G``: listen to a Sparkplug B group for a while and print the metrics
its births announce as plant-model tags, ready to paste under the place the group belongs to.

Births are published when a node connects or is asked to: unless told not to (``rebirth=False``), discover asks
every node it hears from without having seen its birth for a rebirth (NCMD ``Node Control/Rebirth``), as the
host does. The protocol's own metrics (``bdSeq``, ``Node Control/...``) and metrics whose datatype is no tag value
(DataSet, Template, Bytes, File, arrays) are listed as comments.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import ssl
from urllib.parse import urlsplit

import aiomqtt

from plantlink.connectors.mqtt.autotags import UNIT_KEYS, tag_type
from plantlink.connectors.mqtt.sparkplug import values as dt
from plantlink.connectors.mqtt.sparkplug.host import NAMESPACE, MetricInfo, SparkplugHost
from plantlink.model.tls import MQTT_PORT, MQTTS_PORT
from plantlink.samples import now_us

Births = dict[tuple[str, str | None], list[MetricInfo]]

_NAME_BAD = re.compile(r"[^A-Za-z0-9_.\-]+")


def broker_address(url: str) -> tuple[str, int]:
    """(host, port) from ``mqtt://host:port`` (port 1883 by default), ``mqtts://host:port`` (TLS, 8883) or
    ``host[:port]``."""
    parts = urlsplit(url if "://" in url else f"mqtt://{url}")
    if parts.scheme not in ("mqtt", "mqtts", "tcp") or not parts.hostname:
        raise ValueError(f"not an MQTT broker address: {url!r} (expected mqtt://host:port or mqtts://host:port)")
    return parts.hostname, parts.port or (MQTTS_PORT if parts.scheme == "mqtts" else MQTT_PORT)


async def discover(host: str, port: int, group: str, wait: float, rebirth: bool = True,
                   timeout: float = 5.0, tls: ssl.SSLContext | None = None) -> Births:
    """The births of ``group`` heard within ``wait`` seconds: (node, device or None) -> metrics; ``tls``: the
    context of an ``mqtts://`` broker (``plantlink.model.tls.client_context``)."""
    spb = SparkplugHost(group, {}, rebirth_interval_us=10**12)  # ask each node at most once
    async with aiomqtt.Client(host, port, timeout=timeout, identifier="", tls_context=tls) as client:
        await client.subscribe(f"{NAMESPACE}/{group}/#")

        async def listen() -> None:
            async for msg in client.messages:
                payload = msg.payload if isinstance(msg.payload, bytes) else b""
                result = spb.handle(msg.topic.value, payload, now_us())
                if rebirth:
                    for rb in result.rebirths:
                        await client.publish(rb.topic, rb.payload)

        task = asyncio.create_task(listen())
        await asyncio.sleep(wait)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    return spb.births


def name_of(text: str) -> str:
    """A plant-model name (letters, digits, ``_ . -``; 64 at most) from a Sparkplug id or metric name."""
    name = _NAME_BAD.sub("_", text.replace("/", ".")).strip("_.-") or "metric"
    return name[:64]


def to_yaml(births: Births, device: str, group: str, under: str = "") -> str:
    """The machines (one per edge node and per device) and their tags, as YAML to paste under ``under``."""
    place = under or "the line the group belongs to"
    lines = [f"# Sparkplug group {group}: paste these machines under {place};",
             f"# device {device} has protocol: mqtt and sparkplug: {{group: {group}"
             + (f", under: {under}" if under else "") + "}",
             "machines:"]
    for (node, dev), metrics in sorted(births.items(), key=lambda kv: (kv[0][0], kv[0][1] or "")):
        machine = name_of(node if dev is None else f"{node}-{dev}")
        lines += [f"  - name: {machine}",
                  f"    description: Sparkplug node {node}" + (f", device {dev}" if dev else ""),
                  "    tags:"]
        for m in metrics:
            lines += _tag_lines(m, device, node if dev is None else f"{node}/{dev}")
    return "\n".join(lines) + "\n"


def _tag_lines(m: MetricInfo, device: str, prefix: str) -> list[str]:
    if m.name == "bdSeq" or m.name.startswith("Node Control/"):
        return [f"      # {m.name}: a Sparkplug protocol metric"]
    kind = tag_type(m.datatype)
    if kind is None:
        return [f"      # {m.name}: datatype {dt.name_of(m.datatype)} is not a tag value"]
    out = [f"      - name: {name_of(m.name)}"]
    if kind != "float":
        out.append(f"        type: {kind}")
    unit = next((m.properties[k] for k in UNIT_KEYS if isinstance(m.properties.get(k), str)), None)
    if unit:
        out.append(f"        unit: {_quote(unit)}")
    out.append(f"        source: {{device: {device}, metric: {_quote(f'{prefix}/{m.name}')}}}")
    return out


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
