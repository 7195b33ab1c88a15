"""The write-ahead log on real files: delivery after the log, torn tails, checksums, replay, checkpoint, limits."""

from __future__ import annotations

import asyncio
import logging
import resource
import signal
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from plantlink.historian import TagMeta, open_historian
from plantlink.historian.duckdb import DuckDBHistorian
from plantlink.samples import SAMPLE_SCHEMA, concat, numeric_batch, text_batch
from plantlink.wal import WalSettings, WriteAheadLog, seq_of
from plantlink.wal.segment import HEADER, Encoder, SegmentReader, segment_name
from tests.waiting import wait_for

T0 = 1_772_409_600_000_000


def batch(k: int, rows: int = 50) -> pa.RecordBatch:
    """Batch ``k``: tags 1..rows at T0 + k ms, values k + tag / 1000."""
    ids = np.arange(1, rows + 1)
    return numeric_batch(ids, T0 + k * 1000, k + ids / 1000, 192)


def segments(d: Path) -> list[Path]:
    return sorted(d.glob("*.wal"))


async def logged(d: Path, batches: list[pa.RecordBatch], settings: WalSettings | None = None,
                 one_by_one: bool = False) -> list[pa.RecordBatch]:
    """Append ``batches`` to a log in ``d`` (``one_by_one``: each after the previous one's delivery: one
    commit each), stop (which commits and delivers what is queued); return what was delivered."""
    wal = WriteAheadLog(d, settings or WalSettings(commit_ms=5))
    wal.open()
    out: list[pa.RecordBatch] = []
    wal.start(out.append)
    for k, b in enumerate(batches):
        wal.append(b)
        if one_by_one:
            await wait_for(lambda n=k + 1: len(out) == n)
    await wal.stop()
    assert len(out) == len(batches)
    return out


def replayed(d: Path, after: int = 0) -> tuple[list[tuple[int, pa.RecordBatch]], WriteAheadLog]:
    wal = WriteAheadLog(d)
    wal.open()
    return list(wal.replay(after)), wal


async def test_a_batch_is_delivered_only_once_it_is_in_the_log_in_order_with_its_seq(tmp_path: Path) -> None:
    wal = WriteAheadLog(tmp_path, WalSettings(commit_ms=20))
    wal.open()
    on_disk_at_delivery: list[bool] = []
    delivered: list[pa.RecordBatch] = []

    def deliver(b: pa.RecordBatch) -> None:
        seqs = {s for p in segments(tmp_path) for s, _ in SegmentReader(p)}
        on_disk_at_delivery.append(seq_of(b) in seqs)
        delivered.append(b)

    wal.start(deliver)
    sent = [batch(k) for k in range(60)]
    for b in sent:
        wal.append(b)
        await asyncio.sleep(0.001)
    await wait_for(lambda: len(delivered) == len(sent))
    await wal.stop()
    assert all(on_disk_at_delivery)
    assert [seq_of(b) for b in delivered] == list(range(1, 61))
    assert all(d.equals(s) for d, s in zip(delivered, sent, strict=True))  # metadata aside, the same batch
    st = wal.status()
    assert st["committed_batches"] == 60 and 1 <= st["fsyncs"] < 60  # grouped
    assert st["fsync_p99_ms"] is not None and st["commit_p99_ms"] is not None


async def test_replay_returns_every_logged_batch_text_and_numeric_and_continues_the_sequence(tmp_path: Path) -> None:
    sent = [batch(0), text_batch([7, 8], T0, ["run", None], 192), batch(1, rows=3000)]
    await logged(tmp_path, sent)
    got, wal = replayed(tmp_path)
    assert [s for s, _ in got] == [1, 2, 3]
    assert all(g.equals(s) for (_, g), s in zip(got, sent, strict=True))
    assert wal.stats.replayed_batches == 3 and wal.stats.replayed_rows == 50 + 2 + 3000
    assert [s for s, _ in replayed(tmp_path, after=2)[0]] == [3]
    delivered: list[pa.RecordBatch] = []
    wal.start(delivered.append)  # the next run goes on after the last logged number
    wal.append(batch(2))
    await wait_for(lambda: len(delivered) == 1)
    await wal.stop()
    assert seq_of(delivered[0]) == 4
    assert [s for s, _ in replayed(tmp_path)[0]] == [1, 2, 3, 4]


@pytest.mark.parametrize("cut", [1, HEADER.size - 1, HEADER.size + 5, -1])
async def test_a_torn_tail_is_dropped_cleanly(tmp_path: Path, cut: int, caplog: pytest.LogCaptureFixture) -> None:
    sent = [batch(k) for k in range(5)]
    await logged(tmp_path, sent)
    (seg,) = segments(tmp_path)
    data = seg.read_bytes()
    starts = record_starts(data)
    last = starts[-1]
    keep = last + cut if cut > 0 else len(data) + cut  # a crash in the middle of writing the last record
    seg.write_bytes(data[:keep])
    with caplog.at_level(logging.WARNING, "plantlink.wal"):
        got, wal = replayed(tmp_path)
    assert [s for s, _ in got] == [1, 2, 3, 4]
    assert all(g.equals(s) for (_, g), s in zip(got, sent[:4], strict=True))
    assert wal.stats.dropped_tail_bytes == keep - last
    assert "dropped" in caplog.text and seg.name in caplog.text
    delivered: list[pa.RecordBatch] = []
    wal.start(delivered.append)  # a new segment, numbered on from the last good record
    wal.append(batch(9))
    await wait_for(lambda: len(delivered) == 1)
    await wal.stop()
    assert seq_of(delivered[0]) == 5
    assert [s for s, _ in replayed(tmp_path)[0]] == [1, 2, 3, 4, 5]


