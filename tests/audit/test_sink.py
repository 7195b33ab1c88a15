"""One ``AuditSink`` protocol, in ``plantlink.audit.sink``: the control path and the alarm service take it, and
both the hash-chained ``AuditLog`` and ``MemoryAudit`` fit it."""

from __future__ import annotations

import re
from pathlib import Path

from plantlink.audit import AuditLog, AuditSink, MemoryAudit
from plantlink.engines.alarms.service import AlarmService
from plantlink.store import Store, default_url

SRC = Path(__file__).resolve().parents[2] / "src" / "plantlink"


def test_one_audit_sink_protocol() -> None:
    defining = sorted(str(p.relative_to(SRC)) for p in SRC.rglob("*.py")
                      if re.search(r"^class AuditSink\b", p.read_text("utf-8"), re.M))
    assert defining == ["audit/sink.py"]
    assert AlarmService.__annotations__["audit"] == "AuditSink | None"


def test_the_log_and_the_memory_fit_the_sink(tmp_path: Path) -> None:
    store = Store.open(default_url(tmp_path))
    try:
        sinks: list[AuditSink] = [AuditLog(store.engine), MemoryAudit()]
        for sink in sinks:
            sink.record("alarm.ack", "ann", "windsor", "windsor/a/l/m/temp_high", {"comment": "seen"})
            sink.record("auth.login", "ann")
        assert [r.kind for r in AuditLog(store.engine).query()] == ["alarm.ack", "auth.login"]
        assert isinstance(sinks[1], MemoryAudit) and sinks[1].kinds() == ["alarm.ack", "auth.login"]
    finally:
        store.close()
