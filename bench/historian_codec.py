"""What an entropy-coded block codec would give the historian's compacted days (issue 15 item 1): a measurement
for a design decision, not a storage format plantlink has.

DuckDB 2.0.1 compresses numbers by bit-packing against a frame's minimum (or its deltas), ALP and RLE: a frame
pays for its widest value, not for the information in the data, and zstd is offered for strings only
(docs/benchmarks.md, "What is reachable"). VictoriaMetrics, which the issue's targets come from, codes each
block of a series' values and times with zstd after a delta step. This script codes the same data that
``bench/historian_size.py`` stores (its ``walk`` and ``fleet`` generators, one day) the way such a block would:
per tag and day, the times as deltas of deltas, the values as exact scaled integers (as compaction already
stores them) in delta or frame-of-reference form (the smaller), each byte plane apart ("shuffled") and zstd'd
(pyarrow's codec, level 3); the qualities zstd'd. It prints bytes per sample of that, and the time to decode
one tag's day and 100 tags' day back into numpy arrays (what a reader would pay instead of DuckDB's scan).

    .venv/bin/python bench/historian_codec.py --tags 100 --period 1
    .venv/bin/python bench/historian_codec.py --tags 1000 --period 10

One JSON line per figure.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).parent))
from historian_size import DAY, Fleet, Walk, generator

CODEC = pa.Codec("zstd", compression_level=3)


def emit(name: str, value: float, unit: str, **extra: object) -> None:
    print(json.dumps({"name": name, "value": round(value, 3), "unit": unit, **extra}), flush=True)


def zigzag(a: np.ndarray) -> np.ndarray:
    return ((a << 1) ^ (a >> 63)).view(np.uint64)


def unzigzag(u: np.ndarray) -> np.ndarray:
    return (u >> np.uint64(1)).astype(np.int64) ^ -(u & np.uint64(1)).astype(np.int64)


def pack(u: np.ndarray) -> bytes:
    """uint64 values, their 8 byte planes one after the other (high bytes of small values: runs of zeros), zstd."""
    planes = np.ascontiguousarray(u.astype("<u8").view(np.uint8).reshape(-1, 8).T)
    return bytes(CODEC.compress(planes.tobytes(), asbytes=True))


def unpack(blob: bytes, n: int) -> np.ndarray:
    raw = np.frombuffer(CODEC.decompress(blob, decompressed_size=8 * n, asbytes=True), dtype=np.uint8)
    return np.ascontiguousarray(raw.reshape(8, n).T).view("<u8").ravel()


def scale_of(v: np.ndarray) -> int:
    """The fewest decimals (0-6) that hold every value exactly, as compaction's scaled integers."""
    for k in range(7):
        if np.array_equal(np.round(v * 10.0**k) / 10.0**k, v):
            return k
    raise ValueError("not exact decimals")


def encode(ts: np.ndarray, v: np.ndarray, q: np.ndarray) -> tuple[bytes, bytes, bytes, int, bool]:
    d1 = np.diff(ts)  # first time, first delta, then deltas of deltas (regular sampling: zeros)
    times = pack(zigzag(np.concatenate([ts[:1], d1[:1], np.diff(d1)])))
    sc = scale_of(v)
    iv = np.round(v * 10.0**sc).astype(np.int64)
    delta = pack(zigzag(np.diff(iv, prepend=np.int64(0))))
    frame = pack(zigzag(iv - iv.min()) if len(iv) else zigzag(iv))
    use_delta = len(delta) <= len(frame) + 8
    values = delta if use_delta else frame + iv.min().tobytes()
    return times, values, bytes(CODEC.compress(q.tobytes(), asbytes=True)), sc, use_delta


def decode(blocks: tuple[bytes, bytes, bytes, int, bool], n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    times, values, quality, sc, use_delta = blocks
    t = unzigzag(unpack(times, n))
    d1 = t[1] + np.cumsum(np.concatenate([np.zeros(min(n - 1, 1), np.int64), t[2:]]))
    ts = t[0] + np.concatenate([np.zeros(1, np.int64), np.cumsum(d1)])
    if use_delta:
        iv = np.cumsum(unzigzag(unpack(values, n)))
    else:
        iv = unzigzag(unpack(values[:-8], n)) + np.frombuffer(values[-8:], dtype=np.int64)[0]
    q = np.frombuffer(CODEC.decompress(quality, decompressed_size=n, asbytes=True), dtype=np.uint8)
    return ts, iv / 10.0**sc, q


def day_of_data(gen: Walk | Fleet, tags: int, period: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    ids = np.arange(1, tags + 1, dtype=np.uint32)
    steps = int(DAY // gen.period)
    b = gen.batch(ids, 0, steps)
    tag, ts = b.column(0).to_numpy(), b.column(1).cast(pa.int64()).to_numpy()
    v, q = b.column(2).to_numpy(zero_copy_only=False), b.column(3).to_numpy()
    order = np.lexsort((ts, tag))  # a compacted day: (tag, time) order
    return tag[order], ts[order], v[order], q[order]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tags", type=int, default=100)
    p.add_argument("--period", type=float, default=1.0, help="seconds between two samples of a tag")
    p.add_argument("--runs", type=int, default=7)
    a = p.parse_args()
    label = f"{a.tags}tags_{a.period:g}s"
    for data in ("walk", "fleet"):
        tag, ts, v, q = day_of_data(generator(data, a.tags, a.period), a.tags, a.period)
        starts = np.flatnonzero(np.diff(tag, prepend=np.uint32(0)))
        bounds = list(zip(starts, [*starts[1:], len(tag)], strict=True))
        blocks = [encode(ts[s:e], v[s:e], q[s:e]) for s, e in bounds]
        size = sum(len(x[0]) + len(x[1]) + len(x[2]) + 2 for x in blocks)  # + scale and mode bytes
        emit(f"historian.codec.bytes_per_sample.{data}.{label}", size / len(tag), "B/sample", samples=len(tag),
             times=round(sum(len(x[0]) for x in blocks) / len(tag), 3),
             values=round(sum(len(x[1]) for x in blocks) / len(tag), 3),
             quality=round(sum(len(x[2]) for x in blocks) / len(tag), 3),
             delta_blocks=sum(x[4] for x in blocks))
        for (s, e), blk in zip(bounds, blocks, strict=True):  # lossless, checked
            dts, dv, dq = decode(blk, e - s)
            assert np.array_equal(dts, ts[s:e]) and np.array_equal(dv, v[s:e]) and np.array_equal(dq, q[s:e])
        n100 = min(100, len(bounds))
        for what, chosen in (("1_tag_1d", bounds[:1]), (f"{n100}_tags_1d", bounds[:n100])):
            times = []
            for _ in range(a.runs):
                t0 = time.perf_counter()
                for (s, e), blk in zip(chosen, blocks, strict=False):
                    decode(blk, e - s)
                times.append((time.perf_counter() - t0) * 1000)
            emit(f"historian.codec.decode_ms.{what}.{data}.{label}", statistics.median(times), "ms",
                 samples=int(sum(e - s for s, e in chosen)))


if __name__ == "__main__":
    main()
