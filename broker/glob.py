"""Redis-style glob matching for PSUBSCRIBE and PUBSUB CHANNELS.

What lives here: one function, ``glob_match(pattern, string)``, that answers exactly what Redis's
``stringmatchlen`` (``src/util.c``, case-sensitive mode) answers. It works on bytes, knows nothing
about channels or RESP, and is used by ``broker.channels`` for pattern fan-out and introspection.

The dialect (docs/resp.md#pattern-globs-and-rediss-quirks), in our words:

* ``*`` any run of bytes (runs of ``**`` act as one); ``?`` exactly one byte;
* ``[abc]`` one byte of a set, ``[^abc]`` one byte outside it, ``[a-z]`` an inclusive range;
* ``\\x`` the literal byte ``x``; every other byte is itself.

Redis's quirks are kept on purpose, because a client must see the same answer from dualmq as from
Redis:

* ``*`` never matches the empty string (the matcher's loop only runs while both pattern and string
  are non-empty, so ``""`` is matched by the empty pattern only);
* ``[]`` never matches, ``[^]`` matches any byte, ``a[]]b`` does not match ``a]b``;
* ``-`` after a set member starts a range whenever two more pattern bytes follow, even if the second
  is ``]``: ``[a-]`` is the range ``]``..``a`` and the set then runs on to the pattern's end;
* reversed ranges are swapped (``[z-a]`` is ``[a-z]``);
* a ``[`` set without its ``]`` ends at the end of the pattern; a lone trailing ``\\`` is a literal
  backslash (outside and inside a set);
* ranges compare bytes as C ``char``, which is *signed* on the x86-64 builds Redis ships for
  Debian: a byte >= 0x80 sorts below ``\\x00`` inside a range (``[a-\\xff]`` is ``\\xff``..``a``);
* more than 1000 nested ``*`` levels count as "no match" (Redis's guard against abusive patterns).

Why it is not a transliteration of the C code: Redis recurses once per ``*``, and Python's default
recursion limit is about 1000 frames, the same depth as Redis's guard. The C function however has a
property that makes recursion unnecessary. It shares a flag, ``skipLongerMatches``: when the part of
the pattern after a ``*`` fails at *every* remaining position of the string, no earlier ``*`` can
help by swallowing more bytes (that would only start the same tail later in the string), so the
whole match fails at once. Consequence: only the innermost ``*`` is ever retried, and a loop with
one remembered "retry point" gives the same answers as the recursion, in O(len(pattern) *
len(string)) time even for patterns like ``a*a*a*a*…b`` that make naive backtracking exponential.
"""

from __future__ import annotations

__all__ = ["glob_match", "MAX_STAR_NESTING"]

# Redis gives up (answers "no match") when a match needs more nested ``*`` levels than this.
MAX_STAR_NESTING = 1000

_STAR = ord("*")
_QUESTION = ord("?")
_OPEN = ord("[")
_CLOSE = ord("]")
_CARET = ord("^")
_DASH = ord("-")
_BACKSLASH = ord("\\")


def _as_c_char(byte: int) -> int:
    """The value C's (signed) ``char`` gives a byte: range bounds compare this way in Redis."""
    return byte - 256 if byte >= 128 else byte


def glob_match(pattern: bytes, string: bytes) -> bool:
    """Tell whether ``string`` matches the Redis glob ``pattern`` (case-sensitive).

    Args:
        pattern: a PSUBSCRIBE / PUBSUB CHANNELS pattern, any bytes.
        string: a channel name, any bytes.

    Returns:
        True exactly when Redis's ``stringmatchlen(pattern, string, nocase=0)`` returns 1.
    """
    plen = len(pattern)
    slen = len(string)
    p = 0  # next pattern byte
    s = 0  # next string byte
    # The innermost ``*`` seen so far: the pattern index just after it, and the string index where
    # the current attempt to match the rest of the pattern began. -1: no ``*`` yet, so a mismatch
    # is final.
    retry_p = -1
    retry_s = 0
    stars = 0  # how deep Redis's recursion would be: one level per (collapsed) ``*``

    while True:
        # One attempt: walk pattern and string together. ``failed`` says whether the attempt
        # ended in a mismatch; falling out of the loop normally means one side ran out.
        failed = False
        while p < plen and s < slen:
            c = pattern[p]
            if c == _STAR:
                # ``**…*`` acts like one ``*``.
                while p + 1 < plen and pattern[p + 1] == _STAR:
                    p += 1
                if p + 1 == plen:
                    # A trailing ``*`` takes whatever is left (there is at least one byte left).
                    return True
                stars += 1
                if stars > MAX_STAR_NESTING:
                    # Redis's recursion would refuse every attempt at this depth and then give up.
                    return False
                # Try the rest of the pattern with the ``*`` matching nothing first; on failure
                # we come back here and let it swallow one more byte.
                retry_p = p + 1
                retry_s = s
                p = retry_p
                continue
            if c == _QUESTION:
                pass  # any single byte
            elif c == _OPEN:
                p, ok = _match_set(pattern, p, string[s])
                if not ok:
                    failed = True
                    break
            else:
                if c == _BACKSLASH and p + 1 < plen:
                    p += 1  # ``\x`` is the literal x; a lone trailing ``\`` stays a backslash
                if pattern[p] != string[s]:
                    failed = True
                    break
            p += 1
            s += 1
            if s == slen:
                # The string is used up: trailing ``*`` may still match the empty rest. (This is
                # the only way a ``*`` matches nothing at the end; a *leading* ``*`` against an
                # empty string never gets here, hence the "``*`` does not match ''" quirk.)
                while p < plen and pattern[p] == _STAR:
                    p += 1
                break
        if not failed and p == plen and s == slen:
            return True
        # This attempt failed. Let the innermost ``*`` swallow one more byte and try again.
        if retry_p < 0:
            return False
        retry_s += 1
        if retry_s == slen:
            # The tail failed from every position: Redis sets skipLongerMatches and every
            # enclosing ``*`` gives up too, so the whole match fails.
            return False
        p = retry_p
        s = retry_s


def _match_set(pattern: bytes, p: int, byte: int) -> tuple[int, bool]:
    """Match one byte against the ``[...]`` set that opens at ``pattern[p]``.

    Returns:
        (index of the set's last pattern byte — its ``]``, or the pattern's last byte when the set
        is unterminated —, whether ``byte`` is accepted).
    """
    plen = len(pattern)
    p += 1
    negate = p < plen and pattern[p] == _CARET
    if negate:
        p += 1
    matched = False
    while True:
        if p < plen and pattern[p] == _BACKSLASH and plen - p >= 2:
            # Escaped member: ``\]`` or ``\-`` is just that byte.
            p += 1
            if pattern[p] == byte:
                matched = True
        elif p < plen and pattern[p] == _CLOSE:
            break
        elif p >= plen:
            # Unterminated: the set ends with the pattern. Step back so that the caller's
            # "move past the set" lands exactly on the end.
            p -= 1
            break
        elif plen - p >= 3 and pattern[p + 1] == _DASH:
            # A range, even when its upper bound is ``]`` (Redis checks only that two bytes follow).
            start = _as_c_char(pattern[p])
            end = _as_c_char(pattern[p + 2])
            if start > end:
                start, end = end, start
            p += 2
            if start <= _as_c_char(byte) <= end:
                matched = True
        elif pattern[p] == byte:
            matched = True
        p += 1
    return p, matched != negate
