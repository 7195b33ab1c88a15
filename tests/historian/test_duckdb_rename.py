"""Renaming tags (a model applied with ``was:``): the id and the samples follow the new path, all or none,
and the rename is durable (the store reopened)."""

from __future__ import annotations

from pathlib import Path

import pytest

from plantlink.errors import HistorianError
from plantlink.historian import TagMeta, open_historian
from plantlink.samples import Quality, numeric_batch


def test_a_renamed_tag_keeps_its_id_and_samples_across_a_reopen(store_path: Path) -> None:
    h = open_historian("duckdb", path=store_path)
    ids = h.register_tags([TagMeta("m/a"), TagMeta("m/b")])
    h.write(numeric_batch([ids["m/a"]] * 3, [1_000, 2_000, 3_000], [1.0, 2.0, 3.0], Quality.GOOD))
    h.flush()
    h.rename_tags({"m/a": "m/a2"})
    assert h.register_tags([TagMeta("m/a2"), TagMeta("m/b")]) == {"m/a2": ids["m/a"], "m/b": ids["m/b"]}
    h.close()
    h = open_historian("duckdb", path=store_path)
    try:
        paths = dict(zip(h.tags().column("path").to_pylist(), h.tags().column("tag_id").to_pylist(), strict=True))
        assert paths == {"m/a2": ids["m/a"], "m/b": ids["m/b"]}
        assert h.raw(ids["m/a"], 0, 10_000).column("value").to_pylist() == [1.0, 2.0, 3.0]
    finally:
        h.close()


def test_a_rename_onto_a_taken_path_or_from_an_unknown_one_renames_nothing(store_path: Path) -> None:
    h = open_historian("duckdb", path=store_path)
    try:
        ids = h.register_tags([TagMeta("a"), TagMeta("b")])
        with pytest.raises(HistorianError, match="taken"):
            h.rename_tags({"a": "b"})
        with pytest.raises(HistorianError, match="no such tag"):
            h.rename_tags({"a": "a1", "nosuch": "x"})
        assert h.register_tags([TagMeta("a"), TagMeta("b")]) == ids
        h.rename_tags({"a": "b", "b": "a"})  # a swap: both at once
        assert h.register_tags([TagMeta("a"), TagMeta("b")]) == {"a": ids["b"], "b": ids["a"]}
    finally:
        h.close()
