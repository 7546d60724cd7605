"""Incremental RESP reply parser, client side and sans-IO: server bytes in, Python values out.

``ReplyParser`` turns what a server sends into Python values (RESP2 and RESP3, see
``wire.resp.values`` for the mapping). It keeps partially built aggregates on a stack, so a
huge array arriving in pieces is parsed in linear time. Check-then-parse: while no complete
reply has arrived it returns ``NEED_DATA``; "not enough data yet" is never an error.

Not here: requests (``requests``), encoding (``encoder``), connection state such as the
negotiated protocol version.
"""

from __future__ import annotations

import re

from wire.errors import RemoteProtocolError
from wire.resp.redis_rules import _strict_int
from wire.resp.values import ErrorReply, Push, RespSet, SimpleString, Verbatim

__all__ = ["NEED_DATA", "ReplyParser"]


class _NeedData:
    """Type of the NEED_DATA sentinel: ReplyParser has no complete reply yet."""

    _instance: _NeedData | None = None

    def __new__(cls) -> _NeedData:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "NEED_DATA"

    def __bool__(self) -> bool:
        return False


NEED_DATA = _NeedData()

# Kinds of aggregate frames on the ReplyParser stack.
_ARRAY, _MAP, _SET, _PUSH, _ATTRIBUTE = range(5)
_AGGREGATE_KINDS = {42: _ARRAY, 37: _MAP, 126: _SET, 62: _PUSH, 124: _ATTRIBUTE}  # * % ~ > |
_INTEGER_TEXT = re.compile(rb"[-+]?[0-9]+\Z").match
_DOUBLE_TEXT = re.compile(rb"[-+]?(?:inf|nan|(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?)\Z").match


def _hashable(value: object) -> object:
    """Map keys must be hashable: arrays (and sets, pushes) become tuples, maps tuples of pairs."""
    if isinstance(value, list):
        return tuple(_hashable(item) for item in value)
    if isinstance(value, dict):
        return tuple((_hashable(k), _hashable(v)) for k, v in value.items())
    return value


def _text(data: bytes) -> str:
    return data.decode("utf-8", "surrogateescape")


