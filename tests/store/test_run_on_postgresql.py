"""``plantlink run --store-url postgresql+psycopg://...`` keeps its relational store on PostgreSQL (nothing in the
data directory's SQLite file), and ``plantlink audit verify`` finds its records there through
``PLANTLINK_STORE_URL``."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import sqlalchemy as sa

from plantlink.datadir import STORE_FILE
from tests.store.conftest import pg_url  # noqa: F401  (fixture)
from tests.waiting import patience


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


PLANT = """
enterprise: Test
devices:
  plc: {protocol: modbus, host: 127.0.0.1, port: %d, poll: 1s}
sites:
  - name: s1
    timezone: UTC
    areas:
      - name: a1
        lines:
          - name: l1
            machines:
              - name: m1
                tags:
                  - {name: speed, unit: rpm, source: {device: plc, address: 0, type: float32}}
"""


def _plantlink(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "plantlink.cli", *args], capture_output=True, text=True,
                          timeout=patience(120), env={**os.environ, "PLANTLINK_STORE_URL": "", **env})


def test_run_keeps_its_store_on_postgresql(pg_url: str, tmp_path: Path) -> None:  # noqa: F811
    plant, data = tmp_path / "plant.yaml", tmp_path / "data"
    plant.write_text(PLANT % _closed_port(), encoding="utf-8")
    ran = _plantlink("run", str(plant), "--data-dir", str(data), "--no-api", "--duration", "0.5", "--json",
                     "--store-url", pg_url)
    assert ran.returncode == 0, ran.stderr
    assert "samples_stored" in json.loads(ran.stdout)
    assert not (data / STORE_FILE).exists()
    engine = sa.create_engine(pg_url)
    try:
        with engine.connect() as c:
            kinds = c.execute(sa.text("SELECT kind FROM audit_log ORDER BY id")).scalars().all()
            runs = c.execute(sa.text("SELECT count(*) FROM runs WHERE end_us IS NOT NULL")).scalar_one()
    finally:
        engine.dispose()
    assert kinds == ["config.load"] and runs == 1
    ok = _plantlink("audit", "verify", "--data-dir", str(data), PLANTLINK_STORE_URL=pg_url)
    assert (ok.returncode, ok.stdout.strip()) == (0, "audit trail OK: 1 records"), ok.stderr


def test_run_on_a_missing_database_says_so_in_one_line(pg_url: str, tmp_path: Path) -> None:  # noqa: F811
    plant, data = tmp_path / "plant.yaml", tmp_path / "data"
    plant.write_text(PLANT % _closed_port(), encoding="utf-8")
    missing = sa.make_url(pg_url).set(database="plantlink_missing_db", password="not-shown")
    ran = _plantlink("run", str(plant), "--data-dir", str(data), "--no-api", "--duration", "0.5",
                     PLANTLINK_STORE_URL=missing.render_as_string(hide_password=False))
    assert ran.returncode == 1 and "not-shown" not in ran.stderr
    line = next(ln for ln in ran.stderr.splitlines() if ln.startswith("error "))
    assert line.startswith(f"error cannot open the store at {missing.render_as_string(hide_password=True)}: the "
                           "database 'plantlink_missing_db' does not exist (") and line.endswith(
                           "create it (createdb -O postgres plantlink_missing_db) or give the right database in "
                           "--store-url (or PLANTLINK_STORE_URL)")
