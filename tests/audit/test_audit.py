"""The audit trail: hash chain (checked by hand), tamper detection through direct SQL, filters, CSV export."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from plantlink.audit import GENESIS, AuditError, AuditLog, safe_cell
from plantlink.store import Store, default_url
from tests.store.conftest import pg_url  # noqa: F401  (fixture)

T0 = 1_700_000_000.0


class Clock:
    def __init__(self) -> None:
        self.t = T0

    def __call__(self) -> float:
        self.t += 1.0
        return self.t


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    url = default_url(tmp_path) if request.param == "sqlite" else request.getfixturevalue("pg_url")
    s = Store.open(url)
    yield s
    s.close()


@pytest.fixture
def log(store: Store) -> AuditLog:
    return AuditLog(store.engine, Clock())


def _fill(log: AuditLog, n: int = 5) -> None:
    for i in range(n):
        log.record("control.write", f"user{i % 2}", "windsor" if i % 2 else "detroit", f"tag{i}", {"value": i})


def test_chain_matches_a_hand_computed_sha256(log: AuditLog) -> None:
    r1 = log.record("auth.login", "alice", None, None, {"client": "127.0.0.1"})
    r2 = log.record("control.write", "alice", "windsor", "windsor/a/l/m/sp", {"value": 2.5, "unit": "°C"})
    body1 = ('{"actor":"alice","details":{"client":"127.0.0.1"},"id":1,"kind":"auth.login","site":null,'
             f'"target":null,"ts_us":{int((T0 + 1) * 1e6)}}}')
    assert r1.hash == hashlib.sha256((GENESIS + body1).encode()).hexdigest() and r1.prev_hash == GENESIS
    body2 = ('{"actor":"alice","details":{"unit":"°C","value":2.5},"id":2,"kind":"control.write","site":"windsor",'
             f'"target":"windsor/a/l/m/sp","ts_us":{int((T0 + 2) * 1e6)}}}')
    assert r2.hash == hashlib.sha256((r1.hash + body2).encode()).hexdigest() and r2.prev_hash == r1.hash
    res = log.verify()
    assert (res.ok, res.checked, res.first_bad_id) == (True, 2, None)


def test_empty_log_verifies(log: AuditLog) -> None:
    assert log.verify().ok and log.verify().checked == 0


@pytest.mark.parametrize("tamper, bad_id", [
    ("UPDATE audit_log SET details = '{\"value\"\\:99}' WHERE id = 3", 3),
    ("UPDATE audit_log SET actor = 'mallory' WHERE id = 2", 2),
    ("UPDATE audit_log SET ts_us = ts_us + 1 WHERE id = 1", 1),
    ("DELETE FROM audit_log WHERE id = 3", 3),
    ("DELETE FROM audit_log WHERE id = 5", 5),  # the last one: caught by the head
    ("DELETE FROM audit_log WHERE id >= 4", 4),
    ("UPDATE audit_log SET details = 'not json' WHERE id = 4", 4),
])
def test_verify_finds_the_first_tampered_row(log: AuditLog, store: Store, tamper: str, bad_id: int) -> None:
    _fill(log)
    assert log.verify().ok
    with store.engine.begin() as c:
        c.execute(sa.text(tamper))
    res = log.verify()
    assert not res.ok and res.first_bad_id == bad_id, res


def test_verify_finds_an_inserted_row_even_with_a_valid_looking_hash(log: AuditLog, store: Store) -> None:
    _fill(log, 3)
    # an attacker appends a row chained correctly to the last one, but cannot fix the head without being seen
    from plantlink.audit import canonical, row_hash

    last = list(log.query())[-1]
    row = {"id": 4, "ts_us": last.ts_us + 1, "kind": "auth.login", "actor": "mallory", "site": None,
           "target": None, "details": canonical({})}
    with store.engine.begin() as c:
        c.execute(sa.text("INSERT INTO audit_log (id, ts_us, kind, actor, site, target, details, prev_hash, hash) "
                          "VALUES (:id, :ts_us, :kind, :actor, :site, :target, :details, :p, :h)"),
                  {**row, "p": last.hash, "h": row_hash(last.hash, row)})
    res = log.verify()
    assert not res.ok and res.first_bad_id == 4
    # renumbering to squeeze a row in the middle breaks the chain at that row
    with store.engine.begin() as c:
        c.execute(sa.text("DELETE FROM audit_log WHERE id = 4"))
        c.execute(sa.text("UPDATE audit_log SET id = 10 WHERE id = 3"))
        c.execute(sa.text("INSERT INTO audit_log (id, ts_us, kind, actor, site, target, details, prev_hash, hash) "
                          "SELECT 3, ts_us, kind, 'mallory', site, target, details, prev_hash, hash "
                          "FROM audit_log WHERE id = 2"))
    res = log.verify()
    assert not res.ok and res.first_bad_id == 3


def test_concurrent_appends_keep_one_chain(log: AuditLog, store: Store) -> None:
    other = AuditLog(store.engine)  # a second writer (e.g. another component), its own lock

    def work(lg: AuditLog, who: str) -> None:
        for i in range(15):
            lg.record("alarm.ack", who, "windsor", f"a{i}")

    threads = [threading.Thread(target=work, args=(lg, f"w{k}")) for k, lg in enumerate((log, other, log, other))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    res = log.verify()
    assert res.ok and res.checked == 60
    assert [r.id for r in log.query()] == list(range(1, 61))


def test_filters(log: AuditLog) -> None:
    log.record("auth.login", "alice")
    log.record("auth.login_failed", "bob", details={"reason": "bad_credentials"})
    log.record("control.write", "alice", "windsor", "t1", {"value": 1})
    log.record("alarm.ack", "bob", "detroit", "a1")
    log.record("control.write", "bob", "detroit", "t2", {"value": 2})
    ids = lambda **f: [r.id for r in log.query(**f)]  # noqa: E731
    assert ids(actor="alice") == [1, 3]
    assert ids(kind="control.write") == [3, 5]
    assert ids(kind="auth.") == [1, 2]
    assert ids(kind="auth") == []  # exact unless it ends with '.'
    assert ids(site="detroit") == [4, 5]
    t = lambda k: int((T0 + k) * 1e6)  # noqa: E731  (the k-th record's time)
    assert ids(start_us=t(2), end_us=t(4)) == [2, 3]
    assert ids(actor="bob", site="detroit", kind="control.write") == [5]
    assert ids(newest_first=True, limit=2) == [5, 4]
    with pytest.raises(AuditError, match="reversed"):
        list(log.query(start_us=t(4), end_us=t(2)))
    with pytest.raises(AuditError, match="an actor"):
        log.record("x", "")
    with pytest.raises(AuditError, match="JSON"):
        log.record("x", "y", details={"obj": object()})


def test_csv_export_escapes_formulas_and_round_trips(log: AuditLog) -> None:
    log.record("control.write", "=HYPERLINK(\"http://evil\")", "windsor", "+1+cmd|' /C calc'!A0",
               {"note": "-2+3", "at": "@SUM(A1)"})
    log.record("config.reload", "alice", None, "line,with \"quotes\"\nand newline", {})
    lines = list(log.export_csv())
    assert len(lines) == 3 and all(line.endswith("\r\n") for line in lines)
    rows = list(csv.reader(io.StringIO("".join(lines))))
    assert rows[0] == ["id", "time_utc", "kind", "actor", "site", "target", "details", "prev_hash", "hash"]
    assert rows[1][3] == "'=HYPERLINK(\"http://evil\")" and rows[1][5] == "'+1+cmd|' /C calc'!A0"
    assert json.loads(rows[1][6]) == {"at": "@SUM(A1)", "note": "-2+3"}  # a JSON cell starts with '{'
    assert rows[1][1] == "2023-11-14T22:13:21.000000+00:00"
    assert rows[2][4] == "" and rows[2][5] == "line,with \"quotes\"\nand newline"
    assert [safe_cell(v) for v in ("=1", "+1", "-1", "@a", "\tx", "a=b", None, 5)] == [
        "'=1", "'+1", "'-1", "'@a", "'\tx", "a=b", "", "5"]
    assert list(log.export_csv(actor="alice"))[1].startswith("2,")
