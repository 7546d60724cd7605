"""Kafka's primitive wire encodings: fixed-width integers, varints, strings, bytes, arrays, tags.

This is the bottom layer of the Kafka codec (docs/kafka.md#flexible-versions-and-encodings). It knows how
one value of one primitive type looks on the wire and nothing about messages or versions; the
generic codec in ``wire.kafka.codec`` strings these together according to a descriptor.

Reading goes through ``Reader``: a cursor over ``bytes`` or a ``memoryview``. Every read
either returns a value and advances, or raises ``RemoteProtocolError`` (truncated input, a
varint longer than its type allows, a negative length other than the -1 "null", bytes that are
not UTF-8). The peer wrote those bytes, so it is the peer's fault.

Writing appends to a ``bytearray`` (``Writer`` wraps one; the ``write_*`` functions take one)
because appending to a bytearray is amortised O(1) and one final ``bytes(...)`` copy is cheap.

Two families of lengths exist side by side:

* classic (non-flexible versions): int16 length for strings, int32 for bytes and arrays,
  -1 for null;
* compact (flexible versions): an unsigned varint holding ``length + 1``, 0 for null.

Varints:

* unsigned varint: 7 bits per byte, least significant group first, high bit = "more follows".
  At most 5 bytes for a 32-bit value, 10 for a 64-bit one;
* zigzag varint/varlong (used inside records): ``n -> (n << 1) ^ (n >> 63)`` so small negative
  numbers stay short (-1 -> 01, 1 -> 02).

These functions run for every field of every request, so they avoid per-call allocation where
Python allows: precompiled ``struct.Struct`` objects, a one-byte fast path for varints, and
``try/except`` around ``unpack_from`` instead of an explicit bounds check (free when nothing
goes wrong, which is the common case).
"""

from __future__ import annotations

import struct
import uuid as _uuid

from wire.errors import LocalProtocolError, RemoteProtocolError

__all__ = [
    "Reader",
    "Writer",
    "ZERO_UUID",
    "encode_uvarint",
    "encode_varint",
    "write_array_length",
    "write_bool",
    "write_bytes",
    "write_compact_array_length",
    "write_compact_bytes",
    "write_compact_string",
    "write_float64",
    "write_int8",
    "write_int16",
    "write_int32",
    "write_int64",
    "write_tagged_fields",
    "write_string",
    "write_uint16",
    "write_uuid",
    "write_uvarint",
    "write_varint",
    "write_varlong",
    "zigzag_decode",
    "zigzag_encode",
]

INT8 = struct.Struct(">b")
INT16 = struct.Struct(">h")
INT32 = struct.Struct(">i")
INT64 = struct.Struct(">q")
UINT16 = struct.Struct(">H")
UINT32 = struct.Struct(">I")
FLOAT64 = struct.Struct(">d")

ZERO_UUID = _uuid.UUID(int=0)

_UINT32_MAX = 0xFFFFFFFF
_UINT64_MAX = 0xFFFFFFFFFFFFFFFF


def _truncated(what: str) -> RemoteProtocolError:
    return RemoteProtocolError(f"truncated input while reading {what}")


def zigzag_encode(n: int) -> int:
    """Map a signed integer to an unsigned one so that small magnitudes stay small."""
    return (n << 1) ^ (n >> 63)


def zigzag_decode(z: int) -> int:
    """Inverse of ``zigzag_encode``."""
    return (z >> 1) ^ -(z & 1)


