"""kafka-python 3.0 consumer groups and its default (idempotent) producer against ``dualmq serve``.

* ``KafkaConsumer(group_id=…)``: consume, commit, close; a new consumer resumes from the
  committed offsets; after a broker restart (SIGTERM) it still does — commits are durable.
* Two groups on one topic each receive every message (fan-out across groups).
* The default producer (``enable_idempotence=True``: InitProducerId, sequence numbers)
  produces 100,000 messages; a raw Produce re-sending an already acknowledged batch byte for
  byte is answered with the batch's *original* offset and appends nothing — also after a
  broker restart, when the producer state has been rebuilt from the log.
"""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest

from tests.support import KAFKA_PYTHON_NOISE, broker_process, require_module
from wire.kafka import codec
from wire.kafka.errors import ErrorCode
from wire.kafka.framing import decode_response_header, encode_request
from wire.kafka.batch import parse_header, split_batches
from wire.kafka.messages.produce_fetch import PRODUCE

pytestmark = [
    pytest.mark.interop,
    *KAFKA_PYTHON_NOISE,
]

FAST_GROUPS = "[kafka]\ngroup_initial_rebalance_delay_ms = 100\n"


@pytest.fixture(scope="module")
def kafka():
    return require_module("kafka", "kafka-python")


def config_file(tmp_path: Path) -> str:
    path = tmp_path / "broker.toml"
    path.write_text(FAST_GROUPS)
    return str(path)


def group_consumer(kafka, address: str, group: str, topic: str):
    return kafka.KafkaConsumer(topic, bootstrap_servers=address, group_id=group, auto_offset_reset="earliest",
                               enable_auto_commit=False, session_timeout_ms=6000, heartbeat_interval_ms=1000,
                               request_timeout_ms=10000)


def take(consumer, count: int, timeout: float = 20.0) -> list:
    """Poll until exactly ``count`` records were returned (``max_records`` stops overshoot)."""
    records = []
    deadline = time.monotonic() + timeout
    while len(records) < count and time.monotonic() < deadline:
        for batch in consumer.poll(timeout_ms=300, max_records=count - len(records)).values():
            records.extend(batch)
    return records


def produce(kafka, address: str, topic: str, count: int, **options) -> None:
    producer = kafka.KafkaProducer(bootstrap_servers=address, request_timeout_ms=10000, **options)
    try:
        for i in range(count):
            producer.send(topic, key=b"%d" % i, value=b"v%06d" % i)
        producer.flush(30)
    finally:
        producer.close(5)


def create_topic(kafka, address: str, name: str, partitions: int) -> None:
    from kafka.admin import NewTopic

    admin = kafka.KafkaAdminClient(bootstrap_servers=address, request_timeout_ms=10000)
    try:
        admin.create_topics([NewTopic(name, partitions, 1)])
    finally:
        admin.close()


def test_group_resumes_from_committed_offsets_after_consumer_and_broker_restart(kafka, tmp_path):
    data_dir = tmp_path / "data"
    config = config_file(tmp_path)
    with broker_process(tmp_path, "--config", config, data_dir=data_dir) as broker:
        address = broker.kafka_address
        create_topic(kafka, address, "resume", 3)
        produce(kafka, address, "resume", 1000)
        c = group_consumer(kafka, address, "rg", "resume")
        first = take(c, 600)
        c.commit()
        committed = {tp: c.committed(tp) for tp in c.assignment()}
        c.close()
        assert len(first) == 600
        assert sum(committed.values()) == 600

        c = group_consumer(kafka, address, "rg", "resume")
        second = take(c, 200)
        c.commit()
        c.close()
        assert len(second) == 200
        assert not {r.value for r in first} & {r.value for r in second}
        assert broker.stop() == 0

    with broker_process(tmp_path, "--config", config, data_dir=data_dir) as broker:
        c = group_consumer(kafka, broker.kafka_address, "rg", "resume")
        third = take(c, 200)
        extra = take(c, 1, timeout=1.0)
        c.close()
    values = [r.value for r in first + second + third]
    assert not extra
    assert sorted(values) == [b"v%06d" % i for i in range(1000)]


