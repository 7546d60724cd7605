"""Failover in a three-broker cluster, with kafka-python and kcat unchanged (docs/cluster.md#failover).

One RF=3 partition with ``min.insync.replicas`` 2 and a 2 s lease TTL. A leader killed with
SIGKILL is replaced by an in-sync follower in a new leader epoch once its lease expires; an
``acks=all`` producer with retries goes on there without losing an acknowledged record; kcat
lists the new leader. A leader paused with SIGSTOP past its TTL is replaced the same way, and
once continued it does not serve as leader from its stale view: it rejoins as a follower and
catches up. A leader killed with records only it holds comes back as a follower and truncates
that divergent tail, so every broker's log holds the same bytes.

The tests share one cluster and run in file order; every paused process is resumed in teardown.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest
import trio

from dualmq.process import BrokerCluster
from tests.interop.cluster_support import (  # noqa: F401  (fixtures)
    create_replicated, kafka, kafka_call, kcat, log_bytes, read_from_beginning, wait_until,
)
from tests.support import KAFKA_PYTHON_NOISE, etcd_process
from wire.kafka.errors import ErrorCode
from wire.kafka.messages.metadata import METADATA
from wire.kafka.messages.produce_fetch import FETCH, LIST_OFFSETS, OFFSET_FOR_LEADER_EPOCH, PRODUCE
from tests.broker.batches import build_batch

pytestmark = [pytest.mark.interop, pytest.mark.timeout(120), *KAFKA_PYTHON_NOISE]

TOPIC = "failover"
LEASE_TTL_S = 2
LAG_MS = 1500


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("failover")
    config = workdir / "cluster.toml"
    config.write_text(f"[cluster]\nlease_ttl_seconds = {LEASE_TTL_S}\nreplica_lag_time_max_ms = {LAG_MS}\n")
    with etcd_process(workdir) as etcd, BrokerCluster(workdir, etcd.endpoint, 3, "--config", str(config)) as running:
        try:
            wait_until(lambda: all(len(metadata(running, n)["brokers"]) == 3 for n in (1, 2, 3)), 10,
                       "all brokers seen")
            yield running
        finally:
            for broker in running.brokers:
                if broker.running:
                    os.kill(broker.pid, signal.SIGCONT)


def metadata(cluster: BrokerCluster, via: int, topics: list[dict] | None = None) -> dict:
    return trio.run(kafka_call, cluster.node(via).kafka, METADATA.key, 9, {
        "topics": topics or [], "allow_auto_topic_creation": False, "include_topic_authorized_operations": False})


def state(cluster: BrokerCluster, via: int) -> dict:
    [entry] = metadata(cluster, via, [{"name": TOPIC}])["topics"]
    return entry["partitions"][0]


def alive(cluster: BrokerCluster) -> list[int]:
    return [n for n in (1, 2, 3) if cluster.node(n).running]


def new_leader(cluster: BrokerCluster, old: int, via: int, timeout: float) -> dict:
    """Wait until ``via`` lists a leader other than ``old`` (and not -1); its partition state."""
    return wait_until(lambda: (s := state(cluster, via))["leader_id"] not in (old, -1) and s, timeout,
                      f"a leader other than {old}")


def producer(kafka, cluster: BrokerCluster):
    """kafka-python's producer as an application would configure it for durability."""
    return kafka.KafkaProducer(bootstrap_servers=cluster.bootstrap, acks="all", retries=20, retry_backoff_ms=200,
                               linger_ms=5, request_timeout_ms=4000, max_block_ms=20000,
                               max_in_flight_requests_per_connection=1)


def same_logs(cluster: BrokerCluster, nodes: list[int]) -> bool:
    copies = [log_bytes(cluster.node(n).data_dir, TOPIC, 0) for n in nodes]
    return all(copy == copies[0] for copy in copies)


