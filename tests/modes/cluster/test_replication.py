"""A follower applying its leader's Fetch answers (``modes.cluster.replication``), good and bad."""

from __future__ import annotations

from pathlib import Path

import attrs
import trio
from structlog.testing import capture_logs

from broker.cluster.model import ClusterView, PartitionState, TopicAssignment
from broker.config import ClusterConfig, LogConfig
from broker.log.partition_log import PartitionLog
from modes.cluster.replication import Replication
from modes.pull.api.offset_for_leader_epoch import end_offset_for
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


# --- truncation against a new leader (docs/cluster.md#failover) ------------------------------


@attrs.define
class AnsweringPeer:
    """A leader's connection that answers OffsetForLeaderEpoch with ``partition`` and keeps the requests."""

    partition: dict
    requests: list = attrs.field(factory=list)

    async def call(self, api, version, request, *, timeout):
        self.requests.append((api.key, version, request))
        return {"throttle_time_ms": 0, "topics": [{"topic": "t", "partitions": [
            {"error_code": ErrorCode.NONE, "partition": 0, **self.partition}]}]}


def following(epoch: int) -> FakeNode:
    """Broker 2 following broker 1, the leader of ``t``-0 in ``epoch``."""
    node = FakeNode()
    node.view.topics["t"] = TopicAssignment(name="t", topic_id=bytes(range(1, 17)), partitions=(
        PartitionState(leader=1, replicas=(1, 2), isr=(1, 2), leader_epoch=epoch),))
    return node


def diverged_log(tmp_path: Path) -> PartitionLog:
    """Offsets 0-4 in epoch 0, then 5-7 in epoch 1 (this broker led epoch 1; nobody copied it)."""
    log = follower_log(tmp_path)
    log.append(build_batch(2), T0, leader_epoch=0)
    log.append(build_batch(3), T0, leader_epoch=0)
    log.append(build_batch(3), T0, leader_epoch=1)
    return log


async def truncate_against(log: PartitionLog, answer: dict, epoch: int = 2) -> tuple[Replication, AnsweringPeer]:
    replication = Replication(following(epoch))
    peer = AnsweringPeer(answer)
    await replication._truncate_diverged(peer, 1, [("t", 0, log)])
    return replication, peer


async def test_a_follower_cuts_the_tail_its_new_leader_never_had_then_may_fetch(tmp_path: Path) -> None:
    log = diverged_log(tmp_path)
    with capture_logs() as logs:
        replication, peer = await truncate_against(log, {"leader_epoch": 1, "end_offset": 5})
    [(key, version, request)] = peer.requests
    assert (key, version, request["replica_id"]) == (23, 3, 2)
    assert request["topics"][0]["partitions"] == [{"partition": 0, "current_leader_epoch": 2, "leader_epoch": 1}]
    assert (log.log_end_offset, log.latest_epoch) == (5, 0)
    assert replication._validated == {("t", 0): 2}
    assert [e["event"] for e in logs if e["event"] == "replica_truncated"] == ["replica_truncated"]
    log.close()


async def test_an_older_epoch_in_the_answer_cuts_where_our_own_records_of_it_end(tmp_path: Path) -> None:
    # The leader never saw epoch 1: its epoch 0 runs to 9. Ours ends at 5, where our epoch 1
    # began: everything from 5 on is ours alone.
    log = diverged_log(tmp_path)
    replication, _ = await truncate_against(log, {"leader_epoch": 0, "end_offset": 9})
    assert (log.log_end_offset, log.latest_epoch) == (5, 0)
    log.close()


async def test_a_log_that_is_a_prefix_of_the_leaders_is_left_alone(tmp_path: Path) -> None:
    log = diverged_log(tmp_path)
    replication, _ = await truncate_against(log, {"leader_epoch": 1, "end_offset": 20})
    assert log.log_end_offset == 8 and replication._validated == {("t", 0): 2}
    log.close()


