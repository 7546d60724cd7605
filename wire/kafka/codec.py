"""The generic versioned Kafka codec: any ``schema.Message`` at any version, to and from bytes.

Kafka describes every request and response once, with per-field version ranges, and derives
all versions from that description (docs/kafka.md#flexible-versions-and-encodings). We do the same: this module
knows the *rules* (which fields exist in a version, classic vs compact encodings, nullability,
tagged-field sections, defaults) and ``wire.kafka.messages`` supplies the *descriptors*.

Values are plain dicts keyed by the snake_case field names; arrays of structs are lists of
dicts. Decoding always yields every field the descriptor knows, filling those absent in the
version with their default, so handlers can read any key whatever version the client spoke.
Encoding accepts a partial dict (missing keys take their default) but rejects keys the
descriptor does not know: a typo in a handler should fail loudly, not vanish on the wire.

Interpreting version strings for every field of every request would dominate the cost of a
small request, so a descriptor is *compiled* once per version into a plan: a list of
(name, reader) and (name, writer, default) steps with everything version-dependent decided.
Plans are cached by descriptor identity (descriptors are module-level constants).

The ``records`` type (record sets in Produce and Fetch, possibly megabytes) decodes to a
``memoryview`` into the input without copying, and encodes from any bytes-like object.

Defaults (Kafka's rules): a field's ``default`` if the descriptor gives one, else the
type's zero: 0, 0.0, False, "" (b""), [] for arrays, the all-zero uuid, None for records, and
None for a string/bytes field that is nullable in some version (Kafka writes such defaults as
``"null"``). A default that is None is never written into a version where the field is not
nullable: the non-null zero is used there instead.
"""

from __future__ import annotations

import struct
import uuid as _uuid
from collections.abc import Callable
from typing import Any

from wire.errors import LocalProtocolError, RemoteProtocolError
from wire.kafka import primitives as p
from wire.kafka.primitives import Reader
from wire.kafka.schema import Array, Field, Message, Primitive, Struct, VersionRange

__all__ = ["decode", "encode", "encode_into", "compile_plan"]

Decoder = Callable[[Reader], Any]
Encoder = Callable[[bytearray, Any], None]

# Errors an encoder can raise when handed a value of the wrong type or range; converted to
# LocalProtocolError naming the field, because handing them to us is our own bug.
_ENCODE_ERRORS = (struct.error, TypeError, ValueError, AttributeError, OverflowError, KeyError)

_ZEROS: dict[str, Any] = {
    "int8": 0,
    "int16": 0,
    "int32": 0,
    "int64": 0,
    "uint16": 0,
    "float64": 0.0,
    "bool": False,
    "uuid": p.ZERO_UUID,
    "string": "",
    "bytes": b"",
    "records": None,
}


# --- public API ----------------------------------------------------------------------------

def decode(message: Message, version: int, data: bytes | bytearray | memoryview | Reader) -> dict:
    """Decode one message body.

    Args:
        message: the descriptor.
        version: the API version the peer used.
        data: the body bytes (must be consumed exactly: trailing bytes are an error, which
            also catches a descriptor missing a field), or a ``Reader`` positioned at the
            body (left positioned after it; the caller checks what follows).

    Returns:
        A dict with every field of the descriptor.

    Raises:
        RemoteProtocolError: the bytes do not form this message at this version.
        LocalProtocolError: ``version`` is not valid for ``message`` or the descriptor is
            inconsistent.
    """
    plan = compile_plan(message, version)
    reader = data if isinstance(data, Reader) else Reader(data)
    try:
        value = plan.decode(reader)
    except RemoteProtocolError as exc:
        raise RemoteProtocolError(f"{message.name} v{version}: {exc.message}", reply=exc.reply) from None
    if reader is not data and reader.pos != reader.end:
        raise RemoteProtocolError(
            f"{message.name} v{version}: {reader.end - reader.pos} unexpected trailing bytes"
        )
    return value


