"""Incremental RESP parsers: requests (server side) and replies (client side), sans-IO.

``RequestParser`` turns the bytes a client sends into commands (lists of byte-string
arguments), following what Redis does in ``processInputBuffer`` (``networking.c``):

* A command whose first byte is ``*`` is a *multibulk*: ``*<argc>\\r\\n`` then ``argc`` times
  ``$<len>\\r\\n<len bytes>\\r\\n``. ``*0`` and negative counts are silently ignored.
* Anything else is an *inline* command: one line, ended by ``\\n`` (a ``\\r`` just before it is
  dropped), split into arguments with the quoting rules of Redis' ``sdssplitargs``. Blank
  lines are ignored. This is what people type into telnet and what ``redis-benchmark``'s
  ``PING_INLINE`` sends.
* Errors raise ``RemoteProtocolError`` whose ``reply`` is the exact line Redis sends before it
  closes the connection, e.g. ``-ERR Protocol error: invalid bulk length``.

Check-then-parse: "not enough data yet" is never an error, only a ``None``/empty result. Each
byte is looked at a bounded number of times however the input is chunked: a partially
received multibulk keeps the arguments parsed so far, a partially received line remembers
how far it was searched, and a partially received body is only measured, not re-read. Limits
are checked as soon as the bytes that reveal them arrive, before buffering what they announce:
a ``$<len>`` above ``max_bulk_len`` fails at once, and a line that grows past
``max_inline_len`` without ending fails without waiting for the end.

Where the stream is ambiguous we follow Redis rather than a stricter reading of the spec, and
choose a rule that does not depend on how the bytes were chunked: Redis does not check the two
bytes after a line's ``\\r`` or after a bulk body (it skips them, whatever they are), and it
judges "too long" only while the terminator has not been seen yet; we reject a line as too long
whenever more than ``max_inline_len`` bytes precede its terminator, so feeding everything at
once and feeding one byte at a time always agree.

``ReplyParser`` turns what a server sends into Python values (RESP2 and RESP3, see
``wire.resp.values`` for the mapping). It also keeps partially built aggregates on a stack, so
a huge array arriving in pieces is parsed in linear time.

Not here: encoding (``encoder``), connection state such as the negotiated protocol version.
"""

from __future__ import annotations

import re

try:  # hiredis: a C RESP parser (see _parse_with_hiredis); the pure paths work without it
    from hiredis import Reader as _HiredisReader
except ImportError:  # pragma: no cover
    _HiredisReader = None

from wire.errors import RemoteProtocolError
from wire.resp.values import ErrorReply, Push, RespSet, SimpleString, Verbatim

__all__ = ["NEED_DATA", "ReplyParser", "RequestParser"]

_INT_MAX = 2**31 - 1
_INT64_MIN = -(2**63)
_INT64_MAX = 2**63 - 1

# Lengths and counts are decimal ASCII; most are small. Looking the digits up in a table is
# several times cheaper than validating and converting them, and these lookups run once per
# argument of every command.
_SMALL_INTS: dict[bytes, int] = {b"%d" % i: i for i in range(-1, 10000)}


def _strict_int(digits: bytes) -> int | None:
    """Parse a 64-bit signed decimal exactly as Redis' ``string2ll`` accepts it, else None.

    No sign other than a leading ``-``, no leading zeros (``0`` itself is fine, ``-0`` is not),
    no blanks, at most 20 characters, within the signed 64-bit range.
    """
    if not digits or len(digits) > 20:
        return None
    if digits == b"0":
        return 0
    body = digits[1:] if digits[0] == 45 else digits  # 45 = '-'
    # bytes.isdigit() only accepts ASCII 0-9, unlike int(), which also takes "+", "_", " ".
    if not body or not body.isdigit() or body[0] == 48:  # 48 = '0'
        return None
    value = int(body)
    if body is not digits:
        value = -value
    if not _INT64_MIN <= value <= _INT64_MAX:
        return None
    return value


