"""Framing: size prefixes fed every way (h11 style), limits before buffering, headers."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wire.errors import RemoteProtocolError
from wire.kafka.framing import (
    FrameParser,
    RequestHeader,
    decode_request_header,
    decode_response_header,
    encode_request,
    encode_response,
    peek_api_key_version,
)

FRAMES = [b"", b"a", b"hello world", bytes(range(256)) * 4]
STREAM = b"".join(len(f).to_bytes(4, "big") + f for f in FRAMES)


def drain(parser: FrameParser) -> list[bytes]:
    frames = []
    while (frame := parser.next_frame()) is not None:
        frames.append(frame)
    return frames


def test_all_at_once():
    parser = FrameParser(4096)
    parser.feed(STREAM)
    assert drain(parser) == FRAMES
    assert parser.buffered == 0


def test_one_byte_at_a_time():
    parser = FrameParser(4096)
    got = []
    for i in range(len(STREAM)):
        parser.feed(STREAM[i : i + 1])
        got += drain(parser)
    assert got == FRAMES


def test_trailing_partial_frame_waits():
    parser = FrameParser(4096)
    parser.feed(STREAM + b"\x00\x00\x00\x05ab")
    assert drain(parser) == FRAMES
    assert parser.next_frame() is None
    parser.feed(b"cde")
    assert parser.next_frame() == b"abcde"


@pytest.mark.parametrize("prefix", [b"\x00\x00\x10\x01", b"\xff\xff\xff\xff", b"\x80\x00\x00\x00"])
def test_bad_size_prefix_rejected_before_buffering(prefix):
    parser = FrameParser(4096)
    with pytest.raises(RemoteProtocolError):
        parser.feed(prefix + b"x" * 1000)
    assert parser.buffered == 0
    # The connection is dead: later feeds fail too rather than resynchronising on garbage.
    with pytest.raises(RemoteProtocolError):
        parser.feed(b"\x00\x00\x00\x00")


def test_oversized_prefix_split_across_feeds_is_rejected_before_the_body():
    parser = FrameParser(100)
    parser.feed(b"\x00\x00\x00\x02ok\x00\x00")  # one frame, then half of the next prefix
    with pytest.raises(RemoteProtocolError):
        parser.feed(b"\x10\x00")
    assert parser.buffered == 8  # the partial prefix chunk was not followed by anything
    assert parser.next_frame() == b"ok"


def test_oversized_second_frame_in_one_chunk():
    parser = FrameParser(10)
    with pytest.raises(RemoteProtocolError):
        parser.feed(b"\x00\x00\x00\x01a" + b"\x00\x00\x00\x0b")
    assert parser.buffered == 0


def test_frame_exactly_at_the_limit():
    parser = FrameParser(3)
    parser.feed(b"\x00\x00\x00\x03abc")
    assert parser.next_frame() == b"abc"


@settings(max_examples=300)
@given(st.binary(max_size=200), st.integers(1, 17))
def test_arbitrary_bytes_give_frames_need_data_or_error(data, chunk):
    parser = FrameParser(64)
    try:
        for i in range(0, len(data), chunk):
            parser.feed(data[i : i + chunk])
            for frame in drain(parser):
                assert len(frame) <= 64
    except RemoteProtocolError:
        return


@given(st.lists(st.binary(max_size=50), max_size=8), st.data())
def test_any_chunking_yields_the_same_frames(frames, data):
    stream = b"".join(len(f).to_bytes(4, "big") + f for f in frames)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=10)))
    parser = FrameParser(50)
    got = []
    last = 0
    for cut in [*cuts, len(stream)]:
        parser.feed(stream[last:cut])
        got += drain(parser)
        last = cut
    assert got == frames


# --- headers --------------------------------------------------------------------------------

def test_request_header_v1_and_v2():
    v1 = encode_request(3, 4, 99, "client", b"BODY", flexible_header=False)
    assert v1 == bytes.fromhex("00000014" "0003" "0004" "00000063" "0006") + b"client" + b"BODY"
    frame = v1[4:]
    assert peek_api_key_version(frame) == (3, 4, 99)
    header, offset = decode_request_header(frame, flexible=False)
    assert header == RequestHeader(3, 4, 99, "client")
    assert frame[offset:] == b"BODY"

    v2 = encode_request(3, 9, 7, None, b"B", flexible_header=True)
    assert v2[4:] == bytes.fromhex("0003" "0009" "00000007" "ffff" "00") + b"B"
    header, offset = decode_request_header(v2[4:], flexible=True)
    assert header.client_id is None and v2[4:][offset:] == b"B"


def test_request_header_with_tags_skipped():
    frame = bytes.fromhex("0012" "0003" "00000001" "0000" "01" "07" "02" "abcd") + b"rest"
    header, offset = decode_request_header(frame, flexible=True)
    assert header.client_id == "" and frame[offset:] == b"rest"


@pytest.mark.parametrize("frame", ["", "0012000300", "00120003000000010005616263"])
def test_truncated_request_headers(frame):
    with pytest.raises(RemoteProtocolError):
        decode_request_header(bytes.fromhex(frame), flexible=False)


def test_response_headers():
    assert encode_response(5, b"xy", flexible_header=False) == bytes.fromhex("00000006" "00000005") + b"xy"
    v1 = encode_response(5, b"xy", flexible_header=True)
    assert v1 == bytes.fromhex("00000007" "00000005" "00") + b"xy"
    assert decode_response_header(v1[4:], flexible=True) == (5, 5)
    assert decode_response_header(v1[4:], flexible=False) == (5, 4)
    with pytest.raises(RemoteProtocolError):
        decode_response_header(b"\x00\x00", flexible=False)


def test_response_round_trip_through_parser():
    parser = FrameParser(1 << 20)
    parser.feed(encode_response(1, b"a", flexible_header=True) + encode_response(2, b"bb", flexible_header=False))
    first, second = drain(parser)
    assert decode_response_header(first, True) == (1, 5)
    assert decode_response_header(second, False) == (2, 4)
