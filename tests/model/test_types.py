from __future__ import annotations

import pytest

from plantlink.model.types import parse_duration
from plantlink.model.yamlmarks import load_marked


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("250ms", 0.25), ("1s", 1.0), ("2m", 120.0), ("1.5h", 5400.0), ("7d", 604800.0), (3, 3.0), (0.5, 0.5), ("4", 4.0)],
)
def test_durations(text: object, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("bad", ["fast", "1 y", "-1s", True, None, [1]])
def test_bad_durations(bad: object) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(bad)


def test_marks_point_at_values_and_keys() -> None:
    doc = load_marked("a:\n  b: [1, 2]\n  c: {d: x}\n", "f.yaml")
    assert doc.marks[("a", "b", 1)] == (2, 10)
    assert doc.marks[("a", "c", "d")] == (3, 10)
    assert doc.key_marks[("a", "c")] == (3, 3)
    # an unknown location falls back to its nearest parent
    assert doc.mark(("a", "c", "zzz")) == (3, 6)


def test_empty_file_is_a_problem() -> None:
    doc = load_marked("", "f.yaml")
    assert doc.data is None
    assert "empty" in doc.problems[0].message


def test_a_time_zone_folder_is_an_unknown_zone() -> None:
    """"America" is a folder of the time zone database, not a zone: a clear error, not an OSError (the fuzz
    test found it)."""
    from plantlink.errors import ConfigError
    from plantlink.model.loader import parse_plant

    text = "enterprise: Acme\nsites:\n  - name: windsor\n    timezone: America\n"
    with pytest.raises(ConfigError, match="unknown IANA time zone 'America'"):
        parse_plant(text, "plant.yaml")


@pytest.mark.parametrize("tag", ["!!float", "!!int", "!!timestamp"])
def test_an_empty_tagged_scalar_is_a_clear_error(tag: str) -> None:
    """``!!float`` with nothing after it, ``!!timestamp`` of no date: a clear problem, not an IndexError or an
    AttributeError of PyYAML (the fuzz test found them)."""
    from plantlink.errors import ConfigError
    from plantlink.model.loader import parse_plant

    with pytest.raises(ConfigError, match="is not a valid"):
        parse_plant(f"{tag} ", "plant.yaml")
