"""``plantlink doctor`` (issue 14, item 6): each check against the real thing: a Modbus server, a Mosquitto that
wants a password, nothing listening, PostgreSQL without the database, a store from a newer plantlink, a
historian held by another process. The CLI runs as a subprocess, as a person runs it."""

from __future__ import annotations

import asyncio
import getpass
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest_asyncio
import sqlalchemy as sa

from plantlink.store import Store, default_url
from tests.connectors.mosquitto import MosquittoServer, _accepts
from tests.ingest.natsserver import NatsServer
from tests.plants import plant_yaml as skeleton
from tests.servers import ModbusTestServer
from tests.store.conftest import pg_url  # noqa: F401  (the fixture)
from tests.waiting import wait_for

PASSWORD = "s3cret-pw"


def plant_yaml(modbus_port: int, dead_port: int, broker_port: int, password: str) -> str:
    return f"""
enterprise: Acme
devices:
  plc: {{protocol: modbus, host: 127.0.0.1, port: {modbus_port}, unit_id: 1}}
  gone: {{protocol: modbus, host: 127.0.0.1, port: {dead_port}, unit_id: 1}}
publish: {{mqtt: "mqtt://127.0.0.1:{broker_port}", username: doc, password: "{password}"}}
sites:
  - name: windsor
    timezone: America/Toronto
    areas:
      - name: a
        lines:
          - name: l
            machines:
              - name: press1
                tags:
                  - {{name: t, source: {{device: plc, address: 0, type: uint16}}}}
                  - {{name: u, source: {{device: gone, address: 0, type: uint16}}}}
"""


def doctor(*args: str) -> tuple[int, list[dict[str, str]], str]:
    p = subprocess.run([sys.executable, "-m", "plantlink.cli", "doctor", *args, "--json", "--timeout", "5"],
                       capture_output=True, text=True, timeout=120)
    return p.returncode, json.loads(p.stdout) if p.stdout.strip() else [], p.stdout + p.stderr


def by_check(found: list[dict[str, str]]) -> dict[str, dict[str, str]]:
    return {f["check"]: f for f in found}


@pytest_asyncio.fixture
async def broker(tmp_path: Path, free_port: Callable[[], int]) -> AsyncIterator[MosquittoServer]:
    """A Mosquitto that takes user ``doc`` with PASSWORD only."""
    work = tmp_path / "broker"
    work.mkdir()
    srv = MosquittoServer(free_port(), work)
    pwfile = work / "passwd"
    subprocess.run(["mosquitto_passwd", "-b", "-c", str(pwfile), "doc", PASSWORD], check=True, capture_output=True)
    # user: as root, Mosquitto would become user mosquitto, who cannot read the test's private directory
    srv.conf.write_text(f"listener {srv.port} 127.0.0.1\nallow_anonymous false\npassword_file {pwfile}\n"
                        f"user {getpass.getuser()}\n")
    await srv.start()
    yield srv
    await srv.stop()


@pytest_asyncio.fixture
async def modbus(free_port: Callable[[], int]) -> AsyncIterator[ModbusTestServer]:
    srv = ModbusTestServer(free_port())
    await srv.start()
    yield srv
    await srv.stop()


def model(tmp_path: Path, modbus: ModbusTestServer, broker: MosquittoServer, dead: int, password: str) -> Path:
    f = tmp_path / "plant.yaml"
    f.write_text(plant_yaml(modbus.port, dead, broker.port, password))
    return f


async def test_devices_and_brokers(tmp_path: Path, modbus: ModbusTestServer, broker: MosquittoServer,
                                   free_port: Callable[[], int]) -> None:
    dead = free_port()  # nothing listens there
    rc, found, text = await asyncio.to_thread(doctor, str(model(tmp_path, modbus, broker, dead, PASSWORD)),
                                              "--data-dir", str(tmp_path / "data"))
    checks = by_check(found)
    assert checks["plant model"]["status"] == "ok", text
    assert rc == 1, text  # the dead device fails the run
    assert checks["device plc (modbus)"]["status"] == "ok"
    gone = checks["device gone (modbus)"]
    assert gone["status"] == "fail" and f"127.0.0.1:{dead} refused" in gone["detail"] and gone["fix"]
    assert checks["publish broker"]["status"] == "ok" and "as doc" in checks["publish broker"]["detail"]
    assert checks["plant model"]["status"] == "ok"
    assert checks["relational store"]["status"] == "ok" and "not created yet" in checks["relational store"]["detail"]

    rc, found, text = await asyncio.to_thread(doctor, str(model(tmp_path, modbus, broker, dead, "wrong")),
                                              "--data-dir", str(tmp_path / "d"))
    pub = by_check(found)["publish broker"]
    assert pub["status"] == "fail" and "refused the MQTT connection" in pub["detail"], pub
    assert "password" in pub["fix"]
    assert "wrong" not in text and PASSWORD not in text  # never a secret in the output


