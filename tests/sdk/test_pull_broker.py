"""The pull-mode SDK against a real ``dualmq serve``: produce/consume, seeks, admin, dead letters,
groups and idempotence, plus interop with kcat and kafka-python.

Features the broker may not serve yet (groups, InitProducerId) are probed through ApiVersions:
those tests skip with the missing API's name and run by themselves once the broker has it.
"""

from __future__ import annotations

import subprocess
import time

import pytest
import trio

from dualmq.errors import DualmqError, KafkaError, OffsetOutOfRange
from dualmq.pull import Admin, Consumer, Producer, partition_for_key
from tests.support import KAFKA_PYTHON_IMPORT_WARNING, broker_process, require_binary, require_module
from wire.errors import LocalProtocolError

pytestmark = [
    pytest.mark.timeout(120),
    # kafka-python 3.0 loads its schemas with a deprecated importlib.resources call.
    pytest.mark.filterwarnings(KAFKA_PYTHON_IMPORT_WARNING),
]


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    with broker_process(tmp_path_factory.mktemp("pull-sdk")) as running:
        yield running


@pytest.fixture(scope="module")
def api_keys(broker) -> frozenset[int]:
    """The API keys the broker advertises (probed once, outside any trio run)."""
    async def probe() -> frozenset[int]:
        async with Admin(broker.kafka_address, request_timeout_ms=10_000, client_id="probe") as admin:
            return frozenset(await admin.api_versions())

    return trio.run(probe)


def require_api(api_keys: frozenset[int], api_key: int, name: str) -> None:
    """Skip unless the broker advertises ``api_key`` (the skip reason names the API)."""
    if api_key not in api_keys:
        pytest.skip(f"broker does not serve {name} (API key {api_key}) yet")


def require_groups(api_keys: frozenset[int]) -> None:
    for key, name in ((10, "FindCoordinator"), (11, "JoinGroup"), (14, "SyncGroup"), (12, "Heartbeat"),
                      (8, "OffsetCommit"), (9, "OffsetFetch")):
        require_api(api_keys, key, name)


async def produce_all(address: str, topic: str, records: list[tuple[bytes | None, bytes]], **options) -> list:
    async with Producer(address, **options) as producer:
        deliveries = [await producer.enqueue(topic, value, key=key, headers=[("n", str(i).encode())])
                      for i, (key, value) in enumerate(records)]
        await producer.flush()
        return [d.result() for d in deliveries]


async def consume_n(consumer: Consumer, count: int, timeout: float = 20) -> list:
    records = []
    with trio.fail_after(timeout):
        async for record in consumer:
            records.append(record)
            if len(records) == count:
                break
    return records


# --- produce / consume ------------------------------------------------------------------------------

@pytest.mark.parametrize("compression", ["none", "gzip", "snappy", "lz4", "zstd"])
async def test_round_trip_every_codec(broker, compression: str) -> None:
    address, topic = broker.kafka_address, f"codec-{compression}"
    async with Admin(address) as admin:
        await admin.create_topics(topic, partitions=3)
    sent = [(f"key-{i % 17}".encode(), f"value-{i}".encode() * 3) for i in range(500)]
    results = await produce_all(address, topic, sent, compression=compression, linger_ms=20)
    async with Consumer(address, auto_offset_reset="earliest") as consumer:
        consumer.assign([(topic, p) for p in range(3)])
        got = await consume_n(consumer, len(sent))
    assert sorted((r.key, r.value) for r in got) == sorted(sent)
    for record in got:
        index = int(record.header("n"))
        assert results[index] == (record.partition, record.offset)
        assert record.partition == partition_for_key(record.key, 3)
    by_partition = {}
    for record in got:  # order within each partition is send order
        by_partition.setdefault(record.partition, []).append(int(record.header("n")))
    assert all(ns == sorted(ns) for ns in by_partition.values())


@pytest.mark.parametrize("acks", [0, 1, "all"])
async def test_acks_settings(broker, acks) -> None:
    topic = f"acks-{acks}"
    results = await produce_all(broker.kafka_address, topic, [(None, b"x%d" % i) for i in range(50)], acks=acks)
    if acks == 0:
        assert all(offset == -1 for _, offset in results)
    else:
        assert sorted(offset for _, offset in results) == list(range(50))
    async with Consumer(broker.kafka_address, auto_offset_reset="earliest") as consumer:
        consumer.assign([(topic, 0)])
        assert [r.value for r in await consume_n(consumer, 50)] == [b"x%d" % i for i in range(50)]


