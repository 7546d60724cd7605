"""Kafka framing: the int32 size prefix, request headers and response headers.

What lives here (docs/kafka.md#framing-and-size-limits and #request-and-response-headers):

* ``FrameParser`` cuts a TCP byte stream into frames. Each frame is ``int32 size`` followed by
  ``size`` bytes. The prefix is checked against ``max_frame_bytes`` as soon as its four bytes
  are seen and *before* any byte of the body is copied into our buffer: a peer announcing a
  2 GiB frame is refused without us ever holding 2 GiB. "Not enough bytes yet" is not an error
  (``next_frame`` returns None), exactly like h11's NEED_DATA.
* Request headers. v1 = ``api_key int16, api_version int16, correlation_id int32, client_id``
  (classic nullable string, even in flexible versions, so any broker can read it); v2 = v1 +
  a tagged-field section. Which one a request uses depends on whether *its* (api_key,
  api_version) is flexible, which only the message registry knows; so the server first
  ``peek_api_key_version``, looks flexibility up, then ``decode_request_header``.
* Response headers. v0 = ``correlation_id``; v1 = v0 + a tagged-field section, for flexible
  responses **except ApiVersions**, whose response header is always v0 so that a client that
  does not know yet what the broker speaks can parse it (KIP-511). ``encode_response`` takes
  ``flexible_header`` from the caller; for ApiVersions the caller must pass False.
* The client side of the same (``encode_request``, ``decode_response_header``) for the SDK.

Header v0 (no client_id) is only used by ControlledShutdown v0, which we never speak.
Nothing here interprets api keys: that is ``wire.kafka.messages`` and the server's business.
"""

from __future__ import annotations

import struct

import attrs

from wire.buffer import ReceiveBuffer
from wire.errors import LocalProtocolError, RemoteProtocolError
from wire.kafka import primitives as p
from wire.kafka.primitives import Reader

__all__ = [
    "FrameParser",
    "RequestHeader",
    "decode_request_header",
    "decode_response_header",
    "encode_request",
    "encode_response",
    "peek_api_key_version",
]

_SIZE = struct.Struct(">i")
_REQUEST_FIXED = struct.Struct(">hhi")  # api_key, api_version, correlation_id
_SIZE_AND_CORRELATION = struct.Struct(">ii")


class FrameParser:
    """Splits a byte stream into size-prefixed frames.

    Args:
        max_frame_bytes: the largest frame body accepted (the size prefix's value).

    Usage: ``feed`` whatever the socket returned, then call ``next_frame`` until it returns
    None. After a ``RemoteProtocolError`` the stream is unusable: close the connection.
    """

    __slots__ = ("_buffer", "_error", "_fed", "_next_frame_at", "max_frame_bytes")

    def __init__(self, max_frame_bytes: int) -> None:
        if max_frame_bytes < 0:
            raise LocalProtocolError("max_frame_bytes must be >= 0")
        self.max_frame_bytes = max_frame_bytes
        # No max_size on the buffer: every frame in it has passed the size check below, and
        # the server drains all complete frames after each feed, so the buffer never holds
        # more than one socket read plus one partial frame.
        self._buffer = ReceiveBuffer()
        # Stream positions (bytes since the connection began): how much was fed, and where
        # the next not-yet-checked size prefix starts.
        self._fed = 0
        self._next_frame_at = 0
        self._error: RemoteProtocolError | None = None

    @property
    def buffered(self) -> int:
        """Bytes held but not yet returned as frames."""
        return len(self._buffer)

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        """Add received bytes.

        Raises:
            RemoteProtocolError: a size prefix visible in the buffered bytes plus ``data`` is
                negative or above ``max_frame_bytes``; ``data`` is then not buffered.
        """
        if self._error is not None:
            raise self._error
        new_end = self._fed + len(data)
        # Walk every size prefix this chunk makes visible. Frames are contiguous, so each
        # prefix tells where the next one starts; this costs a few operations per frame.
        at = self._next_frame_at
        while at + 4 <= new_end:
            size = _SIZE.unpack(self._bytes_at(at, data))[0]
            if size < 0 or size > self.max_frame_bytes:
                self._error = RemoteProtocolError(
                    f"frame size {size} outside [0, {self.max_frame_bytes}]"
                )
                raise self._error
            at += 4 + size
        self._buffer.feed(data)
        self._fed = new_end
        self._next_frame_at = at

    def _bytes_at(self, stream_pos: int, data: bytes | bytearray | memoryview) -> bytes:
        """The four bytes at ``stream_pos``, which may straddle the buffer and ``data``."""
        buffer_start = self._fed - len(self._buffer)
        if stream_pos >= self._fed:
            start = stream_pos - self._fed
            return bytes(data[start : start + 4])
        # Only a prefix split across two feeds gets here: at most 3 of its bytes are buffered.
        start = stream_pos - buffer_start
        head = self._buffer.get(start, min(start + 4, len(self._buffer)))
        return head + bytes(data[: 4 - len(head)])

    def next_frame(self) -> bytes | None:
        """The next complete frame body (without its size prefix), or None if incomplete.

        The frame is returned as ``bytes`` (one copy out of the receive buffer) so that views
        into it (record sets) stay valid while the buffer keeps growing.
        """
        buffer = self._buffer
        if len(buffer) < 4:
            return None
        size = _SIZE.unpack(buffer.get(0, 4))[0]
        if len(buffer) < 4 + size:
            return None
        buffer.consume(4)
        return buffer.take(size)


