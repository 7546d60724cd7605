"""RequestParser: multibulk and inline commands, exact Redis error lines, limits, chunking."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wire.errors import RemoteProtocolError
from wire.resp.encoder import command
from wire.resp.inline import split_inline
from wire.resp.requests import RequestParser

PIPELINE = (
    b"*3\r\n$7\r\nPUBLISH\r\n$3\r\nch1\r\n$2\r\nhi\r\n"
    b"PING\r\n"
    b"*0\r\n"
    b"*-1\r\n"
    b"\r\n"
    b"   \t \r\n"
    b"*1\r\n$4\r\nPING\r\n"
    b"*2\r\n$4\r\nECHO\r\n$6\r\na\r\nb\x00c\r\n"
    b"ECHO   hello\tworld\n"
    b"*1\r\n$0\r\n\r\n"
)
EXPECTED = [
    [b"PUBLISH", b"ch1", b"hi"],
    [b"PING"],
    [b"PING"],
    [b"ECHO", b"a\r\nb\x00c"],
    [b"ECHO", b"hello", b"world"],
    [b""],
]


def drain(parser: RequestParser) -> list[list[bytes]]:
    out = []
    while (cmd := parser.next_command()) is not None:
        out.append(cmd)
    return out


def feed_in_chunks(data: bytes, sizes: list[int], use_commands: bool = True, **limits):
    """Feed ``data`` cut at ``sizes`` (cycled); return (commands, error or None)."""
    parser = RequestParser(**limits)
    out: list[list[bytes]] = []
    pos = 0
    i = 0
    try:
        while pos < len(data):
            size = sizes[i % len(sizes)] if sizes else len(data)
            i += 1
            parser.feed(data[pos : pos + size])
            pos += size
            out.extend(parser.commands() if use_commands else drain(parser))
        out.extend(parser.commands() if use_commands else drain(parser))
    except RemoteProtocolError as exc:
        return out, exc
    return out, None


def test_pipeline_all_at_once() -> None:
    parser = RequestParser()
    parser.feed(PIPELINE)
    assert parser.commands() == EXPECTED
    assert parser.commands() == []
    assert parser.next_command() is None


def test_pipeline_one_byte_at_a_time_with_next_command() -> None:
    assert feed_in_chunks(PIPELINE, [1], use_commands=False) == (EXPECTED, None)


@pytest.mark.parametrize("size", [1, 2, 3, 5, 7, 13, 64])
def test_pipeline_chunked(size: int) -> None:
    assert feed_in_chunks(PIPELINE, [size]) == (EXPECTED, None)


def test_next_command_and_commands_mix() -> None:
    parser = RequestParser()
    parser.feed(PIPELINE)
    assert parser.next_command() == EXPECTED[0]
    assert parser.commands() == EXPECTED[1:]


def test_partial_command_then_rest() -> None:
    parser = RequestParser()
    parser.feed(b"*2\r\n$4\r\nECHO\r\n$5\r\nhel")
    assert parser.next_command() is None
    assert parser.commands() == []
    parser.feed(b"lo\r\n*1\r\n$4\r\nPI")
    assert parser.commands() == [[b"ECHO", b"hello"]]
    parser.feed(b"NG\r\n")
    assert parser.commands() == [[b"PING"]]


def test_trailing_garbage_after_good_commands() -> None:
    """Commands before the error are handed out first, then the error, then it sticks."""
    parser = RequestParser()
    parser.feed(b"*1\r\n$4\r\nPING\r\nPING\r\n*1\r\nX\r\n*1\r\n$4\r\nPING\r\n")
    assert parser.commands() == [[b"PING"], [b"PING"]]
    with pytest.raises(RemoteProtocolError) as info:
        parser.commands()
    assert info.value.reply == b"-ERR Protocol error: expected '$', got 'X'\r\n"
    parser.feed(b"*1\r\n$4\r\nPING\r\n")
    with pytest.raises(RemoteProtocolError):
        parser.next_command()


def test_trailing_garbage_with_next_command() -> None:
    parser = RequestParser()
    parser.feed(b"*1\r\n$4\r\nPING\r\n*x\r\n")
    assert parser.next_command() == [b"PING"]
    with pytest.raises(RemoteProtocolError) as info:
        parser.next_command()
    assert info.value.reply == b"-ERR Protocol error: invalid multibulk length\r\n"


ERRORS = [
    (b"*x\r\n", b"invalid multibulk length"),
    (b"*\r\n", b"invalid multibulk length"),
    (b"*+1\r\n", b"invalid multibulk length"),
    (b"*01\r\n", b"invalid multibulk length"),
    (b"*-0\r\n", b"invalid multibulk length"),
    (b"* 1\r\n", b"invalid multibulk length"),
    (b"*2147483648\r\n", b"invalid multibulk length"),
    (b"*99999999999999999999\r\n", b"invalid multibulk length"),
    (b"*1\r\nX\r\n", b"expected '$', got 'X'"),
    (b"*1\r\n:1\r\n", b"expected '$', got ':'"),
    (b"*1\r\n\r\n", b"expected '$', got ' '"),
    (b"*1\r\n$-1\r\n", b"invalid bulk length"),
    (b"*1\r\n$x\r\n", b"invalid bulk length"),
    (b"*1\r\n$\r\n", b"invalid bulk length"),
    (b"*1\r\n$04\r\nPING\r\n", b"invalid bulk length"),
    (b"*1\r\n$536870913\r\n", b"invalid bulk length"),
    (b'SET k "abc\r\n', b"unbalanced quotes in request"),
    (b"SET k 'abc\r\n", b"unbalanced quotes in request"),
    (b'SET k "a"b\r\n', b"unbalanced quotes in request"),
    (b"SET k 'a'b\r\n", b"unbalanced quotes in request"),
    (b'SET k a"b\r\n', b"unbalanced quotes in request"),
]


@pytest.mark.parametrize(("data", "message"), ERRORS)
@pytest.mark.parametrize("chunk", [0, 1])
def test_protocol_errors_have_redis_reply(data: bytes, message: bytes, chunk: int) -> None:
    commands, error = feed_in_chunks(data, [chunk] if chunk else [])
    assert commands == []
    assert isinstance(error, RemoteProtocolError)
    assert error.reply == b"-ERR Protocol error: " + message + b"\r\n"


def test_max_multibulk_len_is_configurable() -> None:
    parser = RequestParser(max_multibulk_len=3)
    parser.feed(b"*3\r\n")
    assert parser.commands() == []
    parser = RequestParser(max_multibulk_len=3)
    parser.feed(b"*4\r\n")
    with pytest.raises(RemoteProtocolError, match="invalid multibulk length"):
        parser.commands()


def test_bulk_length_above_limit_fails_before_body() -> None:
    parser = RequestParser(max_bulk_len=10)
    parser.feed(b"*2\r\n$4\r\nECHO\r\n$10\r\n")
    assert parser.commands() == []  # exactly at the limit: accepted, waits for the body
    parser = RequestParser(max_bulk_len=10)
    parser.feed(b"*2\r\n$4\r\nECHO\r\n$11\r\n")  # no body byte has arrived
    with pytest.raises(RemoteProtocolError) as info:
        parser.commands()
    assert info.value.reply == b"-ERR Protocol error: invalid bulk length\r\n"


def test_default_bulk_limit_is_512_mib() -> None:
    parser = RequestParser()
    parser.feed(b"*1\r\n$%d\r\n" % (512 * 1024 * 1024))
    assert parser.commands() == []
    parser = RequestParser()
    parser.feed(b"*1\r\n$%d\r\n" % (512 * 1024 * 1024 + 1))
    with pytest.raises(RemoteProtocolError, match="invalid bulk length"):
        parser.commands()


def test_inline_limit_64_kib() -> None:
    limit = 64 * 1024
    ok = b"ECHO " + b"x" * (limit - 5) + b"\n"  # exactly 64 KiB before the newline
    parser = RequestParser()
    parser.feed(ok)
    assert parser.commands() == [[b"ECHO", b"x" * (limit - 5)]]
    # One byte more and no newline yet: fails at once, without waiting for the end.
    parser = RequestParser()
    parser.feed(b"x" * limit)
    assert parser.commands() == []
    parser.feed(b"x")
    with pytest.raises(RemoteProtocolError) as info:
        parser.commands()
    assert info.value.reply == b"-ERR Protocol error: too big inline request\r\n"
    # Same verdict when the newline is already there: chunking never changes the outcome.
    parser = RequestParser()
    parser.feed(b"x" * (limit + 1) + b"\n")
    with pytest.raises(RemoteProtocolError, match="too big inline request"):
        parser.commands()


def test_count_line_limit() -> None:
    parser = RequestParser(max_inline_len=16)
    parser.feed(b"*" + b"1" * 15)  # 16 bytes, no CR yet: still waiting
    assert parser.commands() == []
    parser.feed(b"1")
    with pytest.raises(RemoteProtocolError) as info:
        parser.commands()
    assert info.value.reply == b"-ERR Protocol error: too big mbulk count string\r\n"
    parser = RequestParser(max_inline_len=16)
    parser.feed(b"*1\r\n$" + b"1" * 20)
    with pytest.raises(RemoteProtocolError) as info:
        parser.commands()
    assert info.value.reply == b"-ERR Protocol error: too big bulk count string\r\n"


def test_big_body_arrives_in_pieces() -> None:
    body = bytes(range(256)) * 1000
    data = command(b"ECHO", body)
    for size in (1000, 4096, 65536):
        assert feed_in_chunks(data, [size]) == ([[b"ECHO", body]], None)


def test_redis_does_not_check_bytes_after_body() -> None:
    """Redis skips the two bytes after a body without looking at them; so do we."""
    parser = RequestParser()
    parser.feed(b"*1\r\n$4\r\nPINGxx*1\r\n$4\r\nPING\rX")
    assert parser.commands() == [[b"PING"], [b"PING"]]


# -- inline splitting ------------------------------------------------------------------------

INLINE = [
    (b"PING", [b"PING"]),
    (b"  set  k   v  ", [b"set", b"k", b"v"]),
    (b"a\tb\rc", [b"a", b"b", b"c"]),
    (b"\x0b\x0ca b", [b"a", b"b"]),
    (b"a\x0bb", [b"a\x0bb"]),  # \v separates nothing inside an argument
    (b'PUBSUB NUMSUB "a b\\x41\\n" \'c\\\'d\' e', [b"PUBSUB", b"NUMSUB", b"a bA\n", b"c'd", b"e"]),
    (b'"\\n\\r\\t\\b\\a\\"\\\\\\q"', [b'\n\r\t\b\x07"\\q']),
    (b'"\\x4g" "\\xff"', [b"x4g", b"\xff"]),
    (b"'a\\nb'", [b"a\\nb"]),
    (b'""', [b""]),
    (b"'' x", [b"", b"x"]),
    (b'ab"c d" e', [b"abc d", b"e"]),
    (b"PING\x00junk \"unbalanced", [b"PING"]),
    (b"", []),
    (b" \t ", []),
]


@pytest.mark.parametrize(("line", "args"), INLINE)
def test_split_inline(line: bytes, args: list[bytes]) -> None:
    assert split_inline(line) == args


def test_inline_through_parser_drops_cr_before_lf() -> None:
    parser = RequestParser()
    parser.feed(b'SET k "v"\r\nGET k\nGET "x\r"\r\n')
    assert parser.commands() == [[b"SET", b"k", b"v"], [b"GET", b"k"], [b"GET", b"x\r"]]


def test_inline_quoting_as_redis_splits_it() -> None:
    # redis-server 7.0.15 reads this line as the channels 'a bA\n', "c'd" and 'e'.
    parser = RequestParser()
    parser.feed(b"PUBSUB NUMSUB \"a b\\x41\\n\" 'c\\'d' e\r\n")
    assert parser.commands() == [[b"PUBSUB", b"NUMSUB", b"a bA\n", b"c'd", b"e"]]


# -- properties ---------------------------------------------------------------------------------

args_strategy = st.lists(st.binary(max_size=40), min_size=1, max_size=6)


@given(st.lists(args_strategy, max_size=8), st.lists(st.integers(1, 30), min_size=1, max_size=10))
def test_round_trip_command_encoding(commands: list[list[bytes]], sizes: list[int]) -> None:
    data = b"".join(command(*args) for args in commands)
    assert feed_in_chunks(data, []) == (commands, None)
    assert feed_in_chunks(data, sizes) == (commands, None)
    assert feed_in_chunks(data, sizes, use_commands=False) == (commands, None)


@given(st.lists(st.one_of(st.text(max_size=5), st.integers(-(10**12), 10**12)), min_size=1, max_size=5))
def test_round_trip_str_and_int_arguments(args: list) -> None:
    parser = RequestParser()
    parser.feed(command(*args))
    expected = [a.encode() if isinstance(a, str) else b"%d" % a for a in args]
    assert parser.commands() == [expected]


# Arbitrary input biased towards RESP-looking fragments, so the interesting paths are hit.
fragments = st.one_of(
    st.binary(max_size=12),
    st.sampled_from([b"*", b"$", b"\r", b"\n", b"\r\n", b"*1\r\n", b"*2\r\n", b"$3\r\n", b"$0\r\n",
                     b"-1", b"PING", b'"', b"'", b"\\", b"\\x4", b" ", b"\x00", b"*-1\r\n"]),
)


@settings(max_examples=300)
@given(st.lists(fragments, max_size=20), st.lists(st.integers(1, 9), min_size=1, max_size=5))
def test_arbitrary_bytes_give_commands_need_data_or_protocol_error(
    pieces: list[bytes], sizes: list[int]
) -> None:
    data = b"".join(pieces)
    limits = {"max_inline_len": 24, "max_bulk_len": 50}
    whole = feed_in_chunks(data, [], **limits)
    for result in (whole, feed_in_chunks(data, sizes, **limits),
                   feed_in_chunks(data, [1], use_commands=False, **limits)):
        commands, error = result
        assert all(isinstance(c, list) and c and all(isinstance(a, bytes) for a in c) for c in commands)
        assert error is None or isinstance(error.reply, bytes)
        # Chunking never changes the outcome.
        assert commands == whole[0]
        assert (error is None) == (whole[1] is None)
        if error is not None:
            assert error.reply == whole[1].reply


# -- the fast path for plain multibulks must agree with the careful loop -----------------------


def parse_with(data: bytes, fast: bool, chunk: int):
    parser = RequestParser()
    parser._fast_ok = fast  # test-only switch: the careful loop alone is the reference
    out: list[list[bytes]] = []
    try:
        for i in range(0, len(data), chunk or len(data) or 1):
            parser.feed(data[i : i + (chunk or len(data))])
            out.extend(parser.commands())
    except RemoteProtocolError as exc:
        return out, exc.reply
    return out, None


plain_or_odd = st.one_of(
    args_strategy.map(lambda args: command(*args)),
    st.sampled_from([b"PING\r\n", b"*0\r\n", b"*1\r\n$4\r\nPINGxx", b"*1\r\n$04\r\nPING\r\n",
                     b"*01\r\n$4\r\nPING\r\n", b"*1\r\n$4\r\nPI\r\n\r\n", b"*1\r\n$10000\r\n",
                     b"*2\r\n$1\r\na\r\n:1\r\n", b"\r\n"]),
    fragments,
)


@settings(max_examples=300)
@given(st.lists(plain_or_odd, max_size=10), st.integers(0, 11))
def test_fast_path_agrees_with_careful_loop(pieces: list[bytes], chunk: int) -> None:
    data = b"".join(pieces)
    assert parse_with(data, True, chunk) == parse_with(data, False, chunk)


def test_slow_feeding_stays_linear() -> None:
    """A long line one byte at a time, a big body in small pieces: each byte looked at O(1) times.

    A parser that re-scanned its whole buffer on every feed would need ~2*10^9 steps for the
    first case and would trip the test timeout.
    """
    parser = RequestParser()
    line = b"ECHO " + b"x" * 60000
    for i in range(len(line)):
        parser.feed(line[i : i + 1])
        assert parser.next_command() is None
    parser.feed(b"\r\n")
    assert parser.commands() == [[b"ECHO", b"x" * 60000]]
    body = b"y" * (4 * 1024 * 1024)
    data = command(b"ECHO", body)
    for i in range(0, len(data), 512):
        parser.feed(data[i : i + 512])
        if i + 512 < len(data):
            assert parser.commands() == []
    assert parser.commands() == [[b"ECHO", body]]


# -- the hiredis fast path must agree with the careful loop and the pure fast path ------------

from wire.resp import requests as requests_module  # noqa: E402

# (fast paths on, hiredis allowed): the production configuration.
# (fast paths on, hiredis off): the pure-Python fast path only.
# (fast paths off): the careful loop alone, the reference.
CONFIGS = [(True, True), (True, False), (False, False)]


def parse_config(data: bytes, chunk: int, fast: bool, use_hiredis: bool, after: bool = False, **limits):
    """Commands and the error reply from ``data`` fed ``chunk`` bytes at a time (0: at once);
    ``after``: through ``commands_after`` instead of ``feed`` then ``commands``."""
    parser = RequestParser(**limits)
    parser._fast_ok = fast
    if not use_hiredis:
        parser._hiredis_max = -1
    out: list[list[bytes]] = []
    step = chunk or len(data) or 1
    try:
        for i in range(0, len(data), step):
            if after:
                out.extend(parser.commands_after(data[i : i + step]))
            else:
                parser.feed(data[i : i + step])
                out.extend(parser.commands())
        out.extend(parser.commands())
    except RemoteProtocolError as exc:
        return out, exc.reply
    return out, None


HIREDIS_CORPUS = [
    PIPELINE,
    b"*3\r\n$7\r\nPUBLISH\r\n$2\r\nch\r\n$7\r\npayload\r\n" * 16,
    b"*1\r\n+PING\r\n",  # simple string where Redis wants "$"
    b"*1\r\n=8\r\ntxt:PING\r\n",  # verbatim string
    b"*1\r\n(123\r\n",  # big number
    b"*1\r\n,1.5\r\n*1\r\n#t\r\n*1\r\n_\r\n*1\r\n:1\r\n*1\r\n-ERR x\r\n",
    b">1\r\n$4\r\nPING\r\n",  # a push at the top level is an inline command for Redis
    b"~1\r\n$4\r\nPING\r\n",
    b"%1\r\n$1\r\na\r\n$1\r\nb\r\n",
    b"|1\r\n$1\r\na\r\n$1\r\nb\r\n*1\r\n$4\r\nPING\r\n",
    b"*1\r\n$4\r\nPING\r\n*1\r\n$04\r\nPING\r\n",
    b"*1\r\n$4\r\nPING\r\n*01\r\n$4\r\nPING\r\n",
    b"*1\r\n$4\r\nPING\r\n*+1\r\n$4\r\nPING\r\n",
    b"*1\r\n$+4\r\nPING\r\n*-0\r\n* 1\r\n",
    b"*1\r\n$4\r\nPINGxx*1\r\n$1\r\na\r\n",  # the two bytes after a body are not checked
    b"*1\r\n$-1\r\n",
    b"*1\r\n$4\r\nPING\r\n*0\r\n*-1\r\n*1\r\n$4\r\nPING\r\n",
    b"*1\r\n*1\r\n$1\r\na\r\n",
    b"*2\r\n$1\r\na\r\n*1\r\n$1\r\nb\r\n",
    b"*1\r\n$4\rxPING\r\n",
    b"*1\r\n$4\r\nPI\r\n\r\n",
    b"*1\r\n$1\n\r\na\r\n",
    b"*1\r\n$4\r\nPING\r\nPING\r\n*1\r\n$4\r\nPING\r\n",
    b"*1\r\n$4\r\nPING\r\n*3\r\n$7\r\nPUBLISH\r\n$2\r\nch",  # incomplete last command
    b"*1\r\n$4\r\nPING\r\n*1\r\n$100\r\n" + b"x" * 60,  # incomplete body
    b"*1\r\n$4\r\nPING\r\n*1\r\n$1000000\r\n",  # over the bulk limit used below
    b"*1\r\n$4\r\nPING\r\n*2000000\r\n",  # over the multibulk limit used below
    b"*2\r\n$3\r\na\r\n\r\n$1\r\nb\r\n",  # a body containing CRLF
]


@pytest.mark.parametrize("data", HIREDIS_CORPUS)
@pytest.mark.parametrize("chunk", [0, 1, 2, 3, 7, 64])
def test_hiredis_path_agrees_on_corpus(data: bytes, chunk: int) -> None:
    limits = {"max_bulk_len": 1000, "max_multibulk_len": 100000}
    results = [parse_config(data, chunk, fast, hi, after, **limits) for fast, hi in CONFIGS for after in (False, True)]
    assert results == [results[-1]] * len(results)


@pytest.mark.parametrize("limits", [{}, {"max_bulk_len": 1000}, {"max_inline_len": 24, "max_bulk_len": 50}])
def test_hiredis_path_agrees_with_limits(limits: dict) -> None:
    for data in HIREDIS_CORPUS:
        for chunk in (0, 1, 5):
            results = [parse_config(data, chunk, fast, hi, after, **limits)
                       for fast, hi in CONFIGS for after in (False, True)]
            assert results == [results[-1]] * len(results), (data, chunk)


def test_hiredis_path_is_used_for_plain_commands(monkeypatch: pytest.MonkeyPatch) -> None:
    if requests_module._HiredisReader is None:  # pragma: no cover
        pytest.skip("hiredis not installed")
    calls = []
    real = requests_module._parse_with_hiredis

    def spy(reader, data, start, out):
        pos, reader = real(reader, data, start, out)
        calls.append((start, pos, len(data)))
        return pos, reader

    monkeypatch.setattr(requests_module, "_parse_with_hiredis", spy)
    parser = RequestParser()
    data = command(b"PUBLISH", b"ch", b"payload") * 16
    parser.feed(data)
    assert parser.commands() == [[b"PUBLISH", b"ch", b"payload"]] * 16
    assert calls == [(0, len(data), len(data))]
    # A partial command pending from the previous read: the careful loop finishes it, then
    # hiredis takes the rest of the buffer.
    parser.feed(data[:10])
    assert parser.commands() == []
    calls.clear()
    parser.feed(data[10:])
    assert parser.commands() == [[b"PUBLISH", b"ch", b"payload"]] * 16
    assert len(calls) == 1
    start, reached, size = calls[0]
    assert 0 < start and reached == size  # after the careful loop's command, to the end


def test_hiredis_path_checks_bulk_limit_before_buffering() -> None:
    parser = RequestParser(max_bulk_len=1000)
    parser.feed(command(b"PING") * 3 + b"*1\r\n$1001\r\n")
    assert parser.commands() == [[b"PING"]] * 3
    with pytest.raises(RemoteProtocolError) as info:
        parser.commands()
    assert info.value.reply == b"-ERR Protocol error: invalid bulk length\r\n"


hiredis_fragments = st.one_of(
    args_strategy.map(lambda args: command(*args)),
    st.sampled_from(HIREDIS_CORPUS[2:]),
    st.sampled_from([b"+", b"=", b"(", b">", b"~", b"|", b"%", b":", b"_", b",", b"#", b"-",
                     b"*1\r\n", b"$1\r\n", b"x\r\n", b"*0\r\n", b"$-1\r\n", b"\r\n"]),
    fragments,
)


@settings(max_examples=400)
@given(st.lists(hiredis_fragments, max_size=12), st.integers(0, 11))
def test_hiredis_path_agrees_with_careful_loop(pieces: list[bytes], chunk: int) -> None:
    data = b"".join(pieces)
    limits = {"max_bulk_len": 1000}
    reference = parse_config(data, chunk, False, False, **limits)
    assert parse_config(data, chunk, True, True, **limits) == reference
    assert parse_config(data, chunk, True, False, **limits) == reference
    # A server's one step per read: the same commands, the same error, at the same place.
    assert parse_config(data, chunk, True, True, after=True, **limits) == reference
    assert parse_config(data, chunk, True, False, after=True, **limits) == reference
    assert parse_config(data, chunk, False, False, after=True, **limits) == reference


def test_hiredis_reader_is_kept_only_while_clean() -> None:
    """The reader of a clean pass parses the next one; one left holding bytes (an incomplete
    command) is dropped, and the careful loop and a new reader give the right commands."""
    if requests_module._HiredisReader is None:  # pragma: no cover
        pytest.skip("hiredis not installed")
    parser = RequestParser()
    publish = command(b"PUBLISH", b"ch", b"payload")
    assert parser.commands_after(publish * 2) == [[b"PUBLISH", b"ch", b"payload"]] * 2
    reader = parser._hiredis_reader
    assert reader is not None
    assert parser.commands_after(publish) == [[b"PUBLISH", b"ch", b"payload"]]
    assert parser._hiredis_reader is reader
    assert parser.drained
    assert parser.commands_after(publish + publish[:9]) == [[b"PUBLISH", b"ch", b"payload"]]
    assert parser._hiredis_reader is None
    assert parser.commands_after(publish[9:] + publish) == [[b"PUBLISH", b"ch", b"payload"]] * 2
    assert parser.commands_after(b"*1\r\n$4\r\nPING\r\n*1\r\n$x\r\n") == [[b"PING"]]
    assert not parser.drained  # the protocol error waits for the next call
    with pytest.raises(RemoteProtocolError):
        parser.commands()
