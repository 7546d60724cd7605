"""One RESP connection for the push-mode SDK: socket, handshake, and a fast reply reader.

What lives here (private to ``dualmq.push``):

* ``parse_address`` — ``"host:port"`` / ``"[v6]:port"`` / ``(host, port)`` to a tuple.
* ``FrameReader`` — sans-IO: bytes in, decoded frames out. Pub/sub ``message`` and
  ``pmessage`` frames, which are nearly all a subscriber ever receives, are decoded by a
  hand-written fast path straight into ``Message`` objects; everything else (confirmations,
  PONG, errors, the HELLO map) is measured by a small frame-boundary scanner and then decoded
  by ``wire.resp.ReplyParser``, the project's one general RESP decoder. The fast path accepts
  only the exact shapes Redis sends (``wire/resp/pubsub.py`` builds the same bytes); any
  deviation falls back to ``ReplyParser``, which validates and raises on garbage.
* ``RespConnection`` — a trio TCP stream plus a ``FrameReader``: ``open`` (connect and
  negotiate RESP3 with ``HELLO 3``, falling back to RESP2), ``send``, ``receive`` (one
  ``receive_some`` of up to 64 KiB, every complete frame in it), ``aclose``.

Why a fast path at all: ``ReplyParser`` is general (any type, any nesting, RESP2 and RESP3)
and therefore pays per element; a subscriber receiving 100-byte messages spends most of its
time there. A message frame has a fixed shape (kind, channel, payload), so a few
``startswith``/``find`` calls on the receive buffer decode it with one allocation for the
payload and one for the ``Message``; the channel name is reused from the previous frame when
it repeats, which is the common case. (This is codec logic; it could move to
``wire/resp/pubsub.py`` next to the encoder of the same frames.)

Not here: subscription state, reconnection, the public API (``dualmq.push``).
"""

from __future__ import annotations

import attrs
import trio

from dualmq.errors import ConnectionLost, ServerError, Timeout
from wire.errors import RemoteProtocolError
from wire.resp import encoder
from wire.resp.parser import NEED_DATA, ReplyParser
from wire.resp.values import ErrorReply, Push

__all__ = ["FrameReader", "Message", "RespConnection", "parse_address"]

# One read takes whatever the kernel has, up to this much. 64 KiB holds ~500 typical
# messages, so the per-read costs (a syscall, a trio checkpoint) are shared by hundreds of
# messages, while a single buffer stays small enough to stay in cache.
RECEIVE_SIZE = 64 * 1024

# Same default as Redis' proto-max-bulk-len: a length above it is refused before we wait for
# (and buffer) that many bytes.
MAX_BULK_LEN = 512 * 1024 * 1024


@attrs.frozen(slots=True)
class Message:
    """One pub/sub delivery.

    Attributes:
        channel: the channel it was published to.
        data: the payload, exactly as published.
        pattern: the ``PSUBSCRIBE`` pattern that matched, or None for a plain subscription.
            A client subscribed to a channel and to k matching patterns receives the message
            k + 1 times (Redis semantics), each copy naming its pattern.
    """

    channel: bytes
    data: bytes
    pattern: bytes | None = None


def parse_address(address: str | tuple[str, int]) -> tuple[str, int]:
    """Split ``"host:port"`` (``"[::1]:port"`` for IPv6) or pass a ``(host, port)`` through.

    Raises:
        ValueError: no port, or a port that is not a number in 1..65535.
    """
    if isinstance(address, tuple):
        host, port = address
    else:
        host, sep, port_text = address.rpartition(":")
        if not sep or not port_text.isdigit():
            raise ValueError(f"address must be HOST:PORT, got {address!r}")
        host, port = host.strip("[]") or "127.0.0.1", int(port_text)
    if not 0 < int(port) < 65536:
        raise ValueError(f"port must be in 1..65535, got {port}")
    return host, int(port)


# --- sans-IO decoding -----------------------------------------------------------------------

_BAD = object()  # "not a plain bulk string here": let ReplyParser look (and complain)
_AGGREGATES = frozenset(b"*>~")
_PAIRS = frozenset(b"%|")
_STRINGS = frozenset(b"$!=")


def _length(line: bytes) -> int | None:
    if line.isdigit():
        return int(line)
    return -1 if line == b"-1" else None


