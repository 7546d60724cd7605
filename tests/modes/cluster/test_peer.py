"""The follower's Kafka connection (``modes.cluster.peer``) against a fake leader that misbehaves."""

from __future__ import annotations

import struct

import pytest
import trio
import trio.testing

from modes.cluster.peer import KafkaPeer, PeerClosed
from wire.errors import RemoteProtocolError
from wire.kafka import codec
from wire.kafka.framing import encode_response
from wire.kafka.messages.metadata import METADATA

REQUEST = {"topics": [], "allow_auto_topic_creation": False, "include_topic_authorized_operations": False}
ANSWER = {"throttle_time_ms": 0, "brokers": [], "cluster_id": "c", "controller_id": 1, "topics": []}


async def serve_once(stream, reply) -> None:
    """Read one request frame, then send ``reply(correlation_id)`` (bytes)."""
    data = b""
    while len(data) < 4 or len(data) < 4 + struct.unpack_from(">i", data)[0]:
        data += await stream.receive_some(65536)
    correlation_id = struct.unpack_from(">i", data, 8)[0]
    await stream.send_all(reply(correlation_id))


def answer(correlation_id: int) -> bytes:
    return encode_response(correlation_id, codec.encode(METADATA.response, 9, ANSWER), flexible_header=True)


async def call_with(reply, *, timeout: float = 5, limit: int = 1 << 20, fed_in_bytes: int = 0) -> dict:
    client, server = trio.testing.memory_stream_pair()
    peer = KafkaPeer(client, max_response_bytes=limit)

    async def respond():
        if fed_in_bytes:
            frame = [None]
            await serve_once(server, lambda cid: frame.__setitem__(0, reply(cid)) or b"")
            for i in range(0, len(frame[0]), fed_in_bytes):  # one small piece at a time
                await server.send_all(frame[0][i:i + fed_in_bytes])
        else:
            await serve_once(server, reply)

    outcome: dict | Exception
    async with trio.open_nursery() as nursery:
        nursery.start_soon(respond)
        try:
            outcome = await peer.call(METADATA, 9, REQUEST, timeout=timeout)
        except Exception as exc:  # re-raised below, outside the nursery's exception group
            outcome = exc
        nursery.cancel_scope.cancel()
    if isinstance(outcome, Exception):
        raise outcome
    return outcome


async def test_a_whole_answer_is_decoded_even_when_it_arrives_a_byte_at_a_time() -> None:
    assert (await call_with(answer))["controller_id"] == 1
    assert (await call_with(answer, fed_in_bytes=1))["controller_id"] == 1


async def test_an_oversized_frame_is_refused_from_its_size_prefix() -> None:
    with pytest.raises(RemoteProtocolError, match="response frame of 2147483647 bytes"):
        await call_with(lambda cid: struct.pack(">ii", 2**31 - 1, cid))
    with pytest.raises(RemoteProtocolError, match="response frame of -5 bytes"):
        await call_with(lambda cid: struct.pack(">ii", -5, cid))


async def test_an_answer_to_another_request_or_garbage_is_a_protocol_error() -> None:
    with pytest.raises(RemoteProtocolError, match="answer to request 77"):
        await call_with(lambda cid: answer(77))
    with pytest.raises(RemoteProtocolError):
        await call_with(lambda cid: struct.pack(">ii", 6, cid) + b"\x00\x00")


async def test_a_closed_connection_and_a_silent_peer_end_the_call() -> None:
    client, server = trio.testing.memory_stream_pair()
    peer = KafkaPeer(client, max_response_bytes=1 << 20)
    async with trio.open_nursery() as nursery:
        async def close_after_request():
            await server.receive_some(65536)
            await server.aclose()
        nursery.start_soon(close_after_request)
        with pytest.raises((PeerClosed, trio.BrokenResourceError)):
            await peer.call(METADATA, 9, REQUEST, timeout=5)
    client, server = trio.testing.memory_stream_pair()
    peer = KafkaPeer(client, max_response_bytes=1 << 20)
    with pytest.raises(trio.TooSlowError):
        await peer.call(METADATA, 9, REQUEST, timeout=0.2)