async def test_an_undefined_answer_falls_back_to_the_high_watermark(tmp_path: Path) -> None:
    log = diverged_log(tmp_path)
    log.advance_high_watermark(2)  # below: the high watermark started at the open log's end (0)
    await truncate_against(log, {"leader_epoch": -1, "end_offset": -1})
    assert log.log_end_offset == 2
    log.close()


async def test_a_refused_check_truncates_nothing_and_leaves_the_partition_unfetched(tmp_path: Path) -> None:
    log = diverged_log(tmp_path)
    replication, _ = await truncate_against(log, {"error_code": ErrorCode.FENCED_LEADER_EPOCH, "leader_epoch": -1,
                                                  "end_offset": -1})
    assert log.log_end_offset == 8 and replication._validated == {}
    log.close()


def test_an_empty_log_needs_no_check(tmp_path: Path) -> None:
    log = follower_log(tmp_path)
    replication = Replication(following(4))
    trio.run(replication._truncate_diverged, None, 1, [("t", 0, log)])  # no peer call: it would fail
    assert replication._validated == {("t", 0): 4}
    log.close()


def test_offset_for_leader_epoch_answers_from_the_epoch_cache(tmp_path: Path) -> None:
    log = diverged_log(tmp_path)
    # The current epoch (3: nothing appended in it yet) ends at the log end; epoch 1 ends there
    # too (the latest in the log); epoch 0 where epoch 1 begins; unknown ones are undefined.
    assert end_offset_for(log, 3, 3) == (3, 8)
    assert end_offset_for(log, 2, 3) == (1, 8)
    assert end_offset_for(log, 0, 3) == (0, 5)
    assert end_offset_for(log, 4, 3) == (-1, -1)
    assert end_offset_for(log, -1, 3) == (-1, -1)
    log.close()


@attrs.define
class LocalTopic:
    topic_id: bytes
    partitions: list


def test_a_restarted_leader_starts_from_its_checkpoint_and_waits_for_the_isr(tmp_path: Path) -> None:
    """A broker that left with an uncommitted tail and comes back as leader serves consumers
    nothing above its checkpointed high watermark until every ISR member has fetched."""
    log = PartitionLog.open(tmp_path / "t-0", LogConfig(fsync="never"), now_ms=T0)
    log.track_high_watermark(0)
    log.append(build_batch(4), T0)  # 0-3
    log.advance_high_watermark(2)
    log.checkpoint_high_watermark()  # 2 on disk
    log.append(build_batch(2), T0)  # 4-5: a tail nobody else holds
    log.advance_high_watermark(4)
    log.flush_sync()                # then SIGKILL: the checkpoint still says 2
    restarted = PartitionLog.open(tmp_path / "t-0", LogConfig(fsync="never"), now_ms=T0)
    node = FakeNode(node_id=1, config=ClusterConfig(node_id=1))
    topic_id = bytes(range(1, 17))
    node.topics = {"t": LocalTopic(topic_id, [restarted])}
    assignment = TopicAssignment(name="t", topic_id=topic_id, partitions=(
        PartitionState(leader=1, replicas=(1, 2), isr=(1, 2), leader_epoch=3),))
    node.view.topics["t"] = assignment
    replication = Replication(node)
    with capture_logs() as logs:
        replication.adopt(assignment)
    started = [e for e in logs if e["event"] == "high_watermark_started"]
    assert [(e["checkpoint"], e["high_watermark"], e["log_end_offset"]) for e in started] == [(2, 2, 6)]
    assert restarted.high_watermark == 2 and restarted.read(2, 1 << 20) == b""
    # Follower 2 fetches from 4: the high watermark moves to 4, not to the leader's log end.
    assert replication.follower_fetched("t", 0, 2, 4, restarted)
    assert restarted.high_watermark == 4
    assert replication.checkpoint_high_watermarks() == 1 and restarted.checkpointed_high_watermark == 4
    assert replication.checkpoint_high_watermarks() == 0  # unchanged: nothing written
    restarted.close()
    log.close()
