"""``AuditLog``: the append-only, hash-chained audit trail in the relational store.

Each row stores ``hash = sha256(prev_hash + canonical_json(row))`` where the row is
``{id, ts_us, kind, actor, site, target, details}``; the first row chains from ``GENESIS``. Ids are gapless
(taken from the head row under its lock), and the head row keeps the last id and hash, so ``verify`` finds a
changed, deleted (also the last), reordered or inserted row and reports the first bad id.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from plantlink.errors import AuditError
from plantlink.store import locks
from plantlink.store.auth_tables import audit_head, audit_log

GENESIS = "0" * 64
_SECRET_KEYS = ("password", "secret", "token", "cookie", "authorization", "csrf")


@dataclass(frozen=True)
class AuditRecord:
    id: int
    ts_us: int
    kind: str
    actor: str
    site: str | None
    target: str | None
    details: dict[str, Any]
    prev_hash: str
    hash: str


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    checked: int
    first_bad_id: int | None = None
    reason: str | None = None


def canonical(obj: Any) -> str:
    """Canonical JSON: sorted keys, no spaces, UTF-8 kept."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def row_hash(prev_hash: str, row: Mapping[str, Any]) -> str:
    body = {k: row[k] for k in ("id", "ts_us", "kind", "actor", "site", "target")}
    body["details"] = json.loads(row["details"]) if isinstance(row["details"], str) else row["details"]
    return hashlib.sha256((prev_hash + canonical(body)).encode()).hexdigest()


REDACTED = "[redacted]"


def _is_secret_key(key: str) -> bool:
    k = key.lower()
    return any(s in k for s in _SECRET_KEYS) and not k.endswith(("_id", "_ids"))


