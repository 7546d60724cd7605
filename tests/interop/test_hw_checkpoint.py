"""The high-watermark checkpoint in a three-broker cluster (docs/cluster.md#replication).

One RF=3 partition written by kafka-python with ``acks=all``; every broker writes its
``high-watermark-checkpoint`` (interval 200 ms). A follower stopped cleanly comes back with
its high watermark from the checkpoint its clean stop wrote; a broker killed with SIGKILL comes
back with the last periodic checkpoint, never its log end taken blindly; and kafka-python reads
back every acknowledged record afterwards. The 2 s lease TTL keeps re-registration short.
"""

from __future__ import annotations

import pytest

from broker.log.hw_checkpoint import read_high_watermark
from dualmq.process import BrokerCluster
from tests.interop.cluster_support import (  # noqa: F401  (fixtures)
    create_replicated, kafka, read_from_beginning, wait_until,
)
from tests.support import KAFKA_PYTHON_NOISE, etcd_process

pytestmark = [pytest.mark.interop, pytest.mark.timeout(120), *KAFKA_PYTHON_NOISE]

TOPIC = "hwcheck"
COUNT = 20


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("hwcheck")
    config = workdir / "cluster.toml"
    config.write_text("[cluster]\nlease_ttl_seconds = 2\nreplica_lag_time_max_ms = 1500\n"
                      "high_watermark_checkpoint_interval_ms = 200\n")
    with etcd_process(workdir) as etcd, BrokerCluster(workdir, etcd.endpoint, 3, "--config", str(config)) as running:
        yield running


def checkpoint(cluster: BrokerCluster, node: int) -> int | None:
    return read_high_watermark(cluster.node(node).data_dir / f"{TOPIC}-0")


def started(cluster: BrokerCluster, node: int) -> list[dict]:
    """The ``high_watermark_started`` lines ``node`` logged for the test partition."""
    return [line for line in cluster.node(node).log_lines()
            if line.get("event") == "high_watermark_started" and line.get("topic") == TOPIC]


def produce(kafka, cluster: BrokerCluster, count: int, tag: str) -> None:
    producer = kafka.KafkaProducer(bootstrap_servers=cluster.bootstrap, acks="all", retries=20,
                                   retry_backoff_ms=200, request_timeout_ms=4000, max_block_ms=20000)
    try:
        for i in range(count):
            producer.send(TOPIC, f"{tag}-{i}".encode(), partition=0).get(timeout=20)
    finally:
        producer.close()


def follower_of(cluster: BrokerCluster) -> int:
    """A broker that never led the test partition (leadership does not move in this module)."""
    for node in (1, 2, 3):
        if not any(line.get("event") == "partition_leading" and line.get("topic") == TOPIC
                   for line in cluster.node(node).log_lines()):
            return node
    raise AssertionError("every broker led the partition")


def restart_line(cluster: BrokerCluster, node: int, earlier: int) -> dict:
    """The ``high_watermark_started`` line of ``node``'s start after its first ``earlier`` ones."""
    return wait_until(lambda: len(lines := started(cluster, node)) > earlier and lines[-1], 15,
                      "the restarted broker tracking its high watermark")


def test_every_broker_checkpoints_the_committed_high_watermark(kafka, cluster):
    create_replicated(kafka, cluster, TOPIC, 1)
    produce(kafka, cluster, COUNT, "a")
    wait_until(lambda: all(checkpoint(cluster, n) == COUNT for n in (1, 2, 3)), 10,
               f"every broker's checkpoint at {COUNT}")


def test_a_cleanly_stopped_follower_restarts_from_its_checkpoint(kafka, cluster):
    node = follower_of(cluster)
    earlier = len(started(cluster, node))
    cluster.node(node).stop()
    assert checkpoint(cluster, node) == COUNT  # the clean stop wrote it (it already was)
    cluster.node(node).start()
    line = restart_line(cluster, node, earlier)
    assert (line["checkpoint"], line["high_watermark"], line["log_end_offset"]) == (COUNT, COUNT, COUNT)


def test_a_killed_broker_restarts_from_the_last_periodic_checkpoint(kafka, cluster):
    node = follower_of(cluster)
    produce(kafka, cluster, 5, "b")
    before = checkpoint(cluster, node)
    earlier = len(started(cluster, node))
    cluster.node(node).kill()
    on_disk = checkpoint(cluster, node)
    assert on_disk is not None and COUNT <= on_disk <= COUNT + 5 and on_disk >= before
    cluster.node(node).start()
    line = restart_line(cluster, node, earlier)
    assert line["checkpoint"] == on_disk and line["high_watermark"] == on_disk
    assert line["high_watermark"] <= line["log_end_offset"]
    # And nothing acknowledged was lost: kafka-python reads all of it back.
    got = read_from_beginning(kafka, cluster.bootstrap, TOPIC, 1, COUNT + 5)
    assert [r.value for r in got] == [f"a-{i}".encode() for i in range(COUNT)] + [f"b-{i}".encode() for i in range(5)]
