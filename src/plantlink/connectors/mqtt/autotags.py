"""The connector's side of tags from Sparkplug B births (``sparkplug: {auto_tags: ...}``, docs/mqtt.md).

When a birth announces metrics that no tag reads, ``BirthTags.on_birth`` (called by the host between reading a
birth and sampling it) turns each into a proposed tag (``NewTag``: a machine per edge node and device, the tag's
name, type and unit), refuses what cannot be a tag (a name with other characters than letters, digits, ``_ . -``
and ``/``; longer than 64) or goes beyond ``max_tags``, and binds the others at once to provisional tag ids. The
samples of those (the birth's own values and every DATA after it) are held here, not emitted, until the model
change that creates the tags is applied (``rebound``: the held rows are emitted under the new ids) or fails
(``failed``: dropped, counted). Nothing between the birth and the apply is lost, up to ``MAX_HELD_ROWS``.

The proposals go to ``on_new`` (the runtime's ``plantlink.autotags.AutoTagger``), which gathers the births of a
moment into one model change. No network and no runtime here.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from plantlink.connectors.base import DeviceHealth
from plantlink.connectors.mqtt.config import AutoTags
from plantlink.connectors.mqtt.sparkplug import sparkplug_b_pb2 as pb
from plantlink.connectors.mqtt.sparkplug import values as dt
from plantlink.connectors.mqtt.sparkplug.host import BDSEQ_METRIC, MetricInfo

log = logging.getLogger("plantlink.connectors.mqtt.autotags")

#: Property names a birth gives a metric's engineering unit in (Sparkplug's ``engUnit`` first).
UNIT_KEYS = ("engUnit", "EngUnit", "unit", "Unit", "units", "Units")
#: Provisional tag ids (bound until the tags exist) are counted up from here: far above any historian id.
FIRST_PROVISIONAL = 0xF000_0000
#: Most samples held for tags waiting for their model change (the oldest are dropped beyond, counted).
MAX_HELD_ROWS = 200_000
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")
_MACHINE_BAD = re.compile(r"[^A-Za-z0-9_.\-]+")


def tag_type(datatype: int) -> str | None:
    """The tag type of a Sparkplug datatype; None for one that is no tag value (DataSet, Template, arrays...)."""
    if datatype in dt.FLOATS:
        return "float"
    if datatype == pb.Boolean:
        return "bool"
    if datatype in dt.TEXTS:
        return "string"
    if datatype in dt.SUPPORTED:
        return "int"  # the integer types and DateTime (milliseconds since the epoch)
    return None


def unit_of(properties: Mapping[str, Any]) -> str:
    return next((properties[k] for k in UNIT_KEYS if isinstance(properties.get(k), str)), "")[:64]


def machine_name(node: str, device: str | None) -> str:
    """The machine of an edge node (``N1``) or of one of its devices (``N1-D1``)."""
    text = node if device is None else f"{node}-{device}"
    return (_MACHINE_BAD.sub("_", text).strip("_.-") or "node")[:64]


def protocol_metric(name: str) -> bool:
    return name == BDSEQ_METRIC or name.startswith("Node Control/")


def tag_name(metric: str) -> tuple[str | None, str]:
    """The tag name of a metric name (its folders ``a/b`` become ``a.b``), or None and why it cannot be one."""
    name = metric.replace("/", ".")
    if len(name) > 64:
        return None, f"metric {metric!r}: a tag name is at most 64 characters; this one has {len(name)}"
    if not _NAME.match(name):
        return None, (f"metric {metric!r} cannot be a tag name: only letters, digits, _ . - and / (folders), "
                      "starting with a letter or digit")
    return name, ""


@dataclass(frozen=True)
class NewTag:
    """A tag to create from a birth's metric: on machine ``machine`` of the configured line."""

    device: str  # the plant model's device id
    machine: str
    description: str
    name: str
    type: str
    unit: str
    metric: str  # the metric key: node/metric or node/device/metric

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name}
        if self.type != "float":
            out["type"] = self.type
        if self.unit:
            out["unit"] = self.unit
        out["source"] = {"device": self.device, "metric": self.metric}
        return out


#: Where the proposals of one birth go: (device id, the new tags).
NewTagsSink = Callable[[str, list[NewTag]], None]


