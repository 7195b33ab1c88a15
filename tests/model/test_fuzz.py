"""Fuzzing the loader with mutated example models: whatever the bytes, loading either succeeds or raises the
documented ConfigError (never another exception), within a second of CPU time. Bounded for CI: a fixed
number of examples, no example database."""

from __future__ import annotations

import contextlib
import gc
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from plantlink.errors import ConfigError
from plantlink.model.loader import parse_plant
from plantlink.model.plant import Plant
from plantlink.model.textfile import decode_model

EXAMPLES = sorted((Path(__file__).parents[2] / "examples").glob("*.yaml"))
SOURCES = [p.read_bytes() for p in EXAMPLES] + [p.read_bytes() for p in
                                                 sorted((Path(__file__).parent / "cases").glob("ok_*/plant.yaml"))]

#: YAML constructs (and worse) inserted at random places.
SNIPPETS = [
    b"&a ", b"*a", b"&a [*a, *a, *a]", b"!!binary ", b"!!python/name:os.system ", b"!!set ", b"!foo ", b"<<: ",
    b"? [a, b]\n: ", b"[", b"{", b"]", b"}", b"---\n", b"...\n", b"\x00", b"\t", b".nan", b"-.inf", b"1.0e+999",
    b"2026-02-30", b"~", b"null", b'"', b"'", b"\xef\xbb\xbf", b"|\n", b">-\n", b"- ", b": ", b"\n", b"%YAML 1.1\n",
    b"%TAG ! tag:x,2000:\n", b"\xff\xfe", b"\xe9", b"\xc3", b"0x7fffffffffffffffffffff", b"9" * 5000, b"${env:",
    b"${env:PLANTLINK_FUZZ_UNSET}", b"#", b"\\u0000", b"\"\\x00\"", b"!!int ", b"!!float ", b"!!timestamp ",
    b"[" * 200, b"{a: " * 100, b"\r", b"\r\n", b"\xc2\x85", "\u2028".encode(),
]


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(SOURCES)))
    for _ in range(draw(st.integers(1, 6))):
        pos = draw(st.integers(0, len(data)))
        kind = draw(st.sampled_from(["flip", "insert", "delete", "truncate", "duplicate"]))
        if kind == "flip" and pos < len(data):
            data[pos] ^= draw(st.integers(1, 255))
        elif kind == "insert":
            data[pos:pos] = draw(st.sampled_from(SNIPPETS) | st.binary(min_size=1, max_size=8))
        elif kind == "delete":
            del data[pos:pos + draw(st.integers(1, 64))]
        elif kind == "truncate":
            del data[pos:]
        elif kind == "duplicate":
            start = data.rfind(b"\n", 0, pos) + 1
            end = data.find(b"\n", pos)
            line = bytes(data[start:end + 1 if end >= 0 else len(data)])
            data[start:start] = line * draw(st.integers(1, 3))
    return bytes(data)


def load(raw: bytes) -> Plant:
    """What ``load_plant`` does once the file is read."""
    return parse_plant(decode_model(raw, "fuzz.yaml"), "fuzz.yaml")


@pytest.fixture(scope="module", autouse=True)
def _plugins_imported() -> None:
    """Load each source once first: the first use of a connector plugin imports it (seconds for OPC UA)."""
    for raw in SOURCES:
        load(raw)


@settings(max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_mutated_models_load_or_raise_config_error(raw: bytes) -> None:
    start = time.thread_time()  # this thread only: threads left by earlier tests must not count
    try:
        load(raw)
    except ConfigError as exc:
        assert exc.problems
        for p in exc.problems:
            assert p.file == "fuzz.yaml" and p.message
            assert (p.line is None) == (p.column is None)
    if time.thread_time() - start >= 1.0:
        # Measured again after a collection: a garbage collection of the whole suite's heap (seen once in CI, 1.35 s)
        # is not the example's cost. An input that is slow to load is slow the second time too.
        assert cpu_seconds(raw) < 1.0, "loading took over a second of CPU, twice"


def cpu_seconds(raw: bytes) -> float:
    """CPU time of one load in this thread, after a garbage collection."""
    gc.collect()
    start = time.thread_time()
    with contextlib.suppress(ConfigError):
        load(raw)
    return time.thread_time() - start