async def test_send_returns_partition_and_offset_and_null_keys_stick(broker) -> None:
    async with Admin(broker.kafka_address) as admin:
        await admin.create_topics("sticky", partitions=4)
    async with Producer(broker.kafka_address, linger_ms=50) as producer:
        first = await producer.send("sticky", b"a")
        second = await producer.send("sticky", b"b", partition=2)
        assert second == (2, 0)
        deliveries = [await producer.enqueue("sticky", b"c%d" % i) for i in range(10)]
        await producer.flush()
        assert len({d.result()[0] for d in deliveries}) == 1  # one sticky batch
    assert first[1] == 0


async def test_large_batches_of_tiny_records_and_a_bad_value(broker) -> None:
    # Thousands of records per batch take offset deltas past the encoder's 2048-entry varint
    # table; a value that cannot be encoded fails its own call and nothing else.
    topic, count = "tiny-records", 5000
    async with Producer(broker.kafka_address, linger_ms=50, batch_bytes=1 << 20) as producer:
        await producer.partitions_for(topic)
        with pytest.raises(LocalProtocolError):
            producer.send_nowait(topic, "not bytes")
        deliveries = [await producer.enqueue(topic, b"%d" % i) for i in range(count)]
        with pytest.raises(LocalProtocolError):
            await producer.send(topic, 42)
        last = await producer.send(topic, b"last", timestamp_ms=1_700_000_000_000)
    assert [d.result() for d in deliveries] == [(0, i) for i in range(count)]
    assert last == (0, count)
    async with Consumer(broker.kafka_address, auto_offset_reset="earliest") as consumer:
        consumer.assign([(topic, 0)])
        got = await consume_n(consumer, count + 1)
    assert [r.value for r in got] == [b"%d" % i for i in range(count)] + [b"last"]
    assert got[-1].timestamp == 1_700_000_000_000



async def test_a_full_buffer_pushes_back_and_loses_nothing(broker) -> None:
    # buffer_bytes is handed out per batch (an open batch holds batch_bytes): four batches'
    # worth fills it, send_nowait then refuses, and enqueue waits for space instead.
    topic = "back-pressure"
    async with Producer(broker.kafka_address, linger_ms=1, batch_bytes=1024, buffer_bytes=4096) as producer:
        await producer.partitions_for(topic)
        deliveries = []
        with pytest.raises(trio.WouldBlock):
            for i in range(1000):  # 100 KB: far more than the buffer
                deliveries.append(producer.send_nowait(topic, b"%04d" % i + b"v" * 96))
        assert 16 <= len(deliveries) < 100  # about four batches of nine records
        for i in range(len(deliveries), 1000):
            deliveries.append(await producer.enqueue(topic, b"%04d" % i + b"v" * 96))
        await producer.flush()
    assert [d.result() for d in deliveries] == [(0, i) for i in range(1000)]


async def test_a_tight_enqueue_loop_can_be_cancelled_and_still_lets_batches_out(broker) -> None:
    # enqueue checkpoints once per batch rather than per record: a loop that never awaits
    # anything else must still be cancellable, and its records must still leave meanwhile.
    topic = "tight-loop"
    async with Producer(broker.kafka_address, linger_ms=1, batch_bytes=4096) as producer:
        await producer.partitions_for(topic)
        deliveries = []
        with trio.move_on_after(0.5) as scope:
            while len(deliveries) < 5_000_000:  # bounded; the cancel scope ends it long before
                deliveries.append(await producer.enqueue(topic, b"v" * 100))
        assert scope.cancelled_caught
        assert any(d.done() for d in deliveries)  # the sender ran while the loop did
        await producer.flush()
    assert [d.result() for d in deliveries] == [(0, i) for i in range(len(deliveries))]

# --- seeks, positions, resets ----------------------------------------------------------------------