def test_admin_deletes_only_an_empty_group_and_its_commits(kafka, tmp_path):
    with broker_process(tmp_path, "--config", config_file(tmp_path)) as broker:
        address = broker.kafka_address
        create_topic(kafka, address, "gone", 1)
        produce(kafka, address, "gone", 10)
        c = group_consumer(kafka, address, "doomed", "gone")
        assert len(take(c, 10)) == 10
        c.commit()
        admin = kafka.KafkaAdminClient(bootstrap_servers=address, request_timeout_ms=10000)
        try:
            # A member is still in the group: Kafka (and we) refuse. (kafka-python 3 answers
            # {group: error name}, with "OK" for success.)
            assert admin.delete_groups(["doomed"]) == {"doomed": "NonEmptyGroupError"}
            c.close()
            assert admin.delete_groups(["doomed"]) == {"doomed": "OK"}
            assert admin.delete_groups(["doomed"]) == {"doomed": "GroupIdNotFoundError"}
            assert "doomed" not in str(admin.list_groups())
        finally:
            admin.close()
        # Its commits went with it: a consumer under the same name starts over.
        c = group_consumer(kafka, address, "doomed", "gone")
        assert len(take(c, 10)) == 10
        c.close()


def test_two_groups_each_receive_every_message(kafka, tmp_path):
    with broker_process(tmp_path, "--config", config_file(tmp_path)) as broker:
        address = broker.kafka_address
        create_topic(kafka, address, "fanout", 2)
        produce(kafka, address, "fanout", 500)
        a = group_consumer(kafka, address, "ga", "fanout")
        b = group_consumer(kafka, address, "gb", "fanout")
        try:
            got_a, got_b = take(a, 500), take(b, 500)
        finally:
            a.close()
            b.close()
        expected = sorted(b"v%06d" % i for i in range(500))
        assert sorted(r.value for r in got_a) == expected
        assert sorted(r.value for r in got_b) == expected


def raw_produce(address: tuple[str, int], topic: str, batch: bytes) -> dict:
    body = codec.encode(PRODUCE.request, 9, {"acks": -1, "timeout_ms": 5000, "topic_data": [
        {"name": topic, "partition_data": [{"index": 0, "records": batch}]}]})
    with socket.create_connection(address, timeout=5) as sock:
        sock.sendall(encode_request(0, 9, 7, "retry", body, flexible_header=True))
        data = b""
        while len(data) < 4 or len(data) < 4 + int.from_bytes(data[:4], "big"):
            chunk = sock.recv(65536)
            assert chunk, "connection closed"
            data += chunk
    _, at = decode_response_header(data[4:], True)
    return codec.decode(PRODUCE.response, 9, data[4 + at:])["responses"][0]["partition_responses"][0]


def stored_batches(data_dir: Path, topic: str) -> list[bytes]:
    batches = []
    for log_file in sorted((data_dir / f"{topic}-0").glob("*.log")):
        batches.extend(bytes(b) for b in split_batches(log_file.read_bytes()))
    return batches


def as_sent(stored: bytes) -> bytes:
    """The batch as the producer sent it: the broker only patched base offset (outside the CRC)."""
    return bytes(8) + stored[8:]


def test_idempotent_producer_100k_and_retried_batch_is_not_appended_twice(kafka, tmp_path):
    data_dir = tmp_path / "data"
    count = 100_000
    with broker_process(tmp_path, data_dir=data_dir) as broker:
        produce(kafka, broker.kafka_address, "idem", count, linger_ms=5)  # idempotence on by default
        batches = stored_batches(data_dir, "idem")
        headers = [parse_header(b) for b in batches]
        assert all(h.producer_id >= 0 and h.producer_epoch == 0 for h in headers)
        assert sum(h.records_count for h in headers) == count
        assert [h.base_sequence for h in headers] == [h.base_offset for h in headers]  # one producer
        last = batches[-1]
        retried = raw_produce(broker.kafka, "idem", as_sent(last))
        assert retried["error_code"] == ErrorCode.NONE
        assert retried["base_offset"] == headers[-1].base_offset
        # A batch further back than the 5 remembered: refused, not appended either.
        old = raw_produce(broker.kafka, "idem", as_sent(batches[-7]))
        assert old["error_code"] == ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER
        assert len(stored_batches(data_dir, "idem")) == len(batches)
        assert broker.stop() == 0

    # After a restart the producer state is rebuilt from the log: still a duplicate.
    with broker_process(tmp_path, data_dir=data_dir) as broker:
        retried = raw_produce(broker.kafka, "idem", as_sent(last))
        assert (retried["error_code"], retried["base_offset"]) == (ErrorCode.NONE, headers[-1].base_offset)
        consumer = kafka.KafkaConsumer(bootstrap_servers=broker.kafka_address, group_id=None,
                                       enable_auto_commit=False, request_timeout_ms=10000)
        tp = kafka.TopicPartition("idem", 0)
        assert consumer.end_offsets([tp])[tp] == count
        consumer.close()
    assert len(stored_batches(data_dir, "idem")) == len(batches)