class ReplyParser:
    """Client side: bytes from a server in, Python values out (RESP2 and RESP3).

    Args:
        max_bulk_len: largest bulk/verbatim/blob-error length accepted (512 MiB).

    ``next_reply()`` returns the next value or ``NEED_DATA``. Error replies are returned as
    ``ErrorReply`` values, not raised. RESP3 attributes (``|``) are parsed and dropped.
    Streamed RESP3 types (``$?``, ``*?``...), which Redis never sends, are refused.
    """

    __slots__ = ("_buf", "_error", "_pos", "_scan", "_stack", "max_bulk_len")

    def __init__(self, *, max_bulk_len: int = 512 * 1024 * 1024) -> None:
        self.max_bulk_len = max_bulk_len
        self._buf = bytearray()
        self._pos = 0
        # Where to resume looking for "\r\n" of an incomplete line (absolute index, 0 = none).
        self._scan = 0
        # Aggregates being filled: [kind, remaining elements, items].
        self._stack: list[list] = []
        self._error: RemoteProtocolError | None = None

    def feed(self, data: bytes) -> None:
        """Add bytes received from the server."""
        if self._error is not None:
            return
        if self._pos:
            del self._buf[: self._pos]
            if self._scan:
                self._scan -= self._pos
            self._pos = 0
        self._buf += data

    def next_reply(self) -> object:
        """The next complete reply, or ``NEED_DATA``.

        Raises:
            RemoteProtocolError: the server sent something that is not RESP.
        """
        if self._error is not None:
            raise self._error
        try:
            return self._next()
        except RemoteProtocolError as exc:
            self._error = exc
            raise

    def replies(self) -> list[object]:
        """All complete replies available now (empty list: need more data).

        Raises:
            RemoteProtocolError: as ``next_reply``, but replies decoded before the bad bytes
                are returned first and the error is raised by the following call.
        """
        out: list[object] = []
        while True:
            try:
                reply = self.next_reply()
            except RemoteProtocolError:
                if out:
                    return out
                raise
            if reply is NEED_DATA:
                return out
            out.append(reply)

    def _line(self, start: int) -> int:
        """Index of the "\\r\\n" ending the line that starts at ``start``, or -1."""
        buf = self._buf
        found = buf.find(b"\r\n", max(start, self._scan - 1))
        if found < 0:
            self._scan = len(buf)
        else:
            self._scan = 0
        return found

    def _next(self) -> object:
        buf = self._buf
        stack = self._stack
        while True:
            pos = self._pos
            if pos >= len(buf):
                return NEED_DATA
            eol = self._line(pos)
            if eol < 0:
                return NEED_DATA
            kind = buf[pos]
            line = bytes(buf[pos + 1 : eol])
            after = eol + 2
            if kind == 36 or kind == 33 or kind == 61:  # $ ! =: length-prefixed strings
                length = _strict_int(line)
                if line == b"?":
                    raise _reply_error("streamed strings are not supported")
                if length is None or length < -1 or length > self.max_bulk_len:
                    raise _reply_error(f"invalid length {line!r}")
                if length == -1:
                    if kind != 36:
                        raise _reply_error("only bulk strings may be null")
                    value = None
                else:
                    if len(buf) < after + length + 2:
                        self._scan = 0
                        return NEED_DATA
                    body = bytes(buf[after : after + length])
                    if buf[after + length : after + length + 2] != b"\r\n":
                        raise _reply_error("string body not followed by CRLF")
                    after += length + 2
                    if kind == 36:
                        value = body
                    elif kind == 33:
                        value = ErrorReply(_text(body))
                    else:
                        if length < 4 or body[3] != 58:  # ":"
                            raise _reply_error("verbatim string without format prefix")
                        value = Verbatim(_text(body[4:]), body[:3].decode("ascii", "replace"))
            elif kind == 43:  # +
                value = SimpleString(_text(line))
            elif kind == 45:  # -
                value = ErrorReply(_text(line))
            elif kind == 58 or kind == 40:  # : (
                if _INTEGER_TEXT(line) is None:
                    raise _reply_error(f"invalid integer {line!r}")
                value = int(line)
            elif kind == 95:  # _
                if line:
                    raise _reply_error("null with a payload")
                value = None
            elif kind == 35:  # #
                if line == b"t":
                    value = True
                elif line == b"f":
                    value = False
                else:
                    raise _reply_error(f"invalid boolean {line!r}")
            elif kind == 44:  # ,
                if _DOUBLE_TEXT(line) is None:
                    raise _reply_error(f"invalid double {line!r}")
                value = float(line)
            elif kind in _AGGREGATE_KINDS:
                agg = _AGGREGATE_KINDS[kind]
                if line == b"?":
                    raise _reply_error("streamed aggregates are not supported")
                count = _strict_int(line)
                if count is None or count < -1 or (count == -1 and agg != _ARRAY):
                    raise _reply_error(f"invalid aggregate length {line!r}")
                self._pos = after
                if count == -1:
                    value = None
                elif count == 0:
                    value = _finish(agg, [])
                else:
                    # Maps and attributes announce pairs: twice as many elements follow.
                    n = count * 2 if agg in (_MAP, _ATTRIBUTE) else count
                    stack.append([agg, n, []])
                    continue
                if agg == _ATTRIBUTE:
                    continue
            else:
                raise _reply_error(f"unknown reply type byte {bytes([kind])!r}")
            self._pos = after
            # Hand the value to the innermost open aggregate, closing those that fill up.
            while True:
                if not stack:
                    return value
                frame = stack[-1]
                frame[2].append(value)
                frame[1] -= 1
                if frame[1]:
                    break
                stack.pop()
                if frame[0] == _ATTRIBUTE:
                    # Metadata about the next reply; we have no use for it, so drop it. It does
                    # not count as an element of the enclosing aggregate.
                    break
                value = _finish(frame[0], frame[2])


def _finish(kind: int, items: list) -> object:
    if kind == _ARRAY:
        return items
    if kind == _PUSH:
        return Push(items)
    if kind == _SET:
        return RespSet(items)
    if kind == _MAP:
        return {_hashable(items[i]): items[i + 1] for i in range(0, len(items), 2)}
    return None  # attribute: discarded by the caller


def _reply_error(text: str) -> RemoteProtocolError:
    return RemoteProtocolError(f"invalid RESP reply: {text}")
