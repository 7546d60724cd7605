"""PartitionLog on real files: append, read, boundaries, rolls, retention, timestamps, waits."""

from __future__ import annotations

import os
from pathlib import Path

import attrs
import pytest

from broker.config import LogConfig
from broker.errors import OffsetOutOfRange
from wire.kafka.batch import BatchTooLarge, CorruptBatch, UnsupportedBatchFormat, split_batches, validate
from broker.log.file_cache import OpenFileCache
from broker.log.partition_log import PartitionLog
from broker.log.storage import LogStorage
from tests.broker.batches import build_batch, with_base_offset

CONFIG = LogConfig(fsync="never", index_interval_bytes=256)
T0 = 1_700_000_000_000


def open_log(tmp_path: Path, now_ms: int = T0, **changes) -> PartitionLog:
    return PartitionLog.open(tmp_path / "topic-0", attrs.evolve(CONFIG, **changes), now_ms=now_ms)


def offsets_in(data: bytes) -> list[int]:
    return [validate(batch).base_offset for batch in split_batches(data, strict=True)]


def test_empty_log(tmp_path: Path) -> None:
    log = open_log(tmp_path)
    assert (log.log_start_offset, log.high_watermark, log.size_bytes, log.segment_count) == (0, 0, 0, 1)
    assert log.read(0, 1000) == b""
    assert (tmp_path / "topic-0" / "00000000000000000000.log").exists()
    assert log.offset_for_timestamp(0) is None
    assert list(log.batches()) == []
    log.close()


def test_append_assigns_dense_offsets_and_stores_bytes(tmp_path: Path) -> None:
    log = open_log(tmp_path)
    batches = [build_batch(n, 20, fill=n) for n in (1, 3, 2, 5)]
    assert [log.append(b, T0) for b in batches] == [0, 1, 4, 6]
    assert log.high_watermark == 11
    assert log.size_bytes == sum(map(len, batches))
    expected = b"".join(with_base_offset(b, o) for b, o in zip(batches, [0, 1, 4, 6]))
    assert log.read(0, 10**9) == expected
    assert [o for o, _ in log.batches()] == [0, 1, 4, 6]
    assert [o for o, _ in log.batches(5)] == [4, 6]
    log.close()


def test_read_starts_at_containing_batch(tmp_path: Path) -> None:
    log = open_log(tmp_path)
    for n in (1, 3, 2, 5):
        log.append(build_batch(n, 20), T0)
    for offset, first in [(0, 0), (1, 1), (2, 1), (3, 1), (4, 4), (5, 4), (6, 6), (10, 6)]:
        assert offsets_in(log.read(offset, 10**9))[0] == first
    log.close()


def test_max_bytes_rule(tmp_path: Path) -> None:
    log = open_log(tmp_path)
    sizes = [len(build_batch(4, 50)) for _ in range(5)]
    for _ in range(5):
        log.append(build_batch(4, 50), T0)
    size = sizes[0]
    # At least one whole batch, even when max_bytes is smaller than it (or zero).
    assert offsets_in(log.read(0, 1)) == [0]
    assert offsets_in(log.read(0, 0)) == [0]
    # Whole batches while the total stays within max_bytes.
    assert offsets_in(log.read(0, size)) == [0]
    assert offsets_in(log.read(0, 2 * size - 1)) == [0]
    assert offsets_in(log.read(0, 2 * size)) == [0, 4]
    assert offsets_in(log.read(5, 3 * size)) == [4, 8, 12]
    assert offsets_in(log.read(19, 10**6)) == [16]
    log.close()


def test_out_of_range(tmp_path: Path) -> None:
    log = open_log(tmp_path)
    log.append(build_batch(3), T0)
    assert log.read(3, 100) == b""
    with pytest.raises(OffsetOutOfRange, match="offset 4 is out of range: log_start_offset is 0, log_end_offset is 3"):
        log.read(4, 100)
    with pytest.raises(OffsetOutOfRange, match="offset -1"):
        log.read(-1, 100)
    log.close()


