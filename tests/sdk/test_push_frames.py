"""``FrameReader``, the SDK's reply decoder: its fast path must agree with ``ReplyParser``.

The reader decodes pub/sub messages itself and hands every other frame to
``wire.resp.ReplyParser``. Whatever the mix of frames and however the bytes are chunked (all at
once, one byte at a time, random splits), the result must be what ``ReplyParser`` alone
decodes, with messages turned into ``Message`` objects.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dualmq.push.connection import FrameReader, Message, parse_address
from wire.errors import RemoteProtocolError
from wire.resp import ReplyParser
from wire.resp.pubsub import message_frame, pmessage_frame, pong_frame, subscription_frame
from wire.resp.values import Push

names = st.binary(max_size=12)
payloads = st.binary(max_size=200)


def frames(protocol: int):
    return st.one_of(
        st.builds(lambda c, d: message_frame(c, d, protocol), names, payloads),
        st.builds(lambda p, c, d: pmessage_frame(p, c, d, protocol), names, names, payloads),
        st.builds(lambda n, k: subscription_frame(b"subscribe", n, k, protocol), st.none() | names, st.integers(0, 99)),
        st.builds(lambda m: pong_frame(m, protocol), st.none() | names),
        st.integers(-(2**63), 2**63 - 1).map(lambda n: b":%d\r\n" % n),
        st.just(b"-ERR boom\r\n"),
        st.just(b"+OK\r\n"),
        # Odd shapes the fast path must leave to the parser: a RESP3 map with an attribute,
        # a message whose channel is not a plain bulk, nulls.
        st.just(b"%1\r\n$1\r\nk\r\n|1\r\n+a\r\n+b\r\n*2\r\n_\r\n#t\r\n" if protocol == 3 else b"*-1\r\n"),
        st.just((b">" if protocol == 3 else b"*") + b"3\r\n$7\r\nmessage\r\n+ch\r\n$1\r\nx\r\n"),
    )


def reference(data: bytes, protocol: int) -> tuple[list[Message], list[object]]:
    parser = ReplyParser()
    parser.feed(data)
    messages, others = [], []
    for value in parser.replies():
        is_push = isinstance(value, Push) if protocol == 3 else isinstance(value, list)
        if is_push and len(value) == 3 and value[0] == b"message":
            messages.append(Message(value[1], value[2]))
        elif is_push and len(value) == 4 and value[0] == b"pmessage":
            messages.append(Message(value[2], value[3], value[1]))
        else:
            others.append(value)
    return messages, others


def decode(data: bytes, protocol: int, cuts: list[int]) -> tuple[list[Message], list[object]]:
    reader = FrameReader(protocol)
    messages, others = [], []
    start = 0
    for cut in [*sorted(cuts), len(data)]:
        reader.feed(data[start:cut])
        start = max(start, cut)
        got_messages, got_others = reader.frames()
        messages += got_messages
        others += got_others
    return messages, others


@pytest.mark.parametrize("protocol", [2, 3])
@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_fast_path_agrees_with_reply_parser(protocol, data) -> None:
    stream = b"".join(data.draw(st.lists(frames(protocol), max_size=30)))
    cuts = data.draw(st.lists(st.integers(0, len(stream)), max_size=10))
    assert decode(stream, protocol, cuts) == reference(stream, protocol)


@pytest.mark.parametrize("protocol", [2, 3])
def test_one_byte_at_a_time(protocol) -> None:
    stream = b"".join([
        subscription_frame(b"subscribe", b"news", 1, protocol),
        message_frame(b"news", b"a" * 300, protocol),
        message_frame(b"news", b"b", protocol),  # same channel: the cached-name path
        pmessage_frame(b"n*", b"news", b"c", protocol),
        b":7\r\n",
    ])
    assert decode(stream, protocol, list(range(len(stream)))) == reference(stream, protocol)


def test_garbage_raises_protocol_error() -> None:
    reader = FrameReader(3)
    reader.feed(message_frame(b"ok", b"1", 3) + b"?garbage\r\n")
    with pytest.raises(RemoteProtocolError):
        reader.frames()


def test_oversized_bulk_is_refused_before_buffering() -> None:
    reader = FrameReader(3)
    reader.feed(b">3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$999999999999\r\n")
    with pytest.raises(RemoteProtocolError):
        reader.frames()


def test_parse_address() -> None:
    assert parse_address("10.0.0.1:6379") == ("10.0.0.1", 6379)
    assert parse_address("[::1]:7000") == ("::1", 7000)
    assert parse_address(("h", 1)) == ("h", 1)
    for bad in ("nohost", "h:0", "h:x"):
        with pytest.raises(ValueError):
            parse_address(bad)
