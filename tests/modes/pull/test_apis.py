"""Per-API behaviour through the real listener: the error codes and edge rules of docs/kafka.md
(Produce, Fetch, ListOffsets, "Error codes in one place"), one request at a time with our own
codec on the client side.
"""

from __future__ import annotations

import uuid

from tests.modes.pull.raw import pull_broker
from wire.kafka import compression
from wire.kafka.errors import ErrorCode
from wire.kafka.records import build_batch

TS = 1_700_000_000_000


def batch(count: int = 1, *, ts: int = TS, codec: int = 0, value: bytes = b"v") -> bytes:
    return build_batch([(b"k%d" % i, value, None) for i in range(count)], base_timestamp=ts, compression=codec)


def produce_request(topic: str, records, *, index: int = 0, acks: int = -1) -> dict:
    return {"acks": acks, "timeout_ms": 1000,
            "topic_data": [{"name": topic, "partition_data": [{"index": index, "records": records}]}]}


def partition_result(response: dict) -> dict:
    return response["responses"][0]["partition_responses"][0]


def fetch_request(topic: str, offset: int, *, partitions=(0,), max_bytes=1 << 20, partition_max_bytes=1 << 20,
                  leader_epoch=-1, max_wait_ms=0, session_id=0) -> dict:
    return {"max_wait_ms": max_wait_ms, "min_bytes": 1, "max_bytes": max_bytes, "session_id": session_id,
            "topics": [{"topic": topic, "partitions": [
                {"partition": p, "fetch_offset": offset, "partition_max_bytes": partition_max_bytes,
                 "current_leader_epoch": leader_epoch} for p in partitions]}]}


async def test_produce_assigns_offsets_and_reports_log_start(tmp_path):
    async with pull_broker(tmp_path) as broker:
        broker.topics.create("t", 1, now_ms=0)
        client = await broker.connect()
        first = partition_result(await client.call(0, 9, produce_request("t", batch(3))))
        second = partition_result(await client.call(0, 7, produce_request("t", batch(2))))
        assert (first["error_code"], first["base_offset"]) == (0, 0)
        assert (second["error_code"], second["base_offset"], second["log_start_offset"]) == (0, 3, 0)
        assert first["log_append_time_ms"] == -1


async def test_produce_errors(tmp_path):
    async with pull_broker(tmp_path) as broker:
        broker.topics.create("t", 1, now_ms=0)
        broker.topics.create("small", 1, {"max.message.bytes": "100"}, now_ms=0)
        client = await broker.connect()

        async def code(values, version=9):
            return partition_result(await client.call(0, version, values))["error_code"]

        good = batch()
        corrupt = bytearray(good)
        corrupt[-1] ^= 0xFF
        legacy = bytearray(good)
        legacy[16] = 1
        assert await code(produce_request("t", good), version=2) == ErrorCode.UNSUPPORTED_VERSION
        assert await code(produce_request("t", good, acks=2)) == ErrorCode.INVALID_REQUIRED_ACKS
        assert await code(produce_request("t", good + good)) == ErrorCode.INVALID_RECORD
        assert await code(produce_request("t", b"")) == ErrorCode.INVALID_RECORD
        assert await code(produce_request("t", bytes(legacy))) == ErrorCode.INVALID_RECORD
        assert await code(produce_request("t", bytes(corrupt))) == ErrorCode.CORRUPT_MESSAGE
        assert await code(produce_request("t", good[:-3])) == ErrorCode.CORRUPT_MESSAGE
        assert await code(produce_request("small", batch(5, value=b"x" * 50))) == ErrorCode.MESSAGE_TOO_LARGE
        zstd = batch(codec=compression.ZSTD)
        assert await code(produce_request("t", zstd), version=6) == ErrorCode.UNSUPPORTED_COMPRESSION_TYPE
        assert await code(produce_request("t", zstd), version=7) == ErrorCode.NONE
        assert await code(produce_request("nope", good)) == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
        assert await code(produce_request("t", good, index=1)) == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
        # Only the two valid zstd/plain appends landed.
        assert broker.topics.partition("t", 0).high_watermark == 1


