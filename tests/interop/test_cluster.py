"""Three ``dualmq serve --cluster`` brokers on one real etcd, driven by kafka-python and kcat.

What the first cluster slice promises (docs/cluster.md#membership-the-controller-and-leadership): the brokers
register, one is controller, topics created through the controller are spread over the
brokers, Metadata lists every broker and each partition's leader, clients produce to and read
from the leaders (bootstrapped on any broker), a non-leader refuses a partition's data with
NOT_LEADER_OR_FOLLOWER, a duplicate node id is refused, and when the controller stops another
broker takes over within the lease TTL.

The tests share one cluster (module scope) and run in file order: the controller's stop is last.
Lease TTL 2 s, so takeovers and the duplicate check stay short.
"""

from __future__ import annotations

import re
import subprocess
import time

import pytest
import trio

from dualmq.process import BrokerCluster, BrokerProcess, BrokerStartError
from tests.modes.pull.raw import RawKafka
from tests.interop.cluster_support import (  # noqa: F401  (fixtures)
    cluster_workdir, etcd, kafka, kafka_call, kcat, read_from_beginning,
)
from tests.support import KAFKA_PYTHON_NOISE
from wire.kafka.errors import ErrorCode
from wire.kafka.messages.metadata import METADATA
from wire.kafka.messages.produce_fetch import FETCH, INIT_PRODUCER_ID, LIST_OFFSETS, PRODUCE
from wire.kafka.records import build_batch

pytestmark = [
    pytest.mark.interop,
    pytest.mark.timeout(120),
    *KAFKA_PYTHON_NOISE,
]

LEASE_TTL_S = 2
TOPIC = "orders"
PARTITIONS = 6
RECORDS = 3000


@pytest.fixture(scope="module")
def workdir(cluster_workdir):
    return cluster_workdir


@pytest.fixture(scope="module")
def cluster(workdir, etcd):
    config = workdir / "cluster.toml"
    config.write_text(f"[cluster]\nlease_ttl_seconds = {LEASE_TTL_S}\n")
    with BrokerCluster(workdir, etcd.endpoint, 3, "--config", str(config)) as running:
        yield running


async def metadata(address: tuple[str, int], topics: list[str] | None, version: int = 9) -> dict:
    request = {"topics": None if topics is None else [{"name": t} for t in topics],
               "allow_auto_topic_creation": False, "include_topic_authorized_operations": False}
    return await kafka_call(address, METADATA.key, version, request)


def leaders(meta: dict, topic: str) -> dict[int, int]:
    [entry] = [t for t in meta["topics"] if t["name"] == topic]
    return {p["partition_index"]: p["leader_id"] for p in entry["partitions"]}