def _frame_end(buf: bytearray, pos: int) -> int:
    """Index just after the complete RESP frame starting at ``pos``; -1 if it is incomplete.

    Only *measures*: decoding and validation are ReplyParser's job. On bytes that make no
    sense it returns ``len(buf)``, so the parser sees them and raises a protocol error.
    """
    end = len(buf)
    pending = 1  # frames still to skip, including nested elements
    while pending:
        if pos >= end:
            return -1
        eol = buf.find(b"\r\n", pos)
        if eol < 0:
            return -1
        kind = buf[pos]
        pending -= 1
        if kind in _STRINGS:
            n = _length(bytes(buf[pos + 1 : eol]))
            if n is None or n > MAX_BULK_LEN:
                return end
            pos = eol + 2 + (n + 2 if n >= 0 else 0)
        elif kind in _AGGREGATES or kind in _PAIRS:
            n = _length(bytes(buf[pos + 1 : eol]))
            if n is None:
                return end
            n = max(n, 0)
            # Maps announce pairs; an attribute (|) also decorates the value that follows it.
            pending += n * 2 if kind in _PAIRS else n
            if kind == 124:  # '|'
                pending += 1
            pos = eol + 2
        else:
            pos = eol + 2
    return pos if pos <= end else -1


def _bulk(buf: bytearray, p: int, end: int):
    """Decode the bulk string at ``p``: ``(value, next index)``, None if incomplete, or _BAD."""
    if p >= end:
        return None
    if buf[p] != 36:  # '$'
        return _BAD
    eol = buf.find(b"\r\n", p, p + 24)
    if eol < 0:
        return None if end - p < 24 else _BAD
    digits = buf[p + 1 : eol]
    if not digits.isdigit():
        return _BAD
    start = eol + 2
    stop = start + int(digits)
    if stop - start > MAX_BULK_LEN:
        return _BAD
    if stop + 2 > end:
        return None
    if buf[stop] != 13 or buf[stop + 1] != 10:
        return _BAD
    return bytes(buf[start:stop]), stop + 2


