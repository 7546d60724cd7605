"""Records inside RecordBatch v2: a 70-byte one-record example, decoding, encoding, round trips.

The header itself (parsing, validation, splitting, stamping) is tested in ``test_batch.py``.
"""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wire.errors import LocalProtocolError, RemoteProtocolError
from wire.kafka import compression
from wire.kafka.batch import (
    HEADER_SIZE,
    BatchHeader,
    CorruptBatch,
    UnsupportedBatchFormat,
    crc_matches,
    parse_header,
    patch_base_offset,
    split_batches,
    validate,
)
from wire.kafka.records import (
    Record,
    append_record,
    build_batch,
    decode_batch,
    decode_records,
    finish_batch,
)

# A whole batch written out field by field in Kafka's layout (not by ``build_batch``, which must
# reproduce it): one record, key null, value "hi", no headers, CreateTime 1700000000000, not idempotent.
ONE_RECORD_BATCH = bytes.fromhex(
    "0000000000000000"
    "0000003a"
    "00000000"
    "02"
    "bbcc4115"
    "0000"
    "00000000"
    "0000018bcfe56800"
    "0000018bcfe56800"
    "ffffffffffffffff"
    "ffff"
    "ffffffff"
    "00000001"
    "100000000104686900"
)
TS = 1_700_000_000_000


def test_one_record_batch_is_built_byte_for_byte():
    assert len(ONE_RECORD_BATCH) == 70
    assert build_batch([(None, b"hi", None)], base_timestamp=TS) == ONE_RECORD_BATCH


def test_one_record_batch_decodes():
    header = parse_header(ONE_RECORD_BATCH)
    assert header == BatchHeader(0, 58, 0, 2, 0xBBCC4115, 0, 0, TS, TS, -1, -1, -1, 1)
    assert header.size == 70 and header.next_offset == 1 and header.compression == 0
    assert crc_matches(ONE_RECORD_BATCH)
    assert validate(ONE_RECORD_BATCH) == header
    assert decode_batch(ONE_RECORD_BATCH) == [Record(0, TS, None, b"hi", ())]


def test_patching_offsets_and_epoch_keeps_the_crc_valid():
    buf = bytearray(b"junk" + ONE_RECORD_BATCH)
    patch_base_offset(buf, 1234, 7, position=4)
    batch = bytes(buf[4:])
    assert crc_matches(batch)
    header = parse_header(buf, 4)
    assert header.base_offset == 1234 and header.partition_leader_epoch == 7
    assert decode_batch(batch)[0].offset == 1234


def test_crc_covers_attributes_onwards():
    corrupted = bytearray(ONE_RECORD_BATCH)
    corrupted[-2] ^= 0x01  # flip a bit of the value
    assert not crc_matches(corrupted)
    with pytest.raises(CorruptBatch):
        validate(bytes(corrupted))
    with pytest.raises(CorruptBatch):
        decode_batch(bytes(corrupted))
    assert decode_batch(bytes(corrupted), check_crc=False)[0].value == b"hh"


def test_legacy_magic_is_invalid_record():
    legacy = bytearray(ONE_RECORD_BATCH)
    legacy[16] = 1
    with pytest.raises(UnsupportedBatchFormat) as info:
        parse_header(legacy)
    assert isinstance(info.value, RemoteProtocolError)
    with pytest.raises(UnsupportedBatchFormat):
        decode_batch(bytes(legacy))


def test_split_batches_tolerates_a_truncated_tail():
    second = build_batch([(b"k", b"v", [("h", b"x")])], base_offset=1, base_timestamp=TS)
    records = ONE_RECORD_BATCH + second + second[:30]
    batches = split_batches(records)
    assert [bytes(b) for b in batches] == [ONE_RECORD_BATCH, second]
    assert isinstance(batches[0], memoryview)
    assert split_batches(ONE_RECORD_BATCH[:11]) == []
    with pytest.raises(CorruptBatch):
        split_batches(records, strict=True)
    with pytest.raises(CorruptBatch):
        split_batches(b"\x00" * 8 + b"\x00\x00\x00\x05" + b"\x00" * 60)  # batch_length too small


