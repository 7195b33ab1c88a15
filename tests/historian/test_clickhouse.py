"""What the ClickHouse historian does beyond the contract suite (test_contract.py): the DDL for one server
and for a cluster, the latest values every server sees, and errors that say what to do."""

from __future__ import annotations

import asyncio
import json
import socket
from pathlib import Path

import pyarrow as pa
import pytest
from typer.testing import CliRunner

from plantlink.cli import app
from plantlink.errors import HistorianError
from plantlink.historian import TagMeta, historian_target, open_historian
from plantlink.historian.clickhouse.client import Client, Retry, redact
from plantlink.historian.clickhouse.schema import SCHEMA_VERSION, Layout, ddl
from plantlink.model import parse_plant
from plantlink.model.diff import diff_plants
from plantlink.runtime import Runtime
from plantlink.samples import numeric_batch
from plantlink.wal import WalSettings
from tests.historian.clickhouse_rig import ClickHouseRig
from tests.historian.conftest import T0, S
from tests.test_runtime_maintenance import PLANT


def _statements(script: str) -> list[str]:
    return [s.strip() for s in script.split(";\n") if s.strip()]


def _parse(rig: ClickHouseRig, statements: list[str]) -> None:
    """Each statement through the ClickHouse parser (EXPLAIN AST: parsed, not run)."""
    c = Client(rig.url)
    c.open()
    for s in statements:
        assert "CreateQuery" in str(c.command(f"EXPLAIN AST {s}")), s


def test_cluster_ddl_is_replicated_distributed_and_on_cluster(clickhouse_rig: ClickHouseRig) -> None:
    res = CliRunner().invoke(app, ["historian", "ddl", "--cluster", "plant", "--database", "hist", "--raw-days", "30"])
    assert res.exit_code == 0, res.output
    statements = _statements(res.output)
    assert all(" ON CLUSTER `plant`" in s for s in statements)
    local = [s for s in statements if "_local` ON CLUSTER" in s and "ENGINE = Replicated" in s]
    assert len(local) == 7 and all("ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/hist/" in s for s in local)
    dist = [s for s in statements if "ENGINE = Distributed(`plant`, `hist`," in s]
    assert len(dist) == 7 and any("`raw_local`, tag_id)" in s for s in dist)
    assert all("TO `hist`.`latest_local`" in s for s in statements if "MATERIALIZED VIEW" in s)
    raw = next(s for s in local if "`raw_local`" in s)
    assert f"INTERVAL {30 * 86400} SECOND DELETE" in raw
    _parse(clickhouse_rig, statements)


def test_single_server_ddl_has_the_codecs_partitions_order_and_ttl(clickhouse_rig: ClickHouseRig) -> None:
    res = CliRunner().invoke(app, ["historian", "ddl"])
    assert res.exit_code == 0, res.output
    raw = next(s for s in _statements(res.output) if "`plantlink`.`raw`" in s)
    for part in ("ts DateTime64(6, 'UTC') CODEC(DoubleDelta, ZSTD)", "value Nullable(Float64) CODEC(Gorilla, ZSTD)",
                 "ENGINE = ReplacingMergeTree(version)", "PARTITION BY toDate(ts)", "ORDER BY (tag_id, ts)",
                 f"TTL toDateTime(ts) + INTERVAL {400 * 86400} SECOND DELETE"):
        assert part in raw, part
    assert "ON CLUSTER" not in res.output and "Replicated" not in res.output
    _parse(clickhouse_rig, _statements(res.output))
    assert CliRunner().invoke(app, ["historian", "ddl", "--database", "x;DROP"]).exit_code != 0


def test_the_latest_values_are_in_the_store_for_every_server(clickhouse_rig: ClickHouseRig, tmp_path: Path) -> None:
    """A second historian on the same database (another server) answers the latest values from the
    materialized view, with no cache of its own."""
    with clickhouse_rig.open(tmp_path) as one:
        ids = list(one.register_tags([TagMeta(f"t/{i}") for i in range(1000)]).values())
        one.write(numeric_batch(ids * 2, [T0] * 1000 + [T0 - S] * 1000, [1.0] * 1000 + [2.0] * 1000, 192))
        one.flush()
        with clickhouse_rig.open(tmp_path) as other:
            latest = other.latest(ids)
            assert latest.column("value").to_pylist() == [2.0] * 1000  # the last to arrive, not the newest time
            assert latest.column("ts").cast(pa.int64()).to_pylist() == [T0 - S] * 1000