def encode(message: Message, version: int, values: dict) -> bytes:
    """Encode one message body.

    Args:
        message: the descriptor.
        version: the API version to encode.
        values: field values; missing keys take their default.

    Returns:
        The body bytes (no size prefix, no header: see ``wire.kafka.framing``).

    Raises:
        LocalProtocolError: unknown key, null in a non-nullable field, a value of the wrong
            type or out of range, or a version the descriptor does not have.
    """
    out = bytearray()
    encode_into(out, message, version, values)
    return bytes(out)


def encode_into(out: bytearray, message: Message, version: int, values: dict) -> None:
    """Like ``encode`` but appends to ``out`` (saves a copy when a header precedes the body)."""
    plan = compile_plan(message, version)
    try:
        plan.encode(out, values)
    except LocalProtocolError as exc:
        raise LocalProtocolError(f"{message.name} v{version}: {exc.message}") from None


_PLANS: dict[tuple[int, int], tuple[Message, _StructPlan]] = {}


def compile_plan(message: Message, version: int) -> _StructPlan:
    """The compiled plan for ``message`` at ``version`` (cached)."""
    key = (id(message), version)
    entry = _PLANS.get(key)
    # Keeping the descriptor in the entry keeps it alive, so its id cannot be reused by
    # another object; the identity check is belt and braces.
    if entry is not None and entry[0] is message:
        return entry[1]
    if not message.is_valid(version):
        raise LocalProtocolError(f"{message.name} has no version {version} (valid: {message.valid})")
    plan = _StructPlan(message.name, message.fields, version, message.is_flexible(version))
    _PLANS[key] = (message, plan)
    return plan


# --- plans ---------------------------------------------------------------------------------

def _coerce_default(field: Field, type_: Any) -> Any:
    """A descriptor default as a Python value (accepting the JSON schemas' string spelling)."""
    value = field.default
    if not isinstance(value, str) or not isinstance(type_, Primitive):
        return value
    if value == "null":
        return None
    name = type_.name
    if name in ("int8", "int16", "int32", "int64", "uint16"):
        return int(value, 0)
    if name == "float64":
        return float(value)
    if name == "bool":
        return value.strip().lower() == "true"
    if name == "bytes":
        return value.encode()
    return value


def _nullable_somewhere(field: Field) -> bool:
    return VersionRange.parse(field.nullable) is not None