class FrameReader:
    """Bytes from a RESP server in; ``Message`` objects and other reply values out.

    Args:
        protocol: 2 or 3, as negotiated. In RESP3 only push frames (``>``) are messages; in
            RESP2 pub/sub messages are plain arrays (``*``). Change it with ``set_protocol``.

    ``feed(data)`` then ``frames()`` returns ``(messages, others)``: the complete pub/sub
    messages in arrival order, and every other complete frame in arrival order (replies,
    confirmations, RESP3 pushes of other kinds). Order *between* the two lists is not kept:
    a subscriber does not need it, and keeping them apart spares a type test per message.
    """

    __slots__ = ("_buf", "_last_channel", "_last_header", "_message", "_parser", "_pmessage", "protocol")

    def __init__(self, protocol: int = 2) -> None:
        self._buf = bytearray()
        self._parser = ReplyParser(max_bulk_len=MAX_BULK_LEN)
        # The channel header ("$5\r\nnews1\r\n") of the previous message and its bytes: if the
        # next message is on the same channel we skip decoding (and allocating) the name.
        self._last_header = b"\x00"
        self._last_channel = b""
        self.set_protocol(protocol)

    def set_protocol(self, protocol: int) -> None:
        """Switch the expected message framing (after HELLO succeeded or failed)."""
        self.protocol = protocol
        head = b">" if protocol == 3 else b"*"
        self._message = head + b"3\r\n$7\r\nmessage\r\n"
        self._pmessage = head + b"4\r\n$8\r\npmessage\r\n"

    def feed(self, data: bytes) -> None:
        """Append bytes received from the server."""
        self._buf += data

    def frames(self) -> tuple[list[Message], list[object]]:
        """Decode every complete frame buffered so far.

        Raises:
            RemoteProtocolError: the server sent bytes that are not RESP.
        """
        buf = self._buf
        end = len(buf)
        pos = 0
        messages: list[Message] = []
        others: list[object] = []
        message_prefix = self._message
        skip = len(message_prefix)
        try:
            while pos < end:
                if buf.startswith(message_prefix, pos):
                    p = pos + skip
                    if buf.startswith(self._last_header, p):
                        channel = self._last_channel
                        p += len(self._last_header)
                    else:
                        got = _bulk(buf, p, end)
                        if got is None:
                            break
                        if got is _BAD:
                            nxt = self._slow(buf, pos, messages, others)
                            if nxt < 0:
                                break
                            pos = nxt
                            continue
                        channel = got[0]
                        self._last_header = bytes(buf[p : got[1]])
                        self._last_channel = channel
                        p = got[1]
                    got = _bulk(buf, p, end)
                    if got is None:
                        break
                    if got is _BAD:
                        nxt = self._slow(buf, pos, messages, others)
                        if nxt < 0:
                            break
                        pos = nxt
                        continue
                    messages.append(Message(channel, got[0], None))
                    pos = got[1]
                elif buf.startswith(self._pmessage, pos):
                    p = pos + len(self._pmessage)
                    fields = []
                    for _ in range(3):
                        got = _bulk(buf, p, end)
                        if got is None or got is _BAD:
                            break
                        fields.append(got[0])
                        p = got[1]
                    if len(fields) == 3:
                        messages.append(Message(fields[1], fields[2], fields[0]))
                        pos = p
                        continue
                    if got is None:
                        break
                    nxt = self._slow(buf, pos, messages, others)
                    if nxt < 0:
                        break
                    pos = nxt
                elif buf[pos] == 58:  # ':' an integer reply (PUBLISH) — common on publishers
                    eol = buf.find(b"\r\n", pos, pos + 24)
                    digits = bytes(buf[pos + 1 : eol]) if eol > 0 else b""
                    if eol > 0 and (digits.isdigit() or (digits[:1] == b"-" and digits[1:].isdigit())):
                        others.append(int(digits))
                        pos = eol + 2
                        continue
                    nxt = self._slow(buf, pos, messages, others)
                    if nxt < 0:
                        break
                    pos = nxt
                else:
                    nxt = self._slow(buf, pos, messages, others)
                    if nxt < 0:
                        break
                    pos = nxt
        finally:
            # One compaction per read, not per frame: the leftover is at most one partial frame.
            if pos > 0:
                del buf[:pos]
        return messages, others

    def _slow(self, buf: bytearray, pos: int, messages: list[Message], others: list[object]) -> int:
        """Decode one frame with ReplyParser; return the index after it, or -1 if incomplete."""
        stop = _frame_end(buf, pos)
        if stop < 0:
            return -1
        self._parser.feed(bytes(buf[pos:stop]))
        value = self._parser.next_reply()
        if value is NEED_DATA:  # _frame_end and the parser disagree: the bytes are broken
            raise RemoteProtocolError("invalid RESP reply: truncated frame")
        message = self._as_message(value)
        if message is not None:
            messages.append(message)
        else:
            others.append(value)
        return stop

    def _as_message(self, value: object) -> Message | None:
        # The fast path missed it (unusual channel header, say) but it may still be a message.
        if not isinstance(value, list) or (self.protocol == 3 and not isinstance(value, Push)):
            return None
        if len(value) == 3 and value[0] == b"message":
            return Message(value[1], value[2], None)
        if len(value) == 4 and value[0] == b"pmessage":
            return Message(value[2], value[3], value[1])
        return None


# --- the connection -------------------------------------------------------------------------


def _describe(address: tuple[str, int]) -> str:
    return f"{address[0]}:{address[1]}"