def test_bad_batches_leave_log_unchanged(tmp_path: Path) -> None:
    log = open_log(tmp_path, max_message_bytes=2000)
    good = build_batch(2, 10)
    log.append(good, T0)
    before = (log.high_watermark, log.size_bytes, log.read(0, 10**6))
    crc = bytearray(build_batch(2, 10))
    crc[-1] ^= 0xFF
    magic = bytearray(build_batch(2, 10))
    magic[16] = 0
    cases = [
        (CorruptBatch, bytes(crc)),
        (UnsupportedBatchFormat, bytes(magic)),
        (CorruptBatch, build_batch(2, 10)[:-4]),
        (CorruptBatch, b"\x00" * 10),
        (BatchTooLarge, build_batch(30, 100)),
    ]
    for error, batch in cases:
        with pytest.raises(error):
            log.append(batch, T0)
        assert (log.high_watermark, log.size_bytes, log.read(0, 10**6)) == before
    log.close()
    reopened = open_log(tmp_path, max_message_bytes=2000)
    assert (reopened.high_watermark, reopened.size_bytes, reopened.read(0, 10**6)) == before
    reopened.close()


def test_roll_by_size_and_reads_across_segments(tmp_path: Path) -> None:
    batch = build_batch(2, 40)
    log = open_log(tmp_path, segment_bytes=3 * len(batch))
    for _ in range(10):
        log.append(batch, T0)
    assert log.segment_count == 4  # 3 + 3 + 3 + 1
    names = sorted(p.name for p in (tmp_path / "topic-0").glob("*.log"))
    assert names == [f"{b:020d}.log" for b in (0, 6, 12, 18)]
    # One read spanning every segment boundary.
    assert offsets_in(log.read(0, 10**6)) == list(range(0, 20, 2))
    assert offsets_in(log.read(5, 3 * len(batch))) == [4, 6, 8]
    for offset in range(20):
        assert offsets_in(log.read(offset, 1))[0] == offset - offset % 2
    log.close()


def open_descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_sealed_segments_cost_no_descriptor_beyond_the_shared_cache(tmp_path: Path) -> None:
    # Only the active segment holds files of its own (three); sealed segments borrow their
    # .log from a bounded cache shared by the broker, so ten segments through a cache of two
    # hold at most 3 + 2 descriptors, and none of the sealed ones while idle after a restart.
    batch = build_batch(2, 40)
    before = open_descriptors()
    storage = LogStorage(files=OpenFileCache(2))
    config = attrs.evolve(CONFIG, segment_bytes=3 * len(batch))
    log = PartitionLog.open(tmp_path / "topic-0", config, now_ms=T0, storage=storage)
    for _ in range(30):
        log.append(batch, T0)
    assert log.segment_count == 10
    assert open_descriptors() - before == 3 + 2
    log.close()
    assert open_descriptors() == before and len(storage.files) == 0
    log = PartitionLog.open(tmp_path / "topic-0", config, now_ms=T0, storage=storage)
    assert open_descriptors() - before == 3  # recovery closed every file it verified
    assert offsets_in(log.read(0, 10**6)) == list(range(0, 60, 2))  # reads all ten segments
    assert open_descriptors() - before == 3 + 2
    assert storage.files.statistics().evictions >= 7
    assert log.offset_for_timestamp(0) is not None
    assert [offset for offset, _ in log.batches()] == list(range(0, 60, 2))
    log.append(batch, T0)  # the active segment still writes its indexes
    job = log.begin_flush()
    assert job is not None
    job.fsync()
    job.close()  # the job's duplicated descriptors are its own to close
    log.finish_flush(job)
    assert open_descriptors() - before <= 3 + 2
    log.close()
    assert open_descriptors() == before


def test_batch_larger_than_segment_goes_into_its_own_segment(tmp_path: Path) -> None:
    log = open_log(tmp_path, segment_bytes=100)
    log.append(build_batch(5, 40), T0)
    log.append(build_batch(5, 40), T0)
    assert log.segment_count == 2
    assert offsets_in(log.read(0, 10**6)) == [0, 5]
    log.close()


def test_roll_by_age(tmp_path: Path) -> None:
    log = open_log(tmp_path, segment_ms=1000)
    # The age of a segment counts from its first batch's timestamp (Kafka's rule).
    log.append(build_batch(1, timestamp=T0), T0)
    assert not log.roll_if_aged(T0 + 999)
    log.append(build_batch(1, timestamp=T0 + 500), T0 + 999)
    assert log.segment_count == 1
    # An append finding the active segment too old rolls first.
    log.append(build_batch(1, timestamp=T0 + 1000), T0 + 1000)
    assert log.segment_count == 2
    assert log.roll_if_aged(T0 + 2000)
    assert log.segment_count == 3
    # An empty active segment never rolls.
    assert not log.roll_if_aged(T0 + 10_000)
    assert log.high_watermark == 3
    log.close()


