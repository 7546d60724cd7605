"""PartitionLog in a cluster: a tracked high watermark, reads below it, verbatim follower appends."""

from __future__ import annotations

from pathlib import Path

import attrs
import pytest

from broker.config import LogConfig
from broker.errors import OffsetOutOfRange, ReplicaOffsetMismatch
from broker.log.partition_log import PartitionLog
from tests.broker.batches import build_batch, with_base_offset
from wire.kafka.batch import CorruptBatch, split_batches, validate

CONFIG = LogConfig(fsync="never", index_interval_bytes=256)
T0 = 1_700_000_000_000


def open_log(tmp_path: Path, name: str = "topic-0", **changes) -> PartitionLog:
    return PartitionLog.open(tmp_path / name, attrs.evolve(CONFIG, **changes), now_ms=T0)


def offsets_in(data: bytes) -> list[int]:
    return [validate(batch).base_offset for batch in split_batches(data, strict=True)]


def test_untracked_high_watermark_is_the_log_end(tmp_path: Path) -> None:
    log = open_log(tmp_path)
    log.append(build_batch(3), T0)
    assert (log.high_watermark, log.log_end_offset, log.tracks_high_watermark) == (3, 3, False)
    assert not log.advance_high_watermark(1)  # nothing to move: it is the log end
    log.close()


def test_consumers_read_below_the_high_watermark_followers_to_the_log_end(tmp_path: Path) -> None:
    log = open_log(tmp_path)
    log.append(build_batch(2), T0)  # 0-1, there before tracking: committed
    log.track_high_watermark()
    assert log.high_watermark == 2
    for n in (3, 1):  # 2-4, 5
        log.append(build_batch(n), T0)
    assert (log.high_watermark, log.log_end_offset) == (2, 6)
    assert offsets_in(log.read(0, 10**6)) == [0]
    assert log.read(2, 10**6) == b""             # between the high watermark and the log end
    assert log.read(4, 10**6) == b""
    assert log.read(6, 10**6) == b""             # the log end itself is in range
    with pytest.raises(OffsetOutOfRange, match="log_end_offset is 6"):
        log.read(7, 10**6)
    assert offsets_in(log.read(0, 10**6, to_log_end=True)) == [0, 2, 5]
    assert offsets_in(log.read(3, 10**6, to_log_end=True)) == [2, 5]
    assert log.advance_high_watermark(5)
    assert offsets_in(log.read(0, 10**6)) == [0, 2]
    assert not log.advance_high_watermark(4)     # never backwards
    assert log.advance_high_watermark(99) and log.high_watermark == 6  # capped at the log end
    assert offsets_in(log.read(0, 10**6)) == [0, 2, 5]
    log.close()


def test_waits_on_the_high_watermark_and_on_the_log_end_are_apart(tmp_path: Path) -> None:
    log = open_log(tmp_path)
    log.track_high_watermark()
    woken: list[str] = []
    consumer = log.watch(0, lambda: woken.append("consumer"))
    follower = log.watch(0, lambda: woken.append("follower"), log_end=True)
    producer = log.watch(2, lambda: woken.append("acks=all"))  # waits for offsets 0-2 committed
    log.append(build_batch(3), T0)
    assert woken == ["follower"] and follower.done and not consumer.done
    log.advance_high_watermark(2)
    assert woken == ["follower", "consumer"] and not producer.done
    log.advance_high_watermark(3)
    assert woken == ["follower", "consumer", "acks=all"] and producer.done
    log.close()


def test_a_follower_stores_the_leaders_batches_byte_for_byte(tmp_path: Path) -> None:
    leader, follower = open_log(tmp_path, "leader"), open_log(tmp_path, "follower")
    for n in (2, 5, 1):
        leader.append(build_batch(n, 30), T0)
    for batch in split_batches(leader.read(0, 10**6, to_log_end=True)):
        follower.append_replica(batch, T0)
    assert follower.log_end_offset == leader.log_end_offset == 8
    assert follower.read(0, 10**6) == leader.read(0, 10**6)
    assert b"".join(p.read_bytes() for p in sorted((tmp_path / "follower").glob("*.log"))) == \
        b"".join(p.read_bytes() for p in sorted((tmp_path / "leader").glob("*.log")))
    leader.close()
    follower.close()


def test_a_replicated_batch_that_does_not_start_at_the_log_end_changes_nothing(tmp_path: Path) -> None:
    log = open_log(tmp_path)
    log.append_replica(with_base_offset(build_batch(2), 0), T0)
    before = log.read(0, 10**6, to_log_end=True)
    with pytest.raises(ReplicaOffsetMismatch, match="offset 5, but this log ends at 2"):
        log.append_replica(with_base_offset(build_batch(1), 5), T0)   # a gap
    with pytest.raises(ReplicaOffsetMismatch, match="offset 0"):
        log.append_replica(with_base_offset(build_batch(1), 0), T0)   # held already
    damaged = bytearray(with_base_offset(build_batch(1), 2))
    damaged[-1] ^= 0xFF
    with pytest.raises(CorruptBatch):
        log.append_replica(bytes(damaged), T0)
    assert log.log_end_offset == 2 and log.read(0, 10**6, to_log_end=True) == before
    log.close()
