"""RecordBatch v2 ("magic 2"): the header layout, its checks, and cutting a record set into batches.

This is the one definition of Kafka's batch format that both sides of dualmq share. The broker
core stores batches exactly as producers sent them, so the log *is* this format: it is the only
``wire`` module ``broker/`` may import. The SDK, the pull front-end and the log all read
headers, validate and split record sets through the functions here. What records look like
inside a batch (decoding them, building batches) is ``wire.kafka.records``; this module never
looks past byte 61.

A record set (the ``records`` field of Produce and Fetch) is a plain concatenation of batches.
Each batch is a 61-byte header followed by its records, or by one compressed blob of them.
Header layout (big-endian), offsets in bytes::

    offset  size  field
         0     8  baseOffset             assigned by the broker on append
         8     4  batchLength            bytes after this field (a whole batch = length + 12)
        12     4  partitionLeaderEpoch   set by the broker
        16     1  magic                  2 (0 and 1 are the legacy MessageSet formats)
        17     4  crc                    CRC-32C of bytes 21..end
        21     2  attributes             codec (bits 0-2), LogAppendTime (3), transactional (4),
                                         control (5), delete horizon (6)
        23     4  lastOffsetDelta
        27     8  baseTimestamp
        35     8  maxTimestamp
        43     8  producerId             -1 unless idempotent
        51     2  producerEpoch
        53     4  baseSequence
        57     4  recordsCount

Why the CRC starts at byte 21: the two fields before it that the broker owns (``baseOffset``
and ``partitionLeaderEpoch``) can be stamped without recomputing it, so the producer's checksum
stays valid from producer to disk to consumer.

Errors: bytes that are not an acceptable batch raise an ``InvalidBatch`` subclass that says
what is wrong in the format's own terms — ``CorruptBatch`` (damaged: length, CRC, truncation),
``UnsupportedBatchFormat`` (a legacy magic) or ``BatchTooLarge`` (over the caller's limit).
Whoever wrote the bytes (a producer, a broker answering a fetch, a disk) broke the protocol, so
they are ``RemoteProtocolError``\\ s; pull mode maps each to its Kafka error code in its one
error-mapping place, and answers just that partition.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

import crc32c

from wire.errors import RemoteProtocolError

__all__ = [
    "BatchHeader",
    "BatchTooLarge",
    "CorruptBatch",
    "InvalidBatch",
    "UnsupportedBatchFormat",
    "crc_matches",
    "parse_header",
    "patch_base_offset",
    "patched_prefix",
    "split_batches",
    "validate",
]

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
# The smallest ``batchLength`` that can hold a header.
MIN_BATCH_LENGTH = HEADER_SIZE - LOG_OVERHEAD
# The CRC covers attributes .. end of batch; everything before byte 21 may be rewritten.
CRC_START = ATTRIBUTES
CURRENT_MAGIC = 2

# Bits of ``attributes``.
COMPRESSION_MASK = 0x07
TIMESTAMP_TYPE_BIT = 0x08
TRANSACTIONAL_BIT = 0x10
CONTROL_BIT = 0x20

HEADER_STRUCT = struct.Struct(">qiibIhiqqqhii")
assert HEADER_STRUCT.size == HEADER_SIZE
_OFFSET_AND_LENGTH = struct.Struct(">qi")
_INT64 = struct.Struct(">q")
_INT32 = struct.Struct(">i")
_UINT32 = struct.Struct(">I")


class InvalidBatch(RemoteProtocolError):
    """Bytes that are not an acceptable RecordBatch v2. Subclasses say why."""


class CorruptBatch(InvalidBatch):
    """Damaged: too short, a ``batchLength`` that disagrees with the data, negative counts, a
    CRC-32C mismatch, or a record inside that does not decode (Kafka's CORRUPT_MESSAGE)."""


class UnsupportedBatchFormat(InvalidBatch):
    """A legacy MessageSet (magic 0 or 1), or a record set that is not exactly the one batch a
    Produce request must carry (Kafka's INVALID_RECORD)."""


class BatchTooLarge(InvalidBatch):
    """Larger than the limit the caller gave (the topic's ``max.message.bytes``)."""


class BatchHeader(NamedTuple):
    """The 61-byte header of one batch, decoded. One per *batch*, never per record.

    A NamedTuple because it is built on hot paths (every append, every header walk of a
    segment, every batch a consumer reads): constructing one is a single C-level tuple
    allocation, where an attrs class would run Python code per field.
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
        """The offset the batch after this one starts at (the log end once it is appended)."""
        return self.base_offset + self.last_offset_delta + 1

    @property
    def compression(self) -> int:
        """The codec number (``wire.kafka.compression``): 0 for none."""
        return self.attributes & COMPRESSION_MASK

    @property
    def is_log_append_time(self) -> bool:
        return bool(self.attributes & TIMESTAMP_TYPE_BIT)

    @property
    def is_transactional(self) -> bool:
        return bool(self.attributes & TRANSACTIONAL_BIT)

    @property
    def is_control(self) -> bool:
        return bool(self.attributes & CONTROL_BIT)


def _unsupported(magic: int) -> UnsupportedBatchFormat:
    return UnsupportedBatchFormat(f"batch magic is {magic}, only magic {CURRENT_MAGIC} (RecordBatch v2) is supported")


def parse_header(data: bytes | bytearray | memoryview, position: int = 0) -> BatchHeader:
    """Decode the header of the batch starting at ``position``; nothing after it is read.

    Raises:
        CorruptBatch: fewer than 61 bytes at ``position``, or a ``batchLength`` too small to
            hold a header.
        UnsupportedBatchFormat: a magic other than 2.
    """
    available = len(data) - position
    if available < HEADER_SIZE:
        raise CorruptBatch(f"batch header needs {HEADER_SIZE} bytes, only {available} available")
    # Magic first: in the legacy formats (magic 0/1) bytes 12..20 mean something else, so no
    # other header field may be trusted before we know this is v2.
    if data[position + MAGIC] != CURRENT_MAGIC:
        raise _unsupported(data[position + MAGIC])
    header = BatchHeader._make(HEADER_STRUCT.unpack_from(data, position))
    if header.batch_length < MIN_BATCH_LENGTH:
        raise CorruptBatch(f"batchLength {header.batch_length} cannot hold a {HEADER_SIZE}-byte header")
    return header


def validate(batch: bytes | bytearray | memoryview, max_message_bytes: int | None = None) -> BatchHeader:
    """Check that ``batch`` is exactly one whole, intact RecordBatch v2.

    The checks run cheapest first, and the CRC (the only one that reads every byte) last, after
    the size limit: there is no point checksumming a batch we refuse anyway.

    Args:
        batch: the bytes of one batch, as received or as read back.
        max_message_bytes: the largest whole batch accepted (Kafka's ``max.message.bytes``);
            None for no limit.

    Returns:
        The decoded header.

    Raises:
        CorruptBatch: too short, ``batchLength`` disagreeing with the data (trailing bytes
            included: use :func:`split_batches` for a concatenation), negative
            ``lastOffsetDelta`` or ``recordsCount``, or a CRC-32C mismatch.
        UnsupportedBatchFormat: a magic other than 2.
        BatchTooLarge: larger than ``max_message_bytes``.
    """
    # Inlined rather than calling parse_header: this runs on every append, and the length
    # check below implies parse_header's "batchLength can hold a header" (size >= 61).
    size = len(batch)
    if size < HEADER_SIZE:
        raise CorruptBatch(f"batch of {size} bytes is shorter than the {HEADER_SIZE}-byte v2 header")
    if batch[MAGIC] != CURRENT_MAGIC:
        raise _unsupported(batch[MAGIC])
    header = BatchHeader._make(HEADER_STRUCT.unpack_from(batch, 0))
    if header.batch_length + LOG_OVERHEAD != size:
        raise CorruptBatch(
            f"batchLength {header.batch_length} implies a {header.batch_length + LOG_OVERHEAD}-byte "
            f"batch but {size} bytes were given (exactly one batch expected)")
    if max_message_bytes is not None and size > max_message_bytes:
        raise BatchTooLarge(f"batch of {size} bytes exceeds max_message_bytes {max_message_bytes}")
    if header.last_offset_delta < 0 or header.records_count < 0:
        raise CorruptBatch(
            f"negative lastOffsetDelta ({header.last_offset_delta}) or recordsCount ({header.records_count})")
    actual = crc32c.crc32c(memoryview(batch)[CRC_START:])
    if actual != header.crc:
        raise CorruptBatch(f"CRC-32C mismatch: header says {header.crc:#010x}, data gives {actual:#010x}")
    return header


def crc_matches(batch: bytes | bytearray | memoryview) -> bool:
    """Whether the CRC-32C stored in ``batch`` (exactly one whole batch) matches its bytes 21..end."""
    if len(batch) < HEADER_SIZE:
        return False
    view = memoryview(batch)
    return _UINT32.unpack_from(view, CRC)[0] == crc32c.crc32c(view[CRC_START:])


def patch_base_offset(buf: bytearray | memoryview, base_offset: int, partition_leader_epoch: int,
                      position: int = 0) -> None:
    """Stamp the broker-owned fields of the batch at ``position`` in ``buf``, in place.

    Both fields lie before byte 21, outside the CRC, so the batch stays valid.
    """
    _INT64.pack_into(buf, position + BASE_OFFSET, base_offset)
    _INT32.pack_into(buf, position + PARTITION_LEADER_EPOCH, partition_leader_epoch)


def patched_prefix(batch: bytes | bytearray | memoryview, base_offset: int, partition_leader_epoch: int) -> bytes:
    """The first 16 bytes of ``batch`` with ``baseOffset`` and the leader epoch stamped.

    What :func:`patch_base_offset` does, for a batch that must not be copied: a log writes
    ``prefix + batch[16:]`` with one ``os.writev`` instead of copying the whole batch into a
    bytearray just to change 12 bytes.
    """
    return (_OFFSET_AND_LENGTH.pack(base_offset, _INT32.unpack_from(batch, BATCH_LENGTH)[0])
            + _INT32.pack(partition_leader_epoch))


def split_batches(records: bytes | bytearray | memoryview, *, strict: bool = False) -> list[memoryview]:
    """Cut a record set into batches: views into ``records``, no copy, nothing validated but
    each ``batchLength``.

    Two callers want two different things at the end of the data, hence ``strict``:

    * a Fetch response may end with a truncated batch (a broker cuts at ``max_bytes``): it is
      dropped, as every client does (``strict=False``, the default);
    * a Produce request must hold whole batches only (``strict=True``): a truncated tail is
      an error.

    Raises:
        CorruptBatch: a ``batchLength`` too small to be a batch (always), or (strict) trailing
            bytes that do not form a complete batch.
    """
    view = memoryview(records)
    total = len(view)
    batches: list[memoryview] = []
    position = 0
    while position < total:
        if total - position < LOG_OVERHEAD:
            if strict:
                raise CorruptBatch(f"{total - position} trailing bytes at position {position}")
            break
        (length,) = _INT32.unpack_from(view, position + BATCH_LENGTH)
        if length < MIN_BATCH_LENGTH:
            raise CorruptBatch(f"batch at position {position} has batchLength {length}, "
                               f"too small to hold a {HEADER_SIZE}-byte header")
        end = position + LOG_OVERHEAD + length
        if end > total:
            if strict:
                raise CorruptBatch(f"batch at position {position} claims {end - position} bytes, "
                                   f"only {total - position} remain")
            break
        batches.append(view[position:end])
        position = end
    return batches
