"""RecordBatch v2, the format shared by the log and the SDK: header parsing, validation and
its errors, splitting record sets, stamping offsets.

The batches come from ``tests.broker.batches``, an encoder written from the spec
independently of ``wire.kafka.records``: these tests cross-check the two.
"""

from __future__ import annotations

import struct

import pytest

from wire.errors import RemoteProtocolError
from wire.kafka.batch import (
    HEADER_SIZE,
    MAGIC,
    BatchHeader,
    BatchTooLarge,
    CorruptBatch,
    InvalidBatch,
    UnsupportedBatchFormat,
    crc_matches,
    parse_header,
    patch_base_offset,
    patched_prefix,
    split_batches,
    validate,
)
from tests.broker.batches import build_batch, encode_record, with_base_offset

LIMIT = 1024 * 1024


def test_one_record_example_validates() -> None:
    # A 70-byte batch worked out by hand (one record, null key, value "hi"), field by field as in
    # the header table of ``wire/kafka/batch.py``.
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
    with pytest.raises(UnsupportedBatchFormat, match="magic is 1"):
        validate(bytes(batch), LIMIT)
    with pytest.raises(UnsupportedBatchFormat):
        parse_header(batch)


def test_every_batch_error_is_a_remote_protocol_error() -> None:
    # The peer (or the disk) wrote the bytes: the SDK treats a bad batch like any other bad
    # bytes from a broker, and pull mode answers the partition with the code errors.py maps.
    for error in (CorruptBatch, UnsupportedBatchFormat, BatchTooLarge):
        assert issubclass(error, InvalidBatch) and issubclass(error, RemoteProtocolError)


def test_too_small_batch_length() -> None:
    batch = bytearray(build_batch())
    struct.pack_into(">i", batch, 8, HEADER_SIZE - 13)
    with pytest.raises(CorruptBatch, match="cannot hold"):
        parse_header(batch)


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
    assert validate(batch).size == len(batch)  # no limit


def test_size_limit_is_checked_before_the_crc() -> None:
    # No point checksumming a batch that is refused anyway; the producer learns the real problem.
    batch = bytearray(build_batch(10, 100))
    batch[-1] ^= 0x01
    with pytest.raises(BatchTooLarge):
        validate(bytes(batch), 500)


def test_fields_outside_crc_may_change() -> None:
    batch = bytearray(build_batch(2))
    patch_base_offset(batch, 12345, 0)
    header = validate(batch, LIMIT)
    assert header.base_offset == 12345 and header.partition_leader_epoch == 0
    assert bytes(batch) == with_base_offset(build_batch(2), 12345)
    assert crc_matches(batch)


def test_patching_a_batch_inside_a_buffer() -> None:
    original = build_batch(3)
    buf = bytearray(b"junk" + original)
    patch_base_offset(buf, 1234, 7, position=4)
    header = parse_header(buf, 4)
    assert (header.base_offset, header.partition_leader_epoch) == (1234, 7)
    assert crc_matches(buf[4:])
    # The prefix form the log writes with writev: the same 16 bytes, no copy of the batch.
    assert patched_prefix(original, 1234, 7) + original[16:] == bytes(buf[4:])


def test_crc_matches() -> None:
    batch = bytearray(build_batch(3))
    assert crc_matches(batch)
    batch[-1] ^= 0x01
    assert not crc_matches(batch)
    assert not crc_matches(batch[:HEADER_SIZE - 1])


def test_header_properties() -> None:
    header = BatchHeader(10, 100, 0, 2, 0, 0x3B, 4, 0, 0, -1, -1, -1, 5)
    assert header.compression == 3 and header.is_log_append_time and header.is_transactional
    assert header.is_control and (header.last_offset, header.next_offset, header.size) == (14, 15, 112)


def test_split_strict_and_tolerant() -> None:
    parts = [build_batch(n, 7) for n in (1, 4, 2)]
    data = b"".join(parts)
    for strict in (False, True):
        split = split_batches(data, strict=strict)
        assert [bytes(view) for view in split] == parts
        assert all(isinstance(view, memoryview) for view in split)
    # A torn tail (a fetch cut at max_bytes): dropped by default, refused when strict.
    assert [bytes(view) for view in split_batches(data[:-3])] == parts[:2]
    assert split_batches(data[:11]) == []
    with pytest.raises(CorruptBatch, match="claims"):
        split_batches(data[:-3], strict=True)
    with pytest.raises(CorruptBatch, match="trailing"):
        split_batches(data + b"\x00" * 5, strict=True)


@pytest.mark.parametrize("strict", [False, True])
def test_impossible_length_in_split(strict: bool) -> None:
    for length in (-5, 0, HEADER_SIZE - 13):
        bad = struct.pack(">qi", 0, length) + b"\x00" * 60
        with pytest.raises(CorruptBatch, match="too small"):
            split_batches(bad, strict=strict)