async def test_seek_variants(broker) -> None:
    address, topic, tp = broker.kafka_address, "seeks", ("seeks", 0)
    # Recent timestamps: records older than retention.ms (7 days) may be rolled away by the
    # broker's next maintenance pass (every 5 s), which made an old fixed date flaky.
    base = time.time_ns() // 1_000_000 - 60_000
    async with Producer(address) as producer:
        for i in range(10):
            await producer.send(topic, b"%d" % i, timestamp_ms=base + i * 1000)
    async with Consumer(address, auto_offset_reset="latest") as consumer:
        consumer.assign([tp])
        assert await consumer.position(tp) == 10
        consumer.seek_to_beginning()
        assert [r.value for r in await consume_n(consumer, 3)] == [b"0", b"1", b"2"]
        assert await consumer.position(tp) == 3
        consumer.seek(tp, 7)
        assert (await consume_n(consumer, 1))[0].offset == 7
        await consumer.seek_to_timestamp(base + 4500)
        assert (await consume_n(consumer, 1))[0].value == b"5"
        consumer.seek_to_end()
        assert await consumer.position(tp) == 10
        # pause/resume: nothing from a paused partition, then it continues where it was
        consumer.seek(tp, 2)
        consumer.pause(tp)
        with trio.move_on_after(1.0) as idle:
            await consume_n(consumer, 1)
        assert idle.cancelled_caught
        consumer.resume(tp)
        assert (await consume_n(consumer, 1))[0].offset == 2


async def test_offset_out_of_range_policies(broker) -> None:
    address, tp = broker.kafka_address, ("oor", 0)
    await produce_all(address, "oor", [(None, b"a"), (None, b"b")])
    async with Consumer(address, auto_offset_reset="earliest") as consumer:
        consumer.assign([tp])
        consumer.seek(tp, 1000)
        assert (await consume_n(consumer, 1))[0].offset == 0
    async with Consumer(address, auto_offset_reset="none") as consumer:
        consumer.assign([tp])
        consumer.seek(tp, 1000)
        with pytest.raises(OffsetOutOfRange):
            await consume_n(consumer, 1)


# --- admin -----------------------------------------------------------------------------------------------

async def test_admin_topics(broker) -> None:
    async with Admin(broker.kafka_address) as admin:
        await admin.create_topics(["adm-a", "adm-b"], partitions=2, config={"retention.ms": "3600000"})
        with pytest.raises(KafkaError) as info:
            await admin.create_topics("adm-a")
        assert info.value.code.name == "TOPIC_ALREADY_EXISTS"
        await admin.create_topics("adm-a", exist_ok=True)
        assert {"adm-a", "adm-b"} <= set(await admin.list_topics())
        await produce_all(broker.kafka_address, "adm-a", [(b"k", b"v")] * 5)
        (described,) = await admin.describe_topics("adm-a")
        assert [p.partition for p in described.partitions] == [0, 1]
        assert described.messages == 5
        assert all(p.log_start_offset == 0 for p in described.partitions)
        await admin.delete_topics("adm-b")
        assert "adm-b" not in await admin.list_topics()
        await admin.delete_topics("adm-b", missing_ok=True)
        # Growing: never to the same or fewer partitions; validate_only changes nothing.
        with pytest.raises(KafkaError) as info:
            await admin.create_partitions("adm-a", 2)
        assert info.value.code.name == "INVALID_PARTITIONS" and "2 partitions" in str(info.value)
        await admin.create_partitions("adm-a", 3, validate_only=True)
        assert len((await admin.describe_topics("adm-a"))[0].partitions) == 2
        await admin.create_partitions("adm-a", 3)
        (grown,) = await admin.describe_topics("adm-a")
        assert [p.partition for p in grown.partitions] == [0, 1, 2] and grown.messages == 5


async def test_admin_api_versions_match_what_kafka_python_sees(broker) -> None:
    kafka = require_module("kafka", "kafka-python")
    async with Admin(broker.kafka_address) as admin:
        ours = await admin.api_versions()
        with pytest.raises(DualmqError, match="not in the cluster metadata"):
            await admin.api_versions(node=12345)
    assert {0, 1, 3, 18} <= set(ours)  # Produce, Fetch, Metadata, ApiVersions
    assert all(0 <= low <= high for low, high in ours.values())
    client = kafka.KafkaAdminClient(bootstrap_servers=broker.kafka_address, request_timeout_ms=10_000)
    try:
        theirs = {int(key): tuple(versions) for key, versions in client.api_versions().items()}
    finally:
        client.close()
    assert ours == theirs


