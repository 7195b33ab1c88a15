"""Warnings about a valid plant model: settings that load but weaken it (``plantlink check`` prints them).

Each connector plugin may name such settings of its devices (``ConnectorPlugin.warnings``); they are
located at the setting's line and column like the problems of an invalid model.
"""

from __future__ import annotations

from pathlib import Path

from plantlink import plugins
from plantlink.errors import ConfigProblem
from plantlink.model.plant import Plant
from plantlink.model.tls import UNVERIFIED
from plantlink.model.yamlmarks import MarkedYaml, load_marked


def model_warnings(plant: Plant) -> list[ConfigProblem]:
    """Every warning of ``plant``'s devices, in file order of the devices."""
    doc = _marks(plant.file)
    out: list[ConfigProblem] = []
    for dev_id, dev in plant.devices.items():
        plugin = plugins.load(plugins.CONNECTORS, dev.protocol)
        if plugin.warnings is None:
            continue
        for field, message in plugin.warnings(dev.config):
            path = f"device {dev_id} {field}"
            if doc is None:
                out.append(ConfigProblem(plant.file, None, None, path, message))
            else:
                out.append(doc.problem(("devices", dev_id, field), message, path))
    return out + _broker_warnings(plant, doc)


def _broker_warnings(plant: Plant, doc: MarkedYaml | None) -> list[ConfigProblem]:
    """``tls: {verify: false}`` on the URL-named brokers (publish, edge central, edges broker)."""
    spec = plant.spec
    brokers = [(("publish",), spec.publish), (("edge", "central"), spec.edge and spec.edge.central),
               (("edges", "broker"), spec.edges and spec.edges.broker)]
    out = []
    for loc, b in brokers:
        if b and b.tls is not None and not b.tls.verify:
            where = (*loc, "tls", "verify")
            path = ".".join(where)
            out.append(doc.problem(where, UNVERIFIED, path) if doc is not None
                       else ConfigProblem(plant.file, None, None, path, UNVERIFIED))
    return out


def _marks(file: str) -> MarkedYaml | None:
    """Where the values of ``file`` stand; None when it cannot be read again (a model parsed from text)."""
    try:
        text = Path(file).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    doc = load_marked(text, file)
    return doc if doc.data is not None else None
