"""A tiny raw Kafka client and an in-process pull-mode broker, for byte-level tests.

``pull_broker`` opens a ``BrokerState`` over a temporary data directory and runs
``serve_kafka`` on it inside the test's trio run, on port 0; ``RawKafka`` speaks to it over a real TCP connection. Every read has a
deadline (``READ_TIMEOUT``), so a server that never answers fails the test instead of hanging.
Requests may be given as literal bytes (golden tests) or as dicts encoded with our codec.
"""

from __future__ import annotations

import contextlib
import struct
from collections.abc import AsyncIterator
from pathlib import Path

import attrs
import trio

from broker.config import BrokerConfig, KafkaConfig, LogConfig
from broker.state import BrokerState
from broker.stats import ServerInfo
from broker.topics import TopicRegistry
from modes.pull.server import serve_kafka
from wire.kafka import codec
from wire.kafka.framing import decode_response_header, encode_request
from wire.kafka.messages import REQUESTS, RESPONSES

READ_TIMEOUT = 5.0
NOW_MS = 1_700_000_000_000


@attrs.define
class PullBroker:
    host: str
    port: int
    topics: TopicRegistry
    config: BrokerConfig
    clients: list[RawKafka] = attrs.field(factory=list)

    async def connect(self) -> RawKafka:
        """A new connection, closed automatically when ``pull_broker`` exits."""
        with trio.fail_after(READ_TIMEOUT):
            stream = await trio.open_tcp_stream(self.host, self.port)
        client = RawKafka(stream)
        self.clients.append(client)
        return client


@contextlib.asynccontextmanager
async def pull_broker(tmp_path: Path, *, log: dict | None = None, listen: str = "127.0.0.1:0",
                      **kafka: object) -> AsyncIterator[PullBroker]:
    """Serve pull mode in-process (default on 127.0.0.1:0) until the block exits."""
    config = BrokerConfig(
        data_dir=tmp_path / "data",
        log=LogConfig(**(log or {})),
        kafka=KafkaConfig(listen=listen, **kafka),
    )
    state = BrokerState.open(config, now_ms=NOW_MS)
    try:
        async with trio.open_nursery() as nursery:
            address = await nursery.start(serve_kafka, state, ServerInfo(config=config, started_at_ms=0))
            host, _, port = address.rpartition(":")
            if host == "0.0.0.0":
                host = "127.0.0.1"
            broker = PullBroker(host, int(port), state.topics, config)
            try:
                yield broker
            finally:
                for client in broker.clients:
                    await trio.aclose_forcefully(client.stream)
                nursery.cancel_scope.cancel()
    finally:
        state.close()


@attrs.define
class RawKafka:
    stream: trio.SocketStream
    buffer: bytearray = attrs.field(factory=bytearray)
    correlation_id: int = 0

    async def send(self, data: bytes) -> None:
        with trio.fail_after(READ_TIMEOUT):
            await self.stream.send_all(data)

    async def _fill(self, count: int) -> None:
        with trio.fail_after(READ_TIMEOUT):
            while len(self.buffer) < count:
                chunk = await self.stream.receive_some(65536)
                if not chunk:
                    raise EOFError(f"connection closed with {bytes(self.buffer)!r} buffered")
                self.buffer += chunk

    async def read_frame(self) -> bytes:
        """One whole response frame, size prefix included."""
        await self._fill(4)
        size = struct.unpack_from(">i", self.buffer)[0]
        await self._fill(4 + size)
        frame = bytes(self.buffer[: 4 + size])
        del self.buffer[: 4 + size]
        return frame

    async def expect_closed(self) -> None:
        """The server closes the connection (EOF or reset) without sending a response."""
        with trio.fail_after(READ_TIMEOUT):
            try:
                data = await self.stream.receive_some(65536)
            except trio.BrokenResourceError:
                return
        assert data == b"", f"expected the connection to close, got {data!r}"

    def encode(self, api_key: int, version: int, values: dict, *, client_id: str | None = "raw") -> tuple[int, bytes]:
        self.correlation_id += 1
        request = REQUESTS[api_key]
        body = codec.encode(request, version, values)
        frame = encode_request(api_key, version, self.correlation_id, client_id, body,
                               flexible_header=request.is_flexible(version))
        return self.correlation_id, frame

    async def read_response(self, api_key: int, version: int, correlation_id: int) -> dict:
        frame = await self.read_frame()
        response = RESPONSES[api_key]
        flexible = api_key != 18 and response.is_flexible(version)
        got_id, body_at = decode_response_header(memoryview(frame)[4:], flexible)
        assert got_id == correlation_id
        return codec.decode(response, version, memoryview(frame)[4 + body_at :])

    async def call(self, api_key: int, version: int, values: dict) -> dict:
        correlation_id, frame = self.encode(api_key, version, values)
        await self.send(frame)
        return await self.read_response(api_key, version, correlation_id)

    async def aclose(self) -> None:
        await self.stream.aclose()