def _protocol_error(text: str) -> RemoteProtocolError:
    return RemoteProtocolError(text, reply=b"-ERR Protocol error: %b\r\n" % text.encode("latin-1"))


# ----------------------------------------------------------------------------------------------
# Inline commands: Redis' sdssplitargs, reimplemented.

# Fast path: a line without quotes, NUL, vertical tab or form feed splits exactly like
# bytes.split() (separators space, tab, CR, LF). \v and \f are blanks *between* arguments for
# Redis but not *inside* one, so they take the careful path.
_NEEDS_CAREFUL_SPLIT = re.compile(rb"[\"'\x00\x0b\x0c]").search
_C_ISSPACE = frozenset(b" \t\n\r\x0b\x0c")
_SEPARATORS = frozenset(b" \t\n\r")
_ESCAPES = {ord("n"): 10, ord("r"): 13, ord("t"): 9, ord("b"): 8, ord("a"): 7}
_HEX = frozenset(b"0123456789abcdefABCDEF")
_DQUOTE, _SQUOTE, _BACKSLASH = 34, 39, 92


class _UnbalancedQuotes(Exception):
    pass


def split_inline(line: bytes) -> list[bytes]:
    """Split one inline command line into arguments with Redis' quoting rules.

    Blanks separate arguments. ``"double quotes"`` may hold blanks and the escapes ``\\n \\r \\t
    \\b \\a``, ``\\xHH`` and ``\\<any>``; in ``'single quotes'`` only ``\\'`` is special. A closing
    quote must be followed by a blank or the end of the line. Redis works on a C string, so a
    NUL byte ends the line.

    Raises:
        RemoteProtocolError: for unbalanced quotes (``-ERR Protocol error: unbalanced quotes
            in request``).
    """
    if _NEEDS_CAREFUL_SPLIT(line) is None:
        return line.split()
    try:
        return _split_carefully(line)
    except _UnbalancedQuotes:
        raise _protocol_error("unbalanced quotes in request") from None


def _split_carefully(line: bytes) -> list[bytes]:
    nul = line.find(b"\x00")
    if nul >= 0:
        line = line[:nul]
    end = len(line)
    args: list[bytes] = []
    i = 0
    while True:
        while i < end and line[i] in _C_ISSPACE:
            i += 1
        if i >= end:
            return args
        current = bytearray()
        # An argument runs to the next separator. A quote, at its start or in its middle
        # (a"b c"), opens a quoted section that must close the argument, as in sdssplitargs.
        while i < end:
            c = line[i]
            if c in _SEPARATORS:
                break
            if c == _DQUOTE or c == _SQUOTE:
                i = _quoted(line, i, end, current)
                break
            current.append(c)
            i += 1
        args.append(bytes(current))


def _quoted(line: bytes, i: int, end: int, current: bytearray) -> int:
    """Append the quoted section starting at ``line[i]`` to ``current``; return the index after it."""
    quote = line[i]
    i += 1
    while True:
        if i >= end:
            raise _UnbalancedQuotes
        c = line[i]
        if quote == _DQUOTE and c == _BACKSLASH and i + 1 < end:
            nxt = line[i + 1]
            if nxt == 120 and i + 3 < end and line[i + 2] in _HEX and line[i + 3] in _HEX:
                current.append(int(line[i + 2 : i + 4], 16))
                i += 4
            else:
                current.append(_ESCAPES.get(nxt, nxt))
                i += 2
        elif quote == _SQUOTE and c == _BACKSLASH and i + 1 < end and line[i + 1] == _SQUOTE:
            current.append(_SQUOTE)
            i += 2
        elif c == quote:
            if i + 1 < end and line[i + 1] not in _C_ISSPACE:
                raise _UnbalancedQuotes
            return i + 1
        else:
            current.append(c)
            i += 1


# ----------------------------------------------------------------------------------------------
# Requests