async def test_fsync_always_flushes_before_acknowledging(tmp_path):
    async with pull_broker(tmp_path, log={"fsync": "always"}) as broker:
        broker.topics.create("t", 1, now_ms=0)
        client = await broker.connect()
        assert partition_result(await client.call(0, 9, produce_request("t", batch())))["error_code"] == 0
        log = broker.topics.partition("t", 0)
        assert log.flushed_offset == log.high_watermark == 1


async def test_fetch_errors_and_every_partition_answered(tmp_path):
    async with pull_broker(tmp_path) as broker:
        broker.topics.create("t", 2, now_ms=0)
        client = await broker.connect()
        await client.call(0, 9, produce_request("t", batch()))
        response = await client.call(1, 12, fetch_request("t", 0, partitions=(0, 1, 7)))
        parts = response["responses"][0]["partitions"]
        assert [(p["partition_index"], p["error_code"]) for p in parts] == [
            (0, 0), (1, 0), (7, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION)]
        assert parts[0]["high_watermark"] == parts[0]["last_stable_offset"] == 1
        assert parts[0]["aborted_transactions"] == []

        async def code(**kwargs):
            response = await client.call(1, 12, fetch_request("t", kwargs.pop("offset", 0), **kwargs))
            return response["responses"][0]["partitions"][0]["error_code"]

        assert await code(offset=2) == ErrorCode.OFFSET_OUT_OF_RANGE
        assert await code(offset=-1) == ErrorCode.OFFSET_OUT_OF_RANGE
        assert await code(leader_epoch=0) == ErrorCode.NONE
        assert await code(leader_epoch=5) == ErrorCode.UNKNOWN_LEADER_EPOCH
        assert await code(leader_epoch=-7) == ErrorCode.FENCED_LEADER_EPOCH
        unknown = await client.call(1, 12, fetch_request("other", 0))
        assert unknown["responses"][0]["partitions"][0]["error_code"] == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
        session = await client.call(1, 12, fetch_request("t", 0, session_id=5))
        assert session["error_code"] == ErrorCode.FETCH_SESSION_ID_NOT_FOUND


async def test_fetch_size_limits_keep_the_first_batch(tmp_path):
    async with pull_broker(tmp_path) as broker:
        broker.topics.create("t", 2, now_ms=0)
        client = await broker.connect()
        big = batch(10, value=b"x" * 100)
        for _ in range(3):
            await client.call(0, 9, produce_request("t", big, index=0))
            await client.call(0, 9, produce_request("t", big, index=1))
        # Limits smaller than one batch: the first partition still gets one whole batch (KIP-74),
        # the second nothing.
        response = await client.call(1, 11, fetch_request("t", 0, partitions=(0, 1), max_bytes=10,
                                                         partition_max_bytes=10))
        parts = response["responses"][0]["partitions"]
        assert bytes(parts[0]["records"])[8:] == big[8:]
        assert not parts[1]["records"]
        # A middle offset returns from the batch containing it; partition_max_bytes caps the rest.
        response = await client.call(1, 11, fetch_request("t", 15, partition_max_bytes=2 * len(big)))
        records = bytes(response["responses"][0]["partitions"][0]["records"])
        assert len(records) == 2 * len(big) and records[:8] == (10).to_bytes(8, "big")


async def test_metadata_topic_list_semantics(tmp_path):
    async with pull_broker(tmp_path, auto_create_topics=False) as broker:
        broker.topics.create("a", 2, now_ms=0)
        client = await broker.connect()
        assert [t["name"] for t in (await client.call(3, 0, {"topics": []}))["topics"]] == ["a"]
        assert (await client.call(3, 1, {"topics": []}))["topics"] == []
        assert [t["name"] for t in (await client.call(3, 1, {"topics": None}))["topics"]] == ["a"]
        response = await client.call(3, 12, {"topics": [{"name": "missing"}, {"name": "bad/name"},
                                                         {"name": None, "topic_id": uuid.uuid4()}]})
        assert [t["error_code"] for t in response["topics"]] == [
            ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, ErrorCode.INVALID_TOPIC_EXCEPTION, ErrorCode.UNKNOWN_TOPIC_ID]
        topic_id = uuid.UUID(bytes=broker.topics.get("a").topic_id)
        by_id = await client.call(3, 12, {"topics": [{"name": None, "topic_id": topic_id}]})
        assert by_id["topics"][0]["name"] == "a" and len(by_id["topics"][0]["partitions"]) == 2


