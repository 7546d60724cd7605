"""Records inside a RecordBatch v2: decoding them for consumers, encoding them for producers.

The batch format itself — the 61-byte header, its checks, splitting a record set, stamping
offsets — is ``wire.kafka.batch``, shared with the broker's log. This module is what only
clients need: what lies after the header. Each record is ``length`` (zigzag varint),
``attributes`` int8, ``timestamp_delta`` (varlong), ``offset_delta`` (varint), key and value
(varint length, -1 = null), then headers (varint count; per header a string key and nullable
bytes value). A compressed batch holds all its records as one blob (``wire.kafka.compression``).

The broker never decodes records: it checks the header and CRC and stores the bytes as sent.
Decoding (``decode_batch``, ``decode_records``) serves the SDK's consumer, ListOffsets' search
by timestamp, and the tests; building (``append_record``, ``finish_batch``, ``build_batch``)
serves the SDK's producer and the tests.

A record that does not decode raises ``wire.kafka.batch.CorruptBatch`` (a
``RemoteProtocolError``), like any other damage to a batch. Varints are *encoded* with the one
codec in ``wire.kafka.primitives``; *decoding* them is inlined in ``decode_records``, the
consumer's hottest loop (see its docstring for why).
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from typing import Any

import attrs
import crc32c

from wire.errors import LocalProtocolError, RemoteProtocolError
from wire.kafka import compression
from wire.kafka.batch import (
    CRC,
    CRC_START,
    CURRENT_MAGIC,
    HEADER_SIZE,
    HEADER_STRUCT,
    MIN_BATCH_LENGTH,
    TRANSACTIONAL_BIT,
    CorruptBatch,
    crc_matches,
    parse_header,
)
from wire.kafka.primitives import encode_varint, write_varint, write_varlong

__all__ = [
    "Record",
    "append_record",
    "build_batch",
    "decode_batch",
    "decode_records",
    "finish_batch",
]

_UINT32 = struct.Struct(">I")


@attrs.frozen
class Record:
    """One decoded record (what a consumer sees)."""

    offset: int
    timestamp: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes | None], ...] = ()


# --- record decoding -----------------------------------------------------------------------
# The consumer's fast path, deliberately apart from ``primitives.Reader``: a Reader method call
# and its bounds checks per field cost more than decoding the field itself, and this loop runs
# once per record consumed (measured when ``decode_records`` was introduced, together with
# building plain tuples: bench/sdk_pull.py's consumer went from 201k to 364k records/s).
# Everything else decodes varints through ``Reader``; nothing here *encodes* one.

def _varint(data: bytes, pos: int) -> tuple[int, int]:
    """A zigzag varint/varlong from ``data`` at ``pos``: ``(value, new_pos)``.

    IndexError on truncation is turned into CorruptBatch by the caller.
    """
    byte = data[pos]
    if byte < 0x80:
        return (byte >> 1) ^ -(byte & 1), pos + 1
    result = byte & 0x7F
    shift = 7
    while True:
        pos += 1
        byte = data[pos]
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return (result >> 1) ^ -(result & 1), pos + 1
        shift += 7
        if shift > 63:
            raise CorruptBatch("varint too long in a record")


# Zigzag decoding of the varints of one and two bytes by table lookup, for the hottest lines of
# a consumer: ``_ZIGZAG[b]`` for a one-byte varint ``b`` (< 0x80), ``_ZIGZAG2[b0][b1]`` for a
# two-byte one (b0 >= 0x80 > b1; the rows below 0x80 are empty and never used). Two subscripts
# replace five arithmetic operations.
_ZIGZAG = tuple((n >> 1) ^ -(n & 1) for n in range(0x80))
_ZIGZAG2 = tuple(
    () if b0 < 0x80 else tuple(((n >> 1) ^ -(n & 1)) for n in ((b0 & 0x7F) | (b1 << 7) for b1 in range(0x80)))
    for b0 in range(0x100)
)


def _as_tuple(topic: str, partition: int, offset: int, timestamp: int, key: bytes | None, value: bytes | None,
              headers: tuple) -> tuple:
    return offset, timestamp, key, value, headers


def decode_batch(
    batch: bytes | bytearray | memoryview,
    *,
    check_crc: bool = True,
    max_output: int = compression.DEFAULT_MAX_OUTPUT,
) -> list[Record]:
    """Decode every record of one batch (decompressing if needed).

    Args:
        batch: exactly one batch (e.g. an element of ``split_batches``).
        check_crc: verify the CRC first (Java and kafka-python consumers do by default).
        max_output: cap on the decompressed size.

    Returns:
        The records with absolute offsets and timestamps (LogAppendTime batches give every
        record the batch's max_timestamp, as Kafka's consumers do).

    Raises:
        CorruptBatch: malformed batch or record, CRC mismatch, bad compressed data.
        UnsupportedBatchFormat: a legacy magic (0 or 1).
    """
    return [Record(*fields) for fields in decode_records(batch, check_crc=check_crc, max_output=max_output)]


def decode_records(
    batch: bytes | bytearray | memoryview,
    *,
    check_crc: bool = True,
    max_output: int = compression.DEFAULT_MAX_OUTPUT,
    min_offset: int = 0,
    record_type: Callable[..., Any] | None = None,
    topic: str = "",
    partition: int = -1,
) -> list:
    """``decode_batch`` for hot paths: plain tuples (or the caller's records) instead of ``Record``.

    Each record is ``(offset, timestamp, key, value, headers)``; records with an offset below
    ``min_offset`` are left out (a consumer that sought into the middle of a batch). Same
    arguments, checks and errors as ``decode_batch``, plus:

    Args:
        record_type, topic, partition: with a ``record_type``, each record is built as
            ``record_type(topic, partition, offset, timestamp, key, value, headers)`` instead
            of a tuple: a consumer gets its own record class in the same pass, one object
            per record and no intermediate tuple.

    Why it looks unrolled: this loop runs once per record a consumer reads, and in CPython a
    function call costs about as much as decoding a whole small field. Varints of one and two
    bytes (every length below 8 KiB, every offset delta below 8192) are decoded inline, their
    zigzag undone by table lookups (``_ZIGZAG``, ``_ZIGZAG2``); longer ones call ``_varint``.
    Nothing is tested per record that only a rare batch needs (LogAppendTime, a start offset
    inside the batch): those wrap the record constructor instead.
    """
    header = parse_header(batch)
    if len(batch) < header.size:
        raise CorruptBatch(f"batchLength says {header.size} bytes, got {len(batch)}")
    view = memoryview(batch)[: header.size]
    if check_crc and not crc_matches(view):
        raise CorruptBatch("record batch CRC mismatch")
    payload = view[HEADER_SIZE:]
    codec = header.compression
    if codec != compression.NONE:
        try:
            data = compression.decompress(codec, payload, max_output=max_output)
        except RemoteProtocolError as exc:
            raise CorruptBatch(f"cannot decompress batch: {exc.message}") from None
    else:
        data = bytes(payload)  # indexing bytes is much faster than indexing a memoryview

    count = header.records_count
    size = len(data)
    if count < 0 or count > size:  # a record takes at least 7 bytes
        raise CorruptBatch(f"implausible record count {count}")
    base_offset = header.base_offset
    base_timestamp = header.base_timestamp
    # The loop builds every record with ``make`` and tests nothing per record that a rare case
    # needs: those cases get a ``make`` that handles them instead.
    make = _as_tuple if record_type is None else record_type
    if header.is_log_append_time:  # every record takes the broker's time, as Kafka's consumers do
        append_time, stamped = header.max_timestamp, make

        def make(t, p, o, _ts, k, v, h):
            return stamped(t, p, o, append_time, k, v, h)
    skip = min_offset > base_offset  # the caller sought into the middle of this batch
    if skip:
        unfiltered = make

        def make(t, p, o, ts, k, v, h):
            return unfiltered(t, p, o, ts, k, v, h) if o >= min_offset else None
    varint = _varint
    zigzag = _ZIGZAG
    zigzag2 = _ZIGZAG2
    records = []
    append = records.append
    no_headers = ()
    pos = 0
    try:
        for _ in range(count):
            # Each varint: "b < 0x80" is one byte, "(c := the next byte) < 0x80" two.
            b = data[pos]
            if b < 0x80:
                length = zigzag[b]
                pos += 1
            elif (c := data[pos + 1]) < 0x80:
                length = zigzag2[b][c]
                pos += 2
            else:
                length, pos = varint(data, pos)
            # A wrong length (negative, past the batch) is caught by the "pos != end" test below,
            # by an IndexError, or by the check after the loop.
            end = pos + length
            # data[pos] is the record attributes byte: unused, always 0.
            b = data[pos + 1]
            if b < 0x80:
                timestamp_delta = zigzag[b]
                pos += 2
            elif (c := data[pos + 2]) < 0x80:
                timestamp_delta = zigzag2[b][c]
                pos += 3
            else:
                timestamp_delta, pos = varint(data, pos + 1)
            b = data[pos]
            if b < 0x80:
                offset_delta = zigzag[b]
                pos += 1
            elif (c := data[pos + 1]) < 0x80:
                offset_delta = zigzag2[b][c]
                pos += 2
            else:
                offset_delta, pos = varint(data, pos)
            b = data[pos]
            if b == 1:  # zigzag(-1): null key, the common case
                key = None
                pos += 1
            else:
                if b < 0x80:
                    key_length = zigzag[b]
                    pos += 1
                elif (c := data[pos + 1]) < 0x80:
                    key_length = zigzag2[b][c]
                    pos += 2
                else:
                    key_length, pos = varint(data, pos)
                if key_length < 0:
                    key = None
                else:
                    key = data[pos : pos + key_length]
                    pos += key_length
            b = data[pos]
            if b < 0x80:
                value_length = zigzag[b]
                pos += 1
            elif (c := data[pos + 1]) < 0x80:
                value_length = zigzag2[b][c]
                pos += 2
            else:
                value_length, pos = varint(data, pos)
            if value_length < 0:
                value = None
            else:
                value = data[pos : pos + value_length]
                pos += value_length
            if data[pos] == 0:
                headers = no_headers
                pos += 1
            else:
                header_count, pos = varint(data, pos)
                if header_count < 0 or header_count > end - pos:
                    raise CorruptBatch("bad record header count")
                header_list = []
                for _ in range(header_count):
                    name_length, pos = varint(data, pos)
                    if name_length < 0:
                        raise CorruptBatch("null record header key")
                    name = str(data[pos : pos + name_length], "utf-8")
                    pos += name_length
                    header_value_length, pos = varint(data, pos)
                    if header_value_length < 0:
                        header_value = None
                    else:
                        header_value = data[pos : pos + header_value_length]
                        pos += header_value_length
                    header_list.append((name, header_value))
                headers = tuple(header_list)
            # Slicing past the end silently shortens, so one check at the end catches every
            # length that overran the record.
            if pos != end:
                raise CorruptBatch("record fields do not add up to the record length")
            append(make(topic, partition, base_offset + offset_delta, base_timestamp + timestamp_delta,
                        key, value, headers))
    except IndexError:
        raise CorruptBatch("record truncated") from None
    except UnicodeDecodeError:
        raise CorruptBatch("record header key is not UTF-8") from None
    if pos > size:
        raise CorruptBatch("record length outside the batch")
    if pos != size:
        raise CorruptBatch(f"{size - pos} bytes after the last record")
    if skip:
        return [record for record in records if record is not None]
    return records


# --- record encoding -----------------------------------------------------------------------

# Zigzag varint bytes of the non-negative ints below this bound, precomputed: record lengths,
# key/value lengths and offset deltas of typical records are all small, and a table lookup
# costs a fraction of encoding the varint in Python. (Negative numbers must not index it:
# a negative tuple index silently wraps.)
_SMALL = 2048
_SMALL_VARINTS: tuple[bytes, ...] = tuple(encode_varint(n) for n in range(_SMALL))


RecordInput = tuple[
    bytes | None, bytes | None, Sequence[tuple[str, bytes | None]] | None
]


def append_record(
    out: bytearray,
    offset_delta: int,
    timestamp_delta: int,
    key: bytes | None,
    value: bytes | None,
    headers: Sequence[tuple[str, bytes | None]] | None = None,
) -> None:
    """Append one encoded record (length prefix included) to ``out``, a batch body under construction.

    This is how a producer builds a batch incrementally: each record is encoded as it arrives,
    and ``finish_batch`` adds the 61-byte header and CRC when the batch closes. ``out`` is
    left unchanged if the record cannot be encoded.

    Args:
        out: the records of the batch so far.
        offset_delta: the record's index in the batch.
        timestamp_delta: its timestamp minus the batch's base timestamp (may be negative).
        key, value: bytes or None (null).
        headers: ``(str key, bytes | None value)`` pairs, or None.

    Raises:
        LocalProtocolError: a key, value or header of the wrong type.

    Why it looks unrolled: this runs once per record produced. Every length and delta below
    ``_SMALL`` is a table lookup, and the record is joined in one call; anything else (headers,
    long keys or values, large or negative deltas) takes the general path.
    """
    small = _SMALL_VARINTS
    try:
        if not headers and 0 <= timestamp_delta < _SMALL and 0 <= offset_delta < _SMALL:
            if key is None:
                key = b""
                key_length = b"\x01"  # zigzag(-1): null
            elif len(key) < _SMALL:
                key_length = small[len(key)]
            else:
                key_length = encode_varint(len(key))
            if value is None:
                value = b""
                value_length = b"\x01"
            elif len(value) < _SMALL:
                value_length = small[len(value)]
            else:
                value_length = encode_varint(len(value))
            record = b"".join((b"\x00", small[timestamp_delta], small[offset_delta], key_length, key,
                               value_length, value, b"\x00"))
        else:
            record = _encode_record(offset_delta, timestamp_delta, key, value, headers)
        length = len(record)
        out += small[length] if length < _SMALL else encode_varint(length)
    except (TypeError, ValueError) as exc:
        raise LocalProtocolError(f"cannot encode record: {exc}") from None
    out += record


def _encode_record(offset_delta: int, timestamp_delta: int, key: bytes | None, value: bytes | None,
                   headers: Sequence[tuple[str, bytes | None]] | None) -> bytes:
    """One record without its length prefix: the general (any size, headers) path."""
    record = bytearray()
    record.append(0)  # attributes
    write_varlong(record, timestamp_delta)
    write_varint(record, offset_delta)
    if key is None:
        record.append(1)  # zigzag(-1)
    else:
        write_varint(record, len(key))
        record += key
    if value is None:
        record.append(1)
    else:
        write_varint(record, len(value))
        record += value
    if not headers:
        record.append(0)
    else:
        write_varint(record, len(headers))
        for name, header_value in headers:
            raw_name = name.encode("utf-8") if isinstance(name, str) else bytes(name)
            write_varint(record, len(raw_name))
            record += raw_name
            if header_value is None:
                record.append(1)
            else:
                write_varint(record, len(header_value))
                record += header_value
    return bytes(record)


def finish_batch(
    body: bytes | bytearray,
    count: int,
    *,
    base_timestamp: int,
    max_timestamp: int,
    base_offset: int = 0,
    compression: int = 0,
    producer_id: int = -1,
    producer_epoch: int = -1,
    base_sequence: int = -1,
    partition_leader_epoch: int = 0,
    transactional: bool = False,
) -> bytes:
    """Turn ``count`` records encoded by ``append_record`` into one RecordBatch v2.

    Compresses ``body`` if asked, then prepends the 61-byte header with a correct CRC-32C.
    Field meanings as in ``build_batch``; ``base_timestamp`` must be the one the records'
    timestamp deltas are relative to.

    Raises:
        LocalProtocolError: no records, unknown codec, a header field out of range.
    """
    if count <= 0:
        raise LocalProtocolError("a record batch needs at least one record")
    if compression not in _CODECS:
        raise LocalProtocolError(f"unknown compression codec {compression}")
    payload = body if compression == 0 else _compress(compression, body)
    attributes = compression | (TRANSACTIONAL_BIT if transactional else 0)
    out = bytearray(HEADER_SIZE)
    try:
        HEADER_STRUCT.pack_into(
            out,
            0,
            base_offset,
            MIN_BATCH_LENGTH + len(payload),
            partition_leader_epoch,
            CURRENT_MAGIC,
            0,  # crc, filled below once everything it covers is in place
            attributes,
            count - 1,
            base_timestamp,
            max_timestamp,
            producer_id,
            producer_epoch,
            base_sequence,
            count,
        )
    except struct.error as exc:
        raise LocalProtocolError(f"batch header field out of range: {exc}") from None
    out += payload
    with memoryview(out) as view:
        _UINT32.pack_into(out, CRC, crc32c.crc32c(view[CRC_START:]))
    return bytes(out)


def build_batch(
    records: Sequence[RecordInput],
    *,
    base_offset: int = 0,
    base_timestamp: int | None = None,
    timestamps: Sequence[int] | None = None,
    compression: int = 0,
    producer_id: int = -1,
    producer_epoch: int = -1,
    base_sequence: int = -1,
    partition_leader_epoch: int = 0,
    transactional: bool = False,
) -> bytes:
    """Build one RecordBatch v2 with a correct CRC-32C.

    Args:
        records: ``(key, value, headers)`` per record; key/value None for null, headers a
            sequence of ``(str key, bytes | None value)`` or None.
        base_offset: the producer writes 0; the broker overwrites it.
        base_timestamp: the batch's base timestamp in ms. ``wire/`` has no clock: pass it,
            or pass ``timestamps`` (then the first one is the base, as Kafka's producer does).
        timestamps: one absolute timestamp per record; default: all ``base_timestamp``.
        compression: codec number 0..4 (``wire.kafka.compression``).
        producer_id, producer_epoch, base_sequence: idempotence fields (-1 when unused).
        partition_leader_epoch: 0 by default (what the broker stamps anyway); Java producers write -1.
        transactional: sets the transactional attribute bit.

    Returns:
        The batch bytes.

    Raises:
        LocalProtocolError: no records, no timestamp, mismatched ``timestamps`` length,
            unknown codec, or values of the wrong type.
    """
    count = len(records)
    if count == 0:
        raise LocalProtocolError("a record batch needs at least one record")
    if timestamps is not None and len(timestamps) != count:
        raise LocalProtocolError("timestamps must have one entry per record")
    if base_timestamp is None:
        if timestamps is None:
            raise LocalProtocolError("pass base_timestamp or timestamps (wire/ reads no clock)")
        base_timestamp = timestamps[0]
    if compression not in _CODECS:
        raise LocalProtocolError(f"unknown compression codec {compression}")

    body = bytearray()
    for index, (key, value, headers) in enumerate(records):
        append_record(body, index, 0 if timestamps is None else timestamps[index] - base_timestamp,
                      key, value, headers)
    return finish_batch(body, count, base_timestamp=base_timestamp,
                        max_timestamp=base_timestamp if timestamps is None else max(timestamps),
                        base_offset=base_offset, compression=compression, producer_id=producer_id,
                        producer_epoch=producer_epoch, base_sequence=base_sequence,
                        partition_leader_epoch=partition_leader_epoch, transactional=transactional)


_CODECS = frozenset(compression.CODEC_NAMES)
_compress = compression.compress
