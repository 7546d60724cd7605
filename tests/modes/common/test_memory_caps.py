"""Receive-buffer memory caps: per client, and in total over a listener's connections.

Clients that send most of a large request and then stop hold memory in the broker. Per client
it is capped (RESP ``client-query-buffer-limit``; Kafka's ``socket.request.max.bytes`` is
checked on the size prefix, see ``tests/modes/pull/test_connection.py``); in total it is capped
too (Redis ``maxmemory-clients``, Kafka ``queued.max.request.bytes``): the connection holding
the most is closed — here deliberately *not* the one whose bytes tipped the total over, so
the test shows the choice is by size — and the others finish their requests unharmed.
Sizes are tens of megabytes, with limits configured low to match.
"""

from __future__ import annotations

import trio
import trio.testing
from structlog.testing import capture_logs

from tests.modes.common.servers import TIMEOUT, RespClient, push_broker
from tests.modes.pull.raw import NOW_MS, pull_broker
from wire.kafka.records import build_batch

MB = 1_000_000
MiB = 1 << 20


def publish_head(size: int) -> bytes:
    return b"*3\r\n$7\r\nPUBLISH\r\n$4\r\nbulk\r\n$%d\r\n" % size


async def send_ignoring_reset(client: RespClient, data: bytes) -> None:
    """Send; a server that closes on us mid-way is what some tests expect."""
    try:
        await client.send(data)
    except trio.BrokenResourceError:
        pass


async def wait_for_buffered(monitor: RespClient, at_least: int) -> dict[str, str]:
    """Poll INFO until the broker holds ``at_least`` query-buffer bytes in total."""
    with trio.move_on_after(TIMEOUT):
        while True:
            info = await monitor.info()
            if int(info["query_buffers_bytes"]) >= at_least:
                return info
            await trio.sleep(0.01)
    raise AssertionError(f"the broker never held {at_least} bytes: {info['query_buffers_bytes']}")


async def test_resp_total_over_maxmemory_clients_closes_the_largest_holder():
    async with push_broker(client_query_buffer_limit=64 * MiB, maxmemory_clients=40 * MiB) as address:
        monitor = await RespClient.connect(address)
        subscriber = await RespClient.connect(address)
        await subscriber.send(b"SUBSCRIBE bulk\r\n")
        await subscriber.expect(b"*3\r\n$9\r\nsubscribe\r\n$4\r\nbulk\r\n:1\r\n")
        largest, middle, last = [await RespClient.connect(address) for _ in range(3)]
        sizes = {largest: 20 * MB, middle: 10 * MB, last: 15 * MB}
        held = 0
        with capture_logs() as logs:
            # Each sends all of its PUBLISH but the last byte of the payload and the CRLF.
            for client in (largest, middle):
                await client.send(publish_head(sizes[client]) + b"x" * (sizes[client] - 1))
                held += sizes[client] - 1
                await wait_for_buffered(monitor, held)
            # 30 MB held; 'last' brings the total past 40 MiB while it is still the smaller.
            await client_send_all_but_one(last, sizes[last])
            info = await wait_for_buffered(monitor, sizes[middle] - 1 + sizes[last] - 1)
            assert await largest.read_until_closed() == b""  # closed without a reply, as Redis
        # Each holds its payload so far plus the arguments already parsed ("PUBLISH", "bulk").
        assert int(info["query_buffers_bytes"]) == (sizes[middle] - 1 + 11) + (sizes[last] - 1 + 11)
        assert info["evicted_clients"] == "1"
        [warning] = [entry for entry in logs if entry["event"] == "request_buffer_budget_exceeded"]
        assert warning["peer"] == f"127.0.0.1:{largest.local_port}"
        assert warning["limit"] == "resp.maxmemory_clients" and warning["limit_bytes"] == 40 * MiB
        assert warning["buffered_bytes"] >= sizes[largest] - 1
        assert warning["total_bytes"] > 40 * MiB
        closed = [entry for entry in logs if entry["event"] == "connection_closed"]
        assert len(closed) == 1 and "resp.maxmemory_clients" in closed[0]["reason"]
        # The others finish their requests and are answered; the subscriber gets both.
        for client in (middle, last):
            await client.send(b"x\r\n")
            await client.expect(b":1\r\n")
        for client in (middle, last):
            payload = b"x" * sizes[client]
            await subscriber.expect(b"*3\r\n$7\r\nmessage\r\n$4\r\nbulk\r\n$%d\r\n%b\r\n" % (len(payload), payload))
        newcomer = await RespClient.connect(address)
        await newcomer.send(b"PING\r\n")
        await newcomer.expect(b"+PONG\r\n")
        info = await monitor.info()
        assert info["query_buffers_bytes"] == "0"
        assert info["client_query_buffer_limit_disconnections"] == "0"
        for client in (monitor, subscriber, largest, middle, last, newcomer):
            await client.aclose()


