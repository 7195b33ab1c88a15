"""Live values for the control path: the bus-fed latest values (``services.latest``), judged usable
or not (and why).

A value is usable when its device is connected, its quality is good and it is fresh. Fresh means: for a
polled tag (a ``poll`` period and no deadband) at most ``stale_factor`` poll periods plus the device's
``timeout`` old (a poll may take that long to answer); for a tag reported
by exception (OPC UA subscriptions, deadbands) the age says nothing about freshness (a steady value is not
re-sent), so it is trusted while its device is connected (connectors mark every point bad when the link is
lost). A ``max_age`` (per tag in its ``control:`` settings, or for the whole service) bounds the age of
either kind. A value that is not a finite number, or stamped more than its device's ``clock_skew`` ahead of
this server's clock, is never usable (connectors already mark such samples bad or uncertain; this also holds
for samples that reached the historian another way, such as a store written before that check existed).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

import pyarrow as pa

from plantlink.control.interlock import Reading, Value
from plantlink.model.plant import TagInfo
from plantlink.model.types import DEFAULT_CLOCK_SKEW
from plantlink.samples import Quality

if TYPE_CHECKING:
    from plantlink.control.wiring import ControlWiring


def poll_period(info: TagInfo, device_config: object) -> float | None:
    """Seconds between two reads of a polled tag, or None when the tag is reported by exception."""
    if info.tag.deadband > 0:
        return None
    period = getattr(info.source, "poll", None) or getattr(device_config, "poll", None)
    return float(period) if period else None


class LiveReader:
    def __init__(self, wiring: ControlWiring, clock: Callable[[], float], stale_factor: float = 3.0,
                 max_age: float | None = None):
        self.wiring = wiring
        self.clock = clock
        self.stale_factor = stale_factor
        self.max_age = max_age

    def device_problem(self, device: str) -> str | None:
        """Why writes to (and reads from) ``device`` cannot be trusted now, or None when it is connected."""
        conn = self.wiring.connectors().get(device)
        if conn is None:
            return f"device {device} is not running (disabled, or the runtime is not started)"
        if not conn.health.ok:
            err = f": {conn.health.last_error}" if conn.health.last_error else ""
            return f"device {device} is {conn.health.state.value}{err}"
        return None

    def clock_skew(self, device: str) -> float:
        dev = self.wiring.plant.devices.get(device)
        return float(getattr(dev.config, "clock_skew", DEFAULT_CLOCK_SKEW)) if dev is not None else DEFAULT_CLOCK_SKEW

    def age_limit(self, info: TagInfo, override: float | None = None) -> float | None:
        """The oldest acceptable age of ``info``'s value in seconds, or None (no bound)."""
        limits = [x for x in (override, self.max_age) if x is not None]
        dev = self.wiring.plant.devices.get(info.device)
        period = poll_period(info, dev.config if dev is not None else None)
        if period is not None:
            timeout = getattr(dev.config, "timeout", None) if dev is not None else None
            limits.append(self.stale_factor * period + float(timeout or 0.0))
        return min(limits) if limits else None

    def read(self, paths: Sequence[str], max_age: Mapping[str, float | None] | None = None) -> dict[str, Reading]:
        """A reading of each of ``paths`` (unknown paths read as not usable)."""
        plant, ids = self.wiring.plant, self.wiring.tag_ids
        known = [p for p in paths if p in ids]
        rows: dict[int, dict[str, object]] = {}
        if known:
            rows = _rows(self.wiring.latest.table([ids[p] for p in known]))
        now_us = int(self.clock() * 1e6)
        out: dict[str, Reading] = {}
        for p in paths:
            if p not in ids:
                out[p] = Reading(None, False, "unknown tag")
                continue
            info = plant.tag(p)
            row = rows.get(ids[p])
            out[p] = self._judge(info, row, now_us, (max_age or {}).get(p))
        return out

    def _judge(self, info: TagInfo, row: dict[str, object] | None, now_us: int, override: float | None) -> Reading:
        if row is None or row["ts"] is None:
            return Reading(None, False, "no value received yet")
        ts_us = int(row["ts"])  # type: ignore[call-overload]
        value = _typed(info.tag.type, row)
        down = self.device_problem(info.device)
        if down:
            return Reading(value, False, down, ts_us)
        quality = int(row["quality"] or 0)  # type: ignore[call-overload]
        if quality < Quality.GOOD:
            return Reading(value, False, f"quality is {Quality.name_of(quality)}", ts_us)
        raw = row["value"]
        if isinstance(raw, float) and not math.isfinite(raw):
            return Reading(None, False, f"the value is not a number ({raw})", ts_us)
        if value is None:
            return Reading(None, False, "no value", ts_us)
        age = (now_us - ts_us) / 1e6
        skew = self.clock_skew(info.device)
        if -age > skew:
            return Reading(value, False, f"the value is stamped {-age:.1f} s ahead of this server's clock (more "
                                         f"than the device's clock_skew of {skew:g} s)", ts_us)
        limit = self.age_limit(info, override)
        if limit is not None and age > limit:
            return Reading(value, False, f"stale: the value is {age:.1f} s old (at most {limit:g} s)", ts_us)
        return Reading(value, True, None, ts_us)


def _rows(table: pa.Table) -> dict[int, dict[str, object]]:
    ts = table.column("ts").cast(pa.int64()).to_pylist()
    cols = {n: table.column(n).to_pylist() for n in ("tag_id", "value", "quality", "text")}
    return {
        int(tid): {"ts": ts[i], "value": cols["value"][i], "quality": cols["quality"][i], "text": cols["text"][i]}
        for i, tid in enumerate(cols["tag_id"])
    }


def _typed(tag_type: str, row: dict[str, object]) -> Value | None:
    if tag_type == "string":
        text = row["text"]
        return text if isinstance(text, str) else None
    v = row["value"]
    if not isinstance(v, float | int) or not math.isfinite(v):
        return None  # NaN and the infinities are no value (a bool tag would read NaN as true)
    return bool(v != 0) if tag_type == "bool" else float(v)