@attrs.frozen
class RequestHeader:
    """A decoded request header (v1 or v2)."""

    api_key: int
    api_version: int
    correlation_id: int
    client_id: str | None


def peek_api_key_version(frame: bytes | bytearray | memoryview) -> tuple[int, int, int]:
    """``(api_key, api_version, correlation_id)`` from the start of a request frame.

    Enough to choose the header version and to reply to an unsupported request without
    decoding anything else.

    Raises:
        RemoteProtocolError: the frame is shorter than 8 bytes.
    """
    if len(frame) < _REQUEST_FIXED.size:
        raise RemoteProtocolError(f"request frame of {len(frame)} bytes is too short for a header")
    return _REQUEST_FIXED.unpack_from(frame, 0)


def decode_request_header(
    frame: bytes | bytearray | memoryview, flexible: bool
) -> tuple[RequestHeader, int]:
    """Decode a request header.

    Args:
        frame: the frame body (after the size prefix).
        flexible: whether this (api_key, api_version) is a flexible version, i.e. whether
            the header is v2 (with a tagged-field section) rather than v1.

    Returns:
        The header and the offset in ``frame`` where the request body starts.

    Raises:
        RemoteProtocolError: truncated or malformed header.
    """
    api_key, api_version, correlation_id = peek_api_key_version(frame)
    reader = Reader(frame, _REQUEST_FIXED.size)
    client_id = reader.read_nullable_string()
    if flexible:
        # Header tags (none defined that a broker needs) are skipped, as Kafka does.
        reader.skip_tagged_fields()
    return RequestHeader(api_key, api_version, correlation_id, client_id), reader.pos


def encode_response(
    correlation_id: int, body: bytes | bytearray | memoryview, *, flexible_header: bool
) -> bytes:
    """A complete response frame: size prefix, response header, body.

    Args:
        correlation_id: echoed from the request.
        body: the encoded response body.
        flexible_header: True for response header v1 (flexible response versions), False
            for v0. ApiVersions responses always use v0: pass False for them whatever the
            version.
    """
    header_size = 5 if flexible_header else 4
    head = _SIZE_AND_CORRELATION.pack(header_size + len(body), correlation_id)
    if flexible_header:
        return b"".join((head, b"\x00", body))
    return b"".join((head, body))


def encode_request(
    api_key: int,
    api_version: int,
    correlation_id: int,
    client_id: str | None,
    body: bytes | bytearray | memoryview,
    *,
    flexible_header: bool,
) -> bytes:
    """A complete request frame: size prefix, request header v1 (or v2), body.

    Args:
        flexible_header: True when the request version is flexible (header v2). Unlike
            responses, ApiVersions requests do follow this rule (v3+ has header v2).
    """
    out = bytearray(4)
    try:
        out += _REQUEST_FIXED.pack(api_key, api_version, correlation_id)
    except struct.error as exc:
        raise LocalProtocolError(f"bad request header field: {exc}") from None
    p.write_string(out, client_id)
    if flexible_header:
        out.append(0)
    out += body
    _SIZE.pack_into(out, 0, len(out) - 4)
    return bytes(out)


def decode_response_header(frame: bytes | bytearray | memoryview, flexible: bool) -> tuple[int, int]:
    """``(correlation_id, body_offset)`` of a response frame.

    Args:
        flexible: True for response header v1. For ApiVersions pass False always.

    Raises:
        RemoteProtocolError: truncated header.
    """
    reader = Reader(frame)
    correlation_id = reader.read_int32()
    if flexible:
        reader.skip_tagged_fields()
    return correlation_id, reader.pos