async def client_send_all_but_one(client: RespClient, size: int) -> None:
    await client.send(publish_head(size) + b"x" * (size - 1))


async def test_resp_client_over_client_query_buffer_limit_is_closed():
    async with push_broker(client_query_buffer_limit=1 * MiB) as address:
        bystander = await RespClient.connect(address)
        greedy = await RespClient.connect(address)
        with capture_logs() as logs:
            # 2 MB announced, 1.5 MB sent: over the 1 MiB limit before the request is complete.
            await send_ignoring_reset(greedy, publish_head(2 * MB) + b"x" * (3 * MB // 2))
            assert await greedy.read_until_closed() == b""
        [warning] = [entry for entry in logs if entry["event"] == "request_buffer_limit_exceeded"]
        assert warning["limit"] == "resp.client_query_buffer_limit" and warning["limit_bytes"] == MiB
        assert warning["buffered_bytes"] > MiB
        [closed] = [entry for entry in logs if entry["event"] == "connection_closed"]
        assert "resp.client_query_buffer_limit" in closed["reason"]
        # A request just under the limit is fine, and so is everyone else.
        await bystander.send(publish_head(MiB - 100) + b"y" * (MiB - 100) + b"\r\n")
        await bystander.expect(b":0\r\n")
        info = await bystander.info()
        assert info["client_query_buffer_limit_disconnections"] == "1"
        assert info["evicted_clients"] == "0"
        await bystander.aclose()
        await greedy.aclose()


def produce_frame(client, size: int) -> tuple[int, bytes]:
    """A Produce v9 request carrying one record of ``size`` bytes to topic ``t``."""
    batch = build_batch([(None, b"v" * size, None)], base_timestamp=NOW_MS)
    return client.encode(0, 9, {"transactional_id": None, "acks": 1, "timeout_ms": 5000, "topic_data": [
        {"name": "t", "partition_data": [{"index": 0, "records": batch}]}]})


async def test_kafka_total_over_queued_max_request_bytes_closes_the_largest_holder(tmp_path):
    async with pull_broker(tmp_path, log={"max_message_bytes": 32 * MiB}, max_request_bytes=32 * MiB,
                           queued_max_request_bytes=40 * MiB) as broker:
        broker.topics.create("t", 1, now_ms=NOW_MS)
        largest, middle, last = [await broker.connect() for _ in range(3)]
        frames = [produce_frame(client, size)
                  for client, size in ((largest, 20 * MB), (middle, 10 * MB), (last, 15 * MB))]
        with capture_logs() as logs:
            for client, (_, request) in zip((largest, middle, last), frames):
                await client.send(request[:-1])  # all but the last byte
                # Every task blocked = the broker has read everything sent so far.
                await trio.testing.wait_all_tasks_blocked(cushion=0.05)
            await largest.expect_closed()
        [warning] = [entry for entry in logs if entry["event"] == "request_buffer_budget_exceeded"]
        assert warning["limit"] == "kafka.queued_max_request_bytes" and warning["limit_bytes"] == 40 * MiB
        assert warning["peer"] == "127.0.0.1:%d" % largest.stream.socket.getsockname()[1]
        assert warning["buffered_bytes"] >= 20 * MB
        closed = [entry for entry in logs if entry["event"] == "connection_closed"]
        assert len(closed) == 1 and "kafka.queued_max_request_bytes" in closed[0]["reason"]
        # The other two finish their requests and get their records appended.
        offsets = []
        for client, (correlation_id, request) in zip((middle, last), frames[1:]):
            await client.send(request[-1:])
            with trio.fail_after(TIMEOUT * 4):
                response = await client.read_response(0, 9, correlation_id)
            partition = response["responses"][0]["partition_responses"][0]
            assert partition["error_code"] == 0
            offsets.append(partition["base_offset"])
        assert offsets == [0, 1]