def record_starts(data: bytes) -> list[int]:
    out, pos = [], 0
    while pos < len(data):
        out.append(pos)
        pos += HEADER.size + HEADER.unpack_from(data, pos)[1]
    return out


@pytest.mark.parametrize("where", ["payload", "seq", "magic"])
async def test_a_corrupt_record_stops_its_segment_but_not_the_next(tmp_path: Path, where: str) -> None:
    settings = WalSettings(commit_ms=0, segment_bytes=4096, max_bytes=1 << 20)
    await logged(tmp_path, [batch(k) for k in range(6)], settings, one_by_one=True)  # ~1.6 kB each: 3 a segment
    segs = segments(tmp_path)
    assert len(segs) >= 2
    first = segs[0].read_bytes()
    pos = {"payload": HEADER.size + 100, "seq": 8, "magic": 0}[where]
    segs[0].write_bytes(first[:pos] + bytes([first[pos] ^ 0x40]) + first[pos + 1:])
    readers = [SegmentReader(p) for p in segs]
    lists = [[s for s, _ in r] for r in readers]
    assert lists[0] == [] and readers[0].problem is not None
    assert ("checksum" in readers[0].problem) if where != "magic" else ("marker" in readers[0].problem)
    got, wal = replayed(tmp_path)
    assert [s for s, _ in got] == [s for lst in lists[1:] for s in lst] and got  # the later segments replay
    assert wal.stats.dropped_tail_bytes == len(first)


async def test_replay_into_the_historian_is_idempotent(tmp_path: Path) -> None:
    """The historian stores the log position in the flush's transaction: a second replay (a crash after the
    flush and before the checkpoint) adds nothing, and replay starts exactly after the last stored batch."""
    path = tmp_path / "h.duckdb"
    h = open_historian("duckdb", path=path)
    h.register_tags([TagMeta(f"t{i}") for i in range(1, 51)])
    sent = [batch(k) for k in range(10)]
    delivered = await logged(tmp_path / "wal", sent)
    for b in delivered[:4]:
        h.write(b, seq_of(b))
    h.flush()  # batches 1-4 durable; 5-10 only in the log (the crash took the historian's buffer)
    assert h.durable_seq == 4
    h.close()
    for _ in range(2):
        h = open_historian("duckdb", path=path)
        got, _ = replayed(tmp_path / "wal", h.durable_seq)
        for seq, b in got:
            h.write(b, seq)
        h.flush()
        assert h.durable_seq == 10
        h.close()
    h = open_historian("duckdb", path=path)
    try:
        assert isinstance(h, DuckDBHistorian)
        counts = [h.raw(tid, 0, 2**62).num_rows for tid in range(1, 51)]
        assert counts == [10] * 50  # each sample exactly once
    finally:
        h.close()


async def test_checkpoint_deletes_only_segments_wholly_durable(tmp_path: Path) -> None:
    settings = WalSettings(commit_ms=0, segment_bytes=4096, max_bytes=1 << 20)
    await logged(tmp_path, [batch(k) for k in range(8)], settings, one_by_one=True)
    wal = WriteAheadLog(tmp_path, settings)
    wal.open()
    ranges = {p: [s for s, _ in SegmentReader(p)] for p in segments(tmp_path)}
    list(wal.replay(0))
    assert wal.checkpoint(0) == 0
    durable = 5
    deleted = wal.checkpoint(durable)
    left = segments(tmp_path)
    assert deleted == len([p for p, seqs in ranges.items() if max(seqs) <= durable]) > 0
    assert all(max(ranges[p]) > durable for p in left)
    assert sorted({s for p in left for s in ranges[p]} | set(range(1, durable + 1))) == list(range(1, 9))
    assert wal.status()["segments"] == len(left) and wal.status()["disk_bytes"] == sum(p.stat().st_size for p in left)


