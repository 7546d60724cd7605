"""Tests for ``broker.glob``: Redis's glob dialect, every quirk listed in
docs/resp.md#pattern-globs-and-rediss-quirks.

Three kinds of evidence: examples observed on a real redis-server 7.0.15,
one test per quirk, and a hypothesis comparison with a deliberately naive recursive reference
(written from the rules, exponential, no early exit) over small patterns made of the special bytes.
"""

from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from broker.glob import MAX_STAR_NESTING, glob_match

# --- examples observed on redis-server 7.0.15, and the dialect's basic rules ---------------------

OBSERVED = [
    (b"h[ae]llo", b"hello", True),
    (b"h[ae]llo", b"hallo", True),
    (b"h[ae]llo", b"hillo", False),
    (b"h[^e]llo", b"hallo", True),
    (b"h[^e]llo", b"hxllo", True),
    (b"h[^e]llo", b"hello", False),
    (b"h*llo", b"hllo", True),
    (b"h*llo", b"hello", True),
    (b"h*llo", b"heeeello", True),
    (b"h*llo", b"hell", False),
    (b"a?b", b"a*b", True),
    (b"a?b", b"a?b", True),
    (b"a?b", b"a[b", True),
    (b"a?b", b"a\\b", True),
    (b"a?b", b"a]b", True),
    (b"a?b", b"axb", True),
    (b"a?b", b"ab", False),
    (b"a?b", b"axxb", False),
    # PUBLISH ch1 with patterns *, c?1, [^x]h[0-9] all matching (docs/resp.md#publishs-receiver-count).
    (b"*", b"ch1", True),
    (b"c?1", b"ch1", True),
    (b"[^x]h[0-9]", b"ch1", True),
]


@pytest.mark.parametrize(("pattern", "string", "expected"), OBSERVED)
def test_observed_examples(pattern: bytes, string: bytes, expected: bool) -> None:
    assert glob_match(pattern, string) is expected


def test_question_mark_matches_every_one_byte_name() -> None:
    for byte in range(256):
        assert glob_match(b"?", bytes([byte]))
    assert not glob_match(b"?", b"")
    assert not glob_match(b"?", b"ab")


# --- quirks ---------------------------------------------------------------------------------

QUIRKS = [
    # ``*`` never matches the empty string; only the empty pattern does.
    (b"*", b"", False),
    (b"**", b"", False),
    (b"", b"", True),
    (b"", b"a", False),
    (b"a*", b"a", True),  # but a trailing * after consuming the last byte matches nothing
    (b"a**", b"a", True),
    (b"*", b"anything", True),
    (b"**", b"x", True),
    (b"*a", b"a", True),  # a leading * may match nothing when bytes follow
    (b"a*b", b"ab", True),
    (b"a*b*c", b"abc", True),
    (b"a*b*c", b"axxbyyc", True),
    (b"a*b*c", b"axxbyy", False),
    # empty set never matches; negated empty set matches any byte
    (b"[]", b"]", False),
    (b"[]", b"x", False),
    (b"[^]", b"x", True),
    (b"[^]", b"]", True),
    (b"a[]]b", b"a]b", False),
    (b"a[]]b", b"a]]b", False),
    # ``-`` after a member is a range when two pattern bytes follow, even if the second is ``]``
    (b"[a-]", b"a", True),
    (b"[a-]", b"]", True),
    (b"[a-]", b"^", True),  # ']' (0x5d) .. 'a' (0x61) contains '^'
    (b"[a-]", b"-", False),
    (b"[a-]x", b"x", True),  # the set never closed: x is a member, not a literal after it
    (b"[a-]x", b"ax", False),
    # reversed ranges are swapped
    (b"[b-a]", b"a", True),
    (b"[z-a]", b"m", True),
    (b"[z-a]", b"A", False),
    (b"[0-9]", b"5", True),
    (b"[0-9]", b"a", False),
    (b"[^0-9]", b"a", True),
    (b"[a-c-e]", b"-", True),  # after a range, '-' is a member
    # unterminated sets end at the pattern's end
    (b"[abc", b"b", True),
    (b"[abc", b"d", False),
    (b"[", b"[", False),
    (b"[^", b"x", True),
    (b"x[", b"x[", False),
    # backslash escapes
    (b"a\\*b", b"a*b", True),
    (b"a\\*b", b"axb", False),
    (b"a[*]b", b"a*b", True),
    (b"a[*]b", b"axb", False),
    (b"\\?", b"?", True),
    (b"\\?", b"x", False),
    (b"\\", b"\\", True),  # a trailing lone backslash matches a backslash
    (b"a\\", b"a\\", True),
    (b"a\\", b"a", False),
    (b"[\\]]", b"]", True),  # escaped member inside a set
    (b"[\\]", b"]", True),  # \] is an escaped member, so this set never closes
    (b"[\\]", b"\\", False),
    (b"[\\", b"\\", True),  # a lone backslash at the end of an unterminated set is a member
    (b"[\\-a]", b"-", True),
    (b"[\\-a]", b"b", False),
    (b"\\\\", b"\\", True),
    # ``^`` negates only as the first byte of a set
    (b"[a^]", b"^", True),
    (b"[a^]", b"b", False),
    # case-sensitive, byte-wise
    (b"Hello", b"hello", False),
    (b"h\xc3\xa9", b"h\xc3\xa9", True),
    (b"h?", b"h\xc3\xa9", False),  # ? is one byte, not one character
    (b"h??", b"h\xc3\xa9", True),
    (b"a\x00b", b"a\x00b", True),  # NUL bytes are ordinary
    (b"a?b", b"a\x00b", True),
    # ranges compare C's signed char (x86-64 Redis): a byte >= 0x80 sorts below 0x00
    (b"[a-\xff]", b"\xff", True),
    (b"[a-\xff]", b"\x00", True),
    (b"[a-\xff]", b"b", False),
    (b"[\x80-\xff]", b"\x90", True),
    (b"[\x80-\xff]", b"a", False),
]