class _StructPlan:
    """Everything needed to read or write one struct (or message body) at one version."""

    __slots__ = ("allowed", "flexible", "fresh", "name", "steps", "tagged_dec", "tagged_enc", "template")

    def __init__(self, name: str, fields: tuple[Field, ...], version: int, flexible: bool) -> None:
        self.name = name
        self.flexible = flexible
        self.allowed = frozenset(f.name for f in fields)
        if len(self.allowed) != len(fields):
            raise LocalProtocolError(f"{name}: duplicate field names")
        inline: list[tuple[str, Any, Decoder, Encoder, Any]] = []
        self.tagged_dec: dict[int, tuple[str, Decoder]] = {}
        self.tagged_enc: list[tuple[int, str, Encoder, Any]] = []
        # ``template`` holds the immutable defaults (copied per decode); ``fresh`` builds the
        # mutable ones ([] and nested dicts) anew, so two decoded values never share a list.
        self.template: dict[str, Any] = {}
        self.fresh: list[tuple[str, Callable[[], Any]]] = []

        for field in fields:
            exists = field.exists_in(version)
            nullable = exists and field.nullable_in(version)
            decode_default, encode_default, factory = _defaults(field, version, nullable, flexible)
            self.template[field.name] = decode_default
            if factory is not None:
                self.fresh.append((field.name, factory))
            if not exists:
                continue
            dec, enc = _codec_for(field.type, version, flexible, nullable, field.name)
            if field.tagged_in(version):
                if not flexible:
                    raise LocalProtocolError(f"{name}.{field.name}: tagged in a non-flexible version {version}")
                if field.tag is None:
                    raise LocalProtocolError(f"{name}.{field.name}: tagged field without a tag")
                if field.tag in self.tagged_dec:
                    raise LocalProtocolError(f"{name}: tag {field.tag} used twice")
                self.tagged_dec[field.tag] = (field.name, dec)
                self.tagged_enc.append((field.tag, field.name, enc, encode_default))
            else:
                inline.append((field.name, field.type, dec, enc, encode_default))
        self.tagged_enc.sort(key=lambda entry: entry[0])
        self.steps = _merge_fixed_runs(inline)

    def default_value(self) -> dict:
        """A fresh dict of this struct's defaults (the value of an absent struct field)."""
        value = self.template.copy()
        for name, factory in self.fresh:
            value[name] = factory()
        return value

    def decode(self, reader: Reader) -> dict:
        value = self.template.copy()
        for name, factory in self.fresh:
            value[name] = factory()
        for is_run, name, dec, _enc, _default in self.steps:
            if is_run:
                value.update(zip(name, reader.read_fixed(dec)))
            else:
                value[name] = dec(reader)
        if self.flexible:
            if self.tagged_dec:
                self._decode_tagged(reader, value)
            else:
                reader.skip_tagged_fields()
        return value

    def _decode_tagged(self, reader: Reader, value: dict) -> None:
        count = reader.read_uvarint()
        if count > reader.remaining:
            raise RemoteProtocolError("tagged field count exceeds the remaining bytes")
        known = self.tagged_dec
        for _ in range(count):
            tag = reader.read_uvarint()
            size = reader.read_uvarint()
            payload = reader.sub_reader(size)
            entry = known.get(tag)
            if entry is not None:  # unknown tags are skipped: that is what tags are for
                name, dec = entry
                value[name] = dec(payload)

    def encode(self, out: bytearray, values: Any) -> None:
        if not isinstance(values, dict):
            raise LocalProtocolError(f"{self.name}: expected a dict, got {type(values).__name__}")
        if not self.allowed.issuperset(values):
            unknown = sorted(set(values) - self.allowed)
            raise LocalProtocolError(f"{self.name}: unknown field(s) {unknown}")
        get = values.get
        for is_run, name, dec, enc, default in self.steps:
            if is_run:
                _encode_run(out, name, dec, enc, default, get)
                continue
            try:
                enc(out, get(name, default))
            except LocalProtocolError as exc:
                raise LocalProtocolError(f"{name}.{exc.message}") from None
            except _ENCODE_ERRORS as exc:
                raise LocalProtocolError(f"{name}: {exc}") from None
        if self.flexible:
            present = []
            for tag, name, enc, default in self.tagged_enc:
                item = get(name, default)
                if item == default:  # Kafka omits a tagged field equal to its default
                    continue
                payload = bytearray()
                try:
                    enc(payload, item)
                except LocalProtocolError as exc:
                    raise LocalProtocolError(f"{name}.{exc.message}") from None
                except _ENCODE_ERRORS as exc:
                    raise LocalProtocolError(f"{name}: {exc}") from None
                present.append((tag, payload))
            if not present:
                out.append(0)
                return
            p.write_uvarint(out, len(present))
            for tag, payload in present:
                p.write_uvarint(out, tag)
                p.write_uvarint(out, len(payload))
                out += payload


# Struct format characters of the fixed-width types. Consecutive fixed-width fields (very
# common: partition_index, error_code, high_watermark, ...) are read and written with one
# precompiled ``struct.Struct`` call instead of one call per field: the biggest single win
# for decode speed, since per-call overhead dominates for such small values.
_RUN_FORMATS = {"int8": "b", "int16": "h", "int32": "i", "int64": "q", "uint16": "H", "float64": "d", "bool": "?"}

# A step is ``(is_run, name, decoder, encoder, default)``; for a run the three last slots hold
# the field names, the combined Struct, the per-field Structs (to name the culprit of an
# encoding error) and the defaults, as tuples.
Step = tuple[bool, Any, Any, Any, Any]