async def test_metadata_auto_creates_when_allowed(tmp_path):
    async with pull_broker(tmp_path, num_partitions=3) as broker:
        client = await broker.connect()
        refused = await client.call(3, 4, {"topics": [{"name": "x"}], "allow_auto_topic_creation": False})
        assert refused["topics"][0]["error_code"] == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
        created = await client.call(3, 9, {"topics": [{"name": "x"}], "allow_auto_topic_creation": True})
        topic = created["topics"][0]
        assert topic["error_code"] == 0 and len(topic["partitions"]) == 3
        first = await client.call(3, 10, {"topics": [{"name": "x"}]})
        again = await client.call(3, 12, {"topics": [{"name": "x"}]})
        assert again["topics"][0]["topic_id"] == first["topics"][0]["topic_id"] != uuid.UUID(int=0)


async def test_list_offsets(tmp_path):
    async with pull_broker(tmp_path) as broker:
        broker.topics.create("t", 1, now_ms=0)
        client = await broker.connect()
        await client.call(0, 9, produce_request("t", build_batch(
            [(None, b"a", None), (None, b"b", None)], timestamps=[TS, TS + 10])))
        await client.call(0, 9, produce_request("t", batch(ts=TS + 20)))

        async def lookup(timestamp, version=7):
            response = await client.call(2, version, {"replica_id": -1, "topics": [
                {"name": "t", "partitions": [{"partition_index": 0, "timestamp": timestamp}]}]})
            p = response["topics"][0]["partitions"][0]
            return p["error_code"], p["offset"], p["timestamp"]

        assert await lookup(-1) == (0, 3, -1)
        assert await lookup(-2, version=1) == (0, 0, -1)
        assert await lookup(-3) == (0, 2, TS + 20)
        assert await lookup(TS + 5) == (0, 1, TS + 10)  # exact record inside the first batch
        assert await lookup(TS + 15, version=4) == (0, 2, TS + 20)
        assert await lookup(TS + 99) == (0, -1, -1)


async def test_create_topics_validation(tmp_path):
    async with pull_broker(tmp_path) as broker:
        client = await broker.connect()

        def topic(name, partitions=1, rf=1, configs=()):
            return {"name": name, "num_partitions": partitions, "replication_factor": rf,
                    "configs": [{"name": k, "value": v} for k, v in configs]}

        response = await client.call(19, 7, {"topics": [
            topic("ok", 2, configs=[("retention.ms", "1000"), ("cleanup.policy", "delete")]),
            topic("bad/name"), topic("zero", 0), topic("rf", rf=3),
            topic("conf", configs=[("cleanup.policy", "compact")]), topic("conf2", configs=[("nope", "1")]),
            topic("dflt", -1, -1),
        ]})
        codes = {t["name"]: t["error_code"] for t in response["topics"]}
        assert codes == {"ok": 0, "bad/name": ErrorCode.INVALID_TOPIC_EXCEPTION, "zero": ErrorCode.INVALID_PARTITIONS,
                         "rf": ErrorCode.INVALID_REPLICATION_FACTOR, "conf": ErrorCode.INVALID_CONFIG,
                         "conf2": ErrorCode.INVALID_CONFIG, "dflt": 0}
        ok = response["topics"][0]
        assert ok["num_partitions"] == 2 and ok["topic_id"] == uuid.UUID(bytes=broker.topics.get("ok").topic_id)
        assert {c["name"]: c["value"] for c in ok["configs"]}["retention.ms"] == "1000"
        again = await client.call(19, 2, {"topics": [topic("ok")]})
        assert again["topics"][0]["error_code"] == ErrorCode.TOPIC_ALREADY_EXISTS
        dry = await client.call(19, 4, {"topics": [topic("dry")], "validate_only": True})
        assert dry["topics"][0]["error_code"] == 0 and broker.topics.get("dry") is None