async def test_a_model_with_errors_says_where(tmp_path: Path) -> None:
    f = tmp_path / "plant.yaml"
    f.write_text("enterprise: Acme\nsites: []\n")
    rc, found, _ = doctor(str(f), "--data-dir", str(tmp_path / "data"))
    assert rc == 1
    m = by_check(found)["plant model"]
    assert m["status"] == "fail" and "plant.yaml" in m["detail"] and "plantlink check" in m["fix"]


def _minimal(tmp_path: Path) -> Path:
    f = tmp_path / "plant.yaml"
    f.write_text("enterprise: Acme\nsites: [{name: s, timezone: UTC}]\n")
    return f


def test_store_newer_than_this_plantlink_and_open_data_dir(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir(mode=0o755)
    os.chmod(data, 0o755)
    url = default_url(data)
    Store.open(url).close()
    rc, found, text = doctor(str(_minimal(tmp_path)), "--data-dir", str(data))
    checks = by_check(found)
    assert rc == 0, text
    assert checks["relational store"]["status"] == "ok" and "revision" in checks["relational store"]["detail"]
    assert checks["data directory permissions"]["status"] == "warn"
    assert "chmod 700" in checks["data directory permissions"]["fix"]

    engine = sa.create_engine(url)
    with engine.begin() as c:
        c.execute(sa.text("UPDATE alembic_version SET version_num = 'ffff0000beef'"))
    engine.dispose()
    rc, found, _ = doctor(str(_minimal(tmp_path)), "--data-dir", str(data))
    store = by_check(found)["relational store"]
    assert rc == 1 and store["status"] == "fail" and "newer" in store["detail"] and "upgrade" in store["fix"]


def test_postgresql_without_the_database(tmp_path: Path, pg_url: str) -> None:  # noqa: F811
    # the server is there (pg_url made a database on it); a database name it does not have, with a password
    missing = sa.make_url(pg_url).set(database="plantlink_no_such_db", password="hunter2-pw")
    url = missing.render_as_string(hide_password=False)
    rc, found, text = doctor(str(_minimal(tmp_path)), "--data-dir", str(tmp_path / "d"), "--store-url", url)
    store = by_check(found)["relational store"]
    assert rc == 1 and store["status"] == "fail", store
    assert "plantlink_no_such_db" in store["detail"] and "createdb" in store["fix"]
    assert "hunter2-pw" not in text and "***" in store["detail"]
    # the same URL at an empty database of the server: reachable, no schema yet (a warning, not a failure)
    rc, found, _ = doctor(str(_minimal(tmp_path)), "--data-dir", str(tmp_path / "d"), "--store-url", pg_url)
    assert by_check(found)["relational store"]["status"] == "warn"


def test_a_historian_in_use_by_another_process(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    holder = subprocess.Popen(
        [sys.executable, "-c", "import duckdb, sys; c = duckdb.connect(sys.argv[1]); "
         "c.execute('CREATE TABLE tags (tag_id INT)'); print('open', flush=True); sys.stdin.read()",
         str(data / "historian.duckdb")], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "open"
        _, found, text = doctor(str(_minimal(tmp_path)), "--data-dir", str(data))
        h = by_check(found)["historian"]
        assert h["status"] == "ok" and "running plantlink" in h["detail"], text
    finally:
        holder.communicate("")
    _, found, _ = doctor(str(_minimal(tmp_path)), "--data-dir", str(data))
    assert by_check(found)["historian"]["status"] == "ok" and "opens" in by_check(found)["historian"]["detail"]


async def test_nats_with_and_without_jetstream(tmp_path: Path, free_port: Callable[[], int]) -> None:
    srv = NatsServer(tmp_path / "nats")
    await srv.start()
    plain_port = free_port()
    plain = subprocess.Popen([srv.binary, "-a", "127.0.0.1", "-p", str(plain_port)],  # no -js: JetStream off
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        await wait_for(lambda: _accepts(plain_port), what="the plain nats-server listening")
        _, found, _ = await asyncio.to_thread(doctor, str(_minimal(tmp_path)), "--data-dir", str(tmp_path / "d"),
                                              "--nats", srv.url)
        n = by_check(found)["NATS (--nats)"]
        assert n["status"] == "ok" and "JetStream on" in n["detail"], n
        rc, found, _ = await asyncio.to_thread(doctor, str(_minimal(tmp_path)), "--data-dir", str(tmp_path / "d"),
                                               "--nats", f"nats://127.0.0.1:{plain_port}")
        n = by_check(found)["NATS (--nats)"]
        assert rc == 1 and n["status"] == "fail" and "without JetStream" in n["detail"] and "jetstream" in n["fix"]
    finally:
        plain.terminate()
        plain.wait(20)
        await srv.stop()


def test_a_clickhouse_historian_is_opened(tmp_path: Path) -> None:
    # the in-process engine (chdb://) written by one process, checked by the doctor's process
    url = f"chdb://{tmp_path / 'ch'}"
    made = ("import sys; from plantlink.historian import historian_target, open_historian; "
            "b, o, _ = historian_target(sys.argv[1], '.'); open_historian(b, **o).close()")
    subprocess.run([sys.executable, "-c", made, url], check=True, timeout=120)
    _, found, text = doctor(str(_minimal(tmp_path)), "--data-dir", str(tmp_path / "d"), "--historian", url)
    ch = by_check(found)["historian (clickhouse)"]
    assert ch["status"] == "ok" and "opens" in ch["detail"], text


def tls_plant(port: int, ca: Path, other_ca: Path) -> str:
    devices = f"""
    good: {{protocol: mqtt, host: 127.0.0.1, port: {port}, tls: {{ca_file: {ca}}}}}
    misnamed: {{protocol: mqtt, host: 127.0.0.1, port: {port}, tls: {{ca_file: {ca}, server_name: mqtt.example}}}}
    trusting: {{protocol: mqtt, host: 127.0.0.1, port: {port}, tls: {{verify: false}}}}
    """
    machines = "- {name: press1, tags: [{name: t, source: {device: good, topic: x/t}}]}"
    return (skeleton(devices, machines, enterprise="Acme")
            + f'publish: {{mqtt: "mqtts://127.0.0.1:{port}", tls: {{ca_file: {other_ca}}}}}\n')


async def test_mqtt_over_tls_success_and_certificate_failures(tmp_path: Path) -> None:
    from tests.connectors.mosquitto import mosquitto

    async with mosquitto(tmp_path / "broker", tls=True) as srv:
        assert srv.pki is not None and srv.tls_port is not None
        f = tmp_path / "plant.yaml"
        f.write_text(tls_plant(srv.tls_port, srv.pki.ca, srv.pki.other_ca))
        rc, found, text = await asyncio.to_thread(doctor, str(f), "--data-dir", str(tmp_path / "data"))
    checks = by_check(found)
    assert rc == 1, text
    good = checks["device good (mqtt)"]
    assert good["status"] == "ok" and "accepts MQTT sessions over TLSv1.3, certificate verified" in good["detail"]
    pub = checks["publish broker"]  # the CA that did not sign the broker's certificate
    # (Mosquitto sends its CA along: OpenSSL says "self-signed certificate in certificate chain")
    assert pub["status"] == "fail" and "TLS certificate not accepted: self-signed certificate" in pub["detail"]
    assert "tls.ca_file" in pub["fix"], pub
    misnamed = checks["device misnamed (mqtt)"]
    assert misnamed["status"] == "fail" and "mqtt.example" in misnamed["detail"], misnamed
    trusting = checks["device trusting (mqtt)"]
    assert trusting["status"] == "warn" and "NOT verified" in trusting["detail"] and "ca_file" in trusting["fix"]


async def test_a_broker_that_wants_a_client_certificate(tmp_path: Path) -> None:
    from tests.connectors.mosquitto import mosquitto

    async with mosquitto(tmp_path / "broker", tls=True, require_certificate=True) as srv:
        assert srv.pki is not None and srv.tls_port is not None
        f = tmp_path / "plant.yaml"
        f.write_text(tls_plant(srv.tls_port, srv.pki.ca, srv.pki.other_ca))
        rc, found, text = await asyncio.to_thread(doctor, str(f), "--data-dir", str(tmp_path / "data"))
    assert rc == 1, text
    good = by_check(found)["device good (mqtt)"]  # the right CA, but no certificate of its own
    assert good["status"] == "fail" and "tlsv13 alert certificate required" in good["detail"], good
    assert "give tls.cert_file and tls.key_file" in good["fix"] and "failed to receive" not in text
