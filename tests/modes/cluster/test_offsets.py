"""A broker's share of group coordination in a cluster (``modes.cluster.offsets``), against a real
``__consumer_offsets`` log and a stand-in for the cluster: loading a partition (a record that is
not ours is skipped and logged), commits answered only once committed (a timeout is
COORDINATOR_NOT_AVAILABLE and changes nothing), and leadership moving away."""

from __future__ import annotations

from pathlib import Path

import attrs
import trio
from structlog.testing import capture_logs

from broker.cluster.model import ClusterView, TopicAssignment
from broker.cluster.offsets_topic import OFFSETS_TOPIC, Commit, encode_key, encode_value
from broker.config import ClusterConfig, KafkaConfig, LogConfig
from broker.groups import GroupCoordinator
from broker.offsets import CommittedOffset
from broker.outcome import ErrorKind
from broker.topics import TopicRegistry
from modes.cluster.offsets import ClusterOffsets
from wire.kafka.records import build_batch

T0 = 1_700_000_000_000
TOPIC_ID = bytes(range(1, 17))
ME = 2


@attrs.define
class FakeReplication:
    """An ISR of one that may be told to hold the high watermark back (followers not fetching)."""

    followers_fetch: bool = True

    def too_few_in_sync(self, topic: str, index: int, min_insync: int) -> bool:
        return False

    def appended(self, topic: str, index: int, log_) -> None:
        if self.followers_fetch:
            log_.advance_high_watermark(log_.log_end_offset)


@attrs.define
class FakeNode:
    topics: TopicRegistry
    config: ClusterConfig = attrs.field(factory=lambda: ClusterConfig(node_id=ME, offsets_commit_timeout_ms=200))
    view: ClusterView = attrs.field(factory=ClusterView)
    node_id: int = ME
    is_controller: bool = False
    serving: bool = True
    replication: FakeReplication = attrs.field(factory=FakeReplication)
    # What request_topic was asked: (name, partitions, replication factor, overrides).
    asked: list = attrs.field(factory=list)

    async def request_topic(self, name: str, partitions: int, replication_factor: int, overrides: dict) -> None:
        self.asked.append((name, partitions, replication_factor, overrides))

    def leads(self, topic: str, partition: int) -> bool:
        return self.view.leader(topic, partition) == self.node_id and self.serving

    async def wait_for(self, predicate, timeout: float) -> bool:
        await trio.sleep(timeout)
        return predicate()


def offsets_node(tmp_path: Path, leader: int = ME) -> FakeNode:
    topics = TopicRegistry.open(tmp_path, LogConfig(fsync="never"), now_ms=T0)
    topics.create(OFFSETS_TOPIC, 1, now_ms=T0, topic_id=TOPIC_ID)
    topics.partition(OFFSETS_TOPIC, 0).track_high_watermark()
    node = FakeNode(topics)
    lead(node, leader, epoch=0)
    return node


def lead(node: FakeNode, leader: int, epoch: int) -> None:
    assignment = TopicAssignment.new(OFFSETS_TOPIC, TOPIC_ID, [[leader] + [n for n in (1, 2, 3) if n != leader]], {})
    node.view.topics[OFFSETS_TOPIC] = attrs.evolve(
        assignment, partitions=(attrs.evolve(assignment.partitions[0], leader=leader, leader_epoch=epoch),))


def offsets_of(node: FakeNode) -> ClusterOffsets:
    groups = GroupCoordinator.from_config(KafkaConfig())
    return ClusterOffsets(node, groups, lambda: None)  # type: ignore[arg-type]


def committed(offset: int) -> bytes:
    return encode_value(CommittedOffset(offset, -1, None, T0))


async def until(predicate, timeout: float = 2.0) -> None:
    with trio.fail_after(timeout):
        while not predicate():
            await trio.sleep(0.01)


def test_a_partition_is_read_back_on_becoming_leader_skipping_what_is_not_ours(tmp_path: Path) -> None:
    node = offsets_node(tmp_path)
    log_ = node.topics.partition(OFFSETS_TOPIC, 0)
    log_.append(build_batch([(encode_key("g", "t", 0), committed(5), None),
                             (encode_key("g", "t", 1), committed(7), None),
                             (b"\x09not ours", committed(1), None),
                             (encode_key("g", "t", 1), None, None),  # tombstone
                             (encode_key("h", "t", 0), b"\x01short", None)], base_timestamp=T0), T0)
    offsets = offsets_of(node)

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            offsets._reconcile(nursery)
            # Until the load task ran: Kafka's "coordinator load in progress".
            assert offsets.group_error("g") is ErrorKind.COORDINATOR_LOAD_IN_PROGRESS
            assert offsets.loading()
            await until(lambda: offsets.group_error("g") is ErrorKind.NONE)
            nursery.cancel_scope.cancel()

    with capture_logs() as logs:
        trio.run(main)
    assert offsets.fetch("g", "t", 0).offset == 5
    assert offsets.fetch("g", "t", 1) is None
    assert offsets.fetch_all("h") == {}
    skipped = [e for e in logs if e["event"] == "offsets_record_skipped"]
    assert [e["offset"] for e in skipped] == [2, 4]
    assert "key version 9" in skipped[0]["error"] and "at least" in skipped[1]["error"]
    loaded = next(e for e in logs if e["event"] == "offsets_partition_loaded")
    assert (loaded["records"], loaded["skipped"], loaded["groups"]) == (3, 2, 1)
    assert [g.group_id for g in offsets.groups.list_groups()] == ["g"]  # known, Empty
    node.topics.close()