class Reader:
    """A cursor over received bytes.

    Args:
        data: the bytes to read. A ``memoryview`` (or ``bytes``) is not copied: raw slices
            such as record sets are returned as views into it.
        pos: where to start.
        end: where to stop (default: the end of ``data``); reads past it are truncation.

    Attributes:
        pos: the offset of the next unread byte in ``data``.
    """

    __slots__ = ("_view", "end", "pos")

    def __init__(self, data: bytes | bytearray | memoryview, pos: int = 0, end: int | None = None) -> None:
        view = data if isinstance(data, memoryview) else memoryview(data)
        if view.ndim != 1 or view.itemsize != 1:
            view = view.cast("B")
        self._view = view
        self.end = len(view) if end is None else end
        if not 0 <= pos <= self.end <= len(view):
            raise LocalProtocolError(f"bad reader window [{pos}, {end}) over {len(view)} bytes")
        self.pos = pos

    # -- position ---------------------------------------------------------------------------

    @property
    def remaining(self) -> int:
        """Bytes left before ``end``."""
        return self.end - self.pos

    def at_end(self) -> bool:
        return self.pos >= self.end

    def _advance(self, count: int, what: str) -> int:
        """Reserve ``count`` bytes, returning where they start."""
        pos = self.pos
        new = pos + count
        if count < 0 or new > self.end:
            raise _truncated(what)
        self.pos = new
        return pos

    def read_raw(self, count: int) -> memoryview:
        """The next ``count`` bytes as a view (no copy)."""
        pos = self._advance(count, "raw bytes")
        return self._view[pos : pos + count]

    def sub_reader(self, count: int) -> Reader:
        """A reader over the next ``count`` bytes; this reader skips past them."""
        pos = self._advance(count, "a nested section")
        return Reader(self._view, pos, pos + count)

    # -- fixed width ------------------------------------------------------------------------
    # ``unpack_from`` checks the underlying buffer length, not ``end``: the explicit check
    # below is what honours a window narrower than the buffer (a tagged field's payload).

    def _fixed(self, codec: struct.Struct, what: str):
        pos = self.pos
        new = pos + codec.size
        if new > self.end:
            raise _truncated(what)
        self.pos = new
        return codec.unpack_from(self._view, pos)[0]

    def read_fixed(self, codec: struct.Struct) -> tuple:
        """Several fixed-width values at once, laid out as ``codec`` describes."""
        pos = self.pos
        new = pos + codec.size
        if new > self.end:
            raise _truncated("fixed-width fields")
        self.pos = new
        return codec.unpack_from(self._view, pos)

    def read_int8(self) -> int:
        return self._fixed(INT8, "int8")

    def read_int16(self) -> int:
        return self._fixed(INT16, "int16")

    def read_int32(self) -> int:
        return self._fixed(INT32, "int32")

    def read_int64(self) -> int:
        return self._fixed(INT64, "int64")

    def read_uint16(self) -> int:
        return self._fixed(UINT16, "uint16")

    def read_uint32(self) -> int:
        return self._fixed(UINT32, "uint32")

    def read_float64(self) -> float:
        return self._fixed(FLOAT64, "float64")

    def read_bool(self) -> bool:
        # Kafka's reader treats any non-zero byte as true; so do we.
        return self._fixed(INT8, "bool") != 0

    def read_uuid(self) -> _uuid.UUID:
        return _uuid.UUID(bytes=bytes(self.read_raw(16)))

    # -- varints ----------------------------------------------------------------------------

    def _read_varint_bits(self, max_bytes: int, what: str) -> int:
        view = self._view
        pos = self.pos
        end = self.end
        if pos >= end:
            raise _truncated(what)
        byte = view[pos]
        if byte < 0x80:  # one-byte fast path: nearly every length and count
            self.pos = pos + 1
            return byte
        result = byte & 0x7F
        shift = 7
        for _ in range(max_bytes - 1):
            pos += 1
            if pos >= end:
                raise _truncated(what)
            byte = view[pos]
            result |= (byte & 0x7F) << shift
            if byte < 0x80:
                self.pos = pos + 1
                return result
            shift += 7
        raise RemoteProtocolError(f"{what} longer than {max_bytes} bytes")

    def read_uvarint(self) -> int:
        """An unsigned varint of at most 32 bits (lengths, counts, tags)."""
        value = self._read_varint_bits(5, "unsigned varint")
        if value > _UINT32_MAX:
            raise RemoteProtocolError("unsigned varint does not fit in 32 bits")
        return value

    def read_uvarlong(self) -> int:
        value = self._read_varint_bits(10, "unsigned varlong")
        if value > _UINT64_MAX:
            raise RemoteProtocolError("unsigned varlong does not fit in 64 bits")
        return value

    def read_varint(self) -> int:
        """A zigzag-encoded signed 32-bit varint."""
        value = self._read_varint_bits(5, "varint")
        if value > _UINT32_MAX:
            raise RemoteProtocolError("varint does not fit in 32 bits")
        return (value >> 1) ^ -(value & 1)

    def read_varlong(self) -> int:
        """A zigzag-encoded signed 64-bit varlong."""
        value = self._read_varint_bits(10, "varlong")
        if value > _UINT64_MAX:
            raise RemoteProtocolError("varlong does not fit in 64 bits")
        return (value >> 1) ^ -(value & 1)

    # -- lengths ----------------------------------------------------------------------------

    def _checked_length(self, length: int, nullable: bool, what: str) -> int | None:
        if length < 0:
            if length == -1 and nullable:
                return None
            if length == -1:
                raise RemoteProtocolError(f"null {what} where the schema forbids null")
            raise RemoteProtocolError(f"negative {what} length {length}")
        return length

    def read_array_length(self, nullable: bool = True) -> int | None:
        """Classic int32 element count; None for null (-1)."""
        count = self._checked_length(self.read_int32(), nullable, "array")
        # Every element takes at least one byte, except structs without fields: Kafka
        # rejects counts above the remaining bytes too, and it stops a 4-byte lie from
        # making us loop two billion times.
        if count is not None and count > self.end - self.pos:
            raise _truncated("array")
        return count

    def read_compact_array_length(self, nullable: bool = True) -> int | None:
        """Compact (uvarint count+1) element count; None for null (0)."""
        count = self._checked_length(self.read_uvarint() - 1, nullable, "array")
        if count is not None and count > self.end - self.pos:
            raise _truncated("array")
        return count

    # -- strings ----------------------------------------------------------------------------

    def _text(self, length: int) -> str:
        pos = self._advance(length, "string")
        try:
            return str(self._view[pos : pos + length], "utf-8")
        except UnicodeDecodeError as exc:
            raise RemoteProtocolError(f"string is not valid UTF-8: {exc}") from None

    def read_string(self) -> str:
        length = self._checked_length(self.read_int16(), False, "string")
        return self._text(length)

    def read_nullable_string(self) -> str | None:
        length = self._checked_length(self.read_int16(), True, "string")
        return None if length is None else self._text(length)

    def read_compact_string(self) -> str:
        length = self._checked_length(self.read_uvarint() - 1, False, "string")
        return self._text(length)

    def read_compact_nullable_string(self) -> str | None:
        length = self._checked_length(self.read_uvarint() - 1, True, "string")
        return None if length is None else self._text(length)

    # -- bytes ------------------------------------------------------------------------------

    def read_bytes(self) -> bytes:
        length = self._checked_length(self.read_int32(), False, "bytes")
        return bytes(self.read_raw(length))

    def read_nullable_bytes(self) -> bytes | None:
        length = self._checked_length(self.read_int32(), True, "bytes")
        return None if length is None else bytes(self.read_raw(length))

    def read_compact_bytes(self) -> bytes:
        length = self._checked_length(self.read_uvarint() - 1, False, "bytes")
        return bytes(self.read_raw(length))

    def read_compact_nullable_bytes(self) -> bytes | None:
        length = self._checked_length(self.read_uvarint() - 1, True, "bytes")
        return None if length is None else bytes(self.read_raw(length))

    def read_records(self) -> memoryview | None:
        """A classic record set: int32 length + batches, as a view (they can be megabytes)."""
        length = self._checked_length(self.read_int32(), True, "records")
        return None if length is None else self.read_raw(length)

    def read_compact_records(self) -> memoryview | None:
        length = self._checked_length(self.read_uvarint() - 1, True, "records")
        return None if length is None else self.read_raw(length)

    # -- tagged fields ----------------------------------------------------------------------

    def read_tagged_fields(self) -> dict[int, memoryview]:
        """A whole tagged-field section as ``{tag: payload view}``."""
        fields: dict[int, memoryview] = {}
        count = self.read_uvarint()
        if count > self.end - self.pos:
            raise _truncated("tagged fields")
        for _ in range(count):
            tag = self.read_uvarint()
            size = self.read_uvarint()
            fields[tag] = self.read_raw(size)
        return fields

    def skip_tagged_fields(self) -> None:
        """Skip a tagged-field section (headers, or a struct whose tags we do not know)."""
        view = self._view
        pos = self.pos
        if pos < self.end and view[pos] == 0:  # the usual case: an empty section
            self.pos = pos + 1
            return
        count = self.read_uvarint()
        if count > self.end - self.pos:
            raise _truncated("tagged fields")
        for _ in range(count):
            self.read_uvarint()
            self._advance(self.read_uvarint(), "tagged field")


