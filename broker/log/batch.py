"""What the log needs to know about Kafka's RecordBatch v2 header — and nothing more.

The log stores batches exactly as producers sent them (see GUIDE §2). To do that it must be
able to: read the fixed 61-byte header, check that a batch is whole and intact (length, magic,
CRC-32C), and stamp the two fields the broker owns (``baseOffset`` and
``partitionLeaderEpoch``), both of which sit *outside* the CRC so the producer's checksum stays
valid. Records inside a batch are never decoded here: the broker indexes batches, not records,
which keeps Python's per-record cost off the append and read paths.

The full codec (records, compression, building batches) belongs to ``wire/kafka/records.py``;
the core may not import ``wire``, so this module carries its own small copy of the header
layout.

Header layout (big-endian), offsets in bytes::

    0  baseOffset int64         8  batchLength int32     12 partitionLeaderEpoch int32
    16 magic int8               17 crc uint32 (CRC-32C of bytes 21..end)
    21 attributes int16         23 lastOffsetDelta int32 27 baseTimestamp int64
    35 maxTimestamp int64       43 producerId int64      51 producerEpoch int16
    53 baseSequence int32       57 recordsCount int32    61 records...
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import NamedTuple

import crc32c

from broker.errors import BatchTooLarge, CorruptBatch

# Field offsets inside the header.
BASE_OFFSET = 0
BATCH_LENGTH = 8
PARTITION_LEADER_EPOCH = 12
MAGIC = 16
CRC = 17
ATTRIBUTES = 21
LAST_OFFSET_DELTA = 23
BASE_TIMESTAMP = 27
MAX_TIMESTAMP = 35
PRODUCER_ID = 43
PRODUCER_EPOCH = 51
BASE_SEQUENCE = 53
RECORDS_COUNT = 57
HEADER_SIZE = 61

# ``batchLength`` counts the bytes after itself, so a whole batch is batchLength + 12 bytes.
LOG_OVERHEAD = 12
# The CRC covers attributes .. end of batch; everything before byte 21 may be rewritten.
CRC_START = ATTRIBUTES
CURRENT_MAGIC = 2
# We are a single broker that never changes leader, so every batch is stamped with epoch 0.
# Recovery relies on this: the epoch is not covered by the CRC, so a value other than 0 on disk
# can only be damage.
LEADER_EPOCH = 0

HEADER_STRUCT = struct.Struct(">qiibIhiqqqhii")
assert HEADER_STRUCT.size == HEADER_SIZE
_OFFSET_AND_LENGTH = struct.Struct(">qi")
_INT64 = struct.Struct(">q")
_INT32 = struct.Struct(">i")


class BatchHeader(NamedTuple):
    """The 61-byte header of one batch, decoded. One per *batch*, never per record.

    A NamedTuple because it is built on hot paths (validate on every append, scans in
    recovery): constructing it is a single C-level tuple allocation.
    """

    base_offset: int
    batch_length: int
    partition_leader_epoch: int
    magic: int
    crc: int
    attributes: int
    last_offset_delta: int
    base_timestamp: int
    max_timestamp: int
    producer_id: int
    producer_epoch: int
    base_sequence: int
    records_count: int

    @property
    def size(self) -> int:
        """Bytes of the whole batch, including baseOffset and batchLength."""
        return self.batch_length + LOG_OVERHEAD

    @property
    def last_offset(self) -> int:
        return self.base_offset + self.last_offset_delta

    @property
    def next_offset(self) -> int:
        """The offset the batch after this one starts at."""
        return self.base_offset + self.last_offset_delta + 1


def parse_header(data: bytes | bytearray | memoryview, position: int = 0) -> BatchHeader:
    """Decode the header at ``position`` without checking anything but that 61 bytes exist.

    Raises:
        CorruptBatch: fewer than 61 bytes available at ``position``.
    """
    if len(data) - position < HEADER_SIZE:
        raise CorruptBatch(
            f"batch header needs {HEADER_SIZE} bytes, only {len(data) - position} available"
        )
    return BatchHeader._make(HEADER_STRUCT.unpack_from(data, position))


def validate(batch: bytes | bytearray | memoryview, max_message_bytes: int) -> BatchHeader:
    """Check that ``batch`` is exactly one whole, intact RecordBatch v2.

    A Produce request carries exactly one batch per partition, so trailing bytes are an error
    here (use :func:`split_batches` for a concatenation).

    Args:
        batch: the bytes as received.
        max_message_bytes: the topic's limit on a whole batch (Kafka's ``max.message.bytes``).

    Returns:
        The decoded header.

    Raises:
        CorruptBatch: too short, wrong magic, ``batchLength`` disagreeing with the data,
            negative counts, or a CRC-32C mismatch.
        BatchTooLarge: the batch is larger than ``max_message_bytes``.
    """
    size = len(batch)
    if size < HEADER_SIZE:
        raise CorruptBatch(f"batch of {size} bytes is shorter than the {HEADER_SIZE}-byte v2 header")
    # Magic first: in the legacy formats (magic 0/1) bytes 12..20 mean something else, so no
    # other header field may be trusted before we know this is v2.
    magic = batch[MAGIC]
    if magic != CURRENT_MAGIC:
        raise CorruptBatch(f"batch magic is {magic}, only magic {CURRENT_MAGIC} (RecordBatch v2) is supported")
    header = BatchHeader._make(HEADER_STRUCT.unpack_from(batch, 0))
    if header.batch_length + LOG_OVERHEAD != size:
        raise CorruptBatch(
            f"batchLength {header.batch_length} implies a {header.batch_length + LOG_OVERHEAD}-byte "
            f"batch but {size} bytes were given (exactly one batch expected)"
        )
    # Size before CRC: no point checksumming something we will refuse anyway.
    if size > max_message_bytes:
        raise BatchTooLarge(f"batch of {size} bytes exceeds max_message_bytes {max_message_bytes}")
    if header.last_offset_delta < 0 or header.records_count < 0:
        raise CorruptBatch(
            f"negative lastOffsetDelta ({header.last_offset_delta}) or recordsCount ({header.records_count})"
        )
    actual = crc32c.crc32c(memoryview(batch)[CRC_START:])
    if actual != header.crc:
        raise CorruptBatch(f"CRC-32C mismatch: header says {header.crc:#010x}, data gives {actual:#010x}")
    return header


def crc_ok(batch: bytes | bytearray | memoryview, header: BatchHeader) -> bool:
    """Whether the CRC-32C stored in ``header`` matches ``batch`` (one whole batch)."""
    return crc32c.crc32c(memoryview(batch)[CRC_START:]) == header.crc


def patch_base_offset(buf: bytearray | memoryview, offset: int) -> None:
    """Stamp the broker-owned fields: ``baseOffset := offset``, ``partitionLeaderEpoch := 0``.

    Both live before byte 21, outside the CRC, so the producer's checksum stays valid.
    """
    _INT64.pack_into(buf, BASE_OFFSET, offset)
    _INT32.pack_into(buf, PARTITION_LEADER_EPOCH, LEADER_EPOCH)


def patched_prefix(batch: bytes | bytearray | memoryview, offset: int) -> bytes:
    """The first 16 bytes of ``batch`` with baseOffset and leader epoch stamped.

    Lets the log write ``prefix + batch[16:]`` with one ``os.writev`` instead of copying the
    whole batch into a bytearray just to change 12 bytes.
    """
    return _OFFSET_AND_LENGTH.pack(offset, _INT32.unpack_from(batch, BATCH_LENGTH)[0]) + _INT32.pack(LEADER_EPOCH)


def scan_batches(data: bytes | bytearray | memoryview, start: int = 0) -> Iterator[tuple[int, BatchHeader]]:
    """Walk a concatenation of batches structurally: yield ``(position, header)`` per batch.

    Stops quietly at the first thing that is not a whole v2 batch (a torn tail, garbage, a bad
    magic); the caller can compare the last position reached with ``len(data)``. The CRC is not
    checked here — see :func:`crc_ok` — because callers differ in whether they can afford it.
    """
    end = len(data)
    position = start
    while end - position >= HEADER_SIZE:
        if data[position + MAGIC] != CURRENT_MAGIC:
            return
        header = BatchHeader._make(HEADER_STRUCT.unpack_from(data, position))
        size = header.batch_length + LOG_OVERHEAD
        if size < HEADER_SIZE or position + size > end:
            return
        yield position, header
        position += size


def split_batches(
    data: bytes | bytearray | memoryview, *, max_message_bytes: int | None = None
) -> list[tuple[BatchHeader, memoryview]]:
    """Split a concatenation of batches into validated ``(header, view)`` pairs.

    Every batch must be whole and intact; nothing may trail the last one.

    Raises:
        CorruptBatch: a batch fails validation, or bytes trail the last whole batch.
        BatchTooLarge: one batch exceeds ``max_message_bytes`` (when given).
    """
    view = memoryview(data)
    limit = max_message_bytes if max_message_bytes is not None else len(view)
    out: list[tuple[BatchHeader, memoryview]] = []
    position = 0
    while position < len(view):
        if len(view) - position < LOG_OVERHEAD:
            raise CorruptBatch(f"{len(view) - position} trailing bytes at position {position}")
        (length,) = _INT32.unpack_from(view, position + BATCH_LENGTH)
        size = length + LOG_OVERHEAD
        if length < 0 or position + size > len(view):
            raise CorruptBatch(
                f"batch at position {position} claims {size} bytes, only {len(view) - position} remain"
            )
        piece = view[position : position + size]
        out.append((validate(piece, limit), piece))
        position += size
    return out
