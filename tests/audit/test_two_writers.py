"""Two OS processes append to one audit trail on PostgreSQL at once; ``plantlink audit verify`` (the real CLI, in
its own process) then checks the chain: all 400 records, one gapless chain. A row changed afterwards makes it fail.

Each writer opens the store itself (so the two also migrate the fresh database at once), says it is ready, and
starts appending when the test says go, so that the appends overlap.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import sqlalchemy as sa

from plantlink.audit import GENESIS, AuditLog
from plantlink.store import Store
from tests.store.conftest import pg_url  # noqa: F401  (fixture)
from tests.waiting import patience, wait_until

PER_WRITER = 200
WRITER = """
import sys, time
from pathlib import Path
from plantlink.audit import AuditLog
from plantlink.store import Store

url, name, ready, go, n = sys.argv[1], sys.argv[2], Path(sys.argv[3]), Path(sys.argv[4]), int(sys.argv[5])
store = Store.open(url)
log = AuditLog(store.engine)
ready.touch()
while not go.exists():
    time.sleep(0.005)
for i in range(n):
    log.record("control.write", name, "windsor", f"windsor/a/l/m/sp{i}", {"value": i})
store.close()
"""


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "plantlink.cli", *args], capture_output=True, text=True,
                          timeout=patience(60), env={**os.environ, "PLANTLINK_STORE_URL": ""})


def test_two_processes_append_one_chain_and_verify_passes(pg_url: str, tmp_path: Path) -> None:  # noqa: F811
    go = tmp_path / "go"
    ready = [tmp_path / f"ready{k}" for k in range(2)]
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, pg_url, f"writer{k}", str(ready[k]), str(go),
                                 str(PER_WRITER)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for k in range(2)]
    try:
        wait_until(lambda: all(r.exists() or w.poll() is not None for r, w in zip(ready, writers, strict=True)),
                   timeout=60, what="both writers opened the store")
        go.touch()
        for w in writers:
            _, err = w.communicate(timeout=patience(120))
            assert w.returncode == 0, err
    finally:
        for w in writers:
            if w.poll() is None:
                w.kill()
                w.wait()
    data = tmp_path / "data"
    data.mkdir()
    ok = _cli("audit", "verify", "--data-dir", str(data), "--store-url", pg_url)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.strip() == f"audit trail OK: {2 * PER_WRITER} records"
    engine = sa.create_engine(pg_url)
    try:
        with engine.begin() as c:
            per_actor = dict(c.execute(sa.text("SELECT actor, count(*) FROM audit_log GROUP BY actor")).all())
            assert per_actor == {"writer0": PER_WRITER, "writer1": PER_WRITER}
            c.execute(sa.text("UPDATE audit_log SET details = '{\"value\":-1}' WHERE id = 123"))
    finally:
        engine.dispose()
    bad = _cli("audit", "verify", "--data-dir", str(data), "--store-url", pg_url)
    assert bad.returncode == 1
    assert "audit trail BROKEN at id 123: content does not match its hash (122 records good before)" in bad.stderr


def test_the_first_record_waits_for_an_appender_that_creates_the_head(pg_url: str) -> None:  # noqa: F811
    """The head row does not exist before the first record: a second appender must wait for the first one's
    commit and chain after it, not fail on the head row the first one is inserting."""
    store = Store.open(pg_url)
    log = AuditLog(store.engine)
    done: list[object] = []
    try:
        with store.engine.begin() as first:
            assert AuditLog._lock_head(first) == (0, GENESIS)  # inserts the head row; not committed yet
            t = threading.Thread(target=lambda: done.append(_record_or_error(log)))
            t.start()
            wait_until(lambda: _waiting_on_a_lock(store.engine) or done, what="the second appender waits")
            assert not done, done
        t.join(timeout=patience(20))
        assert len(done) == 1 and getattr(done[0], "id", None) == 1, done
        assert log.verify().ok and log.verify().checked == 1
    finally:
        store.close()


def _record_or_error(log: AuditLog) -> object:
    try:
        return log.record("auth.login", "second")
    except Exception as exc:  # what the test reports when the second appender failed
        return exc


def _waiting_on_a_lock(engine: sa.Engine) -> bool:
    """Another session of the test's database waits for a lock (asked on a connection of its own: a transaction
    sees the statistics as they were at its first look)."""
    with engine.connect() as c:
        n = c.execute(sa.text("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                              "AND wait_event_type = 'Lock'")).scalar_one()
    return bool(n)
