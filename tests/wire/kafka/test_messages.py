"""Check our message descriptors against the facts of Kafka's own JSON schemas (franz-go kmsg style).

The facts (versions, fields, types, tags, defaults of every message we describe) are committed in
``kafka_facts.json``, derived from Kafka's schemas by ``derive_kafka_facts.py``, so the comparison
runs everywhere. Where a copy of the schema files themselves is at hand (the directory named by
``DUALMQ_KAFKA_SCHEMAS``, else ``derive_kafka_facts.DEFAULT_SCHEMAS``), a test also re-derives the
table and requires it to equal the committed one, so the table cannot go stale; without them it
skips, saying so.
"""

from __future__ import annotations

import json
import os
import types
from pathlib import Path
from typing import Any

import pytest

from tests.wire.kafka import derive_kafka_facts
from wire.kafka import messages
from wire.kafka.schema import PRIMITIVES, Api, Array, Field, Message, Struct, VersionRange, snake_case

SCHEMAS = Path(os.environ.get("DUALMQ_KAFKA_SCHEMAS", derive_kafka_facts.DEFAULT_SCHEMAS))
FACTS: dict[str, Any] = json.loads(derive_kafka_facts.FACTS_FILE.read_text())["messages"]
DESCRIBED: tuple[Message, ...] = messages.MESSAGES

# The field attributes the facts table carries (anything else is refused when it is derived).
CARRIED = {*derive_kafka_facts.WIRE_ATTRIBUTES, "fields"}
INT_TYPES = {"int8", "int16", "int32", "int64", "uint16"}


# --- helpers ---------------------------------------------------------------------------------


def bounds(text: str) -> tuple[int, float]:
    spec = VersionRange.parse(text)
    assert spec is not None, text
    return spec.low, float("inf") if spec.high is None else spec.high


def intersects(a: str, b: str) -> bool:
    if VersionRange.parse(a) is None or VersionRange.parse(b) is None:
        return False
    (lo_a, hi_a), (lo_b, hi_b) = bounds(a), bounds(b)
    return max(lo_a, lo_b) <= min(hi_a, hi_b)


def json_default(kafka_type: str, value: Any) -> Any:
    """A JSON ``default`` in the spelling our descriptors use."""
    if value == "null":
        return None
    if kafka_type in INT_TYPES:
        return value if isinstance(value, int) else int(value, 0)
    if kafka_type == "bool":
        return {"true": True, "false": False}[value]
    if kafka_type == "float64":
        return float(value)
    return value


def compare_fields(ours: tuple[Field, ...], theirs: list[dict], served: str, path: str) -> None:
    by_name = {snake_case(j["name"]): j for j in theirs}
    names = [f.name for f in ours]
    extra = [n for n in names if n not in by_name]
    assert not extra, f"{path}: fields Kafka's schema does not have: {extra}"
    missing = [
        snake_case(j["name"]) for j in theirs
        if intersects(j["versions"], served) and snake_case(j["name"]) not in names
    ]
    assert not missing, f"{path}: fields missing for served versions {served}: {missing}"
    in_kafka_order = [n for n in by_name if n in names]
    assert names == in_kafka_order, f"{path}: field order differs from Kafka's: {names} != {in_kafka_order}"
    for field in ours:
        compare_field(field, by_name[field.name], served, f"{path}.{field.name}")


def compare_field(ours: Field, theirs: dict, served: str, path: str) -> None:
    unknown = set(theirs) - CARRIED
    assert not unknown, f"{path}: attributes the facts table should not carry: {unknown}"
    assert ours.versions == theirs["versions"], path
    assert ours.nullable == theirs.get("nullableVersions", "none"), path
    assert ours.tag == theirs.get("tag"), path
    assert ours.tagged == theirs.get("taggedVersions", "none"), path
    expected_default = json_default(theirs["type"], theirs["default"]) if "default" in theirs else None
    assert (type(ours.default), ours.default) == (type(expected_default), expected_default), (
        f"{path}: default {ours.default!r} != Kafka's {expected_default!r}"
    )

    kafka_type: str = theirs["type"]
    is_array = kafka_type.startswith("[]")
    item_name = kafka_type[2:] if is_array else kafka_type
    if is_array:
        assert isinstance(ours.type, Array), f"{path}: expected an array ({kafka_type})"
        item = ours.type.item
    else:
        item = ours.type
    if item_name in PRIMITIVES:
        assert "fields" not in theirs, path
        assert item == PRIMITIVES[item_name], f"{path}: type {ours.type!r} != Kafka's {kafka_type}"
        return
    assert isinstance(item, Struct), f"{path}: expected struct {item_name}, got {item!r}"
    assert item.name == item_name, f"{path}: struct name {item.name} != Kafka's {item_name}"
    compare_fields(item.fields, theirs["fields"], served, path)