def test_headers_timestamps_and_idempotence_fields():
    batch = build_batch(
        [(b"k1", b"v1", [("a", b"1"), ("b", None)]), (None, None, ()), (b"", b"", None)],
        base_offset=10,
        timestamps=[TS + 5, TS, TS + 9],
        producer_id=42,
        producer_epoch=3,
        base_sequence=100,
        partition_leader_epoch=-1,
        transactional=True,
    )
    header = validate(batch)
    assert (header.producer_id, header.producer_epoch, header.base_sequence) == (42, 3, 100)
    assert header.base_timestamp == TS + 5 and header.max_timestamp == TS + 9
    assert header.is_transactional and header.last_offset_delta == 2 and header.records_count == 3
    assert decode_batch(batch) == [
        Record(10, TS + 5, b"k1", b"v1", (("a", b"1"), ("b", None))),
        Record(11, TS, None, None, ()),
        Record(12, TS + 9, b"", b"", ()),
    ]


def test_log_append_time_gives_every_record_the_max_timestamp():
    batch = bytearray(build_batch([(None, b"a", None), (None, b"b", None)], timestamps=[TS, TS + 1]))
    attributes = struct.unpack_from(">h", batch, 21)[0] | 0x08
    struct.pack_into(">h", batch, 21, attributes)
    struct.pack_into(">q", batch, 35, TS + 1000)
    assert [r.timestamp for r in decode_batch(bytes(batch), check_crc=False)] == [TS + 1000, TS + 1000]
    # Also with the caller's record type and a start offset inside the batch (both at once).
    assert decode_records(bytes(batch), check_crc=False, min_offset=1, record_type=lambda *f: f,
                          topic="t", partition=2) == [("t", 2, 1, TS + 1000, None, b"b", ())]


@pytest.mark.parametrize("length", [-1, -40, 1000, 17])
def test_a_record_length_that_disagrees_with_its_fields_is_invalid(length):
    # The unrolled decoder checks lengths once per record (fields must end exactly where the
    # record does) and once per batch: negative, overrunning and short lengths all fail.
    batch = bytearray(build_batch([(None, b"a" * 30, None), (None, b"b" * 30, None)], base_timestamp=TS))
    first_length_at = HEADER_SIZE
    batch[first_length_at] = (length << 1) ^ (length >> 63) if -64 <= length < 64 else 0xFF
    if not -64 <= length < 64:
        batch[first_length_at:first_length_at + 1] = bytes([0xD0, 0x0F])  # 1000 as a two-byte varint
    with pytest.raises(CorruptBatch):
        decode_records(bytes(batch), check_crc=False)


def test_build_batch_rejects_our_mistakes():
    with pytest.raises(LocalProtocolError):
        build_batch([], base_timestamp=TS)
    with pytest.raises(LocalProtocolError):
        build_batch([(None, b"x", None)])  # no clock in wire/: a timestamp is required
    with pytest.raises(LocalProtocolError):
        build_batch([(None, b"x", None)], timestamps=[1, 2])
    with pytest.raises(LocalProtocolError):
        build_batch([(None, b"x", None)], base_timestamp=TS, compression=9)
    with pytest.raises(LocalProtocolError):
        build_batch([(None, "not bytes", None)], base_timestamp=TS)


def test_corrupt_compressed_payload_is_corrupt_message():
    batch = bytearray(build_batch([(None, b"x" * 100, None)], base_timestamp=TS, compression=compression.LZ4))
    batch[HEADER_SIZE + 10] ^= 0xFF
    with pytest.raises(CorruptBatch):
        decode_batch(bytes(batch), check_crc=False)


