"""One tag's year trend from the pyramid alone, at the size a year of 1,000 tags gives it.

A year of raw samples of 1,000 tags at 1 Hz (31.5 billion) does not fit this machine, but the trend query
reads only the 1-hour (``r1h``) and 1-day (``r1d``) levels, whose size does not depend on the sampling rate:
a year of 1,000 tags is 8,760,000 hour rows and 365,000 day rows. This script writes those rows directly (a
random walk per tag folded into hour partials as the maintenance would, in the order hourly builds append
them: one hour of every tag after the other), marks them built, and times ``aggregate`` of one tag over the
year at 1 day and at 1 hour (medians of ``--runs``). The raw and minute levels are empty: the query reads
nothing else when the range is whole days.

    .venv/bin/python bench/historian_pyramid_year.py --tags 1000 --days 365
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from historian_size import DAY, T0, emit, log, used_bytes
from plantlink.historian.base import TagMeta
from plantlink.historian.duckdb import DuckDBHistorian
from plantlink.historian.duckdb.hourly import DAYS, HOURS, sort_hours

H = 3_600_000_000

HOURS_SQL = """
INSERT INTO r1h
SELECT tag_id, bucket, 3600::UINTEGER, v - 1, v + 1, v * 3600, bucket, v, bucket + {last}, v + 0.5, v * {span}
FROM (SELECT h.i AS hour, t.i::UINTEGER AS tag_id, {t0} + h.i * {hour} AS bucket,
             50 + 10 * sin(t.i + h.i / 24.0) AS v
      FROM range({hours}) h(i), range(1, {tags} + 1) t(i))
ORDER BY hour, tag_id
"""
DAYS_SQL = """
INSERT INTO r1d
SELECT tag_id, bucket - bucket % {day}, sum(n)::UINTEGER, min(vmin), max(vmax), sum(vsum), min(first_ts),
       arg_min(first_v, first_ts), max(last_ts), arg_max(last_v, last_ts), sum(integ)
FROM r1h GROUP BY ALL ORDER BY 2, 1
"""


def time_trends(h: DuckDBHistorian, a: argparse.Namespace, end: int, state: str) -> None:
    for interval, name in ((DAY, "1d"), (H, "1h"), (7 * DAY, "7d")):
        times = []
        rows = 0
        for r in range(a.runs):
            tag = 1 + (r * 7919) % a.tags
            t = time.perf_counter()
            rows = h.aggregate([tag], T0, end, interval).num_rows
            times.append((time.perf_counter() - t) * 1000)
        emit(f"historian.trend_1_tag_{a.days}d_at_{name}.{a.tags}tags_pyramid_only.r1h_{state}",
             statistics.median(times), "ms", "<= 100", first_run=round(times[0], 2), rows=rows)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tags", type=int, default=1000)
    p.add_argument("--days", type=int, default=365)
    p.add_argument("--runs", type=int, default=20)
    p.add_argument("--dir", type=Path, default=Path("/tmp/plantlink-bench-historian-year"))
    a = p.parse_args()
    shutil.rmtree(a.dir, ignore_errors=True)
    a.dir.mkdir(parents=True)
    path = a.dir / "h.duckdb"
    end = T0 + a.days * DAY
    with DuckDBHistorian(path) as h:
        h.register_tags([TagMeta(f"site/m{i // 20}/t{i % 20}", "", "float") for i in range(a.tags)])
        con = h._require_open()
        t = time.perf_counter()
        con.execute(HOURS_SQL.format(last=H - 1_000_000, span=H - 1_000_000, t0=T0, hour=H, hours=a.days * 24,
                                     tags=a.tags))
        con.execute(DAYS_SQL.format(day=DAY))
        con.execute("INSERT OR REPLACE INTO r1h_built VALUES (?, ?), (?, ?)", [HOURS, end, DAYS, end])
        log(f"wrote {a.tags * a.days * 24:,} hour rows and {a.tags * a.days:,} day rows in "
            f"{time.perf_counter() - t:.1f} s")
    with DuckDBHistorian(path) as h:
        time_trends(h, a, end, "appended")
        t = time.perf_counter()
        sort_hours(h._require_open())
        emit(f"historian.pyramid_year.sort_hours.{a.tags}tags_{a.days}d", time.perf_counter() - t, "s",
             note="r1h rewritten in (tag, time) order, what build_rollups does when a day completes")
    size = used_bytes(path)
    emit(f"historian.pyramid_year.levels_size.{a.tags}tags_{a.days}d", size / 2**20, "MiB",
         hour_rows=a.tags * a.days * 24, day_rows=a.tags * a.days)
    with DuckDBHistorian(path) as h:
        time_trends(h, a, end, "sorted")
    shutil.rmtree(a.dir, ignore_errors=True)


if __name__ == "__main__":
    main()