def test_retention_by_time(tmp_path: Path) -> None:
    batch_size = len(build_batch(1, 10))
    log = open_log(tmp_path, segment_bytes=2 * batch_size, retention_ms=10_000)
    for i in range(6):  # segments [0,1] [2,3] [4,5], timestamps T0 + i*1000
        log.append(build_batch(1, 10, timestamp=T0 + i * 1000), T0 + i * 1000)
    assert log.segment_count == 3
    # Segment 0's newest timestamp is T0+1000: kept up to exactly retention_ms later.
    assert log.apply_retention(T0 + 11_000) == 0
    assert log.apply_retention(T0 + 11_001) == 1
    assert log.log_start_offset == 2
    # The active segment is never deleted, however old.
    assert log.apply_retention(T0 + 10**9) == 1
    assert (log.log_start_offset, log.segment_count, log.high_watermark) == (4, 1, 6)
    with pytest.raises(OffsetOutOfRange, match="log_start_offset is 4"):
        log.read(3, 100)
    assert offsets_in(log.read(4, 10**6)) == [4, 5]
    # After an age roll the old active segment can go too; the log is then empty at 6.
    assert log.roll_if_aged(T0 + 10**9)
    assert log.apply_retention(T0 + 10**9) == 1
    assert (log.log_start_offset, log.high_watermark, log.size_bytes) == (6, 6, 0)
    assert log.read(6, 100) == b""
    log.close()
    reopened = open_log(tmp_path)
    assert (reopened.log_start_offset, reopened.high_watermark) == (6, 6)
    assert reopened.append(build_batch(1), T0) == 6
    reopened.close()


def test_retention_by_size(tmp_path: Path) -> None:
    batch = build_batch(1, 10)
    log = open_log(tmp_path, segment_bytes=2 * len(batch), retention_bytes=3 * len(batch))
    for _ in range(7):  # segments of 2,2,2,1 batches
        log.append(batch, T0)
    assert log.segment_count == 4
    # Kafka's rule: delete the oldest while the rest still holds >= retention_bytes.
    assert log.apply_retention(T0) == 2
    assert (log.log_start_offset, log.size_bytes) == (4, 3 * len(batch))
    assert log.apply_retention(T0) == 0
    log.close()


def test_retention_unlimited(tmp_path: Path) -> None:
    batch = build_batch(1, 10)
    log = open_log(tmp_path, segment_bytes=len(batch), retention_ms=-1, retention_bytes=-1)
    for _ in range(4):
        log.append(batch, T0)
    assert log.apply_retention(T0 + 10**12) == 0
    log.close()


def test_offset_for_timestamp(tmp_path: Path) -> None:
    log = open_log(tmp_path, segment_bytes=2000, index_interval_bytes=0)
    # Batches of 3 records; batch i has timestamps T0 + 100*i + (0, 10, 20).
    for i in range(40):
        log.append(build_batch(3, 30, timestamp=T0 + 100 * i, timestamp_step=10), T0)
    assert log.segment_count > 2
    assert log.offset_for_timestamp(0) == (0, T0 + 20)
    assert log.offset_for_timestamp(T0 + 20) == (0, T0 + 20)
    assert log.offset_for_timestamp(T0 + 21) == (3, T0 + 120)
    assert log.offset_for_timestamp(T0 + 1500) == (45, T0 + 1520)
    assert log.offset_for_timestamp(T0 + 3920) == (117, T0 + 3920)
    assert log.offset_for_timestamp(T0 + 3921) is None
    log.close()
    reopened = open_log(tmp_path, segment_bytes=2000, index_interval_bytes=0)
    assert reopened.offset_for_timestamp(T0 + 1500) == (45, T0 + 1520)
    reopened.close()


def test_offset_for_timestamp_out_of_order(tmp_path: Path) -> None:
    log = open_log(tmp_path, index_interval_bytes=0)
    for ts in (500, 100, 900, 300, 1000):
        log.append(build_batch(1, timestamp=ts), T0)
    assert log.offset_for_timestamp(200) == (0, 500)
    assert log.offset_for_timestamp(600) == (2, 900)
    assert log.offset_for_timestamp(950) == (4, 1000)
    log.close()