# --- writing -------------------------------------------------------------------------------
# Writers append to a bytearray. ``struct.error`` (out of range) becomes LocalProtocolError:
# we tried to put a value on the wire that its type cannot hold, a bug on our side.

def _pack(out: bytearray, codec: struct.Struct, value, what: str) -> None:
    try:
        out += codec.pack(value)
    except struct.error as exc:
        raise LocalProtocolError(f"cannot encode {value!r} as {what}: {exc}") from None


def write_int8(out: bytearray, value: int) -> None:
    _pack(out, INT8, value, "int8")


def write_int16(out: bytearray, value: int) -> None:
    _pack(out, INT16, value, "int16")


def write_int32(out: bytearray, value: int) -> None:
    _pack(out, INT32, value, "int32")


def write_int64(out: bytearray, value: int) -> None:
    _pack(out, INT64, value, "int64")


def write_uint16(out: bytearray, value: int) -> None:
    _pack(out, UINT16, value, "uint16")


def write_float64(out: bytearray, value: float) -> None:
    _pack(out, FLOAT64, value, "float64")


def write_bool(out: bytearray, value: bool) -> None:
    out.append(1 if value else 0)


def write_uuid(out: bytearray, value: _uuid.UUID | bytes) -> None:
    raw = value.bytes if isinstance(value, _uuid.UUID) else bytes(value)
    if len(raw) != 16:
        raise LocalProtocolError(f"a uuid is 16 bytes, got {len(raw)}")
    out += raw


