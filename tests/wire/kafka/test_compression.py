"""Compression codecs in Kafka's exact formats (gzip; snappy raw or in xerial framing; LZ4 frames
with independent blocks; zstd frames), with the decompression bound."""

from __future__ import annotations

import gzip
import struct
import zlib

import cramjam
import lz4.frame
import pytest
import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st

from wire.errors import LocalProtocolError, RemoteProtocolError
from wire.kafka import compression as c

CODECS = [c.NONE, c.GZIP, c.SNAPPY, c.LZ4, c.ZSTD]
SAMPLE = b"".join(b"record %d of a highly repetitive record list; " % i for i in range(3000))


@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.parametrize("data", [b"", b"x", SAMPLE])
def test_round_trip(codec, data):
    assert c.decompress(codec, c.compress(codec, data)) == data


@settings(deadline=None)
@given(st.sampled_from(CODECS), st.binary(max_size=3000))
def test_round_trip_hypothesis(codec, data):
    assert c.decompress(codec, c.compress(codec, data)) == data


def test_gzip_is_a_standard_gzip_stream():
    assert gzip.decompress(c.compress(c.GZIP, SAMPLE)) == SAMPLE
    # Concatenated members, as RFC 1952 allows.
    assert c.decompress(c.GZIP, gzip.compress(b"ab") + gzip.compress(b"cd")) == b"abcd"


def test_snappy_writes_xerial_framing_in_32k_chunks():
    blob = c.compress(c.SNAPPY, SAMPLE)
    assert blob[:16] == b"\x82SNAPPY\x00" + struct.pack(">ii", 1, 1)
    pos, chunks = 16, []
    while pos < len(blob):
        (length,) = struct.unpack_from(">i", blob, pos)
        chunks.append(bytes(cramjam.snappy.decompress_raw(blob[pos + 4 : pos + 4 + length])))
        pos += 4 + length
    assert b"".join(chunks) == SAMPLE
    assert all(len(chunk) <= 32 * 1024 for chunk in chunks) and len(chunks) > 1


def test_snappy_reads_raw_blocks_like_librdkafka_writes():
    raw = bytes(cramjam.snappy.compress_raw(SAMPLE))
    assert c.decompress(c.SNAPPY, raw) == SAMPLE


def test_snappy_reads_xerial_with_little_endian_version_words():
    block = bytes(cramjam.snappy.compress_raw(b"hello"))
    blob = b"\x82SNAPPY\x00" + struct.pack("<ii", 1, 1) + struct.pack(">i", len(block)) + block
    assert c.decompress(c.SNAPPY, blob) == b"hello"


def test_lz4_writes_a_frame_with_independent_blocks():
    blob = c.compress(c.LZ4, SAMPLE)
    assert blob[:4] == b"\x04\x22\x4d\x18"
    flags = blob[4]
    assert flags >> 6 == 0b01 and flags & 0x20, "block independence bit must be set"
    assert not flags & 0x08, "no content size, like Kafka"
    assert lz4.frame.decompress(blob) == SAMPLE


def test_lz4_linked_blocks_are_refused_like_kafka():
    linked = lz4.frame.compress(SAMPLE, block_linked=True)
    with pytest.raises(RemoteProtocolError, match="linked"):
        c.decompress(c.LZ4, linked)


def test_lz4_accepts_content_size_and_checksums():
    blob = lz4.frame.compress(SAMPLE, block_linked=False, store_size=True, content_checksum=True)
    assert c.decompress(c.LZ4, blob) == SAMPLE


def test_zstd_frames_without_content_size_and_several_frames():
    no_size = zstandard.ZstdCompressor(write_content_size=False)
    blob = no_size.compress(SAMPLE) + no_size.compress(b"tail")
    assert c.decompress(c.ZSTD, blob) == SAMPLE + b"tail"
    streamed = zstandard.ZstdCompressor().compressobj()
    blob = streamed.compress(SAMPLE) + streamed.flush()
    assert c.decompress(c.ZSTD, blob) == SAMPLE


BOMB = b"\x00" * (8 * 1024 * 1024)


@pytest.mark.parametrize("codec", CODECS)
def test_zip_bomb_is_stopped(codec):
    blob = c.compress(codec, BOMB)
    with pytest.raises(RemoteProtocolError, match="limit"):
        c.decompress(codec, blob, max_output=1024 * 1024)
    assert len(c.decompress(codec, blob, max_output=len(BOMB))) == len(BOMB)


def test_raw_snappy_bomb_refused_from_its_declared_length():
    blob = bytes(cramjam.snappy.compress_raw(BOMB))
    with pytest.raises(RemoteProtocolError, match="limit"):
        c.decompress(c.SNAPPY, blob, max_output=1000)


def test_unknown_codec():
    with pytest.raises(RemoteProtocolError):
        c.decompress(5, b"")
    with pytest.raises(LocalProtocolError):
        c.compress(7, b"")


@pytest.mark.parametrize("codec", CODECS[1:])
def test_truncated_and_garbage_input(codec):
    blob = c.compress(codec, SAMPLE)
    for bad in (blob[: len(blob) // 2], b"\x00garbage-garbage-garbage"):
        with pytest.raises(RemoteProtocolError):
            c.decompress(codec, bad)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(CODECS), st.binary(max_size=100))
def test_arbitrary_bytes_decompress_or_raise_remote_error(codec, data):
    try:
        c.decompress(codec, data, max_output=1 << 20)
    except RemoteProtocolError:
        pass


def test_gzip_helper_is_deterministic():
    assert c.compress(c.GZIP, b"same") == c.compress(c.GZIP, b"same")
    assert zlib.decompress(c.compress(c.GZIP, b"same"), 31) == b"same"


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(CODECS[1:]), st.data())
def test_mutated_valid_streams_decompress_or_raise_remote_error(codec, data):
    blob = bytearray(c.compress(codec, SAMPLE[:5000]))
    for _ in range(data.draw(st.integers(1, 4))):
        blob[data.draw(st.integers(0, len(blob) - 1))] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(blob)))
    try:
        c.decompress(codec, bytes(blob[:cut]), max_output=1 << 20)
    except RemoteProtocolError:
        pass
