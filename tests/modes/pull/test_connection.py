"""Connection-level behaviour: framing limits, closing on protocol errors (that connection
only), responses in request order, acks=0, and long polls that do not block other clients.
"""

from __future__ import annotations

import struct

import trio
from structlog.testing import capture_logs

from tests.modes.pull.raw import pull_broker
from tests.modes.pull.test_golden import ONE_RECORD_BATCH, frame

API_VERSIONS_V0 = bytes.fromhex("0012 0000 00000063 0001 63")


async def assert_still_serving(broker) -> None:
    other = await broker.connect()
    await other.send(frame(API_VERSIONS_V0))
    assert (await other.read_frame())[4:8] == bytes.fromhex("00000063")


async def test_oversized_frame_closes_before_buffering(tmp_path):
    async with pull_broker(tmp_path, max_request_bytes=1024) as broker:
        client = await broker.connect()
        with capture_logs() as logs:
            # Announce a 100 MiB frame, send only the prefix: the server must refuse on the
            # prefix alone, not wait for (and buffer) the body.
            await client.send(struct.pack(">i", 100 * 1024 * 1024))
            await client.expect_closed()
            await trio.sleep(0.05)
        closed = [entry for entry in logs if entry["event"] == "connection_closed"]
        assert closed and "frame size" in closed[0]["reason"]
        assert closed[0]["bytes_in"] == 4
        await assert_still_serving(broker)


async def test_unknown_api_key_closes_only_that_connection(tmp_path):
    async with pull_broker(tmp_path) as broker:
        bystander = await broker.connect()
        client = await broker.connect()
        await client.send(frame(bytes.fromhex("1234 0000 00000001 0001 63")))
        await client.expect_closed()
        await bystander.send(frame(API_VERSIONS_V0))
        assert (await bystander.read_frame())[4:8] == bytes.fromhex("00000063")


async def test_unadvertised_version_closes_connection(tmp_path):
    async with pull_broker(tmp_path) as broker:
        client = await broker.connect()
        # Fetch v3 is below what we advertise (4-12).
        await client.send(frame(bytes.fromhex("0001 0003 00000001 0001 63")))
        await client.expect_closed()
        await assert_still_serving(broker)


async def test_garbage_body_closes_only_that_connection(tmp_path):
    async with pull_broker(tmp_path) as broker:
        client = await broker.connect()
        # Metadata v1 whose topic array claims 1000 entries that are not there.
        await client.send(frame(bytes.fromhex("0003 0001 00000001 0001 63" "000003e8 ff")))
        await client.expect_closed()
        client2 = await broker.connect()
        await client2.send(frame(b"\x00\x03"))  # too short for a request header
        await client2.expect_closed()
        await assert_still_serving(broker)


async def test_acks_zero_gets_no_response(tmp_path):
    async with pull_broker(tmp_path) as broker:
        broker.topics.create("t", 1, now_ms=0)
        client = await broker.connect()
        values = {"acks": 0, "timeout_ms": 1000,
                  "topic_data": [{"name": "t", "partition_data": [{"index": 0, "records": ONE_RECORD_BATCH}]}]}
        _, produce = client.encode(0, 9, values)
        correlation_id, versions = client.encode(18, 0, {})
        await client.send(produce + versions)
        # The first response on the wire is ApiVersions': the produce got none.
        response = await client.read_response(18, 0, correlation_id)
        assert response["error_code"] == 0
        assert broker.topics.partition("t", 0).high_watermark == 1


async def test_pipelined_requests_answered_in_order(tmp_path):
    async with pull_broker(tmp_path) as broker:
        broker.topics.create("t", 1, now_ms=0)
        client = await broker.connect()
        fetch = {"max_wait_ms": 300, "min_bytes": 1, "max_bytes": 1 << 20, "topics": [
            {"topic": "t", "partitions": [{"partition": 0, "fetch_offset": 0, "partition_max_bytes": 1 << 20}]}]}
        first, metadata_1 = client.encode(3, 1, {"topics": None})
        second, fetch_frame = client.encode(1, 11, fetch)
        third, metadata_2 = client.encode(3, 12, {"topics": None})
        start = trio.current_time()
        await client.send(metadata_1 + fetch_frame + metadata_2)
        # The first metadata answer is sent before the fetch starts waiting.
        await client.read_response(3, 1, first)
        assert trio.current_time() - start < 0.25
        # A long poll on this connection never blocks another connection.
        await assert_still_serving(broker)
        assert trio.current_time() - start < 0.25
        response = await client.read_response(1, 11, second)
        assert trio.current_time() - start >= 0.29
        assert response["responses"][0]["partitions"][0]["records"] in (b"", None)
        await client.read_response(3, 12, third)


async def test_long_poll_wakes_on_produce(tmp_path):
    async with pull_broker(tmp_path) as broker:
        broker.topics.create("t", 1, now_ms=0)
        consumer = await broker.connect()
        producer = await broker.connect()
        fetch = {"max_wait_ms": 5000, "min_bytes": 1, "max_bytes": 1 << 20, "topics": [
            {"topic": "t", "partitions": [{"partition": 0, "fetch_offset": 0, "partition_max_bytes": 1 << 20}]}]}
        correlation_id, fetch_frame = consumer.encode(1, 12, fetch)
        start = trio.current_time()
        await consumer.send(fetch_frame)
        await trio.sleep(0.1)
        await producer.call(0, 9, {"acks": 1, "timeout_ms": 1000, "topic_data": [
            {"name": "t", "partition_data": [{"index": 0, "records": ONE_RECORD_BATCH}]}]})
        response = await consumer.read_response(1, 12, correlation_id)
        assert trio.current_time() - start < 2
        assert bytes(response["responses"][0]["partitions"][0]["records"]) == ONE_RECORD_BATCH


async def test_request_fed_one_byte_at_a_time(tmp_path):
    async with pull_broker(tmp_path) as broker:
        client = await broker.connect()
        request = frame(API_VERSIONS_V0)
        for i in range(len(request)):
            await client.send(request[i : i + 1])
            await trio.sleep(0)
        assert (await client.read_frame())[4:8] == bytes.fromhex("00000063")


async def test_max_connections(tmp_path):
    async with pull_broker(tmp_path, max_connections=1) as broker:
        first = await broker.connect()
        await first.send(frame(API_VERSIONS_V0))
        await first.read_frame()
        second = await broker.connect()
        await second.expect_closed()
        await first.send(frame(API_VERSIONS_V0))
        assert (await first.read_frame())[4:8] == bytes.fromhex("00000063")


async def test_failed_acks_zero_produce_closes_the_connection(tmp_path):
    async with pull_broker(tmp_path) as broker:
        client = await broker.connect()
        _, produce = client.encode(0, 9, {"acks": 0, "timeout_ms": 1000, "topic_data": [
            {"name": "missing", "partition_data": [{"index": 0, "records": ONE_RECORD_BATCH}]}]})
        await client.send(produce)
        await client.expect_closed()
