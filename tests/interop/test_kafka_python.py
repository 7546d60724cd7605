"""kafka-python 3.0 against ``dualmq serve``: producer, manual-assignment consumer, admin,
restart durability and retention.

Producers are kafka-python's default, idempotent ones (InitProducerId + sequence numbers); one
test also covers a non-idempotent producer. Consumers here use manual assignment (``assign``)
and no group id; consumer groups are in ``test_groups_kafka_python.py``.
"""

from __future__ import annotations

import socket
import time

import pytest

from tests.support import KAFKA_PYTHON_NOISE, broker_process, require_module
from wire.kafka import codec
from wire.kafka.errors import ErrorCode
from wire.kafka.framing import decode_response_header, encode_request
from wire.kafka.messages.produce_fetch import FETCH

pytestmark = [
    pytest.mark.interop,
    *KAFKA_PYTHON_NOISE,
]

# Recent: records older than retention.ms (7 days) may be rolled away by the broker's next
# maintenance pass (every 5 s) in the middle of a test.
BASE_TS = time.time_ns() // 1_000_000 - 60_000


@pytest.fixture(scope="module")
def kafka():
    return require_module("kafka", "kafka-python")


@pytest.fixture(scope="module")
def broker(tmp_path_factory, kafka):
    with broker_process(tmp_path_factory.mktemp("kafka-python")) as running:
        yield running


def producer(kafka, address: str, **options):
    # kafka-python's defaults: enable_idempotence=True (acks=all, InitProducerId, sequences).
    return kafka.KafkaProducer(bootstrap_servers=address, request_timeout_ms=10000, **options)


def consumer(kafka, address: str, **options):
    return kafka.KafkaConsumer(bootstrap_servers=address, group_id=None, enable_auto_commit=False,
                               consumer_timeout_ms=3000, request_timeout_ms=10000, **options)


def admin(kafka, address: str):
    return kafka.KafkaAdminClient(bootstrap_servers=address, request_timeout_ms=10000)


def consume_all(kafka, address: str, topic: str, expected: int, *, partition: int = 0, offset: int | None = None,
                **options):
    tp = kafka.TopicPartition(topic, partition)
    c = consumer(kafka, address, **options)
    try:
        c.assign([tp])
        if offset is None:
            c.seek_to_beginning(tp)
        else:
            c.seek(tp, offset)
        records = []
        deadline = time.monotonic() + 20
        while len(records) < expected and time.monotonic() < deadline:
            for batch in c.poll(timeout_ms=500).values():
                records.extend(batch)
        return records
    finally:
        c.close()


def test_produce_acks_all_and_consume_by_beginning_offset_and_time(kafka, broker):
    address = broker.kafka_address
    p = producer(kafka, address, acks="all")
    futures = [p.send("kp", key=b"k%d" % i, value=b"v%d" % i, headers=[("h", b"%d" % i)],
                      timestamp_ms=BASE_TS + i) for i in range(500)]
    p.flush(10)
    offsets = [f.get(10).offset for f in futures]
    p.close(5)
    assert offsets == list(range(500))

    records = consume_all(kafka, address, "kp", 500)
    assert [(r.offset, r.key, r.value, r.headers, r.timestamp) for r in records] == [
        (i, b"k%d" % i, b"v%d" % i, [("h", b"%d" % i)], BASE_TS + i) for i in range(500)]

    from_offset = consume_all(kafka, address, "kp", 100, offset=400)
    assert [r.offset for r in from_offset] == list(range(400, 500))

    c = consumer(kafka, address)
    tp = kafka.TopicPartition("kp", 0)
    found = c.offsets_for_times({tp: BASE_TS + 321})[tp]
    assert (found.offset, found.timestamp) == (321, BASE_TS + 321)
    assert c.offsets_for_times({tp: BASE_TS + 10_000})[tp] is None
    assert c.beginning_offsets([tp])[tp] == 0 and c.end_offsets([tp])[tp] == 500
    c.close()


def test_acks_zero(kafka, broker):
    # acks=0 is incompatible with idempotence (kafka-python refuses the combination).
    p = producer(kafka, broker.kafka_address, acks=0, enable_idempotence=False)
    for i in range(200):
        p.send("kp-acks0", value=b"%d" % i)
    p.flush(10)
    p.close(5)
    records = consume_all(kafka, broker.kafka_address, "kp-acks0", 200)
    assert [r.value for r in records] == [b"%d" % i for i in range(200)]


def test_admin_create_describe_delete(kafka, broker):
    from kafka.admin import ConfigResource, ConfigResourceType, NewTopic

    a = admin(kafka, broker.kafka_address)
    try:
        a.create_topics([NewTopic("adm", 3, 1, topic_configs={"retention.ms": "60000",
                                                              "cleanup.policy": "delete"})])
        with pytest.raises(kafka.errors.TopicAlreadyExistsError):
            a.create_topics([NewTopic("adm", 1, 1)])
        with pytest.raises(kafka.errors.InvalidReplicationFactorError):
            a.create_topics([NewTopic("adm2", 1, 3)])
        described = a.describe_configs([ConfigResource(ConfigResourceType.TOPIC, "adm")])
        assert described["topic"]["adm"]["retention.ms"]["value"] == "60000"
        assert "adm" in a.list_topics()
        a.delete_topics(["adm"])
        assert "adm" not in a.list_topics()
    finally:
        a.close()