def write_uvarint(out: bytearray, value: int) -> None:
    """Append an unsigned varint (any non-negative value up to 64 bits)."""
    if 0 <= value < 0x80:
        out.append(value)
        return
    if value < 0 or value > _UINT64_MAX:
        raise LocalProtocolError(f"unsigned varint out of range: {value}")
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)


def encode_uvarint(value: int) -> bytes:
    out = bytearray()
    write_uvarint(out, value)
    return bytes(out)


def write_varint(out: bytearray, value: int) -> None:
    """Append a zigzag varint (signed 32-bit)."""
    if not -0x80000000 <= value <= 0x7FFFFFFF:
        raise LocalProtocolError(f"varint out of int32 range: {value}")
    write_uvarint(out, (value << 1) ^ (value >> 63))


def write_varlong(out: bytearray, value: int) -> None:
    """Append a zigzag varlong (signed 64-bit)."""
    if not -0x8000000000000000 <= value <= 0x7FFFFFFFFFFFFFFF:
        raise LocalProtocolError(f"varlong out of int64 range: {value}")
    write_uvarint(out, (value << 1) ^ (value >> 63))


def encode_varint(value: int) -> bytes:
    out = bytearray()
    write_varlong(out, value)
    return bytes(out)


def write_array_length(out: bytearray, count: int | None) -> None:
    _pack(out, INT32, -1 if count is None else count, "array length")


def write_compact_array_length(out: bytearray, count: int | None) -> None:
    write_uvarint(out, 0 if count is None else count + 1)


