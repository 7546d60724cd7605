"""The vocabulary our Kafka message descriptors are written in.

A message (one request or response of one API) is a list of fields; each field has a type and
the range of versions it exists in, exactly the information Kafka's own JSON schemas carry
(``validVersions``, ``flexibleVersions``, per-field ``versions``, ``nullableVersions``,
``taggedVersions`` + ``tag``, ``default``). An :class:`Api` ties one API's key, name, versions
and its request and response messages together. ``wire.kafka.messages`` declares the APIs we
serve in this vocabulary; ``wire.kafka.codec`` encodes and decodes any of them at any version.

Version ranges use the JSON schemas' spelling: ``"0+"`` (from 0 on), ``"3-7"``, ``"5"``,
``"none"``.

Field names are snake_case versions of the JSON names (``HighWatermark`` ->
``high_watermark``), so a Kafka reader recognises every one.
"""

from __future__ import annotations

import re
from typing import Any

import attrs


@attrs.frozen
class VersionRange:
    """An inclusive range of versions; ``high`` is None for an open-ended ``N+``."""

    low: int
    high: int | None

    @classmethod
    def parse(cls, text: str) -> VersionRange | None:
        """Parse ``"0+"``, ``"3-7"``, ``"5"``; ``"none"`` gives None."""
        text = text.strip()
        if text == "none":
            return None
        if text.endswith("+"):
            return cls(int(text[:-1]), None)
        if "-" in text:
            low, high = text.split("-")
            return cls(int(low), int(high))
        return cls(int(text), int(text))

    def __contains__(self, version: int) -> bool:
        return version >= self.low and (self.high is None or version <= self.high)


def _in(spec: VersionRange | None, version: int) -> bool:
    return spec is not None and version in spec


# --- types -------------------------------------------------------------------------------

@attrs.frozen
class Primitive:
    """A scalar wire type: int8/16/32/64, uint16, float64, bool, uuid, string, bytes, records."""

    name: str


INT8 = Primitive("int8")
INT16 = Primitive("int16")
INT32 = Primitive("int32")
INT64 = Primitive("int64")
UINT16 = Primitive("uint16")
FLOAT64 = Primitive("float64")
BOOL = Primitive("bool")
UUID = Primitive("uuid")
STRING = Primitive("string")
BYTES = Primitive("bytes")
RECORDS = Primitive("records")

PRIMITIVES = {p.name: p for p in (INT8, INT16, INT32, INT64, UINT16, FLOAT64, BOOL, UUID, STRING, BYTES, RECORDS)}


@attrs.frozen
class Array:
    """``[]T``: an array of a primitive or of a struct."""

    item: Any  # Primitive | Struct


@attrs.frozen
class Struct:
    """A named group of fields: the element type of an array of structs, or a struct field."""

    name: str
    fields: tuple[Field, ...]


@attrs.frozen
class Field:
    """One field of a message or struct.

    Args:
        name: snake_case name.
        type: a Primitive, Array or Struct.
        versions: versions the field exists in (inline or tagged).
        nullable: versions in which the field may be null.
        tag: the tag number if the field is a tagged field.
        tagged: versions in which the field is sent as a tagged field.
        default: the value assumed when the field is absent in a version (and the value for
            which a tagged field is omitted). None means the type's natural zero.
    """

    name: str
    type: Any
    versions: str = "0+"
    nullable: str = "none"
    tag: int | None = None
    tagged: str = "none"
    default: Any = None

    def exists_in(self, version: int) -> bool:
        return _in(VersionRange.parse(self.versions), version)

    def nullable_in(self, version: int) -> bool:
        return _in(VersionRange.parse(self.nullable), version)

    def tagged_in(self, version: int) -> bool:
        return _in(VersionRange.parse(self.tagged), version)


@attrs.frozen
class Message:
    """One request or response of one API, at every version it has."""

    name: str
    api_key: int
    kind: str  # "request" | "response"
    valid: str  # e.g. "0-12"
    flexible: str  # e.g. "9+" or "none"
    fields: tuple[Field, ...]

    def is_flexible(self, version: int) -> bool:
        return _in(VersionRange.parse(self.flexible), version)

    def is_valid(self, version: int) -> bool:
        return _in(VersionRange.parse(self.valid), version)


@attrs.frozen(init=False)
class Api:
    """One Kafka API as we speak it: the single place its key, name and versions are written.

    The request and response messages are built here from their field lists, so both carry the
    same key, version range and flexible range by construction. The broker registers its
    handler with this object and advertises exactly ``versions`` in ApiVersions; the SDK builds
    its own version choice from it, so a version range is written once.

    Args:
        name: Kafka's API name (``"Produce"``); the messages are ``<name>Request`` and
            ``<name>Response``, as in Kafka's JSON schemas.
        key: Kafka's api key.
        versions: the versions we decode, encode and advertise (``"0-9"``); never beyond what
            Kafka defines (``tests/wire/kafka/test_messages.py`` checks).
        flexible: the versions that use the flexible encoding (``"9+"``, or ``"none"``).
        request, response: the fields of the request and of the response.
    """

    name: str
    key: int
    versions: str
    flexible: str
    request: Message
    response: Message

    def __init__(self, name: str, *, key: int, versions: str, flexible: str,
                 request: tuple[Field, ...], response: tuple[Field, ...]) -> None:
        """Raises:
            ValueError: ``versions`` is not a closed range like ``"0-9"`` (we must advertise
                a highest version, so ``"3+"`` and ``"none"`` make no sense here).
        """
        parsed = VersionRange.parse(versions)
        if parsed is None or parsed.high is None:
            raise ValueError(f"{name}: versions must be a closed range like '0-9', not {versions!r}")
        self.__attrs_init__(
            name, key, versions, flexible,
            Message(f"{name}Request", key, "request", valid=versions, flexible=flexible, fields=request),
            Message(f"{name}Response", key, "response", valid=versions, flexible=flexible, fields=response),
        )

    @property
    def min_version(self) -> int:
        return VersionRange.parse(self.versions).low

    @property
    def max_version(self) -> int:
        return VersionRange.parse(self.versions).high


_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")


def snake_case(camel: str) -> str:
    """``HighWatermark`` -> ``high_watermark``; ``TopicId`` -> ``topic_id``."""
    return _CAMEL.sub("_", camel).lower()