class RequestParser:
    """Server side: bytes from a client in, commands (``list[bytes]``) out.

    Args:
        max_bulk_len: largest argument accepted (Redis ``proto-max-bulk-len``, 512 MiB).
        max_multibulk_len: largest argument count accepted (Redis: INT_MAX).
        max_inline_len: longest line accepted without its terminator, for inline commands and
            for the ``*<n>``/``$<n>`` header lines (Redis ``PROTO_INLINE_MAX_SIZE``, 64 KiB).

    Once an error has been raised the parser is finished: every later call raises it again.
    """

    __slots__ = (
        "_args",
        "_buf",
        "_bulk_len",
        "_error",
        "_ready",
        "_ready_pos",
        "_remaining",
        "_fast_ok",
        "_hiredis_max",
        "_hiredis_min",
        "_scan",
        "max_bulk_len",
        "max_inline_len",
        "max_multibulk_len",
    )

    def __init__(
        self,
        *,
        max_bulk_len: int = 512 * 1024 * 1024,
        max_multibulk_len: int = _INT_MAX,
        max_inline_len: int = 64 * 1024,
    ) -> None:
        self.max_bulk_len = max_bulk_len
        self.max_multibulk_len = max_multibulk_len
        self.max_inline_len = max_inline_len
        # Unparsed bytes. Always starts at a parse position: consumed bytes are deleted after
        # each parsing pass (deleting a bytearray's prefix only moves its start in CPython).
        self._buf = bytearray()
        # A multibulk in progress: arguments so far, how many are still expected, and the
        # announced length of the next body (-1 while its "$<len>" line is still awaited).
        self._args: list[bytes] | None = None
        self._remaining = 0
        self._bulk_len = -1
        # Where to resume searching for the end of an incomplete line (0: nothing pending).
        self._scan = 0
        # Commands parsed but not yet handed out by next_command().
        self._ready: list[list[bytes]] = []
        self._ready_pos = 0
        self._error: RemoteProtocolError | None = None
        # The fast path's tables hold counts and lengths below _FAST_TABLE_SIZE and its lines
        # are a few bytes long; with limits tighter than that, only the careful loop applies.
        self._fast_ok = (
            max_bulk_len >= _FAST_TABLE_SIZE
            and max_multibulk_len >= _FAST_TABLE_SIZE
            and max_inline_len >= 8
        )
        # hiredis parses a buffer only if it is no longer than this: then no complete command
        # in it can break max_bulk_len or max_multibulk_len, and its header lines (a few
        # digits) are far below max_inline_len. -1: hiredis is not used.
        self._hiredis_max = (
            min(max_bulk_len, max_multibulk_len)
            if _HiredisReader is not None and max_inline_len >= 32
            else -1
        )
        # Below this many bytes (a command or two) hiredis's fixed cost (a reader, the
        # checks) outweighs its speed: the pure fast path takes them. Tests set it to 0.
        self._hiredis_min = _HIREDIS_MIN_BYTES

    def feed(self, data: bytes) -> None:
        """Add bytes received from the client. Parsing happens in ``next_command``/``commands``."""
        if self._error is None:
            self._buf += data

    def next_command(self) -> list[bytes] | None:
        """The next complete command, or None if more data is needed.

        Raises:
            RemoteProtocolError: the next thing in the stream is a protocol error; send
                ``reply`` and close. Commands before the error are returned first.
        """
        if self._ready_pos < len(self._ready):
            command = self._ready[self._ready_pos]
            self._ready_pos += 1
            return command
        self._ready = self._parse()
        self._ready_pos = 0
        if self._ready:
            self._ready_pos = 1
            return self._ready[0]
        if self._error is not None:
            raise self._error
        return None

    def commands(self) -> list[list[bytes]]:
        """All complete commands available now, in order (empty list: need more data).

        Raises:
            RemoteProtocolError: when the stream holds nothing valid before a protocol error.
                Commands received before the error are returned by this call and the error is
                raised by the next one, so a server answers them first, as Redis does.
        """
        if self._ready_pos < len(self._ready):
            pending = self._ready[self._ready_pos :]
            self._ready = []
            self._ready_pos = 0
            pending.extend(self._parse())
            return pending
        parsed = self._parse()
        if not parsed and self._error is not None:
            raise self._error
        return parsed

    # -- the parsing pass ----------------------------------------------------------------------

    def _line_pending(self, buf: bytearray) -> bool:
        """True if an incomplete line is still incomplete: no need to look any further."""
        limit = self.max_inline_len
        if self._args is None and buf[0] != 42:  # inline: ends at "\n"
            found = buf.find(b"\n", self._scan, limit + 1)
            if found >= 0:
                return False
        else:  # "*<n>" or "$<n>": Redis looks for "\r" and then needs one more byte
            found = buf.find(b"\r", self._scan, limit + 1)
            if found >= 0:
                if found + 1 < len(buf):
                    return False
                self._scan = found
                return True
        if len(buf) > limit:
            return False  # let the full pass raise the "too big" error
        self._scan = len(buf)
        return True

    def _parse(self) -> list[list[bytes]]:
        if self._error is not None:
            return []
        buf = self._buf
        size = len(buf)
        if not size:
            return []
        # Check-then-parse: skip the pass entirely while what we are waiting for cannot be
        # there yet. This keeps a 512 MiB body or a long line arriving in small pieces O(n).
        if self._bulk_len >= 0:
            if size < self._bulk_len + 2:
                return []
        elif self._scan and self._line_pending(buf):
            return []
        self._scan = 0

        # One immutable copy per pass: slicing bytes yields the bytes arguments we return
        # directly, and bytes slices can be looked up in _SMALL_INTS (bytearray cannot).
        data = bytes(buf)
        pos = 0
        out: list[list[bytes]] = []
        # The fast paths run at the start of the pass, or, when the pass starts inside a
        # command (or with an inline one), once right after the careful loop finishes it.
        resume_fast = self._fast_ok
        if resume_fast and self._args is None and data[0] == 42:
            resume_fast = False
            pos = self._parse_fast(data, 0, out)
        find = data.find
        small_ints = _SMALL_INTS
        limit = self.max_inline_len
        args = self._args
        remaining = self._remaining
        bulk_len = self._bulk_len
        try:
            while True:
                if args is None:
                    if pos >= size:
                        break
                    if data[pos] != 42:  # not "*": an inline command
                        newline = find(b"\n", pos, pos + limit + 1)
                        if newline < 0:
                            if size - pos > limit:
                                raise _protocol_error("too big inline request")
                            self._scan = size - pos
                            break
                        end = newline
                        if end > pos and data[end - 1] == 13:  # drop the "\r" of "\r\n"
                            end -= 1
                        line = data[pos:end]
                        pos = newline + 1
                        line_args = split_inline(line)
                        if line_args:
                            out.append(line_args)
                        continue
                    cr = find(b"\r", pos, pos + limit + 1)
                    if cr < 0 or cr + 1 >= size:
                        if cr < 0 and size - pos > limit:
                            raise _protocol_error("too big mbulk count string")
                        self._scan = (size if cr < 0 else cr) - pos
                        break
                    digits = data[pos + 1 : cr]
                    count = small_ints.get(digits)
                    if count is None:
                        count = _strict_int(digits)
                        if count is None:
                            raise _protocol_error("invalid multibulk length")
                    if count > self.max_multibulk_len:
                        raise _protocol_error("invalid multibulk length")
                    pos = cr + 2
                    if count <= 0:
                        continue  # "*0", "*-1": nothing to run, no reply
                    args = []
                    remaining = count
                # Inside a multibulk: read "$<len>" lines and bodies until all args are in.
                while remaining:
                    if bulk_len < 0:
                        cr = find(b"\r", pos, pos + limit + 1)
                        if cr < 0 or cr + 1 >= size:
                            if cr < 0 and size - pos > limit:
                                raise _protocol_error("too big bulk count string")
                            self._scan = (size if cr < 0 else cr) - pos
                            break
                        if data[pos] != 36:  # "$"
                            raise _expected_dollar(data[pos])
                        digits = data[pos + 1 : cr]
                        bulk_len = small_ints.get(digits)
                        if bulk_len is None:
                            bulk_len = _strict_int(digits)
                            if bulk_len is None:
                                raise _protocol_error("invalid bulk length")
                        if bulk_len < 0 or bulk_len > self.max_bulk_len:
                            bulk_len = -1
                            raise _protocol_error("invalid bulk length")
                        pos = cr + 2
                    body_end = pos + bulk_len
                    if body_end + 2 > size:
                        break
                    args.append(data[pos:body_end])
                    pos = body_end + 2  # Redis skips the trailing two bytes unchecked
                    bulk_len = -1
                    remaining -= 1
                if remaining:
                    break
                out.append(args)
                args = None
                if resume_fast:
                    resume_fast = False
                    if pos < size and data[pos] == 42:
                        pos = self._parse_fast(data, pos, out)
        except RemoteProtocolError as exc:
            self._error = exc
            self._buf = bytearray()
            self._args = None
            return out
        self._args = args
        self._remaining = remaining
        self._bulk_len = bulk_len
        if pos:
            del buf[:pos]
        return out


    def _parse_fast(self, data: bytes, start: int, out: list[list[bytes]]) -> int:
        """Parse plain multibulks from ``data[start]`` (a ``*``); return where to go on from.

        hiredis when the buffer qualifies (see ``_parse_with_hiredis``), else the pure-Python
        ``_parse_plain_multibulks``. Both stop at the first thing they are not sure about and
        leave it to the careful loop.
        """
        if self._hiredis_min <= len(data) - start and len(data) <= self._hiredis_max:
            for byte in _HIREDIS_UNSAFE:
                if data.find(byte, start) >= 0:
                    break
            else:
                return _parse_with_hiredis(data, start, out)
        return _parse_plain_multibulks(data, start, out)