def test_a_killed_leader_is_replaced_and_an_acks_all_producer_goes_on_losing_nothing(kafka, kcat, cluster):
    create_replicated(kafka, cluster, TOPIC, 1)
    before = state(cluster, 1)
    leader = before["leader_id"]
    assert before["leader_epoch"] == 0
    writer = producer(kafka, cluster)
    acked = {}
    try:
        for i in range(20):
            acked[writer.send(TOPIC, value=b"before-%d" % i).get(10).offset] = b"before-%d" % i
        killed_at = time.monotonic()
        cluster.node(leader).kill()
        for i in range(20):
            acked[writer.send(TOPIC, value=b"after-%d" % i).get(30).offset] = b"after-%d" % i
            if i == 0:
                gap = time.monotonic() - killed_at
    finally:
        writer.close(5)
    survivor = alive(cluster)[0]
    after = state(cluster, survivor)
    assert after["leader_id"] != leader and after["leader_epoch"] == 1, after
    assert leader not in after["isr_nodes"] and len(after["isr_nodes"]) == 2
    # The new leader was elected once the lease expired, not before.
    assert LEASE_TTL_S - 0.5 <= gap <= LEASE_TTL_S + 8, gap
    assert len(acked) == 40
    listed = subprocess.run([kcat, "-L", "-b", cluster.node(survivor).kafka_address, "-t", TOPIC],
                            capture_output=True, text=True, timeout=30)
    assert listed.returncode == 0, listed.stderr
    assert f"partition 0, leader {after['leader_id']}," in listed.stdout
    got = read_from_beginning(kafka, cluster.node(survivor).kafka_address, TOPIC, 1, 40)
    assert {r.offset: r.value for r in got} == acked
    # Requests are fenced on the new epoch: an older one is FENCED_LEADER_EPOCH (stale
    # metadata), a newer one UNKNOWN_LEADER_EPOCH; only the leader answers OffsetForLeaderEpoch.
    new = after["leader_id"]
    assert epoch_errors(cluster, new, 0) == [ErrorCode.FENCED_LEADER_EPOCH] * 3
    assert epoch_errors(cluster, new, 2) == [ErrorCode.UNKNOWN_LEADER_EPOCH] * 3
    assert epoch_errors(cluster, new, 1) == [ErrorCode.NONE] * 3
    follower = next(n for n in alive(cluster) if n != new)
    assert epoch_errors(cluster, follower, 1) == [ErrorCode.NOT_LEADER_OR_FOLLOWER] * 3

    # The old leader comes back as a follower, catches up and rejoins the ISR.
    cluster.node(leader).start()
    wait_until(lambda: sorted(state(cluster, survivor)["isr_nodes"]) == [1, 2, 3], 15, "the ISR back to three")
    assert state(cluster, survivor)["leader_id"] == after["leader_id"]
    wait_until(lambda: same_logs(cluster, [1, 2, 3]), 5, "the same bytes on every broker")


def epoch_errors(cluster: BrokerCluster, node: int, current_leader_epoch: int) -> list[int]:
    """The error codes of Fetch, ListOffsets and OffsetForLeaderEpoch sent to ``node`` with
    ``current_leader_epoch``."""
    address = cluster.node(node).kafka
    fetched = trio.run(kafka_call, address, FETCH.key, 12, {
        "replica_id": -1, "max_wait_ms": 0, "min_bytes": 1, "max_bytes": 1 << 20, "isolation_level": 0,
        "session_id": 0, "session_epoch": -1, "forgotten_topics_data": [], "rack_id": "",
        "topics": [{"topic": TOPIC, "partitions": [{
            "partition": 0, "fetch_offset": 0, "partition_max_bytes": 1 << 20,
            "current_leader_epoch": current_leader_epoch, "log_start_offset": -1, "last_fetched_epoch": -1}]}]})
    listed = trio.run(kafka_call, address, LIST_OFFSETS.key, 7, {
        "replica_id": -1, "isolation_level": 0, "topics": [{"name": TOPIC, "partitions": [
            {"partition_index": 0, "current_leader_epoch": current_leader_epoch, "timestamp": -1}]}]})
    ended = trio.run(kafka_call, address, OFFSET_FOR_LEADER_EPOCH.key, 4, {
        "replica_id": -1, "topics": [{"topic": TOPIC, "partitions": [
            {"partition": 0, "current_leader_epoch": current_leader_epoch, "leader_epoch": 0}]}]})
    return [fetched["responses"][0]["partitions"][0]["error_code"],
            listed["topics"][0]["partitions"][0]["error_code"], ended["topics"][0]["partitions"][0]["error_code"]]


