"""Health as a person reads it: each device's connector, the recorder, the write-ahead log, the historian writer
and the notifier, with an overall ``ok`` / ``degraded`` and the reasons.

The assembly works over narrow getters (``HealthSources``: what each running part already counts), never over
the runtime. A caller sees the devices of the sites they may view (a device serves the sites of its tags) and
the server-wide parts; ``degraded`` is judged on exactly what they see. ``/healthz`` stays the liveness probe:
this is a report, answered 200 in both cases.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from plantlink.errors import AccessDenied
from plantlink.identity import Caller

__all__ = ["DeviceReport", "Health", "HealthReport", "HealthSources"]

Status = Mapping[str, Any]
#: A recorder event older than this in the outbox makes the report degraded (the recorder's own threshold).
RECORDER_STALE_S = 10.0


def _none() -> None:
    return None


def _empty() -> Mapping[str, Any]:
    return {}


@dataclass(frozen=True)
class HealthSources:
    """Getters of what the running parts count (each may answer None or nothing when the part is not running)."""

    #: device id -> the connector's health (``DeviceHealth.to_dict()``: status, last_error, counters)
    devices: Callable[[], Mapping[str, Status]] = _empty
    recorder: Callable[[], Status | None] = _none
    wal: Callable[[], Status | None] = _none
    historian: Callable[[], Status | None] = _none
    notifier: Callable[[], Status | None] = _none
    #: publisher name -> its status (the MQTT publishers of the model's ``publish:`` section)
    publish: Callable[[], Mapping[str, Status]] = _empty
    #: edge name -> what the central knows of it (``plantlink.edge.central``: online, last seen, sequence, backlog)
    edges: Callable[[], Mapping[str, Status]] = _empty
    #: the relational store (``Store.status()``: backend, url without password, reachable, last_error)
    store: Callable[[], Status | None] = _none


@dataclass(frozen=True)
class DeviceReport:
    device: str
    sites: tuple[str, ...]
    status: str  # connecting, connected, reconnecting, down, stopped
    last_error: str | None
    #: the connector's own figures: protocol, since, samples, errors, reconnects, bad values, ...
    counters: Mapping[str, Any]


@dataclass(frozen=True)
class HealthReport:
    status: Literal["ok", "degraded"]
    reasons: tuple[str, ...]
    devices: tuple[DeviceReport, ...]
    recorder: Status | None
    wal: Status | None
    historian: Status | None
    notifier: Status | None = field(default=None)
    publish: Mapping[str, Status] = field(default_factory=dict)
    edges: Mapping[str, Status] = field(default_factory=dict)
    store: Status | None = None


class Health:
    def __init__(self, sites: Sequence[str], device_sites: Mapping[str, Sequence[str]], sources: HealthSources):
        self.sites = list(sites)
        self.device_sites = {d: tuple(sorted(set(s))) for d, s in device_sites.items()}
        self.sources = sources

    def report(self, who: Caller) -> HealthReport:
        """The report for ``who`` (403 unless they may view at least one site)."""
        visible = {s for s in self.sites if who.can(s, "viewer")}
        if not visible:
            raise AccessDenied("viewer rights at a site are needed to read the health report")
        devices = tuple(self._device(d, st) for d, st in sorted(self.sources.devices().items())
                        if visible & set(self.device_sites.get(d, ())))
        recorder, wal = self.sources.recorder(), self.sources.wal()
        historian, notifier = self.sources.historian(), self.sources.notifier()
        publish, edges, store = dict(self.sources.publish()), dict(self.sources.edges()), self.sources.store()
        reasons = [*_store_reasons(store), *_device_reasons(devices), *_recorder_reasons(recorder), *_wal_reasons(wal),
                   *_historian_reasons(historian), *_notifier_reasons(notifier), *_publish_reasons(publish),
                   *_edge_reasons(edges)]
        return HealthReport("degraded" if reasons else "ok", tuple(reasons), devices, recorder, wal, historian,
                            notifier, publish, edges, store)

    def _device(self, device: str, status: Status) -> DeviceReport:
        counters = {k: v for k, v in status.items() if k not in ("device", "status", "last_error")}
        return DeviceReport(device, self.device_sites.get(device, ()), str(status.get("status", "unknown")),
                            status.get("last_error"), counters)


def _store_reasons(s: Status | None) -> list[str]:
    if s is None or s.get("reachable", True):
        return []
    return [f"store at {s.get('url')} does not answer ({s.get('last_error')}): events wait in the recorder and are "
            "written when it is back; logins and audited actions fail until then"]


def _device_reasons(devices: Sequence[DeviceReport]) -> list[str]:
    out = []
    for d in devices:
        if d.status != "connected":
            out.append(f"device {d.device} is {d.status}" + (f": {d.last_error}" if d.last_error else ""))
        out += [f"device {d.device}: {issue}" for issue in d.counters.get("issues") or ()]
    return out


def _recorder_reasons(r: Status | None) -> list[str]:
    if r is None:
        return []
    out = []
    if r.get("failed"):
        out.append(f"recorder: {r['failed']} events could not be written (set aside in the dead-letter file)")
    if r.get("over_capacity"):
        out.append(f"recorder: {r['over_capacity']} events queued over the outbox's capacity")
    if (r.get("oldest_age_s") or 0.0) >= RECORDER_STALE_S:
        out.append(f"recorder: the oldest waiting event is {r['oldest_age_s']:g} s old"
                   + (f" (last error: {r['last_error']})" if r.get("last_error") else ""))
    return out


def _wal_reasons(w: Status | None) -> list[str]:
    if not w or not w.get("enabled"):
        return []
    out = []
    if w.get("full"):
        out.append("write-ahead log is full: new samples are refused")
    if w.get("refused_batches"):
        out.append(f"write-ahead log: {w['refused_batches']} batches refused")
    if w.get("write_errors"):
        out.append(f"write-ahead log: {w['write_errors']} write errors (last: {w.get('last_error')})")
    if w.get("delivery_held"):
        out.append(f"write-ahead log: delivery held on disk, {w.get('held_batches', 0)} batches "
                   f"({(w.get('held_bytes') or 0) / 2**20:.1f} MiB) behind (the historian is catching up)")
    return out


#: Refusals that mean samples were lost (a duplicate replaced, a non-finite value flagged bad, lose nothing).
_LOSSES = {"unknown_tag": "for an unknown tag", "before_1970": "dated before 1970",
           "far_future": "dated too far ahead of this server's clock"}


def _historian_reasons(h: Status | None) -> list[str]:
    out = []
    if h and h.get("errors"):
        out.append(f"historian: {h['errors']} errors (last: {h.get('last_error')})")
    refused = (h or {}).get("refused") or {}
    lost = [f"{n:,} {_LOSSES[k]}" for k, n in refused.items() if k in _LOSSES and n]
    if lost:
        out.append(f"historian: samples refused since start: {', '.join(lost)}")
    return out


def _notifier_reasons(n: Status | None) -> list[str]:
    if n and n.get("dropped"):
        return [f"notifier: {n['dropped']} notifications dropped (its queue was full)"]
    return []


def _publish_reasons(p: Mapping[str, Status]) -> list[str]:
    return [f"{name}: not connected to {st.get('broker')}" + (f" ({st['last_error']})" if st.get("last_error") else "")
            for name, st in sorted(p.items()) if not st.get("connected")]


def _edge_reasons(e: Mapping[str, Status]) -> list[str]:
    out = []
    for name, st in sorted(e.items()):
        if not st.get("online"):
            out.append(f"edge {name} is offline (last seen {st.get('last_seen') or 'never'})")
        if st.get("queue_alarm"):
            out.append(f"edge {name}: its store-and-forward queue is {100 * (st.get('fill') or 0):.0f}% full")
        if st.get("dropped_rows"):
            out.append(f"edge {name}: {st['dropped_rows']} samples dropped (its queue was full)")
    return out