async def test_create_partitions_validation(tmp_path):
    async with pull_broker(tmp_path) as broker:
        broker.topics.create("t", 2, now_ms=0)
        broker.topics.create("u", 1, now_ms=0)
        client = await broker.connect()
        node = broker.config.kafka.node_id

        def grow(name, count, assignments=None):
            return {"name": name, "count": count, "assignments": assignments}

        response = await client.call(37, 3, {"topics": [
            grow("t", 2), grow("nope", 3), grow("u", 3, [{"broker_ids": [node]}]),  # one of two given
            grow("dup", 3), grow("dup", 4),
        ], "timeout_ms": 1000})
        assert [(r["name"], r["error_code"]) for r in response["results"]] == [
            ("t", ErrorCode.INVALID_PARTITIONS), ("nope", ErrorCode.UNKNOWN_TOPIC_OR_PARTITION),
            ("u", ErrorCode.INVALID_REPLICA_ASSIGNMENT), ("dup", ErrorCode.INVALID_REQUEST),
            ("dup", ErrorCode.INVALID_REQUEST)]
        assert "2 partitions" in response["results"][0]["error_message"]
        dry = await client.call(37, 0, {"topics": [grow("t", 3)], "timeout_ms": 1000, "validate_only": True})
        assert dry["results"][0]["error_code"] == 0 and len(broker.topics.get("t").partitions) == 2
        done = await client.call(37, 2, {"topics": [grow("t", 3), grow("u", 3, [{"broker_ids": [node]}] * 2)],
                                         "timeout_ms": 1000})
        assert [r["error_code"] for r in done["results"]] == [0, 0]
        assert [len(broker.topics.get(n).partitions) for n in ("t", "u")] == [3, 3]


async def test_more_partitions_than_the_broker_can_keep_open_is_refused_cleanly(tmp_path):
    # A single request must not use up the broker's file descriptors: it is answered
    # INVALID_PARTITIONS with the reason, and the connection and the broker carry on.
    async with pull_broker(tmp_path) as broker:
        # The real budget comes from the open-file limit (thousands here); a small one keeps
        # the test independent of the machine's ulimit.
        budget = broker.topics.max_total_partitions = 50
        broker.topics.create("t", 1, now_ms=0)
        client = await broker.connect()
        created = await client.call(19, 7, {"topics": [{"name": "huge", "num_partitions": budget + 1,
                                                        "replication_factor": 1, "configs": []}]})
        assert created["topics"][0]["error_code"] == ErrorCode.INVALID_PARTITIONS
        assert "ulimit -n" in created["topics"][0]["error_message"]
        grown = await client.call(37, 3, {"topics": [{"name": "t", "count": budget + 1,
                                                      "assignments": None}], "timeout_ms": 1000})
        assert grown["results"][0]["error_code"] == ErrorCode.INVALID_PARTITIONS
        assert broker.topics.get("huge") is None and len(broker.topics.get("t").partitions) == 1
        metadata = await client.call(3, 12, {"topics": None, "allow_auto_topic_creation": False})
        assert [t["name"] for t in metadata["topics"]] == ["t"]


async def test_delete_topics(tmp_path):
    async with pull_broker(tmp_path) as broker:
        broker.topics.create("a", 1, now_ms=0)
        topic_b = broker.topics.create("b", 1, now_ms=0)
        client = await broker.connect()
        response = await client.call(20, 1, {"topic_names": ["a", "zz"], "timeout_ms": 1000})
        assert [r["error_code"] for r in response["responses"]] == [0, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION]
        response = await client.call(20, 6, {"topics": [{"name": None, "topic_id": uuid.UUID(bytes=topic_b.topic_id)},
                                                        {"name": None, "topic_id": uuid.uuid4()}]})
        assert [(r["name"], r["error_code"]) for r in response["responses"]] == [
            ("b", 0), (None, ErrorCode.UNKNOWN_TOPIC_ID)]
        assert broker.topics.topics() == []


