"""Test helper: build valid RecordBatch v2 bytes, written from Kafka's spec alone.

A small encoder independent of ``wire.kafka.records``: records with zigzag varints, the
61-byte header, CRC-32C over attributes..end. The log's tests use it, and ``wire.kafka.batch``
is cross-checked against it (``tests/wire/kafka/test_batch.py``): both are written from the
spec, not from each other, so a shared misreading of the format would have to happen twice.
"""

from __future__ import annotations

import struct

import crc32c

_HEADER_AFTER_CRC = struct.Struct(">hiqqqhii")  # attributes .. recordsCount (40 bytes)


def zigzag_varint(value: int) -> bytes:
    """Kafka's signed varint: zigzag-map, then 7 bits per byte, low groups first."""
    n = (value << 1) ^ (value >> 63)
    n &= (1 << 64) - 1
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def encode_record(offset_delta: int, timestamp_delta: int, key: bytes | None, value: bytes | None) -> bytes:
    body = bytearray(b"\x00")  # record attributes
    body += zigzag_varint(timestamp_delta)
    body += zigzag_varint(offset_delta)
    for field in (key, value):
        if field is None:
            body += zigzag_varint(-1)
        else:
            body += zigzag_varint(len(field)) + field
    body += zigzag_varint(0)  # no headers
    return zigzag_varint(len(body)) + bytes(body)


def build_batch(
    records: int = 1,
    value_size: int = 10,
    *,
    timestamp: int = 1_700_000_000_000,
    timestamp_step: int = 0,
    base_offset: int = 0,
    producer_id: int = -1,
    producer_epoch: int = -1,
    base_sequence: int = -1,
    fill: int | None = None,
) -> bytes:
    """A valid uncompressed batch of ``records`` records with ``value_size``-byte values.

    Record ``i`` has timestamp ``timestamp + i * timestamp_step``; values are filled with a
    byte derived from the record index (or ``fill``) so batches differ.
    """
    body = b"".join(
        encode_record(i, i * timestamp_step, None, bytes([(fill if fill is not None else i) & 0xFF]) * value_size)
        for i in range(records)
    )
    last_delta = max(records - 1, 0)
    max_ts = timestamp + last_delta * timestamp_step
    after_crc = _HEADER_AFTER_CRC.pack(0, last_delta, timestamp, max_ts, producer_id, producer_epoch,
                                       base_sequence, records) + body
    crc = crc32c.crc32c(after_crc)
    batch_length = 4 + 1 + 4 + len(after_crc)  # epoch, magic, crc, rest
    return struct.pack(">qiibI", base_offset, batch_length, -1, 2, crc) + after_crc


def with_base_offset(batch: bytes, offset: int) -> bytes:
    """What the log stores: ``batch`` with baseOffset stamped and leader epoch 0."""
    return struct.pack(">q", offset) + batch[8:12] + struct.pack(">i", 0) + batch[16:]
