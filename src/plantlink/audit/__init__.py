"""The audit trail: append-only, hash-chained records of who did what, where (logins, user and token changes,
control writes, configuration reloads, alarm actions).

    log = AuditLog(store.engine)
    log.record("control.write", actor="alice", site="windsor", target="windsor/.../setpoint", details={...})
    log.verify()            # VerifyResult(ok, checked, first_bad_id, reason)
    log.query(kind="auth.", site="windsor")
    log.export_csv(actor="alice")   # generator of CSV lines

``AuditSink`` is what the services that record actions need (``AuditLog`` fits it; ``MemoryAudit`` for tests).
"""

from plantlink.audit.export import csv_lines, safe_cell
from plantlink.audit.log import GENESIS, AuditLog, AuditRecord, VerifyResult, canonical, row_hash
from plantlink.audit.sink import AuditSink, Entry, MemoryAudit
from plantlink.errors import AuditError

__all__ = [
    "GENESIS",
    "AuditError",
    "AuditLog",
    "AuditRecord",
    "AuditSink",
    "Entry",
    "MemoryAudit",
    "VerifyResult",
    "canonical",
    "csv_lines",
    "row_hash",
    "safe_cell",
]
