"""ReplyParser: every RESP2/RESP3 reply type, chunking, round trips, arbitrary input."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wire.errors import RemoteProtocolError
from wire.resp.encoder import encode
from wire.resp.replies import NEED_DATA, ReplyParser
from wire.resp.values import ErrorReply, Push, RespSet, SimpleString, Verbatim


def parse_all(data: bytes, chunk: int = 0) -> list[object]:
    parser = ReplyParser()
    out: list[object] = []
    if not chunk:
        parser.feed(data)
        return parser.replies()
    for i in range(0, len(data), chunk):
        parser.feed(data[i : i + chunk])
        out.extend(parser.replies())
    return out


GOLDEN = [
    (b"+OK\r\n", SimpleString("OK")),
    (b"-ERR unknown command 'FOO'\r\n", ErrorReply("ERR unknown command 'FOO'")),
    (b":3\r\n", 3),
    (b":-9223372036854775808\r\n", -(2**63)),
    (b"$5\r\nhello\r\n", b"hello"),
    (b"$0\r\n\r\n", b""),
    (b"$4\r\na\r\nb\r\n", b"a\r\nb"),
    (b"$-1\r\n", None),
    (b"*-1\r\n", None),
    (b"*0\r\n", []),
    (b"*2\r\n$1\r\na\r\n:1\r\n", [b"a", 1]),
    (b"*2\r\n*1\r\n:1\r\n*0\r\n", [[1], []]),
    (b"_\r\n", None),
    (b",1.23\r\n", 1.23),
    (b",10\r\n", 10.0),
    (b",inf\r\n", math.inf),
    (b",-inf\r\n", -math.inf),
    (b",1e3\r\n", 1000.0),
    (b"#t\r\n", True),
    (b"#f\r\n", False),
    (b"!9\r\nERR oops!\r\n", ErrorReply("ERR oops!")),
    (b"=8\r\ntxt:abcd\r\n", Verbatim("abcd", "txt")),
    (b"(123456789012345678901234567890\r\n", 123456789012345678901234567890),
    (b"%1\r\n$1\r\nk\r\n:1\r\n", {b"k": 1}),
    (b"%1\r\n*2\r\n:1\r\n:2\r\n$1\r\nv\r\n", {(1, 2): b"v"}),
    (b"~2\r\n$1\r\na\r\n$1\r\na\r\n", RespSet([b"a", b"a"])),
    (b">3\r\n$7\r\nmessage\r\n$3\r\nch1\r\n$2\r\nhi\r\n", Push([b"message", b"ch1", b"hi"])),
    (b"|1\r\n+key-popularity\r\n%0\r\n:7\r\n", 7),  # attribute dropped
    (b"*2\r\n|1\r\n+a\r\n:1\r\n:2\r\n:3\r\n", [2, 3]),  # nested attribute not counted
]


@pytest.mark.parametrize(("data", "value"), GOLDEN)
@pytest.mark.parametrize("chunk", [0, 1, 3])
def test_golden_replies(data: bytes, value: object, chunk: int) -> None:
    replies = parse_all(data, chunk)
    assert replies == [value]
    assert type(replies[0]) is type(value)


def test_types_are_kept() -> None:
    (verbatim,) = parse_all(b"=7\r\nmkd:# x\r\n")
    assert verbatim.format == "mkd"
    (err,) = parse_all(b"-NOPROTO unsupported protocol version\r\n")
    assert err.code == "NOPROTO"
    assert err.detail == "unsupported protocol version"


def test_hello_3_map() -> None:
    data = (
        b"%7\r\n$6\r\nserver\r\n$5\r\nredis\r\n$7\r\nversion\r\n$6\r\n7.0.15\r\n$5\r\nproto\r\n:3\r\n"
        b"$2\r\nid\r\n:5\r\n$4\r\nmode\r\n$10\r\nstandalone\r\n$4\r\nrole\r\n$6\r\nmaster\r\n"
        b"$7\r\nmodules\r\n*0\r\n"
    )
    expected = {b"server": b"redis", b"version": b"7.0.15", b"proto": 3, b"id": 5,
                b"mode": b"standalone", b"role": b"master", b"modules": []}
    assert parse_all(data) == [expected]
    assert parse_all(data, 1) == [expected]


def test_need_data_then_rest() -> None:
    parser = ReplyParser()
    parser.feed(b"*2\r\n$5\r\nhel")
    assert parser.next_reply() is NEED_DATA
    assert not NEED_DATA
    parser.feed(b"lo\r\n:4")
    assert parser.next_reply() is NEED_DATA
    parser.feed(b"2\r\n+OK\r\n")
    assert parser.next_reply() == [b"hello", 42]
    assert parser.next_reply() == "OK"
    assert parser.next_reply() is NEED_DATA


BAD = [
    b"?\r\n", b":x\r\n", b":\r\n", b"$-2\r\n", b"$x\r\n", b"$1\r\nab\r\n", b"*-2\r\n", b"%-1\r\n",
    b"#x\r\n", b",1.2.3\r\n", b"_x\r\n", b"=2\r\nab\r\n", b"!-1\r\n", b"$?\r\n", b"*?\r\n",
]


@pytest.mark.parametrize("data", BAD)
def test_malformed_replies(data: bytes) -> None:
    parser = ReplyParser()
    parser.feed(data)
    with pytest.raises(RemoteProtocolError):
        parser.next_reply()
    with pytest.raises(RemoteProtocolError):  # and it sticks
        parser.next_reply()


def test_bulk_limit() -> None:
    parser = ReplyParser(max_bulk_len=4)
    parser.feed(b"$5\r\n")
    with pytest.raises(RemoteProtocolError):
        parser.next_reply()


# -- round trips ------------------------------------------------------------------------------

text = st.text(max_size=8)
scalars = st.one_of(
    st.binary(max_size=10),
    text,
    text.filter(lambda s: "\r" not in s and "\n" not in s).map(SimpleString),
    text.filter(lambda s: "\r" not in s and "\n" not in s).map(ErrorReply),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.booleans(),
    st.floats(allow_nan=False),
    st.none(),
    st.builds(Verbatim, text, st.sampled_from(["txt", "mkd"])),
)
keys = st.one_of(st.binary(max_size=5), st.integers(-5, 5), st.tuples(st.integers(0, 3)))
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.lists(inner, max_size=4).map(Push),
        st.lists(inner, max_size=4).map(RespSet),
        st.dictionaries(keys, inner, max_size=3),
    ),
    max_leaves=12,
)


def expected_after(value: object, protocol: int) -> object:
    """What a value reads back as: strings become bytes; RESP2 also loses the RESP3 types."""
    if isinstance(value, (SimpleString, ErrorReply)):
        return value
    if isinstance(value, Verbatim):
        return value if protocol == 3 else value.encode("utf-8", "surrogateescape")
    if isinstance(value, str):
        return value.encode("utf-8", "surrogateescape")
    if isinstance(value, bool):
        return value if protocol == 3 else int(value)
    if isinstance(value, int):
        if protocol == 2 and not -(2**63) <= value < 2**63:
            return b"%d" % value
        return value
    if isinstance(value, float):
        return value if protocol == 3 else encode(value, 3)[1:-2]
    if isinstance(value, tuple):
        return [expected_after(v, protocol) for v in value]
    if isinstance(value, list):
        items = [expected_after(v, protocol) for v in value]
        if protocol == 3 and isinstance(value, (Push, RespSet)):
            return type(value)(items)
        return items
    if isinstance(value, dict):
        if protocol == 2:
            flat = []
            for k, v in value.items():
                flat += [expected_after(k, 2), expected_after(v, 2)]
            return flat
        return {_key(expected_after(k, 3)): expected_after(v, 3) for k, v in value.items()}
    return value


def _key(k: object) -> object:
    return tuple(_key(x) for x in k) if isinstance(k, list) else k


def same(a: object, b: object) -> bool:
    """Equality that also checks the RESP kind (type) at every level."""
    if type(a) is not type(b):
        return False
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, Verbatim):
        return a == b and a.format == b.format
    return a == b


@settings(max_examples=300)
@given(values, st.sampled_from([2, 3]), st.integers(1, 7))
def test_encode_then_parse_round_trip(value: object, protocol: int, chunk: int) -> None:
    data = encode(value, protocol)
    want = expected_after(value, protocol)
    for got in (parse_all(data), parse_all(data, chunk)):
        assert len(got) == 1
        assert same(got[0], want), (got[0], want)


def test_nan_round_trip() -> None:
    for protocol, want in ((3, float), (2, bytes)):
        (got,) = parse_all(encode(math.nan, protocol))
        assert type(got) is want
    assert math.isnan(parse_all(encode(math.nan, 3))[0])


fragments = st.one_of(
    st.binary(max_size=10),
    st.sampled_from([b"*", b"$", b"%", b"~", b">", b"|", b"=", b"!", b",", b"#", b"(", b"_",
                     b"\r\n", b"1", b"2", b"-1", b"0", b"t", b"+OK", b"txt:", b"inf"]),
)


@settings(max_examples=300)
@given(st.lists(fragments, max_size=25), st.integers(1, 5))
def test_arbitrary_bytes_give_values_need_data_or_protocol_error(pieces: list[bytes], chunk: int) -> None:
    data = b"".join(pieces)
    outcomes = []
    for size in (len(data) or 1, chunk):
        parser = ReplyParser(max_bulk_len=100)
        got: list[object] = []
        error = None
        try:
            for i in range(0, len(data), size):
                parser.feed(data[i : i + size])
                got.extend(parser.replies())
            got.extend(parser.replies())  # an error found after good replies surfaces here
        except RemoteProtocolError as exc:
            error = exc
        outcomes.append((got, error is None))
    # Chunking does not change what was decoded, nor whether an error was found.
    assert outcomes[0][1] == outcomes[1][1]
    assert len(outcomes[0][0]) == len(outcomes[1][0])
