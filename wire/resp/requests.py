"""Incremental RESP request parser, server side and sans-IO: client bytes in, commands out.

``RequestParser`` turns the bytes a client sends into commands (lists of byte-string
arguments), following what Redis does in ``processInputBuffer`` (``networking.c``):

* A command whose first byte is ``*`` is a *multibulk*: ``*<argc>\\r\\n`` then ``argc`` times
  ``$<len>\\r\\n<len bytes>\\r\\n``. ``*0`` and negative counts are silently ignored.
* Anything else is an *inline* command: one line, ended by ``\\n`` (a ``\\r`` just before it is
  dropped), split into arguments with the quoting rules of Redis' ``sdssplitargs`` (see
  ``inline``). Blank lines are ignored.
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

Pipelines of plain multibulks, the common case, first go through the fast paths of
``request_fast_path`` (hiredis, or pure Python); anything they are not sure about is left to
the careful loop here, the reference for what a request means.

Not here: splitting inline lines (``inline``), the fast paths (``request_fast_path``), replies
(``replies``), encoding (``encoder``), connection state such as the negotiated protocol version.
"""

from __future__ import annotations

from wire.errors import RemoteProtocolError
from wire.resp.inline import split_inline
from wire.resp.redis_rules import _protocol_error, _strict_int
import re

from wire.resp.request_fast_path import (
    _FAST_TABLE_SIZE,
    _HIREDIS_UNSAFE,
    _HiredisReader,
    _parse_plain_multibulks,
    _parse_with_hiredis,
)

__all__ = ["RequestParser"]

# Whether a buffer holds any of _HIREDIS_UNSAFE: one regular-expression search is the cheaper
# test up to a few hundred bytes (a command or a few), one bytes.find per byte beyond.
_unsafe_search = re.compile(b"[" + re.escape(b"".join(_HIREDIS_UNSAFE)) + b"]").search
_UNSAFE_SEARCH_MAX = 256

_INT_MAX = 2**31 - 1

# Lengths and counts are decimal ASCII; most are small. Looking the digits up in a table is
# several times cheaper than validating and converting them, and these lookups run once per
# argument of every command.
_SMALL_INTS: dict[bytes, int] = {b"%d" % i: i for i in range(-1, 10000)}


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
        "_args_bytes",
        "_args_counted",
        "_buf",
        "_bulk_len",
        "_error",
        "_ready",
        "_ready_pos",
        "_remaining",
        "_fast_ok",
        "_hiredis_max",
        "_hiredis_reader",
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
        # Bytes of the arguments in _args, and how many of them that sum covers: kept up to
        # date at the end of each pass (not per argument), for ``buffered``.
        self._args_bytes = 0
        self._args_counted = 0
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
        # The hiredis reader of the last pass, kept while it ended clean (None: build one).
        # Reused, and with one regular-expression search as its safety check on short
        # buffers, hiredis beats the pure fast path from a single command up.
        self._hiredis_reader: object | None = None

    def feed(self, data: bytes) -> None:
        """Add bytes received from the client. Parsing happens in ``next_command``/``commands``."""
        if self._error is None:
            self._buf += data

    @property
    def drained(self) -> bool:
        """True when ``commands`` has nothing more to give until more bytes are fed.

        A call of ``commands`` parses everything complete in the buffer, so after it only a
        protocol error can be pending (raised by the next call) or commands ``next_command``
        has not handed out yet. Lets a server stop after one call per read instead of making
        a second one that finds nothing.
        """
        return self._error is None and self._ready_pos >= len(self._ready)

    @property
    def buffered(self) -> int:
        """Bytes held for the request not complete yet: unparsed bytes plus the arguments
        already cut out of a multibulk still in progress (Redis's query buffer, which a
        server limits with ``client-query-buffer-limit``)."""
        return len(self._buf) + self._args_bytes

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

    def commands_after(self, data: bytes) -> list[list[bytes]]:
        """``feed(data)`` then ``commands()``, in one step; the same result, raising the same way.

        The common case — nothing buffered from earlier reads, and ``data`` holding whole
        plain multibulks — is parsed straight from ``data`` by the fast path, without copying
        it into the buffer and out again or running the careful loop's bookkeeping: a read of
        one PUBLISH is what a publisher that does not pipeline sends every time.
        """
        if (self._buf or self._args is not None or self._error is not None or not data
                or self._ready_pos < len(self._ready)
                or data[0] != 42 or not self._fast_ok):
            self.feed(data)
            return self.commands()
        out: list[list[bytes]] = []
        pos = self._parse_fast(data, 0, out)
        if pos < len(data):
            # The rest (a partial command, an inline one, an error...) goes the careful way.
            self._buf += data[pos:] if pos else data
            parsed = self._parse()
            if not out and not parsed and self._error is not None:
                raise self._error
            out += parsed
        return out

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
            self._args_bytes = self._args_counted = 0
            return out
        if args is None:
            self._args_bytes = self._args_counted = 0
        else:
            # A multibulk is still in progress: add the arguments this pass cut out. Counting
            # once per pass keeps a multibulk with many arguments arriving slowly O(n).
            if args is not self._args:  # it started in this pass
                self._args_bytes = self._args_counted = 0
            counted = self._args_counted
            if len(args) > counted:
                self._args_bytes += sum(map(len, args[counted:]))
                self._args_counted = len(args)
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
        size = len(data)
        if size <= self._hiredis_max:
            if size - start <= _UNSAFE_SEARCH_MAX:
                safe = _unsafe_search(data, start) is None
            else:
                for byte in _HIREDIS_UNSAFE:
                    if data.find(byte, start) >= 0:
                        safe = False
                        break
                else:
                    safe = True
            if safe:
                pos, self._hiredis_reader = _parse_with_hiredis(self._hiredis_reader, data, start, out)
                return pos
        return _parse_plain_multibulks(data, start, out)


def _expected_dollar(byte: int) -> RemoteProtocolError:
    # Redis formats the offending byte with %c, then turns CR/LF into spaces in the reply.
    shown = b" " if byte in (10, 13) else bytes([byte])
    return RemoteProtocolError(
        f"expected '$', got {bytes([byte])!r}",
        reply=b"-ERR Protocol error: expected '$', got '%b'\r\n" % shown,
    )