def raw_produce(cluster: BrokerCluster, node: int, fill: int, acks: int = -1) -> int:
    """Produce one record of 32 bytes ``fill`` to ``node``; the error code."""
    batch = build_batch(1, 32, fill=fill)
    response = trio.run(kafka_call, cluster.node(node).kafka, PRODUCE.key, 9, {
        "transactional_id": None, "acks": acks, "timeout_ms": 3000,
        "topic_data": [{"name": TOPIC, "partition_data": [{"index": 0, "records": batch}]}]})
    return response["responses"][0]["partition_responses"][0]["error_code"]


def test_a_paused_leader_is_replaced_and_once_continued_serves_nothing_as_leader(kafka, cluster):
    old = state(cluster, 1)
    leader = old["leader_id"]
    os.kill(cluster.node(leader).pid, signal.SIGSTOP)
    try:
        other = next(n for n in (1, 2, 3) if n != leader)
        elected = new_leader(cluster, leader, other, LEASE_TTL_S + 8)
        assert elected["leader_epoch"] == old["leader_epoch"] + 1
        assert raw_produce(cluster, elected["leader_id"], 0x41) == ErrorCode.NONE
    finally:
        os.kill(cluster.node(leader).pid, signal.SIGCONT)
    # At once after SIGCONT its view still names it leader, but its lease is gone: no acks=all
    # write is acknowledged (nor appended) there.
    assert raw_produce(cluster, leader, 0x7E) == ErrorCode.NOT_LEADER_OR_FOLLOWER
    wait_until(lambda: any(line.get("event") == "cluster_lease_lost" for line in cluster.node(leader).log_lines()),
               5, "the paused broker notices its lease is gone")
    wait_until(lambda: sorted(state(cluster, elected["leader_id"])["isr_nodes"]) == [1, 2, 3], 15,
               "the paused broker back in the ISR")
    assert state(cluster, leader)["leader_id"] == elected["leader_id"]
    wait_until(lambda: same_logs(cluster, [1, 2, 3]), 5, "the same bytes on every broker")
    assert b"~" * 32 not in log_bytes(cluster.node(leader).data_dir, TOPIC, 0)


def test_a_leader_killed_with_a_tail_only_it_holds_truncates_that_tail_when_it_returns(cluster):
    old = state(cluster, alive(cluster)[0])
    leader = old["leader_id"]
    followers = [n for n in (1, 2, 3) if n != leader]
    # Both followers paused past their fetch's long poll (500 ms), so none is waiting at the
    # leader: the leader's next appends (acks=1) reach no one. Shorter than the lag time and
    # the TTL: they stay in the ISR and registered.
    for node in followers:
        os.kill(cluster.node(node).pid, signal.SIGSTOP)
    try:
        time.sleep(0.7)
        for _ in range(3):
            assert raw_produce(cluster, leader, 0x5A, acks=1) == ErrorCode.NONE
        cluster.node(leader).kill()
    finally:
        for node in followers:
            os.kill(cluster.node(node).pid, signal.SIGCONT)
    tail = b"Z" * 32
    assert tail in log_bytes(cluster.node(leader).data_dir, TOPIC, 0)
    elected = new_leader(cluster, leader, followers[0], LEASE_TTL_S + 8)
    assert elected["leader_epoch"] > old["leader_epoch"]
    # The new leader writes other records at the offsets the tail held.
    for _ in range(3):
        assert raw_produce(cluster, elected["leader_id"], 0x33) == ErrorCode.NONE

    cluster.node(leader).start()
    wait_until(lambda: sorted(state(cluster, elected["leader_id"])["isr_nodes"]) == [1, 2, 3], 15,
               "the returning broker back in the ISR")
    wait_until(lambda: same_logs(cluster, [1, 2, 3]), 5, "the same bytes on every broker")
    returned = log_bytes(cluster.node(leader).data_dir, TOPIC, 0)
    assert tail not in returned and b"3" * 32 in returned
    assert any(line.get("event") == "replica_truncated" for line in cluster.node(leader).log_lines())
