"""RequestParser.buffered: the bytes a client's unfinished request holds (its query buffer).

A server limits this per client (Redis ``client-query-buffer-limit``) and in total, so it
must be exact at command boundaries (nothing held once every complete command is handed out),
never more than what was received past the last complete command, and not much less: only
the framing lines already parsed away (``*<n>``, ``$<len>`` and the CRLFs) may be missing.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from wire.resp.encoder import command
from wire.resp.requests import RequestParser

ARGS = st.lists(st.binary(max_size=300), min_size=1, max_size=6)


@given(commands=st.lists(ARGS, min_size=1, max_size=8), cuts=st.lists(st.integers(1, 200), min_size=1))
def test_buffered_is_what_the_unfinished_command_holds(commands, cuts):
    encoded = [command(*args) for args in commands]
    ends = []  # stream offset where each command ends
    total = 0
    for frame in encoded:
        total += len(frame)
        ends.append(total)
    data = b"".join(encoded)
    parser = RequestParser()
    fed = done = pos = 0
    i = 0
    while pos < len(data):
        size = cuts[i % len(cuts)]
        i += 1
        parser.feed(data[pos : pos + size])
        pos = fed = min(pos + size, len(data))
        done += len(parser.commands())
        boundary = ends[done - 1] if done else 0
        pending = fed - boundary
        if pending == 0:
            assert parser.buffered == 0
        else:
            current = commands[done]
            framing = len(encoded[done]) - sum(map(len, current))
            assert pending - framing <= parser.buffered <= pending
    assert done == len(commands) and parser.buffered == 0


def test_buffered_counts_arguments_already_cut_out_of_a_partial_multibulk():
    parser = RequestParser()
    parser.feed(b"*3\r\n$7\r\nPUBLISH\r\n$2\r\nch\r\n$10\r\n01234")
    assert parser.commands() == []
    # "PUBLISH" and "ch" were parsed into arguments; 5 payload bytes wait in the buffer.
    assert parser.buffered == 7 + 2 + 5
    parser.feed(b"56789\r\n")
    assert parser.commands() == [[b"PUBLISH", b"ch", b"0123456789"]]
    assert parser.buffered == 0


def test_buffered_counts_a_partial_inline_line():
    parser = RequestParser()
    parser.feed(b"PUBLISH ch hel")
    assert parser.commands() == []
    assert parser.buffered == 14
