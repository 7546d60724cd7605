"""Kafka's record-batch compression codecs: none, gzip, snappy, lz4, zstd.

A compressed RecordBatch keeps its 61-byte header in clear and replaces the record list with
one compressed blob (docs/kafka.md#record-batches). The codec number sits in bits 0–2 of
the batch attributes. The broker stores batches as received, so it only decompresses to
validate or in tests; the SDK compresses when producing and decompresses when consuming.

Formats, exactly as Kafka's clients write them:

* 1 gzip — an RFC 1952 gzip stream (several concatenated members are accepted on read, like
  Java's ``GZIPInputStream``).
* 2 snappy — two framings exist in the wild. The Java client (and kafka-python) write the
  xerial "snappy-java" framing: the 8-byte magic ``\\x82SNAPPY\\x00``, two int32 (version,
  compatible version), then chunks of ``int32 length + raw snappy block``. librdkafka writes
  one plain raw snappy block. We read both (magic present -> de-chunk, else one raw block)
  and **write the xerial framing**, like the Java client, because every Kafka reader accepts
  it (Java's reader requires the magic for its stream class; librdkafka detects it).
  Note: this is *not* the official snappy framing format (``\\xff\\x06\\x00\\x00sNaPpY``).
* 3 lz4 — the LZ4 *frame* format with independent blocks. Kafka's reader rejects frames whose
  block-independence flag is clear (python ``lz4.frame`` links blocks by default), so we
  compress with ``block_linked=False`` and refuse linked frames on read, as Kafka would.
* 4 zstd — standard zstd frames; they may lack a content size and there may be several, so
  we decompress in streaming mode across frames.

Decompression is bounded: ``max_output`` (default 256 MiB) caps the decompressed size, and
each codec is driven so that it never produces much more than that before we notice — a few
kilobytes of "zip bomb" cannot make us allocate gigabytes. Malformed input, an unknown codec
or too much output raise ``RemoteProtocolError`` (the peer sent it).
"""

from __future__ import annotations

import struct
import zlib

import cramjam
import lz4.frame
import zstandard

from wire.errors import LocalProtocolError, RemoteProtocolError

__all__ = [
    "DEFAULT_MAX_OUTPUT",
    "GZIP",
    "LZ4",
    "NONE",
    "SNAPPY",
    "ZSTD",
    "CODEC_NAMES",
    "compress",
    "decompress",
]

NONE = 0
GZIP = 1
SNAPPY = 2
LZ4 = 3
ZSTD = 4

CODEC_NAMES = {NONE: "none", GZIP: "gzip", SNAPPY: "snappy", LZ4: "lz4", ZSTD: "zstd"}

DEFAULT_MAX_OUTPUT = 256 * 1024 * 1024

_XERIAL_MAGIC = b"\x82SNAPPY\x00"
_XERIAL_HEADER = _XERIAL_MAGIC + struct.pack(">ii", 1, 1)
# snappy-java's default block size: the uncompressed bytes per xerial chunk.
_XERIAL_BLOCK = 32 * 1024
_INT32 = struct.Struct(">i")

_LZ4_MAGIC = b"\x04\x22\x4d\x18"
# zstd's worst-case expansion: a 4-byte RLE block (3-byte header + 1 byte) regenerates up to
# 128 KiB. Feeding at most ``budget / ratio`` input bytes per call bounds each call's output.
_ZSTD_MAX_RATIO = 128 * 1024 // 4
_ZSTD_MIN_FEED = 64


def _too_big(max_output: int) -> RemoteProtocolError:
    return RemoteProtocolError(f"decompressed data exceeds the limit of {max_output} bytes")


def compress(codec: int, data: bytes | bytearray | memoryview) -> bytes:
    """Compress a record list with Kafka codec ``codec`` (0..4).

    Raises:
        LocalProtocolError: unknown codec (we chose it, so it is our bug).
    """
    if codec == NONE:
        return bytes(data)
    if codec == GZIP:
        # mtime=0 keeps output deterministic; level 6 is zlib's and Java's default.
        return _gzip_compress(data)
    if codec == SNAPPY:
        return _xerial_compress(data)
    if codec == LZ4:
        # Independent blocks (Kafka rejects linked ones), 64 KiB blocks like Kafka, no content
        # size and no checksums beyond the defaults both sides accept.
        return lz4.frame.compress(
            bytes(data),
            block_size=lz4.frame.BLOCKSIZE_MAX64KB,
            block_linked=False,
            content_checksum=False,
            store_size=False,
        )
    if codec == ZSTD:
        return zstandard.ZstdCompressor().compress(bytes(data))
    raise LocalProtocolError(f"unknown compression codec {codec}")


def decompress(
    codec: int, data: bytes | bytearray | memoryview, *, max_output: int = DEFAULT_MAX_OUTPUT
) -> bytes:
    """Decompress a record list.

    Args:
        codec: Kafka codec number from the batch attributes.
        data: the compressed blob.
        max_output: the most decompressed bytes accepted.

    Raises:
        RemoteProtocolError: unknown codec, malformed or truncated data, or output above
            ``max_output``.
    """
    if codec == NONE:
        if len(data) > max_output:
            raise _too_big(max_output)
        return bytes(data)
    if codec == GZIP:
        return _gzip_decompress(data, max_output)
    if codec == SNAPPY:
        return _snappy_decompress(data, max_output)
    if codec == LZ4:
        return _lz4_decompress(data, max_output)
    if codec == ZSTD:
        return _zstd_decompress(data, max_output)
    raise RemoteProtocolError(f"unknown compression codec {codec}")