def test_sparse_index_entries(tmp_path: Path) -> None:
    batch = build_batch(1, 100)
    log = open_log(tmp_path, index_interval_bytes=3 * len(batch))
    for _ in range(20):
        log.append(batch, T0)
    index = (tmp_path / "topic-0" / "00000000000000000000.index").read_bytes()
    entries = len(index) // 8
    assert 3 <= entries <= 7  # one per ~3 batches, never one per batch
    for offset in range(20):
        assert offsets_in(log.read(offset, 1)) == [offset]
    log.close()


def test_statistics_and_flush(tmp_path: Path) -> None:
    log = open_log(tmp_path)
    assert not log.has_unflushed
    log.append(build_batch(2), T0)
    stats = log.statistics()
    assert stats.high_watermark == 2 and stats.flushed_offset == 0 and stats.unflushed_bytes == stats.size_bytes
    assert log.has_unflushed
    log.flush_sync()
    assert not log.has_unflushed and log.flushed_offset == 2
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        stats.high_watermark = 5  # type: ignore[misc]
    log.close()


def test_flush_job_covers_what_was_unflushed_when_it_was_made(tmp_path: Path) -> None:
    log = open_log(tmp_path, fsync="always")
    assert log.begin_flush() is None  # nothing to flush
    log.append(build_batch(2), T0)
    job = log.begin_flush()
    assert job is not None and job.offset == 2
    log.append(build_batch(3), T0)  # arrives while the job's fsync would run in a thread
    job.fsync()
    job.close()
    assert job.descriptors == []
    assert log.flushed_offset == 0  # nothing is durable until the log is told
    log.finish_flush(job)
    assert log.flushed_offset == 2 and log.has_unflushed  # the later batch is not covered
    second = log.begin_flush()
    assert second is not None
    second.fsync()
    second.close()
    log.finish_flush(second)
    assert log.flushed_offset == 5 and not log.has_unflushed
    log.close()


def test_flush_job_descriptors_survive_retention_deleting_the_segment(tmp_path: Path) -> None:
    # The job owns duplicates: retention may delete (and close) a segment while a worker
    # thread fsyncs it, and the fsync still works on a valid descriptor.
    batch = build_batch(2, 40)
    log = open_log(tmp_path, segment_bytes=len(batch), retention_bytes=0)
    log.append(batch, T0)
    log.append(batch, T0)  # rolls: the first segment is sealed, unflushed
    job = log.begin_flush()
    assert job is not None
    assert log.apply_retention(T0) == 1
    job.fsync()
    job.close()
    log.finish_flush(job)
    assert log.flushed_offset == 4
    log.close()


def test_data_ticket_completed_and_woken_by_the_append(tmp_path: Path) -> None:
    log = open_log(tmp_path)
    woken: list[str] = []
    ticket = log.watch(0, lambda: woken.append("a"))
    later = log.watch(5, lambda: woken.append("b"))
    assert not ticket.done and woken == []
    log.append(build_batch(1), T0)  # high watermark 1: past 0, not past 5
    assert ticket.done and woken == ["a"] and not later.done
    log.append(build_batch(1), T0)
    assert woken == ["a"]  # a completed ticket is woken once
    log.unwatch(later)
    log.append(build_batch(10), T0)
    assert woken == ["a"] and not later.done  # an unwatched ticket is forgotten
    log.unwatch(ticket)  # harmless twice
    log.close()


def test_data_ticket_done_at_once_when_data_is_there(tmp_path: Path) -> None:
    log = open_log(tmp_path)
    log.append(build_batch(2), T0)
    woken: list[int] = []
    ticket = log.watch(1, lambda: woken.append(1))
    assert ticket.done and woken == []  # done before anyone could wait: no wake-up needed
    log.close()
    assert log.watch(7, lambda: woken.append(7)).done  # a closed log has nothing to wait for


def test_close_completes_every_ticket(tmp_path: Path) -> None:
    log = open_log(tmp_path)
    woken: list[int] = []
    tickets = [log.watch(0, lambda: woken.append(0)), log.watch(3, lambda: woken.append(3))]
    log.close()
    assert all(t.done for t in tickets) and woken == [0, 3]


def test_reads_see_appends_immediately_via_fresh_descriptor(tmp_path: Path) -> None:
    log = open_log(tmp_path)
    batch = build_batch(1)
    log.append(batch, T0)
    # No user-space buffering: another reader of the file sees the batch at once.
    path = tmp_path / "topic-0" / "00000000000000000000.log"
    assert path.read_bytes() == with_base_offset(batch, 0)
    assert os.path.getsize(path) == log.size_bytes
    log.close()
