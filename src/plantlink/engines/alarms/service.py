"""What the API and the HMI use: the engine, its store and notifier, operator actions with an audit trail.

An action changes the engine at once (in the event loop, where the engine runs); its writes (waiting until the
journal is written, the audit records) are done at once too, unless the caller ``defer``s them: they are then
queued, in order, for the caller to run off the event loop (``plantlink.services.alarms`` does, for the API)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from plantlink.audit.sink import AuditSink
from plantlink.engines.alarms import performance
from plantlink.engines.alarms.engine import AlarmEngine
from plantlink.errors import AlarmActionError
from plantlink.identity import Caller
from plantlink.samples import now_us
from plantlink.store.alarm_repo import AlarmStore

MAX_SHELVE_US = 7 * 86400 * 1_000_000
#: The writes of the action running in this context, when its caller defers them (else None: written at once).
_LATER: ContextVar[list[Callable[[], object]] | None] = ContextVar("alarm_writes_later", default=None)


@dataclass
class AlarmService:
    engine: AlarmEngine
    store: AlarmStore
    notifier: Any = None
    audit: AuditSink | None = None
    #: Operators per site, for the EEMUA 191 rate per operator (default 1).
    operators: dict[str, int] = field(default_factory=dict)

    @staticmethod
    @contextmanager
    def defer(later: list[Callable[[], object]]) -> Iterator[None]:
        """Within (in this context only), an action's writes are appended to ``later`` instead of done."""
        token = _LATER.set(later)
        try:
            yield
        finally:
            _LATER.reset(token)

    def _audit(self, kind: str, actor: str, site: str, target: str, **details: Any) -> None:
        if self.audit is None:
            return
        later = _LATER.get()
        if later is not None:
            later.append(partial(self.audit.record, kind, actor, site, target, details))
        else:
            self.audit.record(kind, actor, site, target, details)

    def _commit(self) -> None:
        """The engine's journal handed to the recorder, and written before the action is answered."""
        later = _LATER.get()
        if later is None:
            self.engine.commit()
            return
        self.engine.flush()
        if self.engine.recorder is not None:
            later.append(partial(self.engine.recorder.flush, 2.0))

    # -- operator actions: rights checked here, every attempt (done or refused) in the audit trail ----------
    def _site_for(self, who: Caller, key: str) -> str:
        """The alarm's site, once ``who`` is known to hold operator rights there (AlarmActionError otherwise)."""
        site = self.engine.info(key).site  # 404 for an unknown alarm
        if not who.can(site, "operator"):
            raise AlarmActionError(f"operator rights at site {site!r} are needed", 403, key)
        return site

    @contextmanager
    def _attempt(self, action: str, who: Caller, keys: Sequence[str], **details: Any) -> Iterator[None]:
        """Run an action; a refusal (any ``AlarmActionError``) is recorded as ``alarm.<action>_refused``."""
        try:
            yield
        except AlarmActionError as exc:
            for k in keys:
                try:
                    site = self.engine.info(k).site
                except AlarmActionError:
                    site = ""
                self._audit(f"alarm.{action}_refused", who.name, site, k, status=exc.status, reason=str(exc),
                            **details)
            raise

    def record_refusal(self, kind: str, who: Caller, message: str, field: str | None) -> None:
        """Record a request refused before it reached an action (it did not validate)."""
        self._audit(kind, who.name, "", "", status=422, reason=message, field=field)

    def acknowledge(self, keys: Sequence[str], who: Caller, comment: str | None) -> list[str]:
        """Acknowledge alarms, all or none (operator rights at each alarm's site)."""
        with self._attempt("ack", who, keys, comment=comment):
            for k in keys:
                self._site_for(who, k)
            news = self.engine.acknowledge(keys, who.name, comment)
        self._commit()
        for k, new in zip(keys, news, strict=True):
            self._audit("alarm.ack", who.name, self.engine.info(k).site, k, comment=comment, state=new)
        return news

    def shelve(self, key: str, until_us: int, reason: str, who: Caller) -> None:
        with self._attempt("shelve", who, [key], until_us=until_us, why=reason):
            site = self._site_for(who, key)
            if not now_us() < until_us <= now_us() + MAX_SHELVE_US:
                raise AlarmActionError("shelve for more than 0 minutes and at most 7 days", 422, key)
            self.engine.shelve(key, until_us, reason, who.name)
        self._commit()
        self._audit("alarm.shelve", who.name, site, key, until_us=until_us, reason=reason)

    def unshelve(self, key: str, who: Caller, comment: str | None) -> str:
        with self._attempt("unshelve", who, [key], comment=comment):
            site = self._site_for(who, key)
            new = self.engine.unshelve(key, who.name, comment)
        self._commit()
        self._audit("alarm.unshelve", who.name, site, key, comment=comment, state=new)
        return new

    def out_of_service(self, key: str, out: bool, who: Caller, comment: str | None) -> str:
        kind = "out_of_service" if out else "in_service"
        with self._attempt(kind, who, [key], comment=comment):
            site = self._site_for(who, key)
            new = self.engine.set_out_of_service(key, out, who.name, comment)
        self._commit()
        self._audit(f"alarm.{kind}", who.name, site, key, comment=comment, state=new)
        return new

    def performance(self, start_us: int, end_us: int, sites: Sequence[str],
                    now: int | None = None) -> performance.Performance:
        t = now_us() if now is None else now
        events = self.store.activations(start_us, end_us, sites)
        stale = [v.to_dict() for v in self.engine.stale(t, performance.STALE_US) if v.site in sites]
        return performance.compute(events, start_us, end_us, self.operators, sites, stale)
