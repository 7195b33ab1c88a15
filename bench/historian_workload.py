"""The historian bench's workload: plant-like samples, written once to disk for every system to replay.

Tags: ``tags`` dense tags at 1 Hz (a random walk per tag, 2 or 3 decimals), ``tags // 10`` sparse tags every
10 s and 2 text tags (a machine state) every 10 s. Every timestamp has a jitter of up to +-50 ms (whole
milliseconds, so every system stores the same instants); each tag has gaps (in any hour, a 5 % chance of
1 to 15 minutes without samples); about 1 % of the samples have a bad quality (value kept).

Delivery: one batch per ``batch_s`` seconds of data (all the tags' samples of that window, in time order, as a
connector fleet hands them in); about 1 % of the batches arrive after the next one (out of order), and every
2 hours of data one device's 10 tags of one window arrive 12 batches late.

``write`` puts the batches, in delivery order, in ``samples.arrows`` (an Arrow IPC stream, what plantlink
ingests) and the same samples as InfluxDB line protocol in ``samples.lp`` (``offsets.npy`` holds where each
batch starts), with nanosecond timestamps: measurement ``m`` (fields ``value`` and ``q``, the quality) and
``txt`` (fields ``text`` and ``q``), tag key ``tag``.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from plantlink.samples import SAMPLE_SCHEMA, Quality

S = 1_000_000
STATES = ["RUNNING", "IDLE", "STOPPED", "FAULT", "SETUP"]
LATE_EVERY_S = 2 * 3600
LATE_BY = 12  # batches
DEVICE = 10  # tags per device (a late batch is one device's)


@dataclass(frozen=True)
class Layout:
    """Which tag ids are which: dense ``0 .. dense-1``, then sparse, then text."""

    dense: int
    sparse: int
    text: int = 2

    @property
    def total(self) -> int:
        return self.dense + self.sparse + self.text

    def path(self, i: int) -> str:
        if i < self.dense:
            return f"t{i:04d}"
        if i < self.dense + self.sparse:
            return f"s{i - self.dense:04d}"
        return f"x{i - self.dense - self.sparse:04d}"

    def is_text(self, i: int) -> bool:
        return i >= self.dense + self.sparse


@dataclass(frozen=True)
class Files:
    arrows: Path
    lp: Path
    offsets: Path

    @staticmethod
    def under(d: Path) -> Files:
        return Files(d / "samples.arrows", d / "samples.lp", d / "offsets.npy")


class Generator:
    def __init__(self, layout: Layout, t0_s: int, seconds: int, batch_s: int, seed: int = 7):
        self.lay, self.t0, self.seconds, self.batch_s = layout, t0_s, seconds, batch_s
        self.rng = np.random.default_rng(seed)
        n = layout.dense + layout.sparse
        self.level = self.rng.uniform(10, 500, n)
        self.step = self.level * self.rng.uniform(0.0005, 0.003, n)
        self.decimals = self.rng.integers(2, 4, n)
        self.gap_from = np.zeros(layout.total, dtype=np.int64)  # per tag: no samples from this second ...
        self.gap_until = np.zeros(layout.total, dtype=np.int64)  # ... to this one
        self.state = self.rng.integers(0, len(STATES), layout.text)

    def windows(self) -> Iterator[pa.RecordBatch]:
        """The batches in time order (before out-of-order and late delivery)."""
        for w0 in range(0, self.seconds, self.batch_s):
            yield self._window(w0, min(self.batch_s, self.seconds - w0))

    def _window(self, w0: int, width: int) -> pa.RecordBatch:
        lay, rng = self.lay, self.rng
        self._gaps(w0)
        secs = np.arange(w0, w0 + width, dtype=np.int64)
        parts = []
        dense = np.arange(lay.dense)
        walk = np.cumsum(rng.normal(size=(width, lay.dense)) * self.step[:lay.dense], axis=0)
        vals = self.level[:lay.dense] + walk
        self.level[:lay.dense] = vals[-1]
        parts.append((np.broadcast_to(dense, vals.shape), np.broadcast_to(secs[:, None], vals.shape), vals))
        every10 = secs[secs % 10 == 0]
        if len(every10) and lay.sparse:
            sparse = np.arange(lay.dense, lay.dense + lay.sparse)
            sv = self.level[sparse] + np.cumsum(rng.normal(size=(len(every10), lay.sparse)) * self.step[sparse], 0)
            self.level[sparse] = sv[-1]
            parts.append((np.broadcast_to(sparse, sv.shape), np.broadcast_to(every10[:, None], sv.shape), sv))
        tag = np.concatenate([p[0].ravel() for p in parts])
        sec = np.concatenate([p[1].ravel() for p in parts])
        val = np.concatenate([p[2].ravel() for p in parts])
        val = np.round(val, 3)
        two = self.decimals[tag] == 2
        val[two] = np.round(val[two], 2)
        keep = (sec < self.gap_from[tag]) | (sec >= self.gap_until[tag])
        tag, sec, val = tag[keep], sec[keep], val[keep]
        numeric = self._batch(tag, sec, val, None)
        if not len(every10):
            return numeric
        self.state = np.where(rng.random(lay.text) < 0.2, rng.integers(0, len(STATES), lay.text), self.state)
        ttag = np.repeat(np.arange(lay.dense + lay.sparse, lay.total), len(every10))
        tsec = np.tile(every10, lay.text)
        texts = [STATES[self.state[i - lay.dense - lay.sparse]] for i in ttag]
        text = self._batch(ttag, tsec, None, texts)
        return pa.concat_batches([numeric, text])

    def _gaps(self, w0: int) -> None:
        """Once an hour of data, place a gap of 1 to 15 minutes in that hour in about 5 % of the tags."""
        if w0 % 3600 >= self.batch_s:
            return
        hit = self.rng.random(self.lay.total) < 0.05
        self.gap_from[hit] = w0 + self.rng.integers(0, 3600, hit.sum())
        self.gap_until[hit] = self.gap_from[hit] + self.rng.integers(60, 900, hit.sum())

    def _batch(self, tag: np.ndarray, sec: np.ndarray, val: np.ndarray | None,
               texts: list[str] | None) -> pa.RecordBatch:
        n = len(tag)
        jitter_ms = self.rng.integers(-50, 51, n)
        ts = (self.t0 + sec) * S + jitter_ms * 1000
        order = np.lexsort((tag, ts))
        q = np.where(self.rng.random(n) < 0.01, Quality.BAD, Quality.GOOD).astype(np.uint8)
        value = pa.array(val[order], pa.float64()) if val is not None else pa.nulls(n, pa.float64())
        text = pa.array([texts[i] for i in order], pa.string()) if texts is not None else pa.nulls(n, pa.string())
        return pa.RecordBatch.from_arrays(
            [pa.array(tag[order], pa.uint32()), pa.array(ts[order], pa.int64()).cast(SAMPLE_SCHEMA.field("ts").type),
             value, pa.array(q[order], pa.uint8()), text], schema=SAMPLE_SCHEMA)


def delivery(windows: Iterator[pa.RecordBatch], batch_s: int, rng: np.random.Generator) -> Iterator[pa.RecordBatch]:
    """Out of order (about 1 % of the batches swapped with the next) and late (one device's part of a window
    every ``LATE_EVERY_S`` held back ``LATE_BY`` batches)."""
    held: list[tuple[int, pa.RecordBatch]] = []
    swap: pa.RecordBatch | None = None
    per_late = max(1, LATE_EVERY_S // batch_s)
    for k, b in enumerate(windows):
        if k % per_late == per_late // 2:
            late = pc.less(b.column("tag_id"), DEVICE)
            held.append((k + LATE_BY, b.filter(late)))
            b = b.filter(pc.invert(late))
        out = [b]
        if swap is not None:
            out, swap = [b, swap], None
        elif rng.random() < 0.01:
            swap, out = b, []
        while held and held[0][0] <= k:
            out.append(held.pop(0)[1])
        yield from out
    if swap is not None:
        yield swap
    for _, b in held:
        yield b


def line_protocol(b: pa.RecordBatch, lay: Layout) -> bytes:
    """The batch as InfluxDB line protocol (nanosecond timestamps)."""
    tag = b.column("tag_id").to_numpy()
    names = np.array([lay.path(i) for i in range(lay.total)], dtype=object)
    ts = pc.multiply(b.column("ts").cast(pa.int64()), 1000).cast(pa.string())
    q = b.column("quality").cast(pa.string())
    text_rows = tag >= lay.dense + lay.sparse
    prefix = pa.array(np.where(text_rows, "txt,tag=", "m,tag=") + names[tag].astype(str))
    numeric = pc.binary_join_element_wise(prefix, " value=", b.column("value").cast(pa.string()), ",q=", q, "i ",
                                          ts, "\n", "")
    quoted = pc.binary_join_element_wise(prefix, ' text="', b.column("text"), '",q=', q, "i ", ts, "\n", "")
    lines = pc.if_else(pa.array(text_rows), quoted, numeric)
    offsets = np.frombuffer(lines.buffers()[1], dtype=np.int32)
    start, end = offsets[lines.offset], offsets[lines.offset + len(lines)]
    return lines.buffers()[2].to_pybytes()[start:end]


def write(d: Path, lay: Layout, t0_s: int, seconds: int, batch_s: int) -> tuple[Files, int, int]:
    """Generate the workload under ``d``; return the files, the samples and the batches."""
    f = Files.under(d)
    gen = Generator(lay, t0_s, seconds, batch_s)
    offsets = [0]
    samples = 0
    with pa.OSFile(str(f.arrows), "wb") as sink, pa.ipc.new_stream(sink, SAMPLE_SCHEMA) as stream, \
            open(f.lp, "wb") as lp:
        for b in delivery(gen.windows(), batch_s, np.random.default_rng(11)):
            if not b.num_rows:
                continue
            stream.write_batch(b)
            offsets.append(offsets[-1] + lp.write(line_protocol(b, lay)))
            samples += b.num_rows
    np.save(f.offsets, np.array(offsets, dtype=np.int64))
    return f, samples, len(offsets) - 1


def lp_batches(f: Files) -> Iterator[bytes]:
    """The line-protocol batches, in delivery order."""
    offsets = np.load(f.offsets)
    with open(f.lp, "rb") as fh:
        for a, b in itertools.pairwise(offsets):
            yield fh.read(int(b - a))