RECORD = st.tuples(
    st.one_of(st.none(), st.binary(max_size=30)),
    st.one_of(st.none(), st.binary(max_size=200)),
    st.lists(st.tuples(st.text(max_size=8), st.one_of(st.none(), st.binary(max_size=10))), max_size=3),
)


@settings(deadline=None, max_examples=150)
@given(
    st.lists(RECORD, min_size=1, max_size=20),
    st.sampled_from([0, 1, 2, 3, 4]),
    st.integers(0, 2**40),
    st.lists(st.integers(-1000, 1000), min_size=20, max_size=20),
)
def test_build_decode_round_trip(records, codec, base_offset, deltas):
    timestamps = [TS + d for d in deltas[: len(records)]]
    batch = build_batch(records, base_offset=base_offset, timestamps=timestamps, compression=codec)
    header = validate(batch)
    assert header.compression == codec
    decoded = decode_batch(batch)
    assert [r.offset for r in decoded] == list(range(base_offset, base_offset + len(records)))
    assert [r.timestamp for r in decoded] == timestamps
    assert [(r.key, r.value, list(r.headers)) for r in decoded] == [
        (k, v, [tuple(h) for h in hs]) for k, v, hs in records
    ]


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=150), st.integers(0, 69), st.binary(min_size=1, max_size=3))
def test_arbitrary_or_mutated_batches_decode_or_raise_remote_error(garbage, at, splice):
    for data in (garbage, ONE_RECORD_BATCH[:at] + splice + ONE_RECORD_BATCH[at + len(splice) :]):
        for check_crc in (True, False):
            try:
                decode_batch(data, check_crc=check_crc)
            except RemoteProtocolError:
                pass
        try:
            split_batches(data)
        except RemoteProtocolError:
            pass


@settings(max_examples=200, deadline=None)
@given(st.sampled_from([0, 1, 2, 3, 4]), st.data())
def test_mutated_compressed_batches_decode_or_raise_remote_error(codec, data):
    batch = bytearray(build_batch([(b"k%d" % i, b"v" * i, [("h", b"x")]) for i in range(20)],
                                  base_timestamp=TS, compression=codec))
    for _ in range(data.draw(st.integers(1, 3))):
        batch[data.draw(st.integers(HEADER_SIZE - 4, len(batch) - 1))] = data.draw(st.integers(0, 255))
    try:
        decode_batch(bytes(batch), check_crc=False)
    except RemoteProtocolError:
        pass


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.none() | st.binary(max_size=300), st.none() | st.binary(max_size=20_000),
                          st.none() | st.lists(st.tuples(st.text(max_size=5), st.none() | st.binary(max_size=5)),
                                               max_size=3)),
                min_size=1, max_size=20),
       st.integers(0, 25), st.sampled_from([0, 1]))
def test_decode_records_matches_decode_batch(records, min_offset, codec) -> None:
    # decode_records unrolls one- and two-byte varints by hand: every length (values up to
    # 20 KB need three-byte varints), null keys/values, headers, compression, a start offset.
    batch = build_batch(records, base_offset=3, base_timestamp=1000,
                        timestamps=[1000 + 70 * i for i in range(len(records))], compression=codec)
    expected = [(3 + i, 1000 + 70 * i, key, value, tuple(headers or ()))
                for i, (key, value, headers) in enumerate(records)]
    assert decode_records(batch) == expected
    assert [(r.offset, r.timestamp, r.key, r.value, r.headers) for r in decode_batch(batch)] == expected
    assert decode_records(batch, min_offset=min_offset) == [t for t in expected if t[0] >= min_offset]