def test_a_commit_is_answered_once_committed_and_a_timeout_changes_nothing(tmp_path: Path) -> None:
    node = offsets_node(tmp_path)
    offsets = offsets_of(node)
    log_ = node.topics.partition(OFFSETS_TOPIC, 0)

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            offsets._reconcile(nursery)
            await until(lambda: offsets.coordinates("g"))
            results = await offsets.commit("g", [Commit("t", 0, 10, 3, "m"), Commit("t", 1, 4, -1, "x" * 4097)], T0)
            assert results == {("t", 0): ErrorKind.NONE, ("t", 1): ErrorKind.OFFSET_METADATA_TOO_LARGE}
            assert offsets.fetch("g", "t", 0) == CommittedOffset(10, 3, "m", T0)
            assert offsets.fetch("g", "t", 1) is None
            # Followers not fetching: the high watermark stays below the record.
            node.replication.followers_fetch = False
            start = trio.current_time()
            results = await offsets.commit("g", [Commit("t", 0, 20, 3, None)], T0 + 1)
            assert results == {("t", 0): ErrorKind.COORDINATOR_NOT_AVAILABLE}
            assert 0.15 < trio.current_time() - start < 1.0
            assert offsets.fetch("g", "t", 0).offset == 10  # not answered, not applied
            assert log_.log_end_offset == 2  # the record stays in the log, as Kafka's does
            # Deleting the group: a tombstone per committed partition, once committed.
            node.replication.followers_fetch = True
            assert await offsets.delete_group("g", T0 + 2) is ErrorKind.NONE
            assert offsets.fetch_all("g") == {}
            nursery.cancel_scope.cancel()

    trio.run(main)
    node.topics.close()


def test_a_broker_that_stops_leading_drops_the_offsets_and_the_groups(tmp_path: Path) -> None:
    node = offsets_node(tmp_path)
    offsets = offsets_of(node)

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            offsets._reconcile(nursery)
            await until(lambda: offsets.coordinates("g"))
            assert await offsets.commit("g", [Commit("t", 0, 10, -1, None)], T0) == {("t", 0): ErrorKind.NONE}
            offsets.groups.know_groups(["g"])
            node.serving = False  # its lease may have lapsed: it coordinates nothing
            assert offsets.group_error("g") is ErrorKind.NOT_COORDINATOR
            node.serving = True
            lead(node, 3, epoch=1)  # another broker leads now
            offsets._reconcile(nursery)
            assert offsets.group_error("g") is ErrorKind.NOT_COORDINATOR
            assert offsets.fetch("g", "t", 0) is None and offsets.groups.list_groups() == []
            assert await offsets.commit("g", [Commit("t", 0, 11, -1, None)], T0) == {
                ("t", 0): ErrorKind.NOT_COORDINATOR}
            # Leading again, in a later epoch: read back from the log.
            lead(node, ME, epoch=2)
            offsets._reconcile(nursery)
            await until(lambda: offsets.coordinates("g"))
            assert offsets.fetch("g", "t", 0).offset == 10
            nursery.cancel_scope.cancel()

    trio.run(main)
    node.topics.close()


def test_no_topic_yet_is_not_coordinator_and_find_coordinator_asks_for_it(tmp_path: Path) -> None:
    topics = TopicRegistry.open(tmp_path, LogConfig(fsync="never"), now_ms=T0)
    node = FakeNode(topics)
    offsets = offsets_of(node)

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(offsets.run)
            assert offsets.group_error("g") is ErrorKind.NOT_COORDINATOR
            # Clients retry FindCoordinator; one of them starts the creation (once the task runs).
            await until(lambda: offsets.find_coordinator("g") == (ErrorKind.COORDINATOR_NOT_AVAILABLE, None)
                        and node.asked)
            await trio.sleep(0.05)
            nursery.cancel_scope.cancel()

    trio.run(main)
    # No live broker in this view: the replication factor is capped at them, but at least 1.
    # (Asked again by each FindCoordinator after the previous request was filed, as clients retry.)
    assert set(map(repr, node.asked)) == {repr((OFFSETS_TOPIC, 10, 1, {"retention.ms": str(7 * 24 * 60 * 60_000)}))}
    topics.close()