class BirthTags:
    """Auto tags of one MQTT device: proposals, provisional bindings, held samples, counters."""

    def __init__(self, device_id: str, settings: AutoTags, health: DeviceHealth, on_new: NewTagsSink | None,
                 existing: int = 0):
        self.device_id = device_id
        self.settings = settings
        self.health = health
        self.on_new = on_new
        #: Tags created from births (those in the model from earlier births, and those pending).
        self.created = existing
        #: Metrics refused (invalid name, beyond max_tags, the model change failed), and why (the last reason).
        self.refused = 0
        self.last_refusal = ""
        #: Samples of pending tags dropped (more than MAX_HELD_ROWS held, or the change failed).
        self.lost = 0
        self.pending: dict[str, int] = {}  # metric key -> provisional id
        self._texts: set[int] = set()
        self._held: list[pa.RecordBatch] = []
        self._held_rows = 0
        self._next = FIRST_PROVISIONAL
        self._refused_keys: set[str] = set()

    @property
    def pending_texts(self) -> set[int]:
        """The provisional ids of pending text tags."""
        return {v for v in self.pending.values() if v in self._texts}

    # -- a birth ------------------------------------------------------------------------------------------------
    def on_birth(self, node: str, device: str | None, metrics: list[MetricInfo], bindings: dict[str, int],
                 text_tags: set[int]) -> None:
        """Propose the birth's unbound metrics as tags; bind the accepted ones (in ``bindings``, ``text_tags``)."""
        base = f"{node}/" if device is None else f"{node}/{device}/"
        machine = machine_name(node, device)
        about = f"Sparkplug node {node}" + (f", device {device}" if device else "")
        new: list[NewTag] = []
        for m in metrics:
            key = base + m.name
            kind = tag_type(m.datatype)
            if key in bindings or key in self._refused_keys or protocol_metric(m.name) or kind is None:
                continue
            name, why = tag_name(m.name)
            if name is None:
                self._refuse(key, why)
                continue
            if self.created >= self.settings.max_tags:
                self._refuse(key, f"metric {key!r}: this device already has max_tags ({self.settings.max_tags}) "
                                  "tags from births")
                continue
            tag_id = self._next
            self._next += 1
            self.created += 1
            self.pending[key] = bindings[key] = tag_id
            if kind == "string":
                text_tags.add(tag_id)
                self._texts.add(tag_id)
            new.append(NewTag(self.device_id, machine, about, name, kind, unit_of(m.properties), key))
        if new and self.on_new is not None:
            self.on_new(self.device_id, new)

    def _refuse(self, key: str, reason: str) -> None:
        self._refused_keys.add(key)
        if not self.refused:  # the transition to "some refused": logged once
            log.warning("device %s: a Sparkplug metric was not made a tag: %s (the next refusals are counted in "
                        "the device's health)", self.device_id, reason)
        self.refused += 1
        self.last_refusal = reason
        self.show()

    def show(self) -> None:
        h = self.health
        h.extra.update(auto_tags=self.created - len(self.pending), auto_tags_pending=len(self.pending),
                       auto_tags_refused=self.refused, auto_tags_lost=self.lost)
        issues = []
        if self.refused:
            issues.append(f"{self.refused} Sparkplug metric(s) not made tags (last: {self.last_refusal})")
        if self.lost:
            issues.append(f"{self.lost} sample(s) of tags from births lost before the tags existed")
        h.issues = issues

    # -- samples ------------------------------------------------------------------------------------------------
    def split(self, batch: pa.RecordBatch) -> pa.RecordBatch | None:
        """``batch`` without the rows of pending tags (held until they exist); None when nothing is left."""
        if self._next == FIRST_PROVISIONAL:  # nothing was ever bound provisionally
            return batch
        ids = batch.column("tag_id")
        mine = pc.greater_equal(ids, pa.scalar(FIRST_PROVISIONAL, pa.uint32()))
        if not pc.any(mine).as_py():
            return batch
        self._hold(batch.filter(mine))
        rest = batch.filter(pc.invert(mine))
        return rest if rest.num_rows else None

    def _hold(self, rows: pa.RecordBatch) -> None:
        self._held.append(rows)
        self._held_rows += rows.num_rows
        while self._held_rows > MAX_HELD_ROWS and self._held:
            dropped = self._held.pop(0)
            self._held_rows -= dropped.num_rows
            self.lost += dropped.num_rows
            self.show()

    def rebound(self, bindings: Mapping[str, int]) -> list[pa.RecordBatch]:
        """The model now binds some pending metrics to their tags (``bindings``: metric key -> tag id): the held
        rows of those, under their tag ids (to emit); the others stay pending."""
        now = {self.pending[k]: tid for k, tid in bindings.items() if k in self.pending}
        for key in [k for k in self.pending if k in bindings]:
            del self.pending[key]
        if not now:
            return []
        out, keep = [], []
        lookup = np.full(self._next - FIRST_PROVISIONAL, -1, dtype=np.int64)
        for prov, tid in now.items():
            lookup[prov - FIRST_PROVISIONAL] = tid
        for rows in self._held:
            ids = rows.column("tag_id").to_numpy(zero_copy_only=False).astype(np.int64) - FIRST_PROVISIONAL
            real = lookup[ids]
            done = real >= 0
            if done.any():
                got = rows.filter(pa.array(done))
                col = pa.array(real[done].astype(np.uint32), pa.uint32())
                out.append(got.set_column(0, got.schema.field(0), col))
            if not done.all():
                keep.append(rows.filter(pa.array(~done)))
        self._held = keep
        self._held_rows = sum(r.num_rows for r in keep)
        self.show()
        return out

    def failed(self, keys: list[str], reason: str, bindings: dict[str, int]) -> None:
        """The model change for ``keys`` failed: unbind them, drop their held rows, count them refused (they are
        not proposed again until the connector restarts)."""
        gone = {self.pending.pop(k) for k in keys if k in self.pending}
        for key in keys:
            if bindings.get(key, -1) in gone:
                del bindings[key]
        self.created -= len(gone)
        if self._held and gone:
            keep = []
            for rows in self._held:
                drop = np.isin(rows.column("tag_id").to_numpy(zero_copy_only=False), list(gone))
                self.lost += int(drop.sum())
                if not drop.all():
                    keep.append(rows.filter(pa.array(~drop)))
            self._held = keep
            self._held_rows = sum(r.num_rows for r in keep)
        for key in keys:
            self._refuse(key, f"metric {key!r}: the model change failed: {reason}")