def test_admin_create_partitions_grows_a_topic_and_rejects_shrinking(kafka, broker):
    from kafka.admin import NewPartitions, NewTopic

    a = admin(kafka, broker.kafka_address)
    try:
        a.create_topics([NewTopic("grow", 2, 1)])
        p = producer(kafka, broker.kafka_address)
        p.send("grow", value=b"before", partition=1)
        p.flush(10)
        for not_more in (2, 1):
            with pytest.raises(kafka.errors.InvalidPartitionsError):
                a.create_partitions({"grow": NewPartitions(not_more)})
        with pytest.raises(kafka.errors.UnknownTopicOrPartitionError):
            a.create_partitions({"no-such-topic": NewPartitions(3)})
        with pytest.raises(kafka.errors.InvalidReplicationAssignmentError):
            a.create_partitions({"grow": NewPartitions(3, [[999]])})  # a broker that is not us
        a.create_partitions({"grow": NewPartitions(4)}, validate_only=True)
        assert len(a.describe_topics(["grow"])[0]["partitions"]) == 2
        a.create_partitions({"grow": NewPartitions(4)})
        assert len(a.describe_topics(["grow"])[0]["partitions"]) == 4
        p.close(5)
        # A new producer's metadata shows the new partitions, and it can write to them.
        p = producer(kafka, broker.kafka_address)
        p.send("grow", value=b"after", partition=3)
        p.flush(10)
        p.close(5)
    finally:
        a.close()
    assert [r.value for r in consume_all(kafka, broker.kafka_address, "grow", 1, partition=3)] == [b"after"]
    assert [r.value for r in consume_all(kafka, broker.kafka_address, "grow", 1, partition=1)] == [b"before"]


def test_data_survives_sigterm_restart(kafka, tmp_path):
    data_dir = tmp_path / "data"
    with broker_process(tmp_path, data_dir=data_dir) as first:
        p = producer(kafka, first.kafka_address, acks="all", linger_ms=5)
        for i in range(2000):
            p.send("durable", key=b"%d" % i, value=b"payload-%d" % i)
        p.flush(10)
        p.close(5)
        assert first.stop() == 0
    with broker_process(tmp_path, data_dir=data_dir) as second:
        records = consume_all(kafka, second.kafka_address, "durable", 2000)
        assert [(r.key, r.value) for r in records] == [(b"%d" % i, b"payload-%d" % i) for i in range(2000)]


def raw_fetch(address: tuple[str, int], topic: str, offset: int) -> dict:
    """One Fetch v11 over a blocking socket; returns the partition's response."""
    body = codec.encode(FETCH.request, 11, {"max_wait_ms": 0, "min_bytes": 1, "max_bytes": 1 << 20, "topics": [
        {"topic": topic, "partitions": [{"partition": 0, "fetch_offset": offset, "partition_max_bytes": 1 << 20}]}]})
    with socket.create_connection(address, timeout=5) as sock:
        sock.sendall(encode_request(1, 11, 1, "raw", body, flexible_header=False))
        data = b""
        while len(data) < 4 or len(data) < 4 + int.from_bytes(data[:4], "big"):
            chunk = sock.recv(65536)
            assert chunk, "connection closed"
            data += chunk
    _, at = decode_response_header(data[4:], False)
    return codec.decode(FETCH.response, 11, data[4 + at:])["responses"][0]["partitions"][0]


def test_retention_deletes_old_segments(kafka, tmp_path):
    from kafka.admin import NewTopic

    config = tmp_path / "broker.toml"
    config.write_text("maintenance_interval_ms = 100\n")
    with broker_process(tmp_path, "--config", str(config)) as running:
        a = admin(kafka, running.kafka_address)
        a.create_topics([NewTopic("short", 1, 1, topic_configs={"segment.bytes": "1024", "retention.ms": "2000"})])
        a.close()
        # Old timestamps: retention judges a segment by its newest record's timestamp.
        old = int(time.time() * 1000) - 3_600_000
        p = producer(kafka, running.kafka_address, acks="all", batch_size=0)
        for i in range(20):
            p.send("short", value=b"x" * 600, timestamp_ms=old).get(10)  # one batch per segment
        p.close(5)
        c = consumer(kafka, running.kafka_address)
        tp = kafka.TopicPartition("short", 0)
        deadline = time.monotonic() + 10
        while c.beginning_offsets([tp])[tp] == 0 and time.monotonic() < deadline:
            time.sleep(0.1)
        log_start = c.beginning_offsets([tp])[tp]
        c.close()
        assert log_start > 0, "retention did not delete any segment"
        assert any(line.get("event") == "segment_deleted" for line in running.log_lines())
        # Below the new log start: Kafka's OFFSET_OUT_OF_RANGE ...
        below = raw_fetch(running.kafka, "short", 0)
        assert below["error_code"] == ErrorCode.OFFSET_OUT_OF_RANGE
        assert below["log_start_offset"] == log_start
        # ... which kafka-python answers by resetting to the earliest offset still there.
        records = consume_all(kafka, running.kafka_address, "short", 20 - log_start, offset=0,
                              auto_offset_reset="earliest")
        assert records and records[0].offset == log_start
