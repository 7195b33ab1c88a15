"""The ClickHouse historian's tables, for one server (the default) or a cluster (``ddl(cluster=NAME)``).

* ``raw`` and ``texts``: one row per sample, ``ReplacingMergeTree(version)`` ordered by ``(tag_id, ts)`` and
  partitioned by day: a (tag, time) written again keeps the row with the highest ``version`` (the last to
  arrive) once queries read it ``FINAL``. ``ts`` is ``DateTime64(6, 'UTC')`` with ``DoubleDelta`` + ``ZSTD``,
  the value ``Gorilla`` + ``ZSTD``; retention is a ``TTL`` on the server's clock.
* ``latest``: one row per tag, the sample with the highest ``version``, filled by two materialized views
  (from ``raw`` and ``texts``) at insert time: the latest of 1,000 tags is one primary-key read that every
  server sees.
* ``r1m`` and ``r1h``: one-minute and one-hour rollups (count, sum, min, max, first, last and the step
  integral inside the bucket, so ``twa`` combines exactly), rewritten by the historian after each flush for
  the buckets the flush touched (from ``raw FINAL``): a materialized view would see only the inserted block
  and would count a (tag, time) written again twice.
* ``tags`` and ``meta`` (schema version, write-ahead-log position).

On a cluster each table is ``Replicated...MergeTree`` (Keeper) on every shard, created ``ON CLUSTER``, with a
``Distributed`` table of the same name over the ``_local`` tables, sharded by ``tag_id``.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Bumped when the tables change; a store written by a newer plantlink is refused (``meta.schema_version``).
SCHEMA_VERSION = 1
MINUTE_US = 60_000_000
HOUR_US = 3_600_000_000

_ROLLUP_COLUMNS = """tag_id UInt32, bucket Int64 CODEC(DoubleDelta, ZSTD), cnt UInt32, total Float64,
    mn Float64, mx Float64, first_ts Int64 CODEC(DoubleDelta, ZSTD), first_v Float64,
    last_ts Int64 CODEC(DoubleDelta, ZSTD), last_v Float64, integral Float64, version UInt64"""

#: name -> (columns, engine arguments, ORDER BY, PARTITION BY or "", TTL column expression or "")
TABLES: dict[str, tuple[str, str, str, str, str]] = {
    "meta": ("key String, value Int64, version UInt64", "version", "key", "", ""),
    "tags": ("tag_id UInt32, path String, unit String, type String, version UInt64", "version", "tag_id", "",
             ""),
    "raw": ("""tag_id UInt32, ts DateTime64(6, 'UTC') CODEC(DoubleDelta, ZSTD),
    value Nullable(Float64) CODEC(Gorilla, ZSTD), quality UInt8, version UInt64 CODEC(DoubleDelta, ZSTD)""",
            "version", "(tag_id, ts)", "toDate(ts)", "toDateTime(ts)"),
    "texts": ("""tag_id UInt32, ts DateTime64(6, 'UTC') CODEC(DoubleDelta, ZSTD),
    text Nullable(String) CODEC(ZSTD), quality UInt8, version UInt64""",
              "version", "(tag_id, ts)", "toYYYYMM(ts)", "toDateTime(ts)"),
    "latest": ("""tag_id UInt32, ts DateTime64(6, 'UTC'), value Nullable(Float64), quality UInt8,
    text Nullable(String), version UInt64""", "version", "tag_id", "", ""),
    "r1m": (_ROLLUP_COLUMNS, "version", "(tag_id, bucket)", "intDiv(bucket, 86400000000 * 30)",
            "toDateTime(intDiv(bucket, 1000000))"),
    "r1h": (_ROLLUP_COLUMNS, "version", "(tag_id, bucket)", "intDiv(bucket, 86400000000 * 365)",
            "toDateTime(intDiv(bucket, 1000000))"),
}

#: retention field of ``Retention`` per table with a TTL
RETAINED = {"raw": "raw", "texts": "raw", "r1m": "rollup_1m", "r1h": "rollup_1h"}

_VIEWS = {
    "latest_from_raw": "SELECT tag_id, ts, value, quality, CAST(NULL, 'Nullable(String)') AS text, version "
                       "FROM {db}.{raw}",
    "latest_from_texts": "SELECT tag_id, ts, CAST(NULL, 'Nullable(Float64)') AS value, quality, text, "
                         "version FROM {db}.{texts}",
}


@dataclass(frozen=True)
class Layout:
    """Where the tables are: a database, and on a cluster its name (then the tables written and read are
    ``Distributed`` ones over ``<name>_local``)."""

    database: str
    cluster: str | None = None

    def t(self, name: str) -> str:
        """The table that queries and inserts use."""
        return f"`{self.database}`.`{name}`"


def ddl(layout: Layout, ttl_s: dict[str, float | None] | None = None) -> list[str]:
    """Every statement that creates the store (idempotent: ``IF NOT EXISTS``), in order."""
    db, cluster = layout.database, layout.cluster
    on = f" ON CLUSTER `{cluster}`" if cluster else ""
    out = [f"CREATE DATABASE IF NOT EXISTS `{db}`{on}"]
    for name, (columns, version, order, partition, ttl_expr) in TABLES.items():
        local = f"{name}_local" if cluster else name
        if cluster:
            engine = (f"ReplicatedReplacingMergeTree('/clickhouse/tables/{{shard}}/{db}/{local}', '{{replica}}', "
                      f"{version})")
        else:
            engine = f"ReplacingMergeTree({version})"
        parts = [f"CREATE TABLE IF NOT EXISTS `{db}`.`{local}`{on} (\n    {columns}\n) ENGINE = {engine}"]
        if partition:
            parts.append(f"PARTITION BY {partition}")
        parts.append(f"ORDER BY {order}")
        keep = (ttl_s or {}).get(RETAINED.get(name, ""))
        if ttl_expr and keep:
            parts.append(f"TTL {ttl_expr} + INTERVAL {int(keep)} SECOND DELETE")
        out.append("\n".join(parts))
        if cluster:
            shard = "tag_id" if "tag_id" in columns else "cityHash64(key)"
            out.append(f"CREATE TABLE IF NOT EXISTS `{db}`.`{name}`{on} AS `{db}`.`{local}` "
                       f"ENGINE = Distributed(`{cluster}`, `{db}`, `{local}`, {shard})")
    suffix = "_local" if cluster else ""
    for view, select in _VIEWS.items():
        query = select.format(db=f"`{db}`", raw=f"`raw{suffix}`", texts=f"`texts{suffix}`")
        out.append(f"CREATE MATERIALIZED VIEW IF NOT EXISTS `{db}`.`{view}`{on} TO `{db}`.`latest{suffix}` "
                   f"AS {query}")
    return out


def ddl_text(layout: Layout, ttl_s: dict[str, float | None] | None = None) -> str:
    """The statements of :func:`ddl` as one script (``plantlink historian ddl``)."""
    return "".join(f"{s};\n\n" for s in ddl(layout, ttl_s))