def _redact(obj: Any) -> Any:
    if isinstance(obj, Mapping):
        return {str(k): REDACTED if _is_secret_key(str(k)) else _redact(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_redact(v) for v in obj]
    return obj


def _clean_details(details: Mapping[str, Any]) -> dict[str, Any]:
    """JSON-safe details with every secret-looking key (password, token, secret, cookie, ...) redacted:
    secrets never enter the audit trail, even when a caller passes one by mistake."""
    try:
        return dict(json.loads(canonical(_redact(details))))
    except (TypeError, ValueError) as exc:
        raise AuditError(f"audit details must be JSON (str, number, bool, list, dict): {exc}") from None


def _record(row: Any) -> AuditRecord:
    return AuditRecord(row.id, row.ts_us, row.kind, row.actor, row.site, row.target, json.loads(row.details),
                       row.prev_hash, row.hash)


class AuditLog:
    """Append with ``record``; check with ``verify``; read with ``query``; export with ``export_csv``."""

    def __init__(self, engine: sa.Engine, clock: Callable[[], float] = time.time):
        self.engine = engine
        self._clock = clock
        self._lock = threading.Lock()

    def record(self, kind: str, actor: str, site: str | None = None, target: str | None = None,
               details: Mapping[str, Any] | None = None) -> AuditRecord:
        """Append one entry (e.g. ``record("control.write", "alice", "windsor", "windsor/.../sp", {...})``)."""
        if not kind or not actor:
            raise AuditError("an audit record needs a kind and an actor")
        clean = _clean_details(details or {})
        ts_us = int(self._clock() * 1_000_000)
        with self._lock, self.engine.begin() as c:
            head = self._lock_head(c)
            row: dict[str, Any] = {"id": head[0] + 1, "ts_us": ts_us, "kind": kind, "actor": actor, "site": site,
                   "target": target, "details": canonical(clean)}
            digest = row_hash(head[1], row)
            c.execute(audit_log.insert().values(**row, prev_hash=head[1], hash=digest))
            c.execute(audit_head.update().where(audit_head.c.id == 1).values(last_id=row["id"], last_hash=digest))
        return AuditRecord(row["id"], ts_us, kind, actor, site, target, clean, head[1], digest)

    @staticmethod
    def _lock_head(c: sa.Connection) -> tuple[int, str]:
        """Take the write lock first, so concurrent appenders (threads, processes) queue here: the store's lock
        ``audit`` (PostgreSQL: an advisory lock, which also covers the first record, when there is no head row to
        lock yet), then an UPDATE of the head row (SQLite: the database's write lock)."""
        locks.hold(c, "audit")
        got = c.execute(audit_head.update().where(audit_head.c.id == 1).values(last_id=audit_head.c.last_id))
        if got.rowcount == 0:
            c.execute(audit_head.insert().values(id=1, last_id=0, last_hash=GENESIS))
        row = c.execute(sa.select(audit_head.c.last_id, audit_head.c.last_hash).where(audit_head.c.id == 1)).one()
        return int(row.last_id), str(row.last_hash)

    def verify(self) -> VerifyResult:
        """Walk the chain from the first row; the first row that does not fit is reported."""
        prev_id, prev_hash, n = 0, GENESIS, 0
        with self.engine.connect() as c:
            rows = c.execution_options(yield_per=1000).execute(sa.select(audit_log).order_by(audit_log.c.id))
            for row in rows:
                bad = self._check_row(row._mapping, prev_id, prev_hash)
                if bad:
                    return VerifyResult(False, n, int(row.id) if "missing" not in bad else prev_id + 1, bad)
                prev_id, prev_hash, n = int(row.id), str(row.hash), n + 1
            head = c.execute(sa.select(audit_head).where(audit_head.c.id == 1)).first()
        last_id, last_hash = (int(head.last_id), str(head.last_hash)) if head else (0, GENESIS)
        if (last_id, last_hash) != (prev_id, prev_hash):
            first = prev_id + 1 if last_id > prev_id else last_id + 1 if last_id < prev_id else last_id
            return VerifyResult(False, n, first, f"chain ends at id {prev_id} but the head says id {last_id}")
        return VerifyResult(True, n)

    @staticmethod
    def _check_row(row: Any, prev_id: int, prev_hash: str) -> str | None:
        if row["id"] != prev_id + 1:
            return f"row id {prev_id + 1} is missing (next is {row['id']})"
        if row["prev_hash"] != prev_hash:
            return "prev_hash does not match the previous row's hash"
        try:
            ok = row_hash(prev_hash, row) == row["hash"]
        except (TypeError, ValueError):
            ok = False
        return None if ok else "content does not match its hash"

    def query(self, *, start_us: int | None = None, end_us: int | None = None, actor: str | None = None,
              kind: str | None = None, site: str | None = None, limit: int | None = None,
              newest_first: bool = False) -> Iterator[AuditRecord]:
        """Entries with start_us <= ts < end_us, by actor, kind (exact, or a prefix ending in '.': 'auth.'),
        site; streamed in id order (or newest first)."""
        if start_us is not None and end_us is not None and end_us < start_us:
            raise AuditError(f"reversed time range: end {end_us} < start {start_us}")
        q = sa.select(audit_log)
        if start_us is not None:
            q = q.where(audit_log.c.ts_us >= start_us)
        if end_us is not None:
            q = q.where(audit_log.c.ts_us < end_us)
        if actor is not None:
            q = q.where(audit_log.c.actor == actor)
        if kind is not None:
            q = q.where(audit_log.c.kind.startswith(kind, autoescape=True) if kind.endswith(".")
                        else audit_log.c.kind == kind)
        if site is not None:
            q = q.where(audit_log.c.site == site)
        q = q.order_by(audit_log.c.id.desc() if newest_first else audit_log.c.id)
        if limit is not None:
            q = q.limit(limit)
        with self.engine.connect() as c:
            for row in c.execution_options(yield_per=1000).execute(q):
                yield _record(row)

    def export_csv(self, **filters: Any) -> Iterator[str]:
        """CSV lines (header first) of ``query(**filters)``; cells are protected against formula injection."""
        from plantlink.audit.export import csv_lines

        return csv_lines(self.query(**filters))