def test_decode_records_long_batches_and_record_type() -> None:
    # 9000 records: offset deltas need one, two and three varint bytes, and so do the
    # timestamp deltas (negative ones too); every path the unrolled loop takes inline or not.
    count = 9000
    timestamps = [5000 + (i * 37 if i % 3 else -i) for i in range(count)]
    records = [(None if i % 2 else b"k", b"v" * (i % 70), None) for i in range(count)]
    batch = build_batch(records, base_offset=100, timestamps=timestamps)
    expected = [(100 + i, timestamps[i], key, value, ()) for i, (key, value, _) in enumerate(records)]
    assert decode_records(batch) == expected
    assert decode_records(batch, min_offset=8300) == expected[8200:]

    def as_tuple(*fields):
        return fields

    # record_type: the caller's record class built in the same pass, topic and partition first.
    assert decode_records(batch, min_offset=150, record_type=as_tuple, topic="orders", partition=4) == [
        ("orders", 4, *fields) for fields in expected[50:]]


# --- incremental building: append_record + finish_batch (the SDK producer's path) ----------------

def _reference_varint(value: int) -> bytes:
    value = (value << 1) ^ (value >> 63)
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _reference_record(offset_delta, timestamp_delta, key, value, headers) -> bytes:
    """Kafka's record layout written out plainly (length, attributes, timestamp and offset deltas,
    key, value, headers, all varints zigzag), to check append_record's table lookups."""
    def nullable(data):
        return b"\x01" if data is None else _reference_varint(len(data)) + data

    body = b"\x00" + _reference_varint(timestamp_delta) + _reference_varint(offset_delta)
    body += nullable(key) + nullable(value)
    body += _reference_varint(len(headers or ()))
    for name, header_value in headers or ():
        raw = name.encode()
        body += _reference_varint(len(raw)) + raw + nullable(header_value)
    return _reference_varint(len(body)) + body


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 70_000), st.integers(-(2**40), 2**40) | st.integers(-3, 2100),
       st.none() | st.binary(max_size=2100), st.none() | st.binary(max_size=3000),
       st.none() | st.lists(st.tuples(st.text(max_size=5), st.none() | st.binary(max_size=5)), max_size=2))
def test_append_record_matches_the_record_layout(offset_delta, timestamp_delta, key, value, headers) -> None:
    # Sizes straddle the 2048 table bound (and a record length just above it) on purpose.
    out = bytearray(b"prefix")
    append_record(out, offset_delta, timestamp_delta, key, value, headers)
    assert bytes(out) == b"prefix" + _reference_record(offset_delta, timestamp_delta, key, value, headers)


def test_append_record_leaves_the_body_unchanged_on_bad_input() -> None:
    out = bytearray(b"abc")
    for bad in ("text", 42):
        with pytest.raises(LocalProtocolError):
            append_record(out, 0, 0, None, bad)
        with pytest.raises(LocalProtocolError):
            append_record(out, 0, 0, bad, b"v")
    assert out == b"abc"


@settings(max_examples=100, deadline=None)
@given(st.lists(RECORD, min_size=1, max_size=20), st.sampled_from([0, 1, 2, 3, 4]),
       st.lists(st.integers(-1000, 1000), min_size=20, max_size=20))
def test_incremental_build_equals_build_batch(records, codec, deltas) -> None:
    timestamps = [TS + d for d in deltas[: len(records)]]
    body = bytearray()
    for index, (key, value, headers) in enumerate(records):
        append_record(body, index, timestamps[index] - timestamps[0], key, value, headers)
    built = finish_batch(body, len(records), base_timestamp=timestamps[0], max_timestamp=max(timestamps),
                         compression=codec, producer_id=7, producer_epoch=1, base_sequence=40,
                         partition_leader_epoch=-1)
    assert built == build_batch(records, timestamps=timestamps, compression=codec, producer_id=7,
                                producer_epoch=1, base_sequence=40, partition_leader_epoch=-1)


def test_finish_batch_rejects_our_mistakes() -> None:
    with pytest.raises(LocalProtocolError):
        finish_batch(b"", 0, base_timestamp=TS, max_timestamp=TS)
    with pytest.raises(LocalProtocolError):
        finish_batch(b"\x00", 1, base_timestamp=TS, max_timestamp=TS, compression=9)
