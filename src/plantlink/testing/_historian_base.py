"""What the historian suites share: the fixtures a backend provides, the tags, times and helpers."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar

import pyarrow as pa
import pytest

from plantlink.historian.base import AGGREGATES, Historian, Retention, TagMeta
from plantlink.samples import Quality, numeric_batch

# 2026-03-02 00:00:00 UTC, a day boundary, in microseconds
T0 = 1_772_409_600_000_000
S = 1_000_000
M = 60 * S
DAY = 86_400 * S
GOOD, UNCERTAIN, BAD = int(Quality.GOOD), int(Quality.UNCERTAIN), int(Quality.BAD)

#: The tags the ``hist`` fixture registers, in this order.
TAGS = (TagMeta("line1/m1/temp", "degC"), TagMeta("line1/m1/speed", "rpm"), TagMeta("line1/m1/state", "", "string"))

Sample = tuple[int, float, int]  # ts_us, value, quality


def us(col: pa.ChunkedArray) -> list[int]:
    """A timestamp column as integer microseconds."""
    return list(col.cast(pa.int64()).to_pylist())


def bucket_us(row: dict[str, Any]) -> int:
    return int(row["bucket"].timestamp() * 1_000_000)


class HistorianBase:
    """The fixtures of the historian suites. A backend overrides ``make_historian`` (and may narrow
    ``aggregates`` or set ``text_tags = False`` when it cannot store text)."""

    #: The aggregates the backend computes (``Historian.aggregate``); tests of the others are skipped.
    aggregates: ClassVar[tuple[str, ...]] = AGGREGATES
    #: Whether the backend stores text (string) tags.
    text_tags: ClassVar[bool] = True

    def make_historian(self, location: Path, retention: Retention | None = None) -> Historian:
        """Return an open historian kept in the directory ``location``; called again with the same location
        it must open the same store (the suite closes one before it opens the next)."""
        raise NotImplementedError("a HistorianContract subclass implements make_historian(location, retention)")

    @pytest.fixture
    def location(self, tmp_path: Path) -> Path:
        path = tmp_path / "historian"
        path.mkdir()
        return path

    @pytest.fixture
    def hist(self, location: Path) -> Iterator[Historian]:
        """An open historian with ``TAGS`` registered (closed after the test)."""
        h = self.make_historian(location)
        h.register_tags(TAGS)
        yield h
        h.close()

    @contextmanager
    def opened(self, location: Path, retention: Retention | None = None) -> Iterator[Historian]:
        """A historian opened on ``location`` for the block, then closed."""
        h = self.make_historian(location, retention)
        try:
            yield h
        finally:
            h.close()

    @staticmethod
    def ids(h: Historian) -> list[int]:
        """The ids of ``TAGS`` (registering again is idempotent)."""
        return list(h.register_tags(TAGS).values())

    @staticmethod
    def write(h: Historian, tag: int, samples: list[Sample]) -> None:
        h.write(numeric_batch([tag] * len(samples), [s[0] for s in samples], [s[1] for s in samples],
                              [s[2] for s in samples]))

    def need(self, *aggregates: str) -> None:
        missing = [a for a in aggregates if a not in self.aggregates]
        if missing:
            pytest.skip(f"the backend does not compute {missing}")

    def agg(self, h: Historian, tag_ids: list[int], start: int, end: int, interval: int,
            names: tuple[str, ...] | None = None) -> dict[tuple[int, int], dict[str, Any]]:
        """(tag_id, bucket start in us) -> row of ``aggregate``, over the aggregates the backend computes."""
        wanted = [a for a in (names or self.aggregates) if a in self.aggregates]
        table = h.aggregate(tag_ids, start, end, interval, wanted)  # type: ignore[arg-type]
        return {(r["tag_id"], bucket_us(r)): r for r in table.to_pylist()}

    def expect(self, row: dict[str, Any], **values: float) -> None:
        """Check the aggregates of ``row`` that the backend computes against ``values``."""
        for name, value in values.items():
            if name in self.aggregates:
                assert row[name] == pytest.approx(value, rel=1e-9), (name, row)