async def test_describe_configs(tmp_path):
    async with pull_broker(tmp_path, log={"retention_ms": 5000}) as broker:
        broker.topics.create("t", 1, {"segment.bytes": "1048576"}, now_ms=0)
        client = await broker.connect()
        response = await client.call(32, 4, {"resources": [
            {"resource_type": 2, "resource_name": "t", "configuration_keys": None},
            {"resource_type": 2, "resource_name": "t", "configuration_keys": ["retention.ms"]},
            {"resource_type": 2, "resource_name": "missing", "configuration_keys": None},
        ]})
        everything, filtered, missing = response["results"]
        configs = {c["name"]: (c["value"], c["config_source"]) for c in everything["configs"]}
        assert configs["segment.bytes"] == ("1048576", 1)  # topic override
        assert configs["retention.ms"] == ("5000", 4)  # from the broker's config file
        assert configs["cleanup.policy"] == ("delete", 5)  # Kafka's default
        assert [c["name"] for c in filtered["configs"]] == ["retention.ms"]
        assert missing["error_code"] == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION


async def test_zstd_batches_need_fetch_v10(tmp_path):
    async with pull_broker(tmp_path) as broker:
        broker.topics.create("t", 1, now_ms=0)
        client = await broker.connect()
        await client.call(0, 9, produce_request("t", batch(codec=compression.ZSTD)))
        old = await client.call(1, 9, fetch_request("t", 0))
        assert old["responses"][0]["partitions"][0]["error_code"] == ErrorCode.UNSUPPORTED_COMPRESSION_TYPE
        new = await client.call(1, 10, fetch_request("t", 0))
        assert new["responses"][0]["partitions"][0]["records"]


async def test_metadata_advertises_configured_or_reached_address(tmp_path):
    async with pull_broker(tmp_path, advertised="kafka.example:19092", node_id=7) as broker:
        client = await broker.connect()
        response = await client.call(3, 1, {"topics": None})
        assert response["brokers"] == [{"node_id": 7, "host": "kafka.example", "port": 19092, "rack": None}]
        assert response["controller_id"] == 7
    # Bound to a wildcard: never advertise 0.0.0.0, but the address the client reached.
    async with pull_broker(tmp_path, listen="0.0.0.0:0") as broker:
        client = await broker.connect()
        response = await client.call(3, 1, {"topics": None})
        assert (response["brokers"][0]["host"], response["brokers"][0]["port"]) == ("127.0.0.1", broker.port)


async def test_long_poll_over_several_partitions_wakes_on_any(tmp_path):
    import trio

    async with pull_broker(tmp_path) as broker:
        broker.topics.create("t", 3, now_ms=0)
        consumer, producer = await broker.connect(), await broker.connect()
        correlation_id, request = consumer.encode(1, 12, fetch_request("t", 0, partitions=(0, 1, 2), max_wait_ms=5000))
        start = trio.current_time()
        await consumer.send(request)
        await trio.sleep(0.05)
        await producer.call(0, 9, produce_request("t", batch(), index=2))
        response = await consumer.read_response(1, 12, correlation_id)
        assert trio.current_time() - start < 2
        parts = response["responses"][0]["partitions"]
        assert [bool(p["records"]) for p in parts] == [False, False, True]


async def test_deleting_a_topic_wakes_its_long_polls(tmp_path):
    import trio

    async with pull_broker(tmp_path) as broker:
        broker.topics.create("t", 1, now_ms=0)
        consumer, admin = await broker.connect(), await broker.connect()
        correlation_id, request = consumer.encode(1, 12, fetch_request("t", 0, max_wait_ms=5000))
        start = trio.current_time()
        await consumer.send(request)
        await trio.sleep(0.05)
        await admin.call(20, 4, {"topic_names": ["t"], "timeout_ms": 1000})
        response = await consumer.read_response(1, 12, correlation_id)
        assert trio.current_time() - start < 2
        assert response["responses"][0]["partitions"][0]["error_code"] == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
