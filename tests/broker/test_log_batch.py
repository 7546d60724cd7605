"""RecordBatch v2 header handling: validation errors, splitting, offset stamping."""

from __future__ import annotations

import struct

import pytest

from broker.errors import BatchTooLarge, CorruptBatch
from broker.log.batch import (
    HEADER_SIZE,
    MAGIC,
    parse_header,
    patch_base_offset,
    scan_batches,
    split_batches,
    validate,
)
from tests.broker.batches import build_batch, encode_record, with_base_offset

LIMIT = 1024 * 1024


def test_guide_worked_example_validates() -> None:
    # GUIDE §2.4's 70-byte example, rebuilt from its field table.
    expected = bytes.fromhex(
        "0000000000000000" "0000003a" "00000000" "02" "bbcc4115" "0000" "00000000"
        "0000018bcfe56800" "0000018bcfe56800" "ffffffffffffffff" "ffff" "ffffffff" "00000001"
        "100000000104686900"
    )
    assert encode_record(0, 0, None, b"hi") == bytes.fromhex("100000000104686900")
    header = validate(expected, LIMIT)
    assert header.batch_length == 58 and header.size == 70
    assert header.records_count == 1 and header.max_timestamp == 1_700_000_000_000
    assert header.producer_id == -1 and header.last_offset_delta == 0


def test_header_fields() -> None:
    batch = build_batch(5, 3, timestamp=1000, timestamp_step=10, producer_id=7, producer_epoch=2, base_sequence=40)
    header = validate(batch, LIMIT)
    assert header.size == len(batch)
    assert (header.last_offset_delta, header.records_count) == (4, 5)
    assert (header.base_timestamp, header.max_timestamp) == (1000, 1040)
    assert (header.producer_id, header.producer_epoch, header.base_sequence) == (7, 2, 40)
    assert header.next_offset == 5 and header.last_offset == 4
    assert parse_header(batch) == header


def test_too_short() -> None:
    with pytest.raises(CorruptBatch, match="shorter than the 61-byte"):
        validate(build_batch()[:HEADER_SIZE - 1], LIMIT)


def test_wrong_magic() -> None:
    batch = bytearray(build_batch())
    batch[MAGIC] = 1
    with pytest.raises(CorruptBatch, match="magic is 1"):
        validate(bytes(batch), LIMIT)


def test_length_running_past_data() -> None:
    batch = build_batch(3)
    with pytest.raises(CorruptBatch, match="batchLength"):
        validate(batch[:-1], LIMIT)


def test_trailing_bytes_refused() -> None:
    batch = build_batch(3)
    with pytest.raises(CorruptBatch, match="exactly one batch"):
        validate(batch + batch, LIMIT)


def test_crc_mismatch() -> None:
    batch = bytearray(build_batch(3))
    batch[-1] ^= 0x01
    with pytest.raises(CorruptBatch, match="CRC-32C mismatch"):
        validate(bytes(batch), LIMIT)


def test_too_large() -> None:
    batch = build_batch(10, 100)
    with pytest.raises(BatchTooLarge, match=f"batch of {len(batch)} bytes exceeds max_message_bytes 500"):
        validate(batch, 500)
    assert validate(batch, len(batch)).size == len(batch)


def test_fields_outside_crc_may_change() -> None:
    batch = bytearray(build_batch(2))
    patch_base_offset(batch, 12345)
    header = validate(batch, LIMIT)
    assert header.base_offset == 12345 and header.partition_leader_epoch == 0
    assert bytes(batch) == with_base_offset(build_batch(2), 12345)


def test_split_and_scan() -> None:
    parts = [build_batch(n, 7) for n in (1, 4, 2)]
    data = b"".join(parts)
    split = split_batches(data)
    assert [bytes(view) for _, view in split] == parts
    assert [p for p, _ in scan_batches(data)] == [0, len(parts[0]), len(parts[0]) + len(parts[1])]
    # A torn tail: scan stops quietly, split refuses.
    assert len(list(scan_batches(data[:-3]))) == 2
    with pytest.raises(CorruptBatch, match="claims"):
        split_batches(data[:-3])
    with pytest.raises(CorruptBatch, match="trailing"):
        split_batches(data + b"\x00" * 5)
    with pytest.raises(BatchTooLarge):
        split_batches(data, max_message_bytes=len(parts[0]))


def test_negative_length_in_split() -> None:
    bad = struct.pack(">qi", 0, -5) + b"\x00" * 60
    with pytest.raises(CorruptBatch):
        split_batches(bad)
