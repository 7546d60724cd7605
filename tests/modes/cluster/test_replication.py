"""A follower applying its leader's Fetch answers (``modes.cluster.replication``), good and bad."""

from __future__ import annotations

from pathlib import Path

import attrs
from structlog.testing import capture_logs

from broker.cluster.model import ClusterView
from broker.config import ClusterConfig, LogConfig
from broker.log.partition_log import PartitionLog
from modes.cluster.replication import Replication
from tests.broker.batches import build_batch, with_base_offset
from wire.kafka.errors import ErrorCode

T0 = 1_700_000_000_000


@attrs.define
class FakeNode:
    config: ClusterConfig = attrs.field(factory=lambda: ClusterConfig(node_id=2))
    view: ClusterView = attrs.field(factory=ClusterView)
    node_id: int = 2
    etcd: object = None
    topics: object = None
    producers: object = None

    def now_ms(self) -> int:
        return T0

    def applied_write(self, key: bytes, value: bytes, create_revision: int) -> None:
        raise AssertionError("no etcd write expected")

    def leads(self, topic: str, partition: int) -> bool:
        return self.view.leader(topic, partition) == self.node_id


def answer(records: bytes, high_watermark: int, code: int = ErrorCode.NONE) -> dict:
    return {"error_code": 0, "responses": [{"topic": "t", "partitions": [{
        "partition_index": 0, "error_code": code, "high_watermark": high_watermark, "records": records}]}]}


def follower_log(tmp_path: Path) -> PartitionLog:
    log = PartitionLog.open(tmp_path / "t-0", LogConfig(fsync="never"), now_ms=T0)
    log.track_high_watermark()
    return log


def test_batches_are_appended_at_the_leaders_offsets_and_the_high_watermark_follows(tmp_path: Path) -> None:
    log = follower_log(tmp_path)
    replication = Replication(FakeNode())
    sent = with_base_offset(build_batch(2), 0) + with_base_offset(build_batch(3), 2)
    assert replication._apply_fetch(1, [("t", 0, log)], answer(sent, 2))
    assert (log.log_end_offset, log.high_watermark) == (5, 2)
    assert log.read(0, 1 << 20, to_log_end=True) == sent
    # The same batches again (an answer that overlapped what we hold) are skipped; a leader's
    # high watermark above our log end is capped at it.
    assert replication._apply_fetch(1, [("t", 0, log)], answer(sent, 9))
    assert (log.log_end_offset, log.high_watermark) == (5, 5)
    log.close()


def test_a_damaged_or_misplaced_batch_is_logged_and_leaves_the_log_as_it_was(tmp_path: Path) -> None:
    log = follower_log(tmp_path)
    replication = Replication(FakeNode())
    damaged = bytearray(with_base_offset(build_batch(2), 0))
    damaged[-1] ^= 0xFF
    gap = with_base_offset(build_batch(1), 7)
    with capture_logs() as logs:
        assert not replication._apply_fetch(1, [("t", 0, log)], answer(bytes(damaged), 2))
        assert not replication._apply_fetch(1, [("t", 0, log)], answer(gap, 8))
        assert not replication._apply_fetch(1, [("t", 0, log)], answer(b"\x00" * 70, 8))
    assert [e["event"] for e in logs] == ["replica_append_failed"] * 3
    assert "ends at 0" in logs[1]["error"]
    assert (log.log_end_offset, log.high_watermark, log.size_bytes) == (0, 0, 0)
    log.close()


def test_a_partition_error_is_logged_once_until_it_changes(tmp_path: Path) -> None:
    log = follower_log(tmp_path)
    replication = Replication(FakeNode())
    with capture_logs() as logs:
        for _ in range(3):
            assert not replication._apply_fetch(1, [("t", 0, log)], answer(b"", -1, ErrorCode.NOT_LEADER_OR_FOLLOWER))
        assert replication._apply_fetch(1, [("t", 0, log)], answer(b"", 0))
    assert [(e["event"], e["error"]) for e in logs] == [
        ("replica_fetch_refused", "NOT_LEADER_OR_FOLLOWER"), ("replica_fetch_resumed", "NONE")]
    log.close()
