"""What the cluster interop tests share: the real clients they need, a module's etcd, and
one raw Kafka call.

Import the fixtures into a test module (``from tests.interop.cluster_support import kafka, kcat``)
to use them there.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import trio

from tests.modes.pull.raw import RawKafka
from wire.kafka.batch import split_batches
from tests.support import etcd_process, require_binary, require_module


@pytest.fixture(scope="module")
def kafka():
    return require_module("kafka", "kafka-python")


@pytest.fixture(scope="module")
def kcat():
    return require_binary("kcat", "kcat")


@pytest.fixture(scope="module")
def cluster_workdir(tmp_path_factory):
    """A directory for one module's etcd and brokers."""
    return tmp_path_factory.mktemp("cluster")


@pytest.fixture(scope="module")
def etcd(cluster_workdir):
    """One etcd on free loopback ports for the module, stopped after its last test."""
    with etcd_process(cluster_workdir) as server:
        yield server


async def kafka_call(address: tuple[str, int], api_key: int, version: int, request: dict) -> dict:
    """One request on a new connection to ``address`` (connect within 10 s, answer within
    ``RawKafka``'s read deadline)."""
    with trio.fail_after(10):
        stream = await trio.open_tcp_stream(*address)
    try:
        return await RawKafka(stream).call(api_key, version, request)
    finally:
        await stream.aclose()


def create_replicated(kafka, cluster, name: str, partitions: int) -> None:
    """Create ``name`` through kafka-python's admin client: replication factor 3,
    ``min.insync.replicas`` 2."""
    admin = kafka.KafkaAdminClient(bootstrap_servers=cluster.bootstrap, request_timeout_ms=10000)
    try:
        admin.create_topics([kafka.admin.NewTopic(name, num_partitions=partitions, replication_factor=3,
                                                  topic_configs={"min.insync.replicas": "2"})])
    finally:
        admin.close()


def read_from_beginning(kafka, address: str, topic: str, partitions: int, count: int, timeout: float = 30) -> list:
    """kafka-python's consumer (no group) reading every partition of ``topic`` from the start
    until ``count`` records arrived or ``timeout`` seconds passed; the records it got."""
    consumer = kafka.KafkaConsumer(bootstrap_servers=address, group_id=None, enable_auto_commit=False,
                                   request_timeout_ms=10000)
    got: list = []
    try:
        parts = [kafka.TopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(parts)
        consumer.seek_to_beginning(*parts)
        deadline = time.monotonic() + timeout
        while len(got) < count and time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=300).values():
                got.extend(batch)
    finally:
        consumer.close()
    return got


def next_offset(records: bytes) -> int:
    """The offset after the last record of whole batches ``records``."""
    last = -1
    for batch in split_batches(records):
        base = int.from_bytes(batch[0:8], "big", signed=True)
        last = base + int.from_bytes(batch[23:27], "big", signed=True)
    return last + 1


def log_bytes(data_dir: Path, topic: str, partition: int) -> bytes:
    directory = data_dir / f"{topic}-{partition}"
    return b"".join(path.read_bytes() for path in sorted(directory.glob("*.log")))


def wait_until(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout} s")
        time.sleep(0.1)