# --- dead letters ------------------------------------------------------------------------------------------

async def test_dead_letters(broker) -> None:
    address = broker.kafka_address
    await produce_all(address, "dlq-src", [(b"k%d" % i, b"%d" % i) for i in range(30)])
    poison = {b"4", b"17", b"25"}
    calls: dict[bytes, int] = {}
    processed: list[bytes] = []

    async def handler(record) -> None:
        calls[record.value] = calls.get(record.value, 0) + 1
        if record.value in poison:
            raise ValueError(f"cannot handle {record.value!r}")
        processed.append(record.value)

    async with Consumer(address, auto_offset_reset="earliest") as consumer:
        consumer.assign([("dlq-src", 0)])
        stats = await consumer.consume(handler, retries=2, backoff=0.01, dead_letter_topic="dlq-src.dlq",
                                       max_records=30)
    assert stats.processed == 27 and stats.dead_lettered == 3 and stats.retries == 6
    assert sorted(processed) == sorted({b"%d" % i for i in range(30)} - poison)  # each exactly once
    assert all(calls[p] == 3 for p in poison)
    async with Consumer(address, auto_offset_reset="earliest") as consumer:
        consumer.assign([("dlq-src.dlq", 0)])
        letters = await consume_n(consumer, 3)
    assert [r.value for r in letters] == [b"4", b"17", b"25"]
    first = letters[0]
    assert first.key == b"k4"
    assert first.header("dlq.error") == b"ValueError: cannot handle b'4'"
    assert first.header("dlq.attempts") == b"3"
    assert first.header("dlq.origin.topic") == b"dlq-src"
    assert first.header("dlq.origin.partition") == b"0"
    assert first.header("dlq.origin.offset") == b"4"
    assert first.header("n") == b"4"  # the record's own headers travel along


# --- interop --------------------------------------------------------------------------------------------------

KEYS = [f"user-{i}".encode() for i in range(40)]


async def test_keys_land_where_kafka_python_and_kcat_expect(broker) -> None:
    kafka = require_module("kafka", "kafka-python")
    kcat = require_binary("kcat", "kcat")
    address, topic = broker.kafka_address, "keyed-interop"
    async with Admin(address) as admin:
        await admin.create_topics(topic, partitions=6)
        await admin.create_topics(topic + "-kp", partitions=6)
    await produce_all(address, topic, [(key, b"v") for key in KEYS])
    # Where kafka-python's own producer (DefaultPartitioner, murmur2) puts the same keys.
    producer = kafka.KafkaProducer(bootstrap_servers=address, enable_idempotence=False)
    try:
        expected = {key: producer.send(topic + "-kp", b"v", key=key).get(timeout=30).partition for key in KEYS}
    finally:
        producer.close()
    assert len(set(expected.values())) > 1
    # kcat (librdkafka) reads them: key and partition per record.
    output = subprocess.run([kcat, "-C", "-b", address, "-t", topic, "-e", "-q", "-f", "%k %p\n"],
                            capture_output=True, timeout=60, check=True).stdout.decode()
    seen = dict(line.split(" ") for line in output.splitlines() if line)
    assert {k.encode(): int(p) for k, p in seen.items()} == expected
    # kafka-python reads them too.
    consumer = kafka.KafkaConsumer(bootstrap_servers=address, auto_offset_reset="earliest",
                                   consumer_timeout_ms=5000, enable_auto_commit=False)
    try:
        consumer.assign([kafka.TopicPartition(topic, p) for p in range(6)])
        got = {m.key: m.partition for m in consumer}
    finally:
        consumer.close()
    assert got == expected


