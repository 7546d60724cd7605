"""Leader epochs and truncation in PartitionLog: the epoch cache, its checkpoint, truncate_to."""

from __future__ import annotations

import struct
from pathlib import Path

import attrs
import pytest
from structlog.testing import capture_logs

from broker.config import LogConfig
from broker.errors import OffsetOutOfRange
from broker.log.epochs import CHECKPOINT_FILE, read_checkpoint
from broker.log.partition_log import PartitionLog
from broker.log.verify import scan_partition
from broker.producers import Decision, ProducerIdManager, ProducerRegistry
from broker.topics import TopicRegistry
from tests.broker.batches import build_batch, with_base_offset
from wire.kafka.batch import split_batches, validate

CONFIG = LogConfig(fsync="never", index_interval_bytes=256)
T0 = 1_700_000_000_000
_EPOCH_AT = 12  # partitionLeaderEpoch: after baseOffset (int64) and batchLength (int32)


def open_log(tmp_path: Path, name: str = "topic-0", **changes) -> PartitionLog:
    return PartitionLog.open(tmp_path / name, attrs.evolve(CONFIG, **changes), now_ms=T0)


def reopen(log: PartitionLog) -> PartitionLog:
    log.close()
    return PartitionLog.open(log.directory, log.config, now_ms=T0)


def stored(log: PartitionLog) -> list[tuple[int, int, int]]:
    """(base offset, records, epoch) of every batch in the log, read back from its files."""
    data = log.read(log.log_start_offset, 10**9, to_log_end=True)
    out = []
    for batch in split_batches(data, strict=True):
        header = validate(batch)
        out.append((header.base_offset, header.last_offset_delta + 1, header.partition_leader_epoch))
    return out


def index_state(segment) -> tuple:
    return (segment.size, segment.next_offset, segment.index_offsets, segment.index_positions,
            segment.time_stamps, segment.time_offsets, segment.time_moments, segment.bytes_since_index,
            segment.max_timestamp, segment.offset_of_max_timestamp)


def fill(log: PartitionLog, plan: list[tuple[int, int]]) -> None:
    """Append one batch of ``records`` per (records, epoch)."""
    for records, epoch in plan:
        log.append(build_batch(records, 20), T0, leader_epoch=epoch)


def test_append_stamps_the_epoch_and_records_where_each_starts(tmp_path: Path) -> None:
    log = open_log(tmp_path)
    assert log.latest_epoch == -1 and log.end_offset_for_epoch(0) == (-1, -1)
    fill(log, [(2, 0), (3, 0), (1, 2), (4, 5), (1, 5)])
    assert stored(log) == [(0, 2, 0), (2, 3, 0), (5, 1, 2), (6, 4, 5), (10, 1, 5)]
    assert log.epoch_entries == [(0, 0), (2, 5), (5, 6)] and log.latest_epoch == 5
    assert read_checkpoint(log.directory) == [(0, 0), (2, 5), (5, 6)]
    # OffsetForLeaderEpoch: the largest epoch <= the asked one, and where it ends.
    assert log.end_offset_for_epoch(0) == (0, 5)
    assert log.end_offset_for_epoch(1) == (0, 5)     # 1 never led here: 0 is the floor
    assert log.end_offset_for_epoch(2) == (2, 6)
    assert log.end_offset_for_epoch(4) == (2, 6)
    assert log.end_offset_for_epoch(5) == (5, 11)    # the latest ends at the log end
    assert log.end_offset_for_epoch(9) == (5, 11)
    assert log.end_offset_for_epoch(-1) == (-1, -1)  # UNDEFINED_EPOCH
    log = reopen(log)
    assert log.epoch_entries == [(0, 0), (2, 5), (5, 6)] and log.end_offset_for_epoch(3) == (2, 6)
    assert scan_partition(log.directory, CONFIG.index_interval_bytes).damaged is False
    log.close()


def test_an_epoch_below_the_latest_is_refused_and_changes_nothing(tmp_path: Path) -> None:
    log = open_log(tmp_path)
    fill(log, [(1, 3)])
    with pytest.raises(ValueError, match="leader epoch 2 is below the log's latest epoch 3"):
        log.append(build_batch(1), T0, leader_epoch=2)
    with pytest.raises(ValueError, match="leader epoch -1 is negative"):
        log.append(build_batch(1), T0, leader_epoch=-1)
    assert log.log_end_offset == 1 and log.epoch_entries == [(3, 0)]
    log.close()