def test_kafka_python_creates_produces_acks_all_and_reads_back_from_every_leader(kafka, kcat, cluster):
    first, third = cluster.node(1), cluster.node(3)
    admin = kafka.KafkaAdminClient(bootstrap_servers=first.kafka_address, request_timeout_ms=10000)
    try:
        admin.create_topics([kafka.admin.NewTopic(TOPIC, num_partitions=PARTITIONS, replication_factor=1)])
    finally:
        admin.close()
    meta = trio.run(metadata, first.kafka, [TOPIC])
    spread = leaders(meta, TOPIC)
    assert sorted(spread) == list(range(PARTITIONS))
    assert sorted(set(spread.values())) == [1, 2, 3]  # round robin: every broker leads two
    assert sorted(spread.values()) == [1, 1, 2, 2, 3, 3]

    producer = kafka.KafkaProducer(bootstrap_servers=first.kafka_address, acks="all", request_timeout_ms=10000)
    futures = [producer.send(TOPIC, key=b"key-%d" % (i % 97), value=b"value-%d" % i) for i in range(RECORDS)]
    producer.flush(30)
    placed = [f.get(10) for f in futures]
    producer.close(5)
    assert len({(m.partition, m.offset) for m in placed}) == RECORDS
    assert {m.partition for m in placed} == set(range(PARTITIONS))
    expected = {(b"key-%d" % (i % 97), b"value-%d" % i) for i in range(RECORDS)}
    # Keyed: one key, one partition (the default partitioner's murmur2 of the key).
    by_key: dict[bytes, set[int]] = {}
    for i, m in enumerate(placed):
        by_key.setdefault(b"key-%d" % (i % 97), set()).add(m.partition)
    assert all(len(parts) == 1 for parts in by_key.values())

    got = read_from_beginning(kafka, third.kafka_address, TOPIC, PARTITIONS, RECORDS)
    assert len(got) == RECORDS and {(r.key, r.value) for r in got} == expected

    done = subprocess.run([kcat, "-C", "-b", third.kafka_address, "-t", TOPIC, "-o", "beginning", "-e", "-q",
                           "-f", "%p %k %s\\n"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == RECORDS
    assert {(k.encode(), v.encode()) for _, k, v in (line.split(" ") for line in lines)} == expected
    # kcat read each partition from its leader: the partition numbers match the producer's.
    assert {(int(p), k.encode()) for p, k, _ in (line.split(" ") for line in lines)} == {
        (m.partition, b"key-%d" % (i % 97)) for i, m in enumerate(placed)}


def test_kcat_lists_three_brokers_the_controller_and_each_partitions_leader(kcat, cluster):
    done = subprocess.run([kcat, "-L", "-b", cluster.node(2).kafka_address, "-t", TOPIC], capture_output=True,
                          text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert " 3 brokers:" in out
    for node in (1, 2, 3):
        assert re.search(rf"broker {node} at {re.escape(cluster.node(node).kafka_address)}", out), out
    assert len(re.findall(r"\(controller\)", out)) == 1
    found = dict(re.findall(r"partition (\d+), leader (\d+), replicas: \d+, isrs: \d+", out))
    meta = trio.run(metadata, cluster.node(2).kafka, [TOPIC])
    assert {int(p): int(n) for p, n in found.items()} == leaders(meta, TOPIC)


async def _data_requests_to(address: tuple[str, int], partition: int) -> tuple[int, int, int]:
    with trio.fail_after(10):
        stream = await trio.open_tcp_stream(*address)
    client = RawKafka(stream)
    try:
        batch = build_batch([(b"k", b"v", None)], base_timestamp=time.time_ns() // 1_000_000)
        produced = await client.call(PRODUCE.key, 9, {
            "transactional_id": None, "acks": -1, "timeout_ms": 1000,
            "topic_data": [{"name": TOPIC, "partition_data": [{"index": partition, "records": batch}]}]})
        fetched = await client.call(FETCH.key, 12, {
            "replica_id": -1, "max_wait_ms": 0, "min_bytes": 1, "max_bytes": 1 << 20, "isolation_level": 0,
            "session_id": 0, "session_epoch": -1, "forgotten_topics_data": [], "rack_id": "",
            "topics": [{"topic": TOPIC, "partitions": [{"partition": partition, "fetch_offset": 0,
                                                        "partition_max_bytes": 1 << 20, "current_leader_epoch": -1,
                                                        "log_start_offset": -1, "last_fetched_epoch": -1}]}]})
        listed = await client.call(LIST_OFFSETS.key, 7, {
            "replica_id": -1, "isolation_level": 0,
            "topics": [{"name": TOPIC, "partitions": [{"partition_index": partition, "current_leader_epoch": -1,
                                                       "timestamp": -1}]}]})
    finally:
        await stream.aclose()
    return (produced["responses"][0]["partition_responses"][0]["error_code"],
            fetched["responses"][0]["partitions"][0]["error_code"],
            listed["topics"][0]["partitions"][0]["error_code"])


def test_a_broker_that_does_not_lead_a_partition_answers_not_leader_or_follower(cluster):
    spread = leaders(trio.run(metadata, cluster.node(1).kafka, [TOPIC]), TOPIC)
    partition, leader = next(iter(spread.items()))
    other = next(node for node in (1, 2, 3) if node != leader)
    refused = trio.run(_data_requests_to, cluster.node(other).kafka, partition)
    assert refused == (ErrorCode.NOT_LEADER_OR_FOLLOWER,) * 3
    served = trio.run(_data_requests_to, cluster.node(leader).kafka, partition)
    assert served == (ErrorCode.NONE,) * 3


def test_a_second_broker_with_a_taken_node_id_is_refused(workdir, cluster):
    impostor = BrokerProcess(workdir / "impostor", "--node-id", "2", "--cluster", f"etcd://{cluster.etcd}",
                             "--config", str(workdir / "cluster.toml"))
    with pytest.raises(BrokerStartError, match="node id 2 is already registered"):
        impostor.start(timeout=20)
    assert not impostor.running


def test_a_replication_factor_above_the_live_brokers_is_refused(kafka, cluster):
    meta = trio.run(metadata, cluster.node(1).kafka, None)
    controller = cluster.node(meta["controller_id"])
    admin = kafka.KafkaAdminClient(bootstrap_servers=controller.kafka_address, request_timeout_ms=10000)
    try:
        with pytest.raises(kafka.errors.InvalidReplicationFactorError, match="larger than the 3 live broker"):
            admin.create_topics([kafka.admin.NewTopic("rf4", num_partitions=1, replication_factor=4)])
    finally:
        admin.close()
    assert "rf4" not in {t["name"] for t in trio.run(metadata, cluster.node(1).kafka, None)["topics"]}


def test_producer_ids_are_unique_across_brokers_so_idempotent_producers_share_a_partition(kafka, cluster):
    request = {"transactional_id": None, "transaction_timeout_ms": 60000, "producer_id": -1, "producer_epoch": -1}
    answers = [trio.run(kafka_call, cluster.node(n).kafka, INIT_PRODUCER_ID.key, 4, request) for n in (1, 2, 3, 1)]
    assert [a["error_code"] for a in answers] == [0] * 4
    ids = [a["producer_id"] for a in answers]
    assert len(set(ids)) == 4, ids   # each broker alone would have started at 0

    # kafka-python's idempotent producers, bootstrapped on two brokers, write one partition.
    admin = kafka.KafkaAdminClient(bootstrap_servers=cluster.node(1).kafka_address, request_timeout_ms=10000)
    try:
        admin.create_topics([kafka.admin.NewTopic("idempotent", num_partitions=1, replication_factor=3)])
    finally:
        admin.close()
    producers = [kafka.KafkaProducer(bootstrap_servers=cluster.node(n).kafka_address, acks="all",
                                     enable_idempotence=True, request_timeout_ms=10000) for n in (2, 3)]
    try:
        futures = []
        for i in range(200):
            for which, producer in enumerate(producers):
                futures.append(producer.send("idempotent", value=b"%d-%d" % (which, i)))
            if i % 50 == 49:
                for producer in producers:
                    producer.flush(30)
        placed = [f.get(10) for f in futures]
    finally:
        for producer in producers:
            producer.close(5)
    assert len({m.offset for m in placed}) == 400
    got = read_from_beginning(kafka, cluster.node(1).kafka_address, "idempotent", 1, 400)
    assert sorted(r.value for r in got) == sorted(b"%d-%d" % (w, i) for w in (0, 1) for i in range(200))


def test_when_the_controller_stops_another_broker_takes_over_within_the_lease_ttl(cluster):
    before = trio.run(metadata, cluster.node(1).kafka, None)["controller_id"]
    assert before in (1, 2, 3)
    stopped_at = time.monotonic()
    cluster.node(before).stop()
    survivor = cluster.node(next(n for n in (1, 2, 3) if n != before))
    after, meta = before, {}
    while time.monotonic() - stopped_at < LEASE_TTL_S + 1:
        meta = trio.run(metadata, survivor.kafka, None)
        after = meta["controller_id"]
        if after not in (before, -1):
            break
        time.sleep(0.05)
    assert after not in (before, -1), meta
    assert sorted(b["node_id"] for b in meta["brokers"]) == sorted({1, 2, 3} - {before})
    # The stopped broker's partitions have no live leader now: with replication factor 1 no other
    # broker holds them, and unclean leader election is off (docs/cluster.md#failover).
    offline = [p for t in meta["topics"] for p in t["partitions"] if p["leader_id"] == -1]
    assert offline and all(p["error_code"] == ErrorCode.LEADER_NOT_AVAILABLE for p in offline)


def test_when_the_controller_crashes_the_last_broker_takes_over_once_its_lease_expires(cluster):
    alive = [n for n in (1, 2, 3) if cluster.node(n).running]
    assert len(alive) == 2  # the previous test stopped one
    before = trio.run(metadata, cluster.node(alive[0]).kafka, None)["controller_id"]
    assert before in alive
    survivor = next(n for n in alive if n != before)
    last = cluster.node(survivor)
    killed_at = time.monotonic()
    cluster.node(before).kill()  # SIGKILL: no revoke, etcd must expire the lease
    after = before
    while time.monotonic() - killed_at < LEASE_TTL_S + 3:
        after = trio.run(metadata, last.kafka, None)["controller_id"]
        if after not in (before, -1):
            break
        time.sleep(0.1)
    took = time.monotonic() - killed_at
    assert after == survivor, (after, took)
    assert took >= LEASE_TTL_S - 1  # not before the lease could have expired