def _merge_fixed_runs(inline: list[tuple[str, Any, Decoder, Encoder, Any]]) -> list[Step]:
    steps: list[Step] = []
    run: list[tuple[str, str, Any]] = []

    def flush() -> None:
        if len(run) == 1:
            name = run[0][0]
            entry = next(e for e in inline if e[0] == name)
            steps.append((False, name, entry[2], entry[3], entry[4]))
        elif run:
            names = tuple(name for name, _, _ in run)
            combined = struct.Struct(">" + "".join(fmt for _, fmt, _ in run))
            singles = tuple(struct.Struct(">" + fmt) for _, fmt, _ in run)
            steps.append((True, names, combined, singles, tuple(d for _, _, d in run)))
        run.clear()

    for name, type_, dec, enc, default in inline:
        fmt = _RUN_FORMATS.get(type_.name) if isinstance(type_, Primitive) else None
        if fmt is not None:
            run.append((name, fmt, default))
            continue
        flush()
        steps.append((False, name, dec, enc, default))
    flush()
    return steps


def _encode_run(out: bytearray, names, combined: struct.Struct, singles, defaults, get) -> None:
    values = [get(name, default) for name, default in zip(names, defaults)]
    try:
        out += combined.pack(*values)
    except _ENCODE_ERRORS:
        # Find which field was wrong, for a useful message.
        for name, single, value in zip(names, singles, values):
            try:
                single.pack(value)
            except _ENCODE_ERRORS as exc:
                raise LocalProtocolError(f"{name}: {exc}") from None
        raise


def _defaults(field: Field, version: int, nullable: bool, flexible: bool):
    """``(decode_default, encode_default, factory)`` for ``field`` at ``version``.

    ``factory`` is set when the default is mutable and must be built per decode.
    """
    type_ = field.type
    if isinstance(type_, Array):
        explicit = _coerce_default(field, type_)
        if explicit is None:
            # Kafka defaults arrays to empty, nullable or not.
            return None, [], list
        return None, explicit, lambda: list(explicit)
    if isinstance(type_, Struct):
        nested = _StructPlan(type_.name, type_.fields, version, flexible)
        return None, nested.default_value(), nested.default_value
    if not isinstance(type_, Primitive):
        raise LocalProtocolError(f"{field.name}: unsupported type {type_!r}")
    explicit = _coerce_default(field, type_)
    if explicit is None and field.default is None:
        if type_.name in ("string", "bytes") and _nullable_somewhere(field):
            decode_default = None
        else:
            decode_default = _ZEROS[type_.name]
    else:
        decode_default = explicit
    encode_default = decode_default
    if encode_default is None and not nullable and type_.name != "records":
        encode_default = _ZEROS[type_.name]
    return decode_default, encode_default, None


# --- per-type readers and writers ----------------------------------------------------------

def _write_with(codec: struct.Struct) -> Encoder:
    pack = codec.pack

    def enc(out: bytearray, value: Any) -> None:
        out += pack(value)

    return enc


def _write_bool(out: bytearray, value: Any) -> None:
    out.append(1 if value else 0)


def _write_uuid(out: bytearray, value: Any) -> None:
    if isinstance(value, _uuid.UUID):
        out += value.bytes
    else:
        p.write_uuid(out, value)


def _non_null(write: Encoder, what: str) -> Encoder:
    def enc(out: bytearray, value: Any) -> None:
        if value is None:
            raise LocalProtocolError(f"null {what} in a version where it is not nullable")
        write(out, value)

    return enc


_FIXED: dict[str, tuple[Decoder, Encoder]] = {
    "int8": (Reader.read_int8, _write_with(p.INT8)),
    "int16": (Reader.read_int16, _write_with(p.INT16)),
    "int32": (Reader.read_int32, _write_with(p.INT32)),
    "int64": (Reader.read_int64, _write_with(p.INT64)),
    "uint16": (Reader.read_uint16, _write_with(p.UINT16)),
    "float64": (Reader.read_float64, _write_with(p.FLOAT64)),
    "bool": (Reader.read_bool, _write_bool),
    "uuid": (Reader.read_uuid, _write_uuid),
}

