"""The live stream: one hub fans bus batches and machine state changes out to WebSocket clients.

* Values come from the ONE latest-value cache (``services.latest.listen``): each batch the bus delivered, once
  folded in, in arrival order: at once in the cache's turn while it keeps up, else through a bounded, lossy
  queue for the whole hub (a hub that falls behind drops the oldest batches, never slows the cache, the bus or
  the historian).
* Vectorised fan-out: per batch, the rows any client wants are picked with one lookup in a per-tag
  subscriber count, encoded to JSON once, and each client's rows are picked with its own boolean mask.
* Each client has a bounded send queue and its own sender task: a client whose queue is full (slow
  reader) or whose send times out (dead peer) is dropped (closed with code 1013 and the reason); the
  others never wait for it.
* The caller's session or token is watched while the stream is open (``plantlink.auth.watch``): the route
  drops the client when it ends (4401) and ``rescope``s it when the caller's roles change.

Protocol (JSON text frames), see docs/api.md:
  -> {"subscribe": {"tags": [path|id...], "machines": [path...], "lines": [path...], "states": true|[path...]}}
  -> {"unsubscribe": {...same keys...}}      -> {"ping": 1}
  <- {"type": "subscribed"|"unsubscribed", ...}  <- {"type": "values", "ts", "ts_ms", "values": [...]}
  <- {"type": "state", "machine", "line", "site", "state", "previous", "shift", "since", "since_ms"}
  <- {"type": "states", "states": [{...as "state"...}, ...]}   several changes of one engine step at once
  <- {"type": "states", "snapshot": true, "states": [...]}       current states, after a subscribe
  <- {"type": "access_changed", "roles", "removed", "tags", "subscriptions", "states"}   roles changed
  <- {"type": "error", "code", "message", "field"}
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from plantlink.api.scope import PlantIndex, services_of
from plantlink.api.timefmt import iso, iso_many, stamp
from plantlink.errors import AccessDenied, NotFound, SubscriptionError
from plantlink.identity import Caller
from plantlink.samples import Quality, now_us, value_reasons

if TYPE_CHECKING:
    from plantlink.services import Services
    from plantlink.services.feed import StateChange
    from plantlink.services.latest import Listener

log = logging.getLogger("plantlink.api.live")

KINDS = ("tags", "machines", "lines")
MAX_TAGS_PER_CLIENT = 20_000
MAX_ITEMS_PER_MESSAGE = 5_000
CLOSE_TOO_SLOW = 1013


@dataclass(eq=False)
class Client:
    """One connected WebSocket client: what it asked for and its bounded send queue."""

    who: Caller
    queue: asyncio.Queue[str]
    wanted: dict[str, set[str | int]] = field(default_factory=lambda: {k: set() for k in KINDS})
    mask: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))
    ids: set[int] = field(default_factory=set)
    states_all: bool = False
    state_machines: set[str] = field(default_factory=set)
    dropped: str | None = None
    close_code: int = CLOSE_TOO_SLOW
    gone: asyncio.Event = field(default_factory=asyncio.Event)
    sent: int = 0
    on_drop: Callable[[Client], None] | None = None

    def offer(self, message: str) -> bool:
        """Queue a message; False (and the client is marked dropped) when its queue is full."""
        if self.dropped is not None:
            return False
        try:
            self.queue.put_nowait(message)
        except asyncio.QueueFull:
            self.drop("send queue full: the client reads too slowly")
            return False
        return True

    def drop(self, reason: str, code: int = CLOSE_TOO_SLOW) -> None:
        """Stop delivering at once; the route closes the socket with ``code`` and ``reason``."""
        if self.dropped is None:
            self.dropped, self.close_code = reason, code
            self.gone.set()
            if self.on_drop is not None:
                self.on_drop(self)


class LiveHub:
    """Fans bus batches and state changes out to clients. ``start`` is idempotent; ``stop`` closes all."""

    def __init__(self, services: Any, *, bus_maxsize: int = 32, client_queue: int = 64,
                 send_timeout: float = 10.0):
        """``services``: the ``Services`` (or a runtime, whose services are looked up when the hub starts)."""
        self._holder = services
        self.bus_maxsize = bus_maxsize
        self.client_queue = client_queue
        self.send_timeout = send_timeout
        self.clients: set[Client] = set()
        self.dropped = 0
        self.batches = 0
        self._counts = np.zeros(0, dtype=np.int32)
        self._sub: Listener | None = None
        self._task: asyncio.Task[None] | None = None
        self._listening = False
        self._paths_json: np.ndarray = np.zeros(0, dtype=object)
        self._pending_states: list[StateChange] = []

    @property
    def services(self) -> Services:
        return services_of(self._holder)

    # -- lifecycle -------------------------------------------------------------------------------------
    async def start(self) -> None:
        if self._task is not None and not self._task.done():
            return
        idx = self.services.plant
        size = max(idx.path_of, default=-1) + 1
        self._paths_json = np.array([json.dumps(idx.path_of.get(i, "")) for i in range(size)], dtype=object)
        self._counts = np.zeros(size, dtype=np.int32)
        for c in self.clients:
            self._counts += c.mask
        self._sub = self.services.latest.listen("api-live", maxsize=self.bus_maxsize, at_once=self._fan_out)
        self._task = asyncio.create_task(self._run(self._sub), name="api-live-hub")
        if not self._listening:
            self._listening = self.services.feed.on_state_change(self._on_state)

    async def stop(self) -> None:
        if self._sub is not None:
            self._sub.close()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._task = self._sub = None
        for c in list(self.clients):
            c.drop("server stopping")

    @property
    def bus_dropped(self) -> int:
        return self._sub.dropped if self._sub is not None else 0

    # -- clients ---------------------------------------------------------------------------------------
    def connect(self, who: Caller) -> Client:
        c = Client(who, asyncio.Queue(self.client_queue), mask=np.zeros(self._counts.size, dtype=bool),
                   on_drop=self._on_drop)
        self.clients.add(c)
        return c

    def _on_drop(self, c: Client) -> None:
        if c.dropped != "server stopping" and c.close_code == CLOSE_TOO_SLOW and c in self.clients:
            self.dropped += 1
            log.warning("live client %s dropped: %s", c.who.name, c.dropped)
        self.disconnect(c)

    def disconnect(self, c: Client) -> None:
        if c in self.clients:
            self.clients.discard(c)
            self._counts -= c.mask

    def _resolve(self, idx: PlantIndex, c: Client) -> tuple[set[int], set[str]]:
        """Tag ids and machines (for lines and machines) of everything ``c`` wants."""
        ids: set[int] = set()
        machines: set[str] = set()
        for ref in c.wanted["tags"]:
            ids.add(idx.tag(c.who, ref, field="tags")[0])
        for path in c.wanted["machines"]:
            m = idx.machine(c.who, str(path))
            ids.update(m.tag_ids.tolist())
            machines.add(m.path)
        for path in c.wanted["lines"]:
            ln = idx.line(c.who, str(path))
            ids.update(ln.tag_ids.tolist())
            machines.update(ln.machines)
        return ids, machines

    def change(self, c: Client, spec: Any, add: bool) -> list[str]:
        """Apply a subscribe (``add``) or unsubscribe message; all or nothing. Returns the messages to send:
        the acknowledgement, then (subscribe) a snapshot of the newly subscribed values and states.
        Raises ``SubscriptionError``."""
        if not isinstance(spec, dict) or set(spec) - {*KINDS, "states"}:
            raise SubscriptionError("bad_request", f"give an object with keys {[*KINDS, 'states']}", "subscribe")
        idx = self.services.plant
        before = {k: set(v) for k, v in c.wanted.items()}
        old_states = (c.states_all, set(c.state_machines))
        try:
            self._apply(idx, c, spec, add)
            ids, _ = self._resolve(idx, c)
            if len(ids) > MAX_TAGS_PER_CLIENT:
                raise SubscriptionError("too_many", f"at most {MAX_TAGS_PER_CLIENT} tags per client", "tags")
        except (SubscriptionError, NotFound, AccessDenied) as exc:
            c.wanted = before
            c.states_all, c.state_machines = old_states
            if isinstance(exc, SubscriptionError):
                raise
            raise SubscriptionError(exc.code, exc.message, exc.field or "site") from None
        new_ids = ids - c.ids
        self._set_mask(c, ids)
        new_states = self._state_targets(idx, c) - self._state_targets(idx, c, *old_states)
        ack = self._ack(c, "subscribed" if add else "unsubscribed")
        return [ack, *self._snapshot(idx, sorted(new_ids), sorted(new_states))] if add else [ack]

    @staticmethod
    def _ack(c: Client, kind: str, **extra: Any) -> str:
        return json.dumps({"type": kind, **extra, "tags": len(c.ids),
                           "subscriptions": {k: sorted(map(str, v)) for k, v in c.wanted.items()},
                           "states": True if c.states_all else sorted(c.state_machines)})

    def rescope(self, c: Client, who: Caller) -> str:
        """The caller holds other roles now: subscriptions to what it may no longer view end at once (the next
        batch is filtered already). Returns the ``access_changed`` message telling what was removed."""
        c.who = who
        idx = self.services.plant
        removed: dict[str, list[str]] = {}
        for kind in KINDS:
            gone = {ref for ref in c.wanted[kind] if not self._may_view(idx, c, kind, ref)}
            if gone:
                c.wanted[kind] -= gone
                removed[kind] = sorted(map(str, gone))
        lost = {m for m in c.state_machines if not who.can(idx.machines[m].site, "viewer")}
        if lost:
            c.state_machines -= lost
            removed["states"] = sorted(lost)
        ids, _ = self._resolve(idx, c)
        self._set_mask(c, ids)
        return self._ack(c, "access_changed", roles=dict(getattr(who, "roles", {})), removed=removed)

    @staticmethod
    def _may_view(idx: PlantIndex, c: Client, kind: str, ref: str | int) -> bool:
        try:
            if kind == "tags":
                idx.tag(c.who, ref, field="tags")
            elif kind == "machines":
                idx.machine(c.who, str(ref))
            else:
                idx.line(c.who, str(ref))
        except (NotFound, AccessDenied):
            return False
        return True

    def _apply(self, idx: PlantIndex, c: Client, spec: dict[str, Any], add: bool) -> None:
        for kind in KINDS:
            items = spec.get(kind) or []
            if not isinstance(items, list) or len(items) > MAX_ITEMS_PER_MESSAGE:
                raise SubscriptionError("bad_request", f"{kind} must be a list of at most "
                                        f"{MAX_ITEMS_PER_MESSAGE} paths or ids", kind)
            normal = {str(x).strip("/") for x in items}
            if add:
                c.wanted[kind] |= normal
            else:
                c.wanted[kind] -= normal
        states = spec.get("states")
        if states is True:
            c.states_all = add
        elif isinstance(states, list):
            paths: set[str] = set()
            for p in states:
                p = str(p).strip("/")
                paths.update(idx.line(c.who, p).machines if p.count("/") == 2 else [idx.machine(c.who, p).path])
            c.state_machines = c.state_machines | paths if add else c.state_machines - paths
        elif states not in (None, False):
            raise SubscriptionError("bad_request", "states must be true or a list of machine/line paths", "states")

    def _state_targets(self, idx: PlantIndex, c: Client, states_all: bool | None = None,
                       machines: set[str] | None = None) -> set[str]:
        if states_all if states_all is not None else c.states_all:
            return {p for p, m in idx.machines.items() if c.who.can(m.site, "viewer")}
        return set(c.state_machines if machines is None else machines)

    def _set_mask(self, c: Client, ids: set[int]) -> None:
        mask = np.zeros(self._counts.size, dtype=bool)
        if ids:
            mask[np.fromiter(ids, dtype=np.int64)] = True
        self._counts += mask.astype(np.int32) - c.mask
        c.mask, c.ids = mask, ids

    def _snapshot(self, idx: PlantIndex, ids: list[int], machines: list[str]) -> list[str]:
        out: list[str] = []
        if ids:
            t = self.services.latest.table(ids)
            known = np.flatnonzero(t.column("ts").is_valid().to_numpy(zero_copy_only=False))
            if known.size:
                t = t.take(pa.array(known))
                frags = self._encode(t.column("tag_id").to_numpy(zero_copy_only=False), t.column("ts"),
                                     t.column("value"), t.column("quality"), t.column("text"))
                out.append(self._values_message(frags, snapshot=True))
        current = self.services.states.current()
        have = [mp for mp in machines if mp in current]
        if have:
            out.append(json.dumps({"type": "states", "snapshot": True, "states": [
                {"machine": mp, "line": idx.machines[mp].line, "site": idx.machines[mp].site,
                 "state": current[mp][0], **stamp(current[mp][1], "since")} for mp in have]}))
        return out

    # -- fan-out ---------------------------------------------------------------------------------------
    async def _run(self, sub: Listener) -> None:
        async for batch in sub:
            self._fan_out(batch)

    def _fan_out(self, batch: pa.RecordBatch) -> None:
        try:
            self.fan_out(batch)
        except Exception:
            log.exception("live hub could not fan out a batch of %d rows", batch.num_rows)

    def fan_out(self, batch: pa.RecordBatch) -> None:
        self.batches += 1
        if batch.num_rows == 0 or not self.clients:
            return
        ids = batch.column("tag_id").to_numpy(zero_copy_only=False).astype(np.int64)
        inside = ids < self._counts.size
        rows = np.flatnonzero(inside)
        rows = rows[self._counts[ids[rows]] > 0]
        if rows.size == 0:
            return
        sel = batch.take(pa.array(rows))
        sel_ids = ids[rows]
        frags = self._encode(sel_ids, sel.column("ts"), sel.column("value"), sel.column("quality"),
                             sel.column("text"))
        for c in list(self.clients):
            if c.dropped is not None or not c.ids:
                continue
            mine = np.flatnonzero(c.mask[sel_ids])
            if mine.size:
                c.offer(self._values_message([frags[i] for i in mine.tolist()]))

    def _encode(self, ids: np.ndarray, ts: Any, values: Any, quality: Any, text: Any) -> list[str]:
        """One JSON object per row: tag, id, value or text, quality, ts, ts_ms. Columns, not rows. A number that
        cannot be shown is ``"value":null`` with a ``reason`` (``nan``, ``+inf``, ``-inf``, ``null``)."""
        ts_us = pa.array(ts).cast(pa.int64()).to_numpy(zero_copy_only=False) if not isinstance(ts, pa.ChunkedArray) \
            else ts.cast(pa.int64()).to_numpy()
        q = np.asarray(pa.array(quality) if not isinstance(quality, pa.ChunkedArray) else quality.to_numpy(),
                       dtype=np.int64)
        qname = np.where(q >= Quality.GOOD, '"good"', np.where(q >= Quality.UNCERTAIN, '"uncertain"', '"bad"'))
        why = None
        if values is not None:
            v = values.to_numpy(zero_copy_only=False).astype(np.float64)
            vstr = np.where(np.isfinite(v), v.astype(str), "null")
            why = value_reasons(values)
        else:
            vstr = np.full(ids.size, "null", dtype=object)
        texts = text.to_pylist() if text is not None and text.null_count < len(text) else []
        paths = self._paths_json[ids]
        uniq, inverse = np.unique(ts_us, return_inverse=True)  # a batch usually shares one timestamp
        iso_u = np.array(iso_many(uniq), dtype=object)
        iso_s, ms = iso_u[inverse.reshape(-1)].tolist(), (ts_us // 1000).tolist()
        vals = [f'"value":{vs}' for vs in vstr.tolist()]
        if why is not None:
            for i in np.flatnonzero(why.astype(bool)).tolist():  # None -> False
                vals[i] += f',"reason":"{why[i]}"'
        for i, tx in enumerate(texts):  # text rows are rare
            if tx is not None or values is None:
                vals[i] = f'"text":{json.dumps(tx)}'

        return [f'{{"tag":{p},"id":{tid},{val},"quality":{qn},"ts":"{t}","ts_ms":{m}}}'
                for p, tid, val, qn, t, m in zip(paths.tolist(), ids.tolist(), vals, qname.tolist(), iso_s, ms,
                                                 strict=True)]

    @staticmethod
    def _values_message(frags: list[str], snapshot: bool = False) -> str:
        t = now_us()
        extra = ',"snapshot":true' if snapshot else ""
        return f'{{"type":"values","ts":"{iso(t)}","ts_ms":{t // 1000}{extra},"values":[{",".join(frags)}]}}'

    def _on_state(self, ch: StateChange) -> None:
        """StateEngine listener: collect the change; changes of one engine step go out together (a shift
        change moves every machine at once: one message per client, not hundreds)."""
        if not self._pending_states:
            asyncio.get_running_loop().call_soon(self._flush_states)
        self._pending_states.append(ch)

    def _flush_states(self) -> None:
        changes, self._pending_states = self._pending_states, []
        rows = [{"machine": ch.machine, "line": ch.line, "site": ch.site, "state": ch.state, "previous": ch.previous,
                 "shift": ch.shift, **stamp(ch.since_us, "since")} for ch in changes]
        for c in list(self.clients):
            if c.dropped is not None or not (c.states_all or c.state_machines):
                continue
            mine = [r for r, ch in zip(rows, changes, strict=True) if c.who.can(ch.site, "viewer")
                    and (c.states_all or ch.machine in c.state_machines)]
            if len(mine) == 1:
                c.offer(json.dumps({"type": "state", **mine[0]}))
            elif mine:
                c.offer(json.dumps({"type": "states", "states": mine}))