async def test_a_full_log_refuses_batches_which_are_never_delivered(tmp_path: Path,
                                                                     caplog: pytest.LogCaptureFixture) -> None:
    settings = WalSettings(commit_ms=0, segment_bytes=4096, max_bytes=8192)
    wal = WriteAheadLog(tmp_path, settings)
    wal.open()
    delivered: list[pa.RecordBatch] = []
    wal.start(delivered.append)
    with caplog.at_level(logging.WARNING, "plantlink.wal"):
        for k in range(10):  # ~1.6 kB each (and nothing checkpoints them): the fifth or so does not fit
            wal.append(batch(k))
            await wait_for(lambda n=k + 1: wal.stats.committed_batches + wal.stats.refused_batches == n)
        st = wal.status()
        assert st["full"] and st["refused_batches"] >= 6 and st["refused_rows"] == 50 * st["refused_batches"]
        assert "write-ahead log full" in caplog.text
        assert len(delivered) == st["committed_batches"] == 10 - st["refused_batches"]
        assert [float(b.column("value")[0].as_py()) for b in delivered] == [k + 0.001 for k in range(len(delivered))]
        await wait_for(lambda: wal.status()["segments"] >= 2)
        wal.checkpoint(st["committed_seq"])  # the historian caught up: space again
        wal.append(batch(10))
        await wait_for(lambda: len(delivered) == st["committed_batches"] + 1)
        assert not wal.status()["full"] and "accepting samples again" in caplog.text
    await wal.stop()


@pytest.fixture
def small_files() -> Iterator[int]:
    """Files this process writes may not grow past 64 KiB (writes beyond fail with EFBIG), as on a full disk."""
    limit = 64 * 1024
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    old = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
    try:
        yield limit
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, old)


async def test_a_failed_write_is_retried_in_a_new_segment_and_nothing_is_lost_or_doubled(
        tmp_path: Path, small_files: int, caplog: pytest.LogCaptureFixture) -> None:
    settings = WalSettings(commit_ms=0, segment_bytes=1 << 20, max_bytes=4 << 20)
    sent = [batch(k) for k in range(60)]  # ~100 kB in all: the first segment hits the 64 KiB limit
    with caplog.at_level(logging.ERROR, "plantlink.wal"):
        wal = WriteAheadLog(tmp_path, settings)
        wal.open()
        delivered: list[pa.RecordBatch] = []
        wal.start(delivered.append)
        for b in sent:
            wal.append(b)
            await asyncio.sleep(0.002)
        await wait_for(lambda: len(delivered) == len(sent))
        await wal.stop()
    assert wal.stats.write_errors >= 1 and "retrying in a new segment" in caplog.text
    assert [seq_of(b) for b in delivered] == list(range(1, 61))
    assert len(segments(tmp_path)) >= 2
    got, _ = replayed(tmp_path)
    assert [s for s, _ in got] == list(range(1, 61))
    assert all(g.equals(s) for (_, g), s in zip(got, sent, strict=True))


def test_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="commit_ms"):
        WalSettings(commit_ms=-1)
    with pytest.raises(ValueError, match="max_bytes"):
        WalSettings(max_bytes=1000)


def legacy(ids: list[int], values: list[float] | list[str | None]) -> pa.RecordBatch:
    """A batch in a shape of releases before the one samples schema: four columns, ``value`` float64 or string."""
    text = isinstance(values[0], str)
    return pa.RecordBatch.from_arrays(
        [pa.array(ids, pa.uint32()), pa.array([T0] * len(ids), pa.int64()).cast(pa.timestamp("us", tz="UTC")),
         pa.array(values, pa.string() if text else pa.float64()), pa.array([192] * len(ids), pa.uint8())],
        names=["tag_id", "ts", "value", "quality"])


async def test_a_segment_written_with_the_legacy_schemas_replays_in_the_samples_schema(tmp_path: Path) -> None:
    enc = Encoder()
    records = [legacy([1, 2], [1.5, 2.5]), legacy([3, 4], ["RUN", None])]
    (tmp_path / segment_name(1)).write_bytes(b"".join(enc.encode(k + 1, b) for k, b in enumerate(records)))
    got, _ = replayed(tmp_path)
    assert [b.schema for _, b in got] == [SAMPLE_SCHEMA, SAMPLE_SCHEMA]
    (_, num), (_, txt) = got
    assert num.column("value").to_pylist() == [1.5, 2.5] and num.column("text").null_count == 2
    assert txt.column("text").to_pylist() == ["RUN", None] and txt.column("value").null_count == 2
    h = open_historian("duckdb", path=tmp_path / "h.duckdb")
    try:
        h.register_tags([TagMeta("a"), TagMeta("b"), TagMeta("c", type="string"), TagMeta("d", type="string")])
        for seq, b in got:
            h.write(b, seq)
        h.flush()
        latest = h.latest([1, 2, 3, 4]).to_pydict()
        assert latest["value"][:2] == [1.5, 2.5] and latest["text"] == [None, None, "RUN", None]
        assert h.raw(3, 0, 2**62).column("value").to_pylist() == ["RUN"]  # both in the text store
        assert h.raw(4, 0, 2**62).column("value").to_pylist() == [None]
    finally:
        h.close()


def test_a_batch_without_text_samples_is_logged_without_its_text_column() -> None:
    """The all-null ``text`` column would cost 4 bytes of offsets a sample on disk; replay conforms it back."""
    b = batch(0, rows=1000)
    assert len(Encoder().encode(1, b)) == len(Encoder().encode(1, b.select(["tag_id", "ts", "value", "quality"])))
    mixed = concat([b, text_batch([7], T0, ["run"], 192)])
    assert len(Encoder().encode(1, mixed)) > len(Encoder().encode(1, b))