# (flexible, nullable) -> reader / writer
_STRING_DEC = {
    (False, False): Reader.read_string,
    (False, True): Reader.read_nullable_string,
    (True, False): Reader.read_compact_string,
    (True, True): Reader.read_compact_nullable_string,
}
_BYTES_DEC = {
    (False, False): Reader.read_bytes,
    (False, True): Reader.read_nullable_bytes,
    (True, False): Reader.read_compact_bytes,
    (True, True): Reader.read_compact_nullable_bytes,
}


def _codec_for(type_: Any, version: int, flexible: bool, nullable: bool, name: str) -> tuple[Decoder, Encoder]:
    if isinstance(type_, Primitive):
        fixed = _FIXED.get(type_.name)
        if fixed is not None:
            return fixed
        if type_.name == "string":
            write = p.write_compact_string if flexible else p.write_string
            dec = _STRING_DEC[(flexible, nullable)]
            return dec, (write if nullable else _non_null(write, "string"))
        if type_.name == "bytes":
            write = p.write_compact_bytes if flexible else p.write_bytes
            dec = _BYTES_DEC[(flexible, nullable)]
            return dec, (write if nullable else _non_null(write, "bytes"))
        if type_.name == "records":
            # Record sets are nullable on the wire in every API that carries them.
            if flexible:
                return Reader.read_compact_records, p.write_compact_bytes
            return Reader.read_records, p.write_bytes
        raise LocalProtocolError(f"{name}: unknown primitive {type_.name!r}")
    if isinstance(type_, Array):
        return _array_codec(type_, version, flexible, nullable, name)
    if isinstance(type_, Struct):
        return _struct_codec(type_, version, flexible, nullable)
    raise LocalProtocolError(f"{name}: unsupported type {type_!r}")


def _array_codec(type_: Array, version: int, flexible: bool, nullable: bool, name: str) -> tuple[Decoder, Encoder]:
    item = type_.item
    if isinstance(item, Struct):
        plan = _StructPlan(item.name, item.fields, version, flexible)
        item_dec, item_enc = plan.decode, plan.encode
    else:
        # Elements of an array of primitives are never null and carry no tagged section.
        item_dec, item_enc = _codec_for(item, version, flexible, False, name)
    read_length = Reader.read_compact_array_length if flexible else Reader.read_array_length
    write_length = p.write_compact_array_length if flexible else p.write_array_length

    def dec(reader: Reader) -> list | None:
        count = read_length(reader, nullable)
        if count is None:
            return None
        return [item_dec(reader) for _ in range(count)]

    def enc(out: bytearray, value: Any) -> None:
        if value is None:
            if not nullable:
                raise LocalProtocolError("null array in a version where it is not nullable")
            write_length(out, None)
            return
        write_length(out, len(value))
        for element in value:
            item_enc(out, element)

    return dec, enc


def _struct_codec(type_: Struct, version: int, flexible: bool, nullable: bool) -> tuple[Decoder, Encoder]:
    plan = _StructPlan(type_.name, type_.fields, version, flexible)
    if not nullable:
        return plan.decode, plan.encode

    # A nullable struct field is preceded by an int8 marker: -1 null, 1 present (Kafka's
    # generated code); anything else is malformed.
    def dec(reader: Reader) -> dict | None:
        marker = reader.read_int8()
        if marker < 0:
            return None
        if marker != 1:
            raise RemoteProtocolError(f"bad presence marker {marker} for struct {type_.name}")
        return plan.decode(reader)

    def enc(out: bytearray, value: Any) -> None:
        if value is None:
            out.append(0xFF)
            return
        out.append(1)
        plan.encode(out, value)

    return dec, enc