def test_a_follower_keeps_the_leaders_epochs_and_mirrors_its_cache(tmp_path: Path) -> None:
    leader, follower = open_log(tmp_path, "leader"), open_log(tmp_path, "follower")
    fill(leader, [(2, 1), (1, 1), (3, 4)])
    for batch in split_batches(leader.read(0, 10**6, to_log_end=True)):
        follower.append_replica(batch, T0)
    assert follower.epoch_entries == leader.epoch_entries == [(1, 0), (4, 3)]
    assert stored(follower) == stored(leader)
    # A batch of an older epoch than the follower's latest: it did not truncate first.
    stale = bytearray(with_base_offset(build_batch(1), 6))
    struct.pack_into(">i", stale, _EPOCH_AT, 3)
    with pytest.raises(ValueError, match="below the log's latest epoch 4"):
        follower.append_replica(bytes(stale), T0)
    assert follower.log_end_offset == 6
    leader.close()
    follower.close()


def test_truncate_to_inside_the_active_segment(tmp_path: Path) -> None:
    log = open_log(tmp_path)
    fill(log, [(2, 0), (3, 1), (2, 1), (1, 2)])  # 0-1 e0, 2-4 e1, 5-6 e1, 7 e2
    log.track_high_watermark()  # the high watermark starts at the log end: 8
    log.flush_sync()
    log.truncate_to(5)
    assert stored(log) == [(0, 2, 0), (2, 3, 1)]
    assert (log.log_end_offset, log.high_watermark, log.flushed_offset) == (5, 5, 5)
    assert log.epoch_entries == [(0, 0), (1, 2)] and read_checkpoint(log.directory) == [(0, 0), (1, 2)]
    # Inside a batch (3 is in 2-4): the whole batch goes.
    log.truncate_to(3)
    assert stored(log) == [(0, 2, 0)] and log.log_end_offset == 2 and log.epoch_entries == [(0, 0)]
    # New appends land at the new end, a newer epoch included.
    assert log.append(build_batch(2), T0, leader_epoch=7) == 2
    assert stored(log) == [(0, 2, 0), (2, 2, 7)] and log.epoch_entries == [(0, 0), (7, 2)]
    log = reopen(log)
    assert stored(log) == [(0, 2, 0), (2, 2, 7)] and log.epoch_entries == [(0, 0), (7, 2)]
    log.close()


def test_a_flush_job_made_before_a_truncation_does_not_mark_what_came_after_as_flushed(tmp_path: Path) -> None:
    # A follower truncating its divergent tail while the interval flusher's fsync runs in a
    # worker thread, then fetching the leader's records into the same positions.
    log = open_log(tmp_path)
    fill(log, [(2, 0), (3, 1)])                  # 0-1, 2-4
    job = log.begin_flush()                      # covers offsets below 5
    log.truncate_to(2)
    fill(log, [(3, 2)])                          # 2-4 again, not flushed
    job.fsync()
    job.close()
    log.finish_flush(job)
    assert log.has_unflushed and log.flushed_offset <= 2
    log.flush_sync()
    assert not log.has_unflushed and log.flushed_offset == 5
    log.close()


def test_truncate_to_across_segments_deletes_the_later_ones_and_survives_reopen(tmp_path: Path) -> None:
    log = open_log(tmp_path, segment_bytes=400)
    fill(log, [(3, 0)] * 6 + [(3, 1)] * 6)
    assert log.segment_count >= 4
    size_before = log.size_bytes
    log.truncate_to(7)  # inside 6-8: the log ends at 6
    assert log.log_end_offset == 6 and log.epoch_entries == [(0, 0)]
    assert [b for b, _, _ in stored(log)] == [0, 3]
    assert log.size_bytes < size_before and log.size_bytes == sum(
        p.stat().st_size for p in log.directory.glob("*.log"))
    remaining = sorted(p.name for p in log.directory.glob("*.log"))
    assert len(remaining) == log.segment_count
    log.append(build_batch(1), T0, leader_epoch=1)
    log.close()
    # What truncation left (.log cut, indexes rewritten) is what recovery would have made.
    scan = scan_partition(log.directory, CONFIG.index_interval_bytes)
    assert not scan.damaged and scan.cut is None and not scan.dropped and not scan.stale_indexes
    log = open_log(tmp_path, segment_bytes=400)
    assert [b for b, _, _ in stored(log)] == [0, 3, 6] and log.epoch_entries == [(0, 0), (1, 6)]
    log.close()