async def test_sdk_reads_what_kafka_python_and_kcat_wrote(broker) -> None:
    kafka = require_module("kafka", "kafka-python")
    kcat = require_binary("kcat", "kcat")
    address, topic = broker.kafka_address, "foreign-writers"
    async with Admin(address) as admin:
        await admin.create_topics(topic, partitions=1)
    producer = kafka.KafkaProducer(bootstrap_servers=address, compression_type="gzip", enable_idempotence=False)
    try:
        for i in range(20):
            producer.send(topic, b"kp-%d" % i, key=b"k")
        producer.flush(30)
    finally:
        producer.close()
    lines = "\n".join(f"kcat-{i}" for i in range(20)).encode()
    subprocess.run([kcat, "-P", "-b", address, "-t", topic, "-z", "snappy"], input=lines, timeout=60, check=True)
    async with Consumer(address, auto_offset_reset="earliest") as consumer:
        consumer.assign([(topic, 0)])
        values = [r.value for r in await consume_n(consumer, 40)]
    assert values[:20] == [b"kp-%d" % i for i in range(20)]
    assert values[20:] == [b"kcat-%d" % i for i in range(20)]


# --- features waiting for the broker: idempotence, groups ----------------------------------------------

async def test_idempotent_producer(broker, api_keys) -> None:
    require_api(api_keys, 22, "InitProducerId")
    async with Producer(broker.kafka_address, idempotence=True) as producer:
        assert producer.idempotent and producer.producer_id >= 0
        results = [await producer.send("idem", b"%d" % i) for i in range(20)]
    assert [offset for _, offset in results] == list(range(20))


async def test_group_consumers_split_partitions_and_commit(broker, api_keys) -> None:
    require_groups(api_keys)
    address, topic, group = broker.kafka_address, "grp-split", "g-split"
    async with Admin(address) as admin:
        await admin.create_topics(topic, partitions=4)
    await produce_all(address, topic, [(b"k%d" % i, b"%d" % i) for i in range(200)])
    assigned: dict[str, list] = {}
    seen: list = []

    async def run(name: str, stop: trio.Event) -> None:
        async with Consumer(address, group_id=group, topics=[topic], auto_offset_reset="earliest",
                            heartbeat_interval_ms=300, session_timeout_ms=10_000,
                            on_assigned=lambda tps: assigned.__setitem__(name, tps)) as consumer:
            with trio.move_on_after(30):
                while not stop.is_set():
                    with trio.move_on_after(0.3):
                        record = await consumer.__anext__()
                        seen.append((name, record.partition, record.offset))
            await consumer.commit()

    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(run, "a", stop)
        nursery.start_soon(run, "b", stop)
        with trio.fail_after(40):
            while not (len({(p, o) for _, p, o in seen}) >= 200 and len(assigned) == 2
                       and sum(len(v) for v in assigned.values()) == 4):
                await trio.sleep(0.1)
        stop.set()
    assert sorted(tp for tps in assigned.values() for tp in tps) == [(topic, p) for p in range(4)]
    async with Admin(address) as admin:
        description = await admin.describe_group(group)
        assert description.total_lag == 0
        # Both members left: the group can go, and its commits with it.
        await admin.delete_group(group)
        assert group not in [g.group_id for g in await admin.list_groups()]
        assert await admin.committed_offsets(group, [(topic, 0)]) == {(topic, 0): None}
        with pytest.raises(KafkaError) as info:
            await admin.delete_group(group)
        assert info.value.code.name == "GROUP_ID_NOT_FOUND"
        await admin.delete_group(group, missing_ok=True)


async def test_a_rebalance_that_keeps_a_partition_skips_none_of_its_fetched_records(broker, api_keys) -> None:
    # Regression: a rebalance dropped the records fetched but not yet returned, while the fetch
    # position stayed after them; the partition, kept by the same member, then went on from
    # there and those records were never returned (and a commit would have skipped them).
    require_groups(api_keys)
    address, topic, group = broker.kafka_address, "grp-kept", "g-kept"
    async with Producer(address, linger_ms=0) as producer:
        for i in range(20):  # one batch per record: one fetch brings many batches
            await producer.send(topic, b"%d" % i)
        await producer.send("grp-kept-other", b"-")
    async with Consumer(address, group_id=group, topics=[topic], auto_offset_reset="earliest",
                        heartbeat_interval_ms=100, enable_auto_commit=False) as keeper:
        with trio.fail_after(30):
            values = [int((await keeper.__anext__()).value)]
            # A second member (of another topic, so ours stays with the keeper) joins: a
            # rebalance, noticed by the keeper's heartbeat while 19 fetched records wait.
            async with Consumer(address, group_id=group, topics=["grp-kept-other"],
                                auto_offset_reset="earliest") as newcomer, trio.open_nursery() as nursery:
                nursery.start_soon(newcomer.__anext__)  # joining happens while iterating
                while not keeper._member.needs_rejoin:
                    await trio.sleep(0.02)
                while len(values) < 20:
                    values.append(int((await keeper.__anext__()).value))
                nursery.cancel_scope.cancel()
    assert values == list(range(20))


