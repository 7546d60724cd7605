"""Primitive encodings: golden bytes worked out from Kafka's rules (big-endian fixed widths,
unsigned and zigzag varints, classic and compact strings, tagged fields) and round trips."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wire.errors import LocalProtocolError, RemoteProtocolError
from wire.kafka import primitives as p
from wire.kafka.primitives import Reader, Writer

INT32 = st.integers(-(2**31), 2**31 - 1)
INT64 = st.integers(-(2**63), 2**63 - 1)


def written(fn, value) -> bytes:
    out = bytearray()
    fn(out, value)
    return bytes(out)


# --- golden bytes ----------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("value", "encoded"),
    [(0, "00"), (1, "01"), (127, "7f"), (128, "8001"), (300, "ac02"), (2**32 - 1, "ffffffff0f")],
)
def test_uvarint_golden(value, encoded):
    assert written(p.write_uvarint, value).hex() == encoded
    assert Reader(bytes.fromhex(encoded)).read_uvarint() == value


@pytest.mark.parametrize(
    ("value", "encoded"), [(0, "00"), (-1, "01"), (1, "02"), (-2, "03"), (64, "8001"), (-65, "8101")]
)
def test_zigzag_golden(value, encoded):
    assert written(p.write_varint, value).hex() == encoded
    assert written(p.write_varlong, value).hex() == encoded
    assert Reader(bytes.fromhex(encoded)).read_varint() == value
    assert Reader(bytes.fromhex(encoded)).read_varlong() == value


def test_strings_golden():
    assert written(p.write_string, "rdkafka").hex() == "0007" + b"rdkafka".hex()
    assert written(p.write_string, None).hex() == "ffff"
    assert written(p.write_compact_string, "librdkafka").hex() == "0b" + b"librdkafka".hex()
    assert written(p.write_compact_string, None).hex() == "00"
    assert written(p.write_compact_string, "").hex() == "01"
    assert written(p.write_bytes, None).hex() == "ffffffff"
    assert written(p.write_compact_bytes, b"\x01").hex() == "0201"


def test_tagged_fields_golden():
    assert written(p.write_tagged_fields, {}).hex() == "00"
    assert written(p.write_tagged_fields, {3: b"\xaa", 1: b""}).hex() == "02" + "0100" + "0301aa"
    reader = Reader(bytes.fromhex("02" "0100" "0301aa" "ff"))
    fields = reader.read_tagged_fields()
    assert {tag: bytes(v) for tag, v in fields.items()} == {1: b"", 3: b"\xaa"}
    assert reader.read_raw(1) == b"\xff"


def test_writer_collects_everything():
    w = Writer()
    w.write_int8(-1)
    w.write_int16(2)
    w.write_int32(3)
    w.write_int64(4)
    w.write_uint16(65535)
    w.write_bool(True)
    w.write_float64(1.5)
    w.write_uuid(uuid.UUID(int=1))
    w.write_string("a")
    w.write_compact_string(None)
    w.write_array_length(None)
    w.write_compact_array_length(2)
    w.write_tagged_fields()
    r = Reader(w.getvalue())
    assert r.read_int8() == -1
    assert r.read_int16() == 2
    assert r.read_int32() == 3
    assert r.read_int64() == 4
    assert r.read_uint16() == 65535
    assert r.read_bool() is True
    assert r.read_float64() == 1.5
    assert r.read_uuid() == uuid.UUID(int=1)
    assert r.read_string() == "a"
    assert r.read_compact_nullable_string() is None
    assert r.read_array_length() is None
    # A count of 2 with nothing after it is a lie about the remaining bytes.
    with pytest.raises(RemoteProtocolError):
        r.read_compact_array_length()


# --- errors ---------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("method", "data"),
    [
        ("read_int32", "000000"),
        ("read_int64", ""),
        ("read_uvarint", "80"),
        ("read_uvarint", "ffffffffff01"),  # six bytes: too long for 32 bits
        ("read_uvarint", "ffffffff7f"),  # five bytes, but more than 32 bits of value
        ("read_varlong", "ffffffffffffffffffff01"),
        ("read_string", "ffff"),  # null where not nullable
        ("read_nullable_string", "fffe"),  # -2 is never valid
        ("read_string", "0005616263"),  # truncated
        ("read_string", "0002c328"),  # invalid UTF-8
        ("read_compact_string", "00"),
        ("read_bytes", "ffffffff"),
        ("read_nullable_bytes", "80000000"),
        ("read_array_length", "7fffffff"),  # more elements than bytes left
        ("read_tagged_fields", "010105"),
    ],
)
def test_malformed_input_is_remote_error(method, data):
    with pytest.raises(RemoteProtocolError):
        getattr(Reader(bytes.fromhex(data)), method)()


def test_reader_window_is_respected():
    data = bytes.fromhex("00000001" "00000002")
    sub = Reader(data, 0, 4)
    assert sub.read_int32() == 1
    with pytest.raises(RemoteProtocolError):
        sub.read_int32()


def test_out_of_range_writes_are_local_errors():
    with pytest.raises(LocalProtocolError):
        written(p.write_int16, 1 << 15)
    with pytest.raises(LocalProtocolError):
        written(p.write_varint, 1 << 31)
    with pytest.raises(LocalProtocolError):
        written(p.write_uvarint, -1)
    with pytest.raises(LocalProtocolError):
        written(p.write_string, "x" * 40000)
    with pytest.raises(LocalProtocolError):
        written(p.write_uuid, b"short")


# --- round trips ----------------------------------------------------------------------------

@given(st.integers(0, 2**32 - 1))
def test_uvarint_round_trip(value):
    data = written(p.write_uvarint, value)
    reader = Reader(data)
    assert reader.read_uvarint() == value
    assert reader.at_end()
    assert len(data) <= 5


@given(INT32)
def test_varint_round_trip(value):
    data = written(p.write_varint, value)
    assert Reader(data).read_varint() == value
    assert p.zigzag_decode(p.zigzag_encode(value)) == value


@given(INT64)
def test_varlong_round_trip(value):
    data = written(p.write_varlong, value)
    assert Reader(data).read_varlong() == value
    assert len(data) <= 10


@given(st.one_of(st.none(), st.text()))
def test_string_round_trips(value):
    if value is None or len(value.encode()) <= 0x7FFF:
        assert Reader(written(p.write_string, value)).read_nullable_string() == value
    assert Reader(written(p.write_compact_string, value)).read_compact_nullable_string() == value


@given(st.one_of(st.none(), st.binary()))
def test_bytes_round_trips(value):
    assert Reader(written(p.write_bytes, value)).read_nullable_bytes() == value
    assert Reader(written(p.write_compact_bytes, value)).read_compact_nullable_bytes() == value


@given(st.dictionaries(st.integers(0, 2**31), st.binary(max_size=20), max_size=5))
def test_tagged_section_round_trip(fields):
    reader = Reader(written(p.write_tagged_fields, fields))
    assert {tag: bytes(v) for tag, v in reader.read_tagged_fields().items()} == fields
    reader = Reader(written(p.write_tagged_fields, fields))
    reader.skip_tagged_fields()
    assert reader.at_end()


READ_METHODS = [
    name
    for name in dir(Reader)
    if name.startswith("read_") and name not in ("read_raw", "read_fixed")
]


@given(st.sampled_from(READ_METHODS), st.binary(max_size=40))
def test_arbitrary_bytes_give_a_value_or_a_remote_error(method, data):
    try:
        getattr(Reader(data), method)()
    except RemoteProtocolError:
        pass