@pytest.mark.parametrize("interval", [0, 100, 400, 5000])
def test_truncation_leaves_the_indexes_recovery_would_build(tmp_path: Path, interval: int) -> None:
    """Cut at every batch of a segment with timestamps going up and down: the indexes kept
    (and the lookups through them) match a rebuild from the .log."""
    for cut in range(0, 40, 3):
        directory = f"p-{cut}"
        log = open_log(tmp_path, directory, index_interval_bytes=interval)
        for i in range(40):
            log.append(build_batch(1, 30 + i % 7, timestamp=T0 + (i * 37) % 11 * 1000), T0)
        log.truncate_to(cut)
        assert log.log_end_offset == cut
        # In memory too, the cut segment is what a fresh walk of its file builds.
        active = log._segments[-1]
        rebuilt = {s.base_offset: s for s in scan_partition(tmp_path / directory, interval).segments}
        assert index_state(active) == index_state(rebuilt[active.base_offset]), cut
        for i in range(6):
            log.append(build_batch(1, 40, timestamp=T0 + 500 + i % 3 * 2000), T0)
        found = log.offset_for_timestamp(T0 + 500)
        log.close()
        scan = scan_partition(tmp_path / directory, interval)
        assert not scan.stale_indexes and not scan.damaged, cut
        log = open_log(tmp_path, directory, index_interval_bytes=interval)
        assert log.offset_for_timestamp(T0 + 500) == found and log.log_end_offset == cut + 6
        log.close()


def test_truncate_to_a_segment_boundary_and_to_the_log_start(tmp_path: Path) -> None:
    log = open_log(tmp_path, segment_bytes=300)
    fill(log, [(2, 0)] * 8)
    second = log.statistics().active_segment_base_offset
    bases = sorted(int(p.stem) for p in log.directory.glob("*.log"))
    log.truncate_to(bases[1])
    assert log.log_end_offset == bases[1] and log.segment_count == 2
    log.truncate_to(0)
    assert (log.log_end_offset, log.segment_count, log.latest_epoch) == (0, 1, -1)
    assert read_checkpoint(log.directory) == []
    log.append(build_batch(1), T0, leader_epoch=3)
    log = reopen(log)
    assert stored(log) == [(0, 1, 3)] and second > 0
    log.close()


def test_truncate_to_bad_offsets(tmp_path: Path) -> None:
    log = open_log(tmp_path, segment_bytes=300, retention_bytes=0)
    fill(log, [(2, 0)] * 6)
    log.truncate_to(log.log_end_offset)       # the end itself: nothing to remove
    log.truncate_to(log.log_end_offset + 10)  # past the end: no-op
    assert log.log_end_offset == 12
    log.apply_retention(T0)
    start = log.log_start_offset
    assert start > 0
    with pytest.raises(OffsetOutOfRange, match=f"cannot truncate to offset {start - 1}: below the log start offset {start}"):
        log.truncate_to(start - 1)
    assert log.log_end_offset == 12 and log.log_start_offset == start
    log.close()


def test_truncation_wakes_every_waiter(tmp_path: Path) -> None:
    log = open_log(tmp_path)
    fill(log, [(4, 0)])
    log.track_high_watermark()
    woken: list[str] = []
    follower = log.watch(4, lambda: woken.append("follower"), log_end=True)
    consumer = log.watch(4, lambda: woken.append("consumer"))
    log.truncate_to(0)
    assert woken == ["follower", "consumer"] and follower.done and consumer.done
    # A woken waiter re-reads: its offset is now past the log end.
    with pytest.raises(OffsetOutOfRange):
        log.read(4, 1000)
    log.close()


def test_retention_collapses_the_epochs_before_the_new_log_start(tmp_path: Path) -> None:
    log = open_log(tmp_path, segment_bytes=300, retention_bytes=0)
    fill(log, [(2, 0), (2, 1), (2, 1), (2, 2), (2, 2), (2, 2), (2, 3)])
    entries = log.epoch_entries
    assert [e for e, _ in entries] == [0, 1, 2, 3]
    log.apply_retention(T0)
    start = log.log_start_offset
    expected = [(max(e for e, s in entries if s <= start), start)] + [(e, s) for e, s in entries if s > start]
    assert log.epoch_entries == expected and read_checkpoint(log.directory) == expected
    log = reopen(log)
    assert log.epoch_entries == expected
    log.close()


