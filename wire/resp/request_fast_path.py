"""Fast paths for ``RequestParser``: pipelines of plain multibulk commands, parsed in bulk.

Client libraries send small, well-formed multibulks (``*<n>``, then ``$<len>`` and body
pairs), often many per read (``redis-benchmark -P 16``). ``RequestParser._parse_fast`` hands
such a buffer to one of two fast paths before its careful loop:

* ``_parse_with_hiredis``: hiredis's C RESP parser (a reply parser, but a request is a RESP
  array of bulk strings), when hiredis is installed and the buffer qualifies;
* ``_parse_plain_multibulks``: pure Python, one split of the buffer at CRLF and table lookups
  of the count and length lines.

Both accept only results they can prove equal to what the careful loop would read, and stop
at the first thing they are not sure about (an inline command, a malformed or big length, an
incomplete tail, ...). The careful loop in ``requests`` takes over from there, so errors,
limits and Redis's quirks are handled in one place only. hiredis is there for speed, not for
correctness: without it the pure path is used.

Not here: the careful loop and the choice between the two paths (``requests``), inline
commands (``inline``).
"""

from __future__ import annotations

try:  # hiredis: a C RESP parser (see _parse_with_hiredis); the pure paths work without it
    from hiredis import Reader as _HiredisReader
except ImportError:  # pragma: no cover
    _HiredisReader = None

__all__: list[str] = []  # private to wire.resp: RequestParser imports what it uses

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


def _parse_with_hiredis(reader: object | None, data: bytes, start: int,
                        out: list[list[bytes]]) -> tuple[int, object | None]:
    """hiredis's C parser on ``data[start:]``; returns the position reached, and the reader
    to use next time.

    ``reader`` is the hiredis reader a previous call returned, or None for a new one. A
    reader is handed back only when it ended clean (everything fed was read, the sentinel
    included, no error): then it holds nothing and can parse the next pass, which saves
    building one per read (about half a microsecond, paid by every pipelined read).

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
    if reader is None:
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
            return len(data), reader
    # Something needs a closer look: keep the leading run of plain commands, and hand
    # the rest (from its exact position, recomputed from the canonical encoding) on.
    pos = start
    for command in found:
        if type(command) is not list or not command:
            break
        length = 3 + len(b"%d" % len(command))
        for arg in command:
            if type(arg) is not bytes:
                return pos, None
            length += 5 + len(arg) + len(b"%d" % len(arg))
        out.append(command)
        pos += length
    return pos, None