_HIREDIS_MIN_BYTES = 96
_FAST_TABLE_SIZE = 10000
_COUNT_LINES: dict[bytes, int] = {b"*%d" % i: i for i in range(1, _FAST_TABLE_SIZE)}
_LENGTH_LINES: dict[bytes, int] = {b"$%d" % i: i for i in range(_FAST_TABLE_SIZE)}


def _parse_plain_multibulks(data: bytes, start: int, out: list[list[bytes]]) -> int:
    """Fast path for the common case, from ``data[start]``; returns the position reached.

    Every client library sends small, well-formed multibulks. Splitting the whole buffer at
    CRLF once (in C) turns such a command into a "*<n>" line followed by n ("$<len>", body)
    line pairs, and the bodies are the arguments, already as bytes. A command is accepted
    only if its count and every length line are in the tables (canonical, in range, no
    limits involved) and every body line has exactly the announced length; that last check
    also proves the line boundaries are the protocol's (a body containing CRLF would be cut
    short). At the first command that is not plain (an inline command, a body with CRLF in
    it, a big or malformed length, an incomplete tail) we stop and the careful loop in
    ``_parse`` takes over from there, so errors and quirks are handled in one place only.
    """
    lines = (data[start:] if start else data).split(b"\r\n")
    last = len(lines) - 1  # lines[last] was not followed by CRLF: it may be incomplete
    counts = _COUNT_LINES.get
    lengths = _LENGTH_LINES.get
    i = 0
    while i < last:
        n = counts(lines[i])
        if n is None:
            break
        end = i + 1 + 2 * n
        if end > last:
            break
        bodies = lines[i + 2 : end : 2]
        if list(map(lengths, lines[i + 1 : end : 2])) != list(map(len, bodies)):
            break
        out.append(bodies)
        i = end
    if not i:
        return start
    return start + sum(map(len, lines[:i])) + 2 * i


