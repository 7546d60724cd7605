"""A broker's Kafka connection to another broker: one request at a time, every wait bounded.

A follower fetches from its leader over Kafka's own protocol (docs/cluster.md), so it needs a
small Kafka *client*: frame a request with our codec (``wire.kafka``), send it, read one
response frame whose size prefix is checked before anything is buffered, and decode it. It is
not the SDK (``dualmq/`` may not be imported from ``modes/``, docs/layering.md) and does only
this: no pipelining, no retries, no SASL or TLS (replication between brokers speaks plaintext
Kafka; docs/cluster.md lists that as not done).
"""

from __future__ import annotations

import struct

import attrs
import trio

from wire.errors import RemoteProtocolError
from wire.kafka import codec
from wire.kafka.framing import decode_response_header, encode_request
from wire.kafka.schema import Api

_SIZE = struct.Struct(">i")
CLIENT_ID = "dualmq-replica"


class PeerClosed(Exception):
    """The other broker closed the connection."""


@attrs.define(eq=False)
class KafkaPeer:
    """One connection to another broker's Kafka listener."""

    stream: trio.abc.Stream
    max_response_bytes: int
    _buffer: bytearray = attrs.field(factory=bytearray)
    _correlation_id: int = 0

    async def call(self, api: Api, version: int, values: dict, *, timeout: float) -> dict:
        """Send one request and return its decoded response.

        Raises:
            trio.TooSlowError: no whole answer within ``timeout`` seconds.
            PeerClosed: the connection ended.
            RemoteProtocolError: a frame larger than ``max_response_bytes``, another request's
                answer, or bytes that do not decode.
            OSError, trio.BrokenResourceError: the connection broke.
        """
        self._correlation_id += 1
        body = codec.encode(api.request, version, values)
        frame = encode_request(api.key, version, self._correlation_id, CLIENT_ID, body,
                               flexible_header=api.request.is_flexible(version))
        with trio.fail_after(timeout):
            await self.stream.send_all(frame)
            await self._fill(_SIZE.size)
            (size,) = _SIZE.unpack_from(self._buffer)
            if not 0 <= size <= self.max_response_bytes:
                raise RemoteProtocolError(f"response frame of {size} bytes (limit {self.max_response_bytes})")
            await self._fill(_SIZE.size + size)
        response = memoryview(bytes(self._buffer[_SIZE.size:_SIZE.size + size]))
        del self._buffer[:_SIZE.size + size]
        correlation_id, body_at = decode_response_header(response, api.response.is_flexible(version))
        if correlation_id != self._correlation_id:
            raise RemoteProtocolError(f"answer to request {correlation_id}, expected {self._correlation_id}")
        return codec.decode(api.response, version, response[body_at:])

    async def _fill(self, count: int) -> None:
        while len(self._buffer) < count:
            chunk = await self.stream.receive_some(max(65536, count - len(self._buffer)))
            if not chunk:
                raise PeerClosed("the broker closed the connection")
            self._buffer += chunk