@pytest.mark.parametrize("content", [b"garbage\n", b"0\n2\n0 0\n", b"0\n2\n3 0\n1 5\n", b"\xff\xfe", b""])
def test_a_bad_or_missing_checkpoint_is_rebuilt_from_the_batches_and_logged(tmp_path: Path, content: bytes) -> None:
    log = open_log(tmp_path)
    fill(log, [(2, 0), (1, 4)])
    log.close()
    (tmp_path / "topic-0" / CHECKPOINT_FILE).write_bytes(content)
    with capture_logs() as logs:
        log = open_log(tmp_path)
    rebuilt = [e for e in logs if e["event"] == "leader_epoch_checkpoint_rebuilt"]
    assert len(rebuilt) == 1 and rebuilt[0]["entries"] == 2, logs
    assert log.epoch_entries == [(0, 0), (4, 2)] and read_checkpoint(log.directory) == [(0, 0), (4, 2)]
    log.close()
    (tmp_path / "topic-0" / CHECKPOINT_FILE).unlink()
    with capture_logs() as logs:
        log = open_log(tmp_path)
    assert [e["reason"] for e in logs if e["event"] == "leader_epoch_checkpoint_rebuilt"] == ["missing"]
    assert read_checkpoint(log.directory) == [(0, 0), (4, 2)]
    log.close()


def test_recovery_cutting_a_torn_tail_also_cuts_the_epochs(tmp_path: Path) -> None:
    log = open_log(tmp_path)
    fill(log, [(2, 0), (1, 4)])
    path = log.directory / "00000000000000000000.log"
    log.close()
    with path.open("r+b") as f:
        f.truncate(path.stat().st_size - 5)  # the epoch-4 batch is torn
    log = open_log(tmp_path)
    assert log.log_end_offset == 2 and log.epoch_entries == [(0, 0)]
    assert read_checkpoint(log.directory) == [(0, 0)]
    log.close()


def test_check_reports_a_decreasing_epoch_as_damage(tmp_path: Path) -> None:
    log = open_log(tmp_path, segment_bytes=300)
    fill(log, [(2, 1), (2, 1), (2, 3), (2, 3), (2, 3)])
    log.close()
    scan = scan_partition(tmp_path / "topic-0", CONFIG.index_interval_bytes)
    assert not scan.damaged and scan.epoch_starts == [(1, 0), (3, 4)]
    # Epoch 3 -> 1 on the last batch (in a later segment than the raise to 3).
    last = max((tmp_path / "topic-0").glob("*.log"))
    data = bytearray(last.read_bytes())
    position = 0
    while position + 61 <= len(data):
        start = position
        position += 12 + struct.unpack_from(">i", data, position + 8)[0]
    struct.pack_into(">i", data, start + _EPOCH_AT, 1)
    last.write_bytes(bytes(data))
    scan = scan_partition(tmp_path / "topic-0", CONFIG.index_interval_bytes)
    assert scan.damaged and "partitionLeaderEpoch decreases from 3 to 1" in scan.cut.reason


def test_the_producer_table_is_rebuilt_from_the_truncated_log(tmp_path: Path) -> None:
    topics = TopicRegistry.open(tmp_path, CONFIG, now_ms=T0)
    topic = topics.create("t", 1, now_ms=T0)
    log = topic.partitions[0]
    producers = ProducerRegistry(ProducerIdManager.open(tmp_path / "__producer_ids"))
    table = producers.table(topic, 0)
    for base_sequence in (0, 2):  # producer 7, epoch 0: sequences 0-1 at offsets 0-1, 2-3 at 2-3
        base = log.append(build_batch(2, producer_id=7, producer_epoch=0, base_sequence=base_sequence), T0)
        table.record(7, 0, base_sequence, base_sequence + 1, base, base + 1, T0)
    assert table.check(7, 0, 2, 3).kind is Decision.DUPLICATE
    log.truncate_to(2)
    rebuilt = producers.rebuild_partition(topic, 0)
    assert producers.table(topic, 0) is rebuilt
    # The cut batch is no duplicate any more: its retry is the next batch, appended again.
    assert rebuilt.check(7, 0, 2, 3).kind is Decision.ACCEPT
    assert rebuilt.check(7, 0, 0, 1).kind is Decision.DUPLICATE
    topics.close()


def test_retention_that_leaves_no_record_leaves_no_epoch(tmp_path: Path) -> None:
    """Found by the state machine: truncating back to an empty active segment, then retention
    deleting every closed one, leaves an empty log — whose cache must be empty too, as the
    batches (none) say, rather than hold the collapsed entry Kafka would keep."""
    log = open_log(tmp_path, segment_bytes=150, retention_bytes=0)
    fill(log, [(1, 0), (1, 0), (1, 0)])
    last = log.statistics().active_segment_base_offset
    log.truncate_to(last)
    log.apply_retention(T0)
    assert (log.log_start_offset, log.log_end_offset) == (last, last)
    assert log.epoch_entries == [] and read_checkpoint(log.directory) == []
    assert log.end_offset_for_epoch(0) == (-1, -1)
    log.close()