class RespConnection:
    """A TCP connection to a RESP server with the protocol negotiated.

    Create with ``await RespConnection.open(...)``. Not safe for two tasks to ``send`` at
    once, nor to ``receive`` at once: the owner serialises them.
    """

    def __init__(self, stream: trio.SocketStream, address: tuple[str, int], protocol: int) -> None:
        self.stream = stream
        self.address = address
        self.reader = FrameReader(protocol)

    @property
    def protocol(self) -> int:
        """2 or 3: what the server agreed to speak."""
        return self.reader.protocol

    @classmethod
    async def open(
        cls,
        address: tuple[str, int],
        *,
        protocol: int = 3,
        name: str | None = None,
        timeout: float = 5.0,
    ) -> RespConnection:
        """Connect and negotiate the protocol.

        With ``protocol=3`` we send ``HELLO 3`` (plus ``SETNAME``): a server that answers with
        an error (Redis < 6, or anything without HELLO) is spoken to in RESP2 instead, which
        every server supports. With ``protocol=2`` no HELLO is sent at all.

        Args:
            address: (host, port).
            protocol: 3 (preferred, falls back to 2) or 2.
            name: a connection name for ``CLIENT LIST`` (no spaces), or None.
            timeout: seconds for the connect and the handshake together.

        Returns:
            An open connection; ``protocol`` tells which version was agreed.

        Raises:
            ConnectionLost: the connection could not be opened or broke during the handshake.
            Timeout: the server did not answer within ``timeout``.
            ServerError: the server refused the connection name.
            ValueError: ``protocol`` is not 2 or 3.
        """
        if protocol not in (2, 3):
            raise ValueError(f"protocol must be 2 or 3, got {protocol!r}")
        where = _describe(address)
        try:
            with trio.fail_after(timeout):
                try:
                    stream = await trio.open_tcp_stream(*address)
                except OSError as exc:
                    raise ConnectionLost(f"cannot connect to {where}: {exc}") from exc
                conn = cls(stream, address, 2)
                try:
                    await conn._handshake(protocol, name)
                except BaseException:
                    await conn.aclose()
                    raise
                return conn
        except trio.TooSlowError:
            raise Timeout(f"connecting to {where} (handshake included) took more than {timeout} s") from None

    async def _handshake(self, protocol: int, name: str | None) -> None:
        if protocol == 3:
            args: list[str] = ["HELLO", "3"] + (["SETNAME", name] if name else [])
            await self.send(encoder.command(*args))
            reply = await self.read_reply()
            if not isinstance(reply, ErrorReply):
                self.reader.set_protocol(3)
                return
            # Old server or no HELLO: stay in RESP2 and name the connection the RESP2 way.
        if name:
            await self.send(encoder.command("CLIENT", "SETNAME", name))
            reply = await self.read_reply()
            if isinstance(reply, ErrorReply):
                raise ServerError(str(reply))

    async def send(self, data: bytes) -> None:
        """Write ``data`` completely.

        Raises:
            ConnectionLost: the connection is broken or closed.
        """
        try:
            await self.stream.send_all(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            raise ConnectionLost(f"connection to {_describe(self.address)} lost while sending: {exc}") from exc

    async def receive(self) -> tuple[list[Message], list[object]]:
        """Wait for data, read up to 64 KiB once, and decode every complete frame in it.

        Returns:
            ``(messages, others)`` as ``FrameReader.frames``; both may be empty when only part
            of a frame arrived.

        Raises:
            ConnectionLost: the server closed the connection, it broke, or it sent bytes that
                are not RESP (we cannot resynchronise on a byte stream, so it is as good as lost).
        """
        try:
            data = await self.stream.receive_some(RECEIVE_SIZE)
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            raise ConnectionLost(f"connection to {_describe(self.address)} lost: {exc}") from exc
        if not data:
            raise ConnectionLost(f"{_describe(self.address)} closed the connection")
        self.reader.feed(data)
        try:
            return self.reader.frames()
        except RemoteProtocolError as exc:
            raise ConnectionLost(f"{_describe(self.address)} sent invalid RESP: {exc}") from exc

    async def read_replies(self, count: int) -> list[object]:
        """Read until ``count`` replies (not pushes, not messages) have arrived; return them.

        Pushes that are not replies (a RESP3 server may send them at any time) are dropped:
        the caller of this method is a request/response user such as a publisher.

        Raises:
            ConnectionLost: as ``receive``.
        """
        replies: list[object] = []
        while len(replies) < count:
            _messages, others = await self.receive()
            for value in others:
                if not isinstance(value, Push):
                    replies.append(value)
        if len(replies) > count:  # the server answered more than we asked: it is confused
            raise ConnectionLost(f"{_describe(self.address)} sent {len(replies)} replies for {count} requests")
        return replies

    async def read_reply(self) -> object:
        """Read one reply (see ``read_replies``)."""
        return (await self.read_replies(1))[0]

    async def aclose(self) -> None:
        """Close the socket. Never blocks for long and never raises for an already-broken socket."""
        with trio.move_on_after(1.0) as scope:
            # Shielded: closing must happen even when we are being cancelled.
            scope.shield = True
            await self.stream.aclose()
