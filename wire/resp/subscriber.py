"""Reading pub/sub traffic as a subscriber: bytes from a RESP server in, messages out.

The decoding half of ``wire/resp/pubsub.py`` (which builds the same frames on the server):
``SubscriberReader`` turns a subscriber's byte stream into ``PubSubMessage`` values plus every
other reply (confirmations, PONG, errors, the HELLO map). Sans-IO: no socket, no clock.

Why a reader of its own rather than ``ReplyParser`` alone: ``ReplyParser`` is general (any
type, any nesting, RESP2 and RESP3) and pays per element, and a subscriber receiving small
messages spends nearly all its time decoding them. A message frame has a fixed shape (kind,
channel, payload), so a few ``startswith``/``find`` calls decode it with one allocation for
the payload and one for the message; the channel name is reused from the previous frame when
it repeats, the common case. The fast path accepts only the exact shapes Redis sends; any
other frame is measured by a small boundary scanner and decoded by ``ReplyParser``, the one
general decoder, which validates and raises on garbage.
"""

from __future__ import annotations

import attrs

from wire.errors import RemoteProtocolError
from wire.resp.replies import NEED_DATA, ReplyParser
from wire.resp.values import Push

__all__ = ["MAX_BULK_LEN", "PubSubMessage", "SubscriberReader"]

# Same default as Redis' proto-max-bulk-len: a length above it is refused before we wait for
# (and buffer) that many bytes.
MAX_BULK_LEN = 512 * 1024 * 1024


@attrs.frozen(slots=True)
class PubSubMessage:
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


class SubscriberReader:
    """Bytes from a RESP server in; ``PubSubMessage`` values and other reply values out.

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

    def frames(self) -> tuple[list[PubSubMessage], list[object]]:
        """Decode every complete frame buffered so far.

        Raises:
            RemoteProtocolError: the server sent bytes that are not RESP.
        """
        # The subscriber's hottest loop: a ``message`` frame's channel and payload bulks are
        # read inline, each with the same "incomplete -> stop, malformed -> the general
        # parser" steps, rather than through a helper per field — a call per field costs more
        # than the rest of the frame's work (bench/sdk_push.py).
        buf = self._buf
        end = len(buf)
        pos = 0
        messages: list[PubSubMessage] = []
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
                    messages.append(PubSubMessage(channel, got[0], None))
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
                        messages.append(PubSubMessage(fields[1], fields[2], fields[0]))
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

    def _slow(self, buf: bytearray, pos: int, messages: list[PubSubMessage], others: list[object]) -> int:
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

    def _as_message(self, value: object) -> PubSubMessage | None:
        # The fast path missed it (unusual channel header, say) but it may still be a message.
        if not isinstance(value, list) or (self.protocol == 3 and not isinstance(value, Push)):
            return None
        if len(value) == 3 and value[0] == b"message":
            return PubSubMessage(value[1], value[2], None)
        if len(value) == 4 and value[0] == b"pmessage":
            return PubSubMessage(value[2], value[3], value[1])
        return None