# --- gzip ----------------------------------------------------------------------------------

def _gzip_compress(data) -> bytes:
    compressor = zlib.compressobj(6, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    return compressor.compress(data) + compressor.flush()


def _gzip_decompress(data, max_output: int) -> bytes:
    out = bytearray()
    pending = bytes(data)
    while True:
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            while not inflater.eof:
                # Ask for at most one byte more than the budget: getting it proves excess.
                chunk = inflater.decompress(pending, max_output - len(out) + 1)
                out += chunk
                if len(out) > max_output:
                    raise _too_big(max_output)
                pending = inflater.unconsumed_tail
                if not chunk and not pending and not inflater.eof:
                    raise RemoteProtocolError("truncated gzip data")
        except zlib.error as exc:
            raise RemoteProtocolError(f"malformed gzip data: {exc}") from None
        pending = inflater.unused_data
        # Another gzip member may follow (concatenated streams are legal); anything else
        # trailing is ignored, as Java's GZIPInputStream does.
        if not pending.startswith(b"\x1f\x8b"):
            return bytes(out)


# --- snappy --------------------------------------------------------------------------------

def _xerial_compress(data) -> bytes:
    view = memoryview(data)
    out = bytearray(_XERIAL_HEADER)
    for start in range(0, len(view), _XERIAL_BLOCK):
        block = bytes(cramjam.snappy.compress_raw(view[start : start + _XERIAL_BLOCK]))
        out += _INT32.pack(len(block))
        out += block
    return bytes(out)


def _raw_snappy(block, budget: int, max_output: int) -> bytes:
    """One raw snappy block, refusing it before decompressing if it declares too much."""
    try:
        # A raw block starts with its uncompressed length: check it before allocating.
        declared = cramjam.snappy.decompress_raw_len(block)
        if declared > budget:
            raise _too_big(max_output)
        return bytes(cramjam.snappy.decompress_raw(block))
    except cramjam.DecompressionError as exc:
        raise RemoteProtocolError(f"malformed snappy data: {exc}") from None


def _snappy_decompress(data, max_output: int) -> bytes:
    view = memoryview(data)
    if bytes(view[:8]) != _XERIAL_MAGIC:
        return _raw_snappy(view, max_output, max_output)
    # Only the magic is checked: some producers write the two version ints little-endian.
    if len(view) < 16:
        raise RemoteProtocolError("truncated xerial snappy header")
    out = bytearray()
    pos = 16
    while pos < len(view):
        if pos + 4 > len(view):
            raise RemoteProtocolError("truncated xerial snappy chunk length")
        length = _INT32.unpack_from(view, pos)[0]
        pos += 4
        if length < 0 or pos + length > len(view):
            raise RemoteProtocolError("bad xerial snappy chunk length")
        out += _raw_snappy(view[pos : pos + length], max_output - len(out), max_output)
        pos += length
    return bytes(out)


# --- lz4 -----------------------------------------------------------------------------------

def _check_lz4_frame_header(data: bytes) -> None:
    """Refuse what Kafka's ``Lz4BlockInputStream`` refuses: bad magic, version, linked blocks."""
    if len(data) < 7 or data[:4] != _LZ4_MAGIC:
        raise RemoteProtocolError("not an LZ4 frame")
    flags = data[4]
    if flags >> 6 != 0b01:
        raise RemoteProtocolError("unsupported LZ4 frame version")
    if not flags & 0x20:
        raise RemoteProtocolError("LZ4 frame with dependent (linked) blocks: Kafka rejects these")


def _lz4_decompress(data, max_output: int) -> bytes:
    out = bytearray()
    pending = bytes(data)
    while pending:
        _check_lz4_frame_header(pending)
        decompressor = lz4.frame.LZ4FrameDecompressor()
        try:
            chunk = decompressor.decompress(pending, max_length=max_output - len(out) + 1)
            while True:
                out += chunk
                if len(out) > max_output:
                    raise _too_big(max_output)
                if decompressor.eof or decompressor.needs_input:
                    break
                chunk = decompressor.decompress(b"", max_length=max_output - len(out) + 1)
        except RuntimeError as exc:  # lz4.frame reports malformed input as RuntimeError
            raise RemoteProtocolError(f"malformed lz4 data: {exc}") from None
        if not decompressor.eof:
            raise RemoteProtocolError("truncated lz4 frame")
        pending = decompressor.unused_data
    return bytes(out)


# --- zstd ----------------------------------------------------------------------------------

def _zstd_decompress(data, max_output: int) -> bytes:
    view = memoryview(data)
    out = bytearray()
    pos = 0
    # Window above 2^27 (128 MiB) would let a frame header alone demand that much memory;
    # zstd's own default limit, made explicit.
    decompressor = zstandard.ZstdDecompressor(max_window_size=1 << 27)
    while pos < len(view):
        obj = decompressor.decompressobj()
        try:
            while not obj.eof:
                if pos >= len(view):
                    raise RemoteProtocolError("truncated zstd frame")
                feed = max(_ZSTD_MIN_FEED, (max_output - len(out)) // _ZSTD_MAX_RATIO)
                piece = view[pos : pos + feed]
                out += obj.decompress(piece)
                if len(out) > max_output:
                    raise _too_big(max_output)
                # At the end of a frame the object keeps what it did not use: step back
                # so the next frame starts right there.
                pos += len(piece) - (len(obj.unused_data) if obj.eof else 0)
        except zstandard.ZstdError as exc:
            raise RemoteProtocolError(f"malformed zstd data: {exc}") from None
    return bytes(out)