@pytest.mark.parametrize(("pattern", "string", "expected"), QUIRKS)
def test_quirks(pattern: bytes, string: bytes, expected: bool) -> None:
    assert glob_match(pattern, string) is expected


def test_nesting_guard_counts_star_levels() -> None:
    # 1000 nested stars still work; the 1001st is refused, as Redis refuses recursion > 1000.
    assert glob_match(b"*a" * MAX_STAR_NESTING, b"a" * MAX_STAR_NESTING)
    assert not glob_match(b"*a" * (MAX_STAR_NESTING + 1), b"a" * (MAX_STAR_NESTING + 1))
    # Runs of * are one level, and a trailing * needs no level.
    assert glob_match(b"**a" * MAX_STAR_NESTING + b"*", b"a" * MAX_STAR_NESTING + b"tail")


def test_pathological_pattern_is_fast() -> None:
    # Naive backtracking would take ~len(string) ** stars steps; Redis's skip-longer rule and our
    # loop stay polynomial.
    pattern = b"a*" * 40 + b"b"
    string = b"a" * 5000
    started = time.perf_counter()
    assert not glob_match(pattern, string)
    assert not glob_match(b"*a*a*a*a*a*a*a*a*a*a*a*a*b", b"a" * 3000)
    assert glob_match(b"*a*a*a*a*a*a*a*a*a*a*a*a*b", b"a" * 3000 + b"b")
    assert time.perf_counter() - started < 2.0


# --- a naive reference, written from the rules, and a hypothesis comparison ------------------


def _signed(byte: int) -> int:
    return byte - 256 if byte >= 128 else byte


def _set_element(pattern: bytes) -> tuple[set[int] | None, bool, int]:
    """Parse the set opening ``pattern`` (``pattern[0] == '['``): (members, ranges as a set of
    accepted bytes, negated, length consumed)."""
    i = 1
    negated = i < len(pattern) and pattern[i] == ord("^")
    if negated:
        i += 1
    accepted: set[int] = set()
    while True:
        rest = len(pattern) - i
        if rest >= 2 and pattern[i] == ord("\\"):
            accepted.add(pattern[i + 1])
            i += 2
        elif rest >= 1 and pattern[i] == ord("]"):
            return accepted, negated, i + 1
        elif rest == 0:
            return accepted, negated, len(pattern)
        elif rest >= 3 and pattern[i + 1] == ord("-"):
            low, high = sorted((_signed(pattern[i]), _signed(pattern[i + 2])))
            accepted.update(b for b in range(256) if low <= _signed(b) <= high)
            i += 3
        else:
            accepted.add(pattern[i])
            i += 1


def _first_element_matches(pattern: bytes, byte: int) -> tuple[bool, bytes]:
    """Does the first non-star element of ``pattern`` accept ``byte``? Also the rest of it."""
    head = pattern[0]
    if head == ord("?"):
        return True, pattern[1:]
    if head == ord("["):
        accepted, negated, used = _set_element(pattern)
        return (byte in accepted) != negated, pattern[used:]
    if head == ord("\\") and len(pattern) >= 2:
        return pattern[1] == byte, pattern[2:]
    return head == byte, pattern[1:]


def reference_match(pattern: bytes, string: bytes) -> bool:
    """Plain exponential recursion: every way a ``*`` can split the string is tried."""
    if not pattern or not string:
        # Matching happens only while both are non-empty: "" meets only "".
        return not pattern and not string
    if pattern[0] == ord("*"):
        rest = pattern.lstrip(b"*")
        if not rest:
            return True
        # The star takes 0, 1, ... len-1 bytes; the rest needs at least one byte to start on.
        return any(reference_match(rest, string[k:]) for k in range(len(string)))
    ok, rest = _first_element_matches(pattern, string[0])
    if not ok:
        return False
    if len(string) == 1:
        # String used up right after a step: trailing stars may match nothing.
        return rest.lstrip(b"*") == b""
    return reference_match(rest, string[1:])


SPECIAL = b"*?[]^-\\ab"
patterns = st.lists(st.sampled_from(list(SPECIAL) + [0xE9]), max_size=9).map(bytes)
strings = st.lists(st.sampled_from(list(b"ab-]^[\\*?") + [0xE9]), max_size=7).map(bytes)


@settings(max_examples=2000, deadline=None)
@given(pattern=patterns, string=strings)
def test_matches_naive_reference(pattern: bytes, string: bytes) -> None:
    assert glob_match(pattern, string) == reference_match(pattern, string)


@settings(max_examples=500, deadline=None)
@given(string=strings.filter(bool))
def test_escaped_string_matches_itself_only(string: bytes) -> None:
    # Escaping every byte turns any string into a literal pattern.
    escaped = b"".join(b"\\" + bytes([b]) for b in string)
    assert glob_match(escaped, string)
    assert not glob_match(escaped, string + b"a")


def test_reference_agrees_on_the_quirk_table() -> None:
    # Keeps the reference honest: it must itself pass the hand-written table.
    for pattern, string, expected in QUIRKS + OBSERVED:
        assert reference_match(pattern, string) is expected, (pattern, string)