def _utf8(value: str) -> bytes:
    try:
        return value.encode("utf-8")
    except AttributeError:
        raise LocalProtocolError(f"expected a str, got {type(value).__name__}") from None


def write_string(out: bytearray, value: str | None) -> None:
    """Classic string: int16 length (-1 = null) + UTF-8."""
    if value is None:
        out += b"\xff\xff"
        return
    raw = _utf8(value)
    if len(raw) > 0x7FFF:
        raise LocalProtocolError(f"string of {len(raw)} bytes does not fit an int16 length")
    out += INT16.pack(len(raw))
    out += raw


def write_compact_string(out: bytearray, value: str | None) -> None:
    """Compact string: uvarint (length + 1), 0 = null, + UTF-8."""
    if value is None:
        out.append(0)
        return
    raw = _utf8(value)
    write_uvarint(out, len(raw) + 1)
    out += raw


def write_bytes(out: bytearray, value: bytes | bytearray | memoryview | None) -> None:
    """Classic bytes (and records): int32 length (-1 = null) + data."""
    if value is None:
        out += b"\xff\xff\xff\xff"
        return
    out += INT32.pack(len(value))
    out += value


def write_compact_bytes(out: bytearray, value: bytes | bytearray | memoryview | None) -> None:
    if value is None:
        out.append(0)
        return
    write_uvarint(out, len(value) + 1)
    out += value


def write_tagged_fields(out: bytearray, fields: dict[int, bytes] | None = None) -> None:
    """A tagged-field section from ``{tag: already encoded payload}``; tags go out sorted."""
    if not fields:
        out.append(0)
        return
    write_uvarint(out, len(fields))
    for tag in sorted(fields):
        payload = fields[tag]
        write_uvarint(out, tag)
        write_uvarint(out, len(payload))
        out += payload


class Writer:
    """A growing output buffer with one method per primitive (a convenience over ``write_*``).

    ``getvalue()`` returns the bytes written so far.
    """

    __slots__ = ("buffer",)

    def __init__(self) -> None:
        self.buffer = bytearray()

    def __len__(self) -> int:
        return len(self.buffer)

    def getvalue(self) -> bytes:
        return bytes(self.buffer)

    def write_raw(self, data: bytes | bytearray | memoryview) -> None:
        self.buffer += data

    def write_int8(self, value: int) -> None:
        write_int8(self.buffer, value)

    def write_int16(self, value: int) -> None:
        write_int16(self.buffer, value)

    def write_int32(self, value: int) -> None:
        write_int32(self.buffer, value)

    def write_int64(self, value: int) -> None:
        write_int64(self.buffer, value)

    def write_uint16(self, value: int) -> None:
        write_uint16(self.buffer, value)

    def write_float64(self, value: float) -> None:
        write_float64(self.buffer, value)

    def write_bool(self, value: bool) -> None:
        write_bool(self.buffer, value)

    def write_uuid(self, value: _uuid.UUID | bytes) -> None:
        write_uuid(self.buffer, value)

    def write_uvarint(self, value: int) -> None:
        write_uvarint(self.buffer, value)

    def write_varint(self, value: int) -> None:
        write_varint(self.buffer, value)

    def write_varlong(self, value: int) -> None:
        write_varlong(self.buffer, value)

    def write_string(self, value: str | None) -> None:
        write_string(self.buffer, value)

    def write_compact_string(self, value: str | None) -> None:
        write_compact_string(self.buffer, value)

    def write_bytes(self, value: bytes | None) -> None:
        write_bytes(self.buffer, value)

    def write_compact_bytes(self, value: bytes | None) -> None:
        write_compact_bytes(self.buffer, value)

    def write_array_length(self, count: int | None) -> None:
        write_array_length(self.buffer, count)

    def write_compact_array_length(self, count: int | None) -> None:
        write_compact_array_length(self.buffer, count)

    def write_tagged_fields(self, fields: dict[int, bytes] | None = None) -> None:
        write_tagged_fields(self.buffer, fields)
