"""Keeping ``r1m`` and ``r1h`` right after a flush, and retention.

After samples are inserted, every (tag, minute) and (tag, hour) they fall in is rewritten from the store
(``raw FINAL``, then ``r1m FINAL``): first an empty row (``cnt = 0``, a tombstone, for a bucket whose good
samples were all replaced by bad ones), then the recomputed rows at a higher version. Day by day, so a late
sample costs its own day only.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pyarrow as pa

from plantlink.historian.base import Retention
from plantlink.historian.clickhouse import queries as q
from plantlink.historian.clickhouse.client import Client
from plantlink.historian.clickhouse.schema import HOUR_US, MINUTE_US, Layout

DAY_US = 86_400_000_000


def update(client: Client, lay: Layout, tag: np.ndarray, ts: np.ndarray, again: np.ndarray,
           versions: Callable[[int], int]) -> None:
    """Rewrite the rollup buckets that the samples (``tag``, ``ts``) fall in. ``again``: the samples that may
    replace stored ones (not after their tag's newest stored time): only their buckets can lose every good
    sample, so only those get a tombstone first."""
    day = ts // DAY_US
    for d in np.unique(day).tolist():
        sel = day == d
        t, s, late = tag[sel], ts[sel], again[sel]
        ids = sorted({int(x) for x in t})
        for target, width in (("r1m", MINUTE_US), ("r1h", HOUR_US)):
            buckets = s // width * width
            if late.any():
                pairs = np.unique(np.stack([t[late].astype(np.int64), buckets[late]]), axis=1)
                client.insert(lay.t(target), _tombstones(pairs[0], pairs[1], versions(1)))
            lo, hi = int(buckets.min()), int(buckets.max()) + width
            client.command(q.rebuild(lay, target, ids, lo, hi, versions(1)))


def _tombstones(tags: np.ndarray, buckets: np.ndarray, version: int) -> pa.Table:
    n = len(tags)
    cols: dict[str, pa.Array] = {"tag_id": pa.array(tags, pa.uint32()), "bucket": pa.array(buckets, pa.int64()),
                                 "cnt": pa.array(np.zeros(n, np.uint32))}
    zero = pa.array(np.zeros(n))
    for name in ("total", "mn", "mx"):
        cols[name] = zero
    cols["first_ts"] = cols["last_ts"] = pa.array(buckets, pa.int64())
    for name in ("first_v", "last_v", "integral"):
        cols[name] = zero
    cols["version"] = pa.array(np.full(n, version, np.uint64))
    order = ["tag_id", "bucket", "cnt", "total", "mn", "mx", "first_ts", "first_v", "last_ts", "last_v",
             "integral", "version"]
    return pa.table({k: cols[k] for k in order})


def apply_retention(client: Client, lay: Layout, retention: Retention, now_us: int) -> int:
    """Delete what the retention no longer keeps (the ``TTL`` does the same on the server's clock); return
    the samples deleted from ``raw`` and ``texts``."""
    deleted = 0
    plans = [("raw", "ts", retention.raw), ("texts", "ts", retention.raw), ("r1m", "bucket", retention.rollup_1m),
             ("r1h", "bucket", retention.rollup_1h)]
    for table, column, keep in plans:
        if keep is None:
            continue
        cutoff = now_us - int(keep * 1e6)
        cond = f"{column} < {q.ts_lit(cutoff) if column == 'ts' else cutoff}"
        n = int(client.command(f"SELECT count() FROM {lay.t(table)} FINAL WHERE {cond}") or 0)
        if n:
            target = f"`{lay.database}`.`{table}_local` ON CLUSTER `{lay.cluster}`" if lay.cluster else lay.t(table)
            client.command(f"ALTER TABLE {target} DELETE WHERE {cond} SETTINGS mutations_sync = 2")
        if table in ("raw", "texts"):
            deleted += n
    return deleted
