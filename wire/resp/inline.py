"""Inline commands: one line of text split into arguments, as Redis' ``sdssplitargs`` does.

A request whose first byte is not ``*`` is an *inline* command: one line, ended by ``\\n`` (a
``\\r`` just before it is dropped). This is what people type into telnet and what
``redis-benchmark``'s ``PING_INLINE`` sends. ``split_inline`` splits such a line into
arguments with the quoting rules of Redis' ``sdssplitargs`` (``sds.c``); a blank line gives no
arguments, and the request parser ignores it.

Not here: finding where the line ends and limiting its length (``requests.RequestParser``),
multibulk commands.
"""

from __future__ import annotations

import re

from wire.resp.redis_rules import _protocol_error

__all__ = ["split_inline"]

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
