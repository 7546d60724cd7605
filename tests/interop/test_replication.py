"""Replication in a three-broker cluster, driven by kafka-python and kcat (docs/cluster.md#replication).

A topic with replication factor 3 and ``min.insync.replicas`` 2: ``acks=all`` writes reach every
broker's log byte for byte; consumers read them all, and never above the high watermark; a
follower paused with SIGSTOP past ``replica.lag.time.max.ms`` leaves the ISR (writes go on
with two in sync), two paused followers make ``acks=all`` fail with NOT_ENOUGH_REPLICAS, and
after SIGCONT they catch up and rejoin.

The tests share one cluster and run in file order. The lease TTL (10 s) is longer than any
pause here, so a paused broker stays registered: only replication notices it. Every paused
process is resumed in teardown, whatever happens.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
import time
from typing import Any

import attrs

import pytest
import trio

from dualmq.process import BrokerCluster
from tests.interop.cluster_support import (  # noqa: F401  (fixtures)
    create_replicated, kafka, kafka_call, kcat, log_bytes, next_offset, read_from_beginning, wait_until,
)
from tests.support import KAFKA_PYTHON_NOISE, etcd_process
from wire.kafka.errors import ErrorCode
from wire.kafka.messages.metadata import METADATA
from wire.kafka.messages.produce_fetch import FETCH, LIST_OFFSETS, PRODUCE
from wire.kafka.records import build_batch

pytestmark = [pytest.mark.interop, pytest.mark.timeout(120), *KAFKA_PYTHON_NOISE]

LAG_MS = 1500
TOPIC = "replicated"
PARTITIONS = 3
RECORDS = 300
SOLO = "solo"  # one partition: its leader and two followers are paused in turn


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("replication")


@pytest.fixture(scope="module")
def cluster(workdir):
    config = workdir / "cluster.toml"
    config.write_text(f"[cluster]\nlease_ttl_seconds = 10\nreplica_lag_time_max_ms = {LAG_MS}\n")
    with etcd_process(workdir) as etcd, BrokerCluster(workdir, etcd.endpoint, 3, "--config", str(config)) as running:
        try:
            # Each broker is ready once it joined; wait until every one's view lists all three.
            wait_until(lambda: all(len(broker_ids(running, n)) == 3 for n in (1, 2, 3)), 10, "all brokers seen")
            yield running
        finally:
            for broker in running.brokers:
                if broker.running:
                    os.kill(broker.pid, signal.SIGCONT)


def broker_ids(cluster: BrokerCluster, via: int) -> list[int]:
    meta = trio.run(kafka_call, cluster.node(via).kafka, METADATA.key, 9, {
        "topics": [], "allow_auto_topic_creation": False, "include_topic_authorized_operations": False})
    return sorted(b["node_id"] for b in meta["brokers"])


def partition_state(cluster: BrokerCluster, topic: str, partition: int, via: int = 1) -> dict:
    meta = trio.run(kafka_call, cluster.node(via).kafka, METADATA.key, 9, {
        "topics": [{"name": topic}], "allow_auto_topic_creation": False,
        "include_topic_authorized_operations": False})
    [entry] = meta["topics"]
    return next(p for p in entry["partitions"] if p["partition_index"] == partition)


def fetch(address: tuple[str, int], topic: str, partition: int, offset: int, *, replica_id: int = -1) -> dict:
    response = trio.run(kafka_call, address, FETCH.key, 12, {
        "replica_id": replica_id, "max_wait_ms": 0, "min_bytes": 1, "max_bytes": 1 << 20, "isolation_level": 0,
        "session_id": 0, "session_epoch": -1, "forgotten_topics_data": [], "rack_id": "",
        "topics": [{"topic": topic, "partitions": [{
            "partition": partition, "fetch_offset": offset, "partition_max_bytes": 1 << 20,
            "current_leader_epoch": -1, "log_start_offset": -1, "last_fetched_epoch": -1}]}]})
    return response["responses"][0]["partitions"][0]


def latest_offset(address: tuple[str, int], topic: str, partition: int) -> int:
    listed = trio.run(kafka_call, address, LIST_OFFSETS.key, 7, {
        "replica_id": -1, "isolation_level": 0,
        "topics": [{"name": topic, "partitions": [{"partition_index": partition, "current_leader_epoch": -1,
                                                   "timestamp": -1}]}]})
    return listed["topics"][0]["partitions"][0]["offset"]


def producer(kafka, cluster: BrokerCluster, acks, via: int | None = None):
    """kafka-python's producer, bootstrapped on every broker, or only on ``via`` (the others
    may be paused)."""
    bootstrap = cluster.bootstrap if via is None else cluster.node(via).kafka_address
    return kafka.KafkaProducer(bootstrap_servers=bootstrap, acks=acks, retries=0, linger_ms=5,
                               request_timeout_ms=10000, max_block_ms=10000, metadata_max_age_ms=300000)


def test_acks_all_writes_reach_every_brokers_log_byte_for_byte_and_consumers_read_them(kafka, kcat, cluster):
    create_replicated(kafka, cluster, TOPIC, PARTITIONS)
    for partition in range(PARTITIONS):
        state = partition_state(cluster, TOPIC, partition)
        assert sorted(state["replica_nodes"]) == [1, 2, 3] and sorted(state["isr_nodes"]) == [1, 2, 3], state
    writer = producer(kafka, cluster, "all")
    futures = [writer.send(TOPIC, key=b"k%d" % (i % 7), value=b"value-%d" % i) for i in range(RECORDS)]
    writer.flush(30)
    placed = [f.get(10) for f in futures]
    writer.close(5)
    assert len({(m.partition, m.offset) for m in placed}) == RECORDS
    ends = {p: max(m.offset for m in placed if m.partition == p) + 1 for p in {m.partition for m in placed}}

    # acks=all answered: every in-sync replica (all three) holds every batch, at the same
    # offsets, byte for byte.
    for partition, end in ends.items():
        copies = [log_bytes(cluster.node(n).data_dir, TOPIC, partition) for n in (1, 2, 3)]
        assert next_offset(copies[0]) == end
        assert copies[0] == copies[1] == copies[2]
        leader = partition_state(cluster, TOPIC, partition)["leader_id"]
        assert latest_offset(cluster.node(leader).kafka, TOPIC, partition) == end

    expected = {(b"k%d" % (i % 7), b"value-%d" % i) for i in range(RECORDS)}
    got = read_from_beginning(kafka, cluster.node(2).kafka_address, TOPIC, PARTITIONS, RECORDS)
    assert len(got) == RECORDS and {(r.key, r.value) for r in got} == expected
    done = subprocess.run([kcat, "-C", "-b", cluster.node(3).kafka_address, "-t", TOPIC, "-o", "beginning", "-e",
                           "-q", "-f", "%k %s\\n"], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == RECORDS and {tuple(x.encode() for x in line.split(" ")) for line in lines} == expected


def test_a_replica_fetch_from_a_broker_that_is_no_follower_or_to_a_follower_is_refused(kafka, cluster):
    state = partition_state(cluster, TOPIC, 0)
    leader = state["leader_id"]
    follower = next(n for n in (1, 2, 3) if n != leader)
    # To the leader, from an id that is no replica of the partition.
    assert fetch(cluster.node(leader).kafka, TOPIC, 0, 0, replica_id=99)["error_code"] == \
        ErrorCode.NOT_LEADER_OR_FOLLOWER
    # To a follower, even from a replica: only the leader serves replicas.
    assert fetch(cluster.node(follower).kafka, TOPIC, 0, 0, replica_id=leader)["error_code"] == \
        ErrorCode.NOT_LEADER_OR_FOLLOWER


@attrs.frozen
class Solo:
    """The one-partition topic's leader, its followers, and two producers made while every
    broker answered (kafka-python may send its metadata requests to any broker it knows; with
    its metadata loaded and kept, it only talks to the leader while followers are paused)."""

    leader: int
    first: int
    second: int
    acks_all: Any
    acks_one: Any


@pytest.fixture(scope="module")
def solo(kafka, cluster):
    """A one-partition RF=3 topic holding 10 records."""
    create_replicated(kafka, cluster, SOLO, 1)
    state = partition_state(cluster, SOLO, 0)
    leader = state["leader_id"]
    followers = [n for n in state["replica_nodes"] if n != leader]
    writers = [producer(kafka, cluster, acks, via=leader) for acks in ("all", 1)]
    try:
        for i in range(10):
            writers[0].send(SOLO, value=b"base-%d" % i).get(10)
        writers[1].partitions_for(SOLO)
        yield Solo(leader, followers[0], followers[1], *writers)
    finally:
        for writer in writers:
            writer.close(5)


def produce_acks_all(address: tuple[str, int], value: bytes) -> dict:
    """One raw acks=all Produce of ``value`` to SOLO's partition (timeout 15 s); its partition answer."""
    batch = build_batch([(None, value, None)], base_timestamp=time.time_ns() // 1_000_000)
    answer = trio.run(kafka_call, address, PRODUCE.key, 9, {
        "transactional_id": None, "acks": -1, "timeout_ms": 15000,
        "topic_data": [{"name": SOLO, "partition_data": [{"index": 0, "records": batch}]}]})
    [[part]] = [t["partition_responses"] for t in answer["responses"]]
    return part


def latest_log_end(cluster: BrokerCluster, leader: int) -> int:
    """The leader's log end for SOLO's partition, read from its data directory."""
    return next_offset(log_bytes(cluster.node(leader).data_dir, SOLO, 0))


def isr(cluster: BrokerCluster, leader: int) -> list[int]:
    return sorted(partition_state(cluster, SOLO, 0, via=leader)["isr_nodes"])


def test_one_paused_follower_leaves_the_isr_and_acks_all_goes_on_with_two(kafka, kcat, cluster, solo):
    leader, first = solo.leader, solo.first
    os.kill(cluster.node(first).pid, signal.SIGSTOP)
    started = time.monotonic()
    # Answered only once the paused follower has left the ISR: the high watermark waits for it.
    metadata = solo.acks_all.send(SOLO, value=b"two-in-sync").get(15)
    waited = time.monotonic() - started
    assert metadata.offset == 10
    assert waited >= LAG_MS / 1000 * 0.9, waited
    assert isr(cluster, leader) == sorted({1, 2, 3} - {first})
    listed = subprocess.run([kcat, "-L", "-b", cluster.node(leader).kafka_address, "-t", SOLO],
                            capture_output=True, text=True, timeout=30)
    assert listed.returncode == 0, listed.stderr
    assert re.search(rf"partition 0, leader {leader}, replicas: [0-9,]+, isrs: ([0-9,]+)", listed.stdout)
    assert sorted(int(n) for n in re.search(r"isrs: ([0-9,]+)", listed.stdout).group(1).split(",")) == \
        sorted({1, 2, 3} - {first})


def test_with_both_followers_paused_consumers_stop_at_the_high_watermark_then_acks_all_fails_after_then_before_the_append(
        kafka, kcat, cluster, solo):
    leader, second = solo.leader, solo.second
    os.kill(cluster.node(second).pid, signal.SIGSTOP)
    # An acks=all write at once: appended (the paused second follower is still in the ISR, two
    # in sync) at offset 11, it waits for the high watermark (below).
    waiting: list[dict] = []
    writer = threading.Thread(target=lambda: waiting.append(produce_acks_all(cluster.node(leader).kafka, b"waits")))
    writer.start()
    wait_until(lambda: latest_log_end(cluster, leader) == 12, 5, "the acks=all batch appended")
    written = [solo.acks_one.send(SOLO, value=b"acks-1-%d" % i).get(10).offset for i in range(3)]
    assert written == [12, 13, 14]
    # The leader holds 15 records, but the second follower, still in the ISR, has 11: consumers
    # see 11, whatever they ask.
    answer = fetch(cluster.node(leader).kafka, SOLO, 0, 0)
    assert answer["error_code"] == ErrorCode.NONE
    assert answer["high_watermark"] == 11 and next_offset(answer["records"]) == 11
    assert fetch(cluster.node(leader).kafka, SOLO, 0, 11)["records"] in (b"", None)
    assert latest_offset(cluster.node(leader).kafka, SOLO, 0) == 11
    done = subprocess.run([kcat, "-C", "-b", cluster.node(leader).kafka_address, "-t", SOLO, "-o", "beginning",
                           "-e", "-q"], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert len(done.stdout.splitlines()) == 11 and "acks-1" not in done.stdout

    # Past the lag time the second follower leaves the ISR too: the leader alone is in sync and
    # the high watermark reaches its log end, past the waiting batch - but the ISR that
    # committed it is below min.insync.replicas = 2: NOT_ENOUGH_REPLICAS_AFTER_APPEND, Kafka's
    # answer (the batch stays in the log; a producer retrying it may write it twice).
    writer.join(10)
    assert waiting and (waiting[0]["error_code"], waiting[0]["base_offset"]) == \
        (ErrorCode.NOT_ENOUGH_REPLICAS_AFTER_APPEND, -1), waiting
    assert isr(cluster, leader) == [leader]
    assert fetch(cluster.node(leader).kafka, SOLO, 0, 0)["high_watermark"] == 15
    # With one in sync, a new acks=all write is refused before the append.
    with pytest.raises(kafka.errors.NotEnoughReplicasError):
        solo.acks_all.send(SOLO, value=b"refused").get(10)
    assert latest_offset(cluster.node(leader).kafka, SOLO, 0) == 15  # nothing was appended


def test_resumed_followers_catch_up_rejoin_the_isr_and_hold_the_same_bytes(kafka, cluster, solo):
    leader = solo.leader
    for node in (solo.first, solo.second):
        os.kill(cluster.node(node).pid, signal.SIGCONT)
    wait_until(lambda: isr(cluster, leader) == [1, 2, 3], 15, "the ISR expands back to three")
    assert solo.acks_all.send(SOLO, value=b"three-in-sync").get(10).offset == 15
    copies = [log_bytes(cluster.node(n).data_dir, SOLO, 0) for n in (1, 2, 3)]
    assert next_offset(copies[0]) == 16
    assert copies[0] == copies[1] == copies[2]