# Type bytes hiredis accepts where Redis's request parser does not, and that would come out
# looking like a request: "+", "=" and "(" elements give bytes (a simple string, a verbatim
# string, a big number), ">", "~" and "|" aggregates give lists (push, set, attribute).
# "%" (a map) gives a dict, which the type check below would not notice. A buffer containing
# none of these bytes anywhere can hold no such item.
_HIREDIS_UNSAFE = (b"+", b"=", b"(", b">", b"~", b"|", b"%")
# Fed after the buffer: at the top level it is the value b"" (so nothing was pending);
# inside an unfinished command it is something else.
_SENTINEL = b"+\r\n"
_join = b"".join


def _parse_with_hiredis(data: bytes, start: int, out: list[list[bytes]]) -> int:
    """hiredis's C parser on ``data[start:]``; returns the position reached.

    A RESP request is a RESP array of bulk strings, which hiredis (a reply parser) reads
    about six times faster than ``_parse_plain_multibulks``. Its results are taken only
    where they are provably what the careful loop would produce:

    * the caller checked that the buffer contains no byte that starts an item hiredis
      reads as a string or an array but Redis does not (``_HIREDIS_UNSAFE``), and that the
      buffer is no longer than any limit (so no complete command breaks one);
    * each result must be a non-empty list whose items are all bytes: then every item was
      ``*<count>`` / ``$<len>`` with canonical digits (hiredis's ``string2ll`` is Redis's:
      no sign, blanks or leading zeros) and the body, and Redis skips the two bytes after
      a body unchecked, as hiredis does. So the bytes consumed are exactly those of the
      canonical encoding, and Redis would have read the same arguments from them.

    We stop at anything else (``*0``, ``*-1``, a null or nested item, an inline command,
    an error): those bytes and everything after them go to the careful loop, which produces
    Redis's exact error text and checks limits before buffering a body. An incomplete last
    command (seen with a sentinel fed after the buffer) goes to the careful loop as well.
    """
    reader = _HiredisReader()
    reader.feed(data, start)
    gets = reader.gets
    found: list = []
    clean = False
    try:
        while (command := gets()) is not False:
            found.append(command)
        reader.feed(_SENTINEL)
        clean = gets() == b""
    except Exception:  # hiredis.ProtocolError: the careful loop will say what is wrong
        pass
    # The usual case, checked in C: every result an iterable of bytes items (the inner join
    # refuses None and the scalars; the outer one refuses anything inside that is not bytes:
    # None, int, float, bool, an error, a nested list), and none empty. The only iterables
    # hiredis returns are lists, and dicts ("%" is in _HIREDIS_UNSAFE: none here).
    if clean and [] not in found:
        try:
            _join(map(_join, found))
        except TypeError:
            pass
        else:
            out += found
            return len(data)
    # Something needs a closer look: keep the leading run of plain commands, and hand
    # the rest (from its exact position, recomputed from the canonical encoding) on.
    pos = start
    for command in found:
        if type(command) is not list or not command:
            break
        length = 3 + len(b"%d" % len(command))
        for arg in command:
            if type(arg) is not bytes:
                return pos
            length += 5 + len(arg) + len(b"%d" % len(arg))
        out.append(command)
        pos += length
    return pos


def _expected_dollar(byte: int) -> RemoteProtocolError:
    # Redis formats the offending byte with %c, then turns CR/LF into spaces in the reply.
    shown = b" " if byte in (10, 13) else bytes([byte])
    return RemoteProtocolError(
        f"expected '$', got {bytes([byte])!r}",
        reply=b"-ERR Protocol error: expected '$', got '%b'\r\n" % shown,
    )


# ----------------------------------------------------------------------------------------------
# Replies


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