async def test_group_leader_notices_new_partitions_and_rebalances(broker, api_keys) -> None:
    # After CreatePartitions the group's leader (at its next metadata look) rejoins, so the
    # new partitions get an owner and their records are read, as Kafka's consumers do.
    require_groups(api_keys)
    address, topic, group = broker.kafka_address, "grp-grow", "g-grow"
    async with Admin(address) as admin:
        await admin.create_topics(topic, partitions=1)
    assigned: list = []
    async with Consumer(address, group_id=group, topics=[topic], auto_offset_reset="earliest",
                        metadata_max_age_ms=200, heartbeat_interval_ms=300,
                        on_assigned=lambda tps: assigned.append(sorted(tps))) as consumer:
        await produce_all(address, topic, [(None, b"first")])
        assert [r.value for r in await consume_n(consumer, 1)] == [b"first"]
        async with Admin(address) as admin:
            await admin.create_partitions(topic, 3)
        async with Producer(address) as producer:
            for partition in (1, 2):
                await producer.send(topic, b"new-%d" % partition, partition=partition)
        got = await consume_n(consumer, 2)
    assert sorted((r.partition, r.value) for r in got) == [(1, b"new-1"), (2, b"new-2")]
    assert assigned[0] == [(topic, 0)] and assigned[-1] == [(topic, 0), (topic, 1), (topic, 2)]


async def test_group_shared_with_kcat(broker, api_keys) -> None:
    require_groups(api_keys)
    kcat = require_binary("kcat", "kcat")
    address, topic, group = broker.kafka_address, "grp-kcat", "g-kcat"
    async with Admin(address) as admin:
        await admin.create_topics(topic, partitions=4)
    process = subprocess.Popen([kcat, "-b", address, "-G", group, "-q", "-o", "beginning", "-X",
                                "partition.assignment.strategy=range", topic],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        mine: list = []
        async with Consumer(address, group_id=group, topics=[topic], heartbeat_interval_ms=300,
                            on_assigned=lambda tps: mine.append(tps)) as consumer:
            with trio.fail_after(60):
                while True:
                    with trio.move_on_after(0.5):
                        await consumer.__anext__()
                    if mine and len(mine[-1]) == 2:
                        break
            async with Admin(address) as admin:
                description = await admin.describe_group(group)
            owned = sorted(tp for m in description.members for tp in m.assignment)
            assert owned == [(topic, p) for p in range(4)]
            assert len(description.members) == 2
    finally:
        process.terminate()
        process.wait(10)


async def test_idempotent_producer_pipelines_without_out_of_order_retries(broker, api_keys) -> None:
    # Regression: with several Produce requests in flight, the task that wrote a request was
    # whichever trio happened to run first (one that waited for the connection to open lost
    # its place to one that found it open), so sequences reached the broker out of order and
    # were refused and retried (OUT_OF_ORDER_SEQUENCE_NUMBER), record order preserved only by
    # luck of the retries. Small batches and no linger put many batches in flight.
    require_api(api_keys, 22, "InitProducerId")
    # Five producers of 10k records each: the reordering was likeliest while a producer's
    # connection was being opened, so each fresh producer is another chance to catch it.
    for round_ in range(5):
        topic, count = f"idem-pipelined-{round_}", 10_000
        async with Producer(broker.kafka_address, idempotence=True, max_in_flight=5, linger_ms=0,
                            batch_bytes=16 * 1024) as producer:
            deliveries = [await producer.enqueue(topic, b"%d" % i) for i in range(count)]
            await producer.flush()
        assert producer.retries == 0, f"round {round_}: {producer.retries} batches were retried"
        assert [delivery.result() for delivery in deliveries] == [(0, i) for i in range(count)]