def test_a_missing_database_and_a_newer_schema_are_refused_with_what_to_do(clickhouse_rig: ClickHouseRig,
                                                                            tmp_path: Path) -> None:
    with pytest.raises(HistorianError, match=r"has no database 'nosuchdb': create it"):
        open_historian("clickhouse", url=clickhouse_rig.url, database="nosuchdb", create_database=False)
    h = clickhouse_rig.open(tmp_path)
    h.client.insert(h.lay.t("meta"), pa.table({"key": ["schema_version"], "value": pa.array([SCHEMA_VERSION + 1]),
                                               "version": pa.array([2**62], pa.uint64())}))
    h.close()
    with pytest.raises(HistorianError, match=r"newer than this plantlink's \(1\): upgrade plantlink"):
        clickhouse_rig.open(tmp_path)


def test_an_unreachable_server_is_tried_again_then_named_without_its_password() -> None:
    with socket.socket() as s:  # a loopback port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"clickhouse://plant:s3cret@127.0.0.1:{port}"
    with pytest.raises(HistorianError) as err:
        open_historian("clickhouse", url=url, retry=Retry(attempts=2, first_wait_s=0.01))
    text = str(err.value)
    assert "s3cret" not in text and f"plant:***@127.0.0.1:{port}" in text
    assert "cannot be reached after 2 attempts" in text and "start it" in text


def test_redact_and_wrong_credentials_are_explained() -> None:
    assert redact("clickhouses://u:p%40ss@h:8443/x") == "clickhouses://u:***@h:8443/x"
    assert redact("chdb:///var/lib/x") == "chdb:///var/lib/x"
    c = Client("clickhouse://u:pw@h:8123")
    msg = str(c._explain(RuntimeError("Code: 516. DB::Exception: default: Authentication failed: "
                                      "password is incorrect (AUTHENTICATION_FAILED)"), "SELECT 1"))
    assert "u:***@h:8123" in msg and "set the right ones in the URL" in msg and "pw" not in msg.replace("***", "")


def test_ddl_for_one_server_creates_no_replicated_tables() -> None:
    assert not any("Replicated" in s or "Distributed" in s for s in ddl(Layout("plantlink")))


def test_historian_names_and_urls() -> None:
    assert historian_target("duckdb", "/d") == ("duckdb", {"path": Path("/d/historian.duckdb")}, "/d/historian.duckdb")
    assert historian_target("clickhouse", "/d") == ("clickhouse", {"url": "chdb:///d/clickhouse"}, "chdb:///d/clickhouse")
    assert historian_target("clickhouses://u:pw@h:8443/plant", "/d") == (
        "clickhouse", {"url": "clickhouses://u:pw@h:8443", "database": "plant"}, "clickhouses://u:***@h:8443/plant")
    assert historian_target("clickhouse://h", "/d")[1] == {"url": "clickhouse://h"}


async def test_a_plant_model_runs_on_the_clickhouse_historian(clickhouse_rig: ClickHouseRig, tmp_path: Path) -> None:
    """``historian:`` in the model chooses the backend (``plantlink run --historian`` passes ``historian``)."""
    url = clickhouse_rig.url
    if not url.startswith("chdb:"):  # a server: plantlink creates no database there
        url = f"{url}/t_runtime"
        clickhouse_rig.databases.add("t_runtime")
        c = Client(clickhouse_rig.url)
        c.open()
        c.command("CREATE DATABASE IF NOT EXISTS t_runtime")
        c.close()
    plant = parse_plant(PLANT + f"historian: {url}\n", "plant.yaml")
    rt = Runtime(plant, tmp_path, wal=WalSettings(enabled=False))
    await rt.start()
    try:
        assert rt.historian is not None and rt.historian_backend == "clickhouse"
        temp = rt.tag_ids["s1/a1/l1/m1/temp"]
        rt.historian.write(numeric_batch([temp], [T0], [21.5], 192))
        await asyncio.to_thread(rt.historian.flush)
        assert rt.historian.raw(temp, T0, T0 + S).column("value").to_pylist() == [21.5]
        assert rt.status()["historian"] == url and rt.status()["historian_status"]["backend"] == "clickhouse"
    finally:
        await rt.stop()
    assert Runtime(plant, tmp_path, historian="duckdb").historian_backend == "duckdb"  # --historian overrides


def test_a_changed_historian_in_the_model_is_planned_without_its_password() -> None:
    old = parse_plant(PLANT + "historian: clickhouse://plant:0ldpw@db1:8123/plantlink\n", "plant.yaml")
    new = parse_plant(PLANT + "historian: clickhouse://plant:n3wpw@db2:8123/plantlink\n", "plant.yaml")
    plan = diff_plants(old, new)
    (change,) = [c for c in plan.changes if c.path == "historian"]
    text = json.dumps(plan.to_dict())
    assert "0ldpw" not in text and "n3wpw" not in text and "plant:**********@db2:8123" in text
    assert "next restart" in change.effect