# --- against Kafka's facts ---------------------------------------------------------------------


def test_facts_cover_exactly_the_described_messages() -> None:
    described = sorted(message.name for message in DESCRIBED)
    assert sorted(FACTS) == described, (
        "kafka_facts.json is out of date with wire.kafka.messages: "
        "run python -m tests.wire.kafka.derive_kafka_facts"
    )


@pytest.mark.skipif(not SCHEMAS.is_dir(), reason=f"Kafka's JSON schemas not at {SCHEMAS}: kafka_facts.json "
                    "was compared with our descriptors but not re-derived")
def test_committed_facts_equal_what_the_script_derives_now() -> None:
    derived = derive_kafka_facts.derive(SCHEMAS, derive_kafka_facts.described_names())
    assert derived["messages"] == FACTS, "kafka_facts.json is stale: run python -m tests.wire.kafka.derive_kafka_facts"
    assert derive_kafka_facts.render(derived) == derive_kafka_facts.FACTS_FILE.read_text()


@pytest.mark.parametrize("message", DESCRIBED, ids=lambda m: m.name)
def test_descriptor_matches_kafka_schema(message: Message) -> None:
    theirs = FACTS[message.name]
    assert theirs["type"] == message.kind, f"kind {message.kind} != Kafka's {theirs['type']}"
    assert theirs.get("apiKey", -1) == message.api_key, f"api_key {message.api_key} != Kafka's"
    assert theirs["flexibleVersions"] == message.flexible, (
        f"flexible {message.flexible} != Kafka's {theirs['flexibleVersions']}"
    )

    low, high = bounds(message.valid)
    kafka_low, kafka_high = bounds(theirs["validVersions"])
    assert kafka_low <= low and high <= kafka_high, (
        f"we serve {message.valid}, Kafka defines only {theirs['validVersions']}"
    )
    if theirs["latestVersionUnstable"]:
        assert high < kafka_high, "the highest version is marked unstable: do not serve it"

    compare_fields(message.fields, theirs["fields"], message.valid, message.name)


# --- self-contained sanity -----------------------------------------------------------------------


def test_each_api_is_declared_once_and_builds_its_tables() -> None:
    for key, declared in messages.APIS.items():
        assert declared.key == key
        request, response = messages.REQUESTS[key], messages.RESPONSES[key]
        assert (request.name, request.kind, request.api_key) == (f"{declared.name}Request", "request", key)
        assert (response.name, response.kind, response.api_key) == (f"{declared.name}Response", "response", key)
        assert request.valid == response.valid == declared.versions
        assert request.flexible == response.flexible == declared.flexible
    assert set(messages.REQUESTS) == set(messages.RESPONSES) == set(messages.APIS)
    assert len({declared.name for declared in messages.APIS.values()}) == len(messages.APIS)


def test_an_api_must_name_its_highest_version() -> None:
    for versions in ("3+", "none"):
        with pytest.raises(ValueError, match="closed range"):
            Api("Widget", key=99, versions=versions, flexible="none", request=(), response=())


def test_two_declarations_of_one_key_are_refused() -> None:
    family = types.ModuleType("family")
    family.FIRST = Api("First", key=99, versions="0-1", flexible="none", request=(), response=())
    family.SECOND = Api("Second", key=99, versions="0-1", flexible="none", request=(), response=())
    with pytest.raises(ValueError, match="api key 99 declared twice: First and Second"):
        messages.collect_apis((family,))


def test_consumer_protocol_descriptors() -> None:
    for message in (messages.ConsumerProtocolSubscription, messages.ConsumerProtocolAssignment):
        assert (message.api_key, message.kind, message.valid, message.flexible) == (-1, "data", "0-3", "none")


def _all_fields(fields: tuple[Field, ...]):
    for field in fields:
        yield field
        item = field.type.item if isinstance(field.type, Array) else field.type
        if isinstance(item, Struct):
            yield from _all_fields(item.fields)


@pytest.mark.parametrize("message", DESCRIBED, ids=lambda m: m.name)
def test_fields_are_well_formed(message: Message) -> None:
    for field in _all_fields(message.fields):
        assert field.name == field.name.lower() and " " not in field.name, field.name
        for spec in (field.versions, field.nullable, field.tagged):
            VersionRange.parse(spec)  # raises on a malformed range
        assert (field.tag is None) == (field.tagged == "none"), field.name
        if field.tag is not None:
            assert message.flexible != "none", f"{field.name}: tagged field in a non-flexible message"
