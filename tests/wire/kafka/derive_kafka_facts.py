"""Derive ``kafka_facts.json``: the facts of Kafka's message schemas that our descriptors are checked against.

Kafka describes every request and response in a JSON schema
(``clients/src/main/resources/common/message/*.json`` in apache/kafka). Our descriptors in
``wire.kafka.messages`` restate part of those facts, and ``test_messages.py`` compares the two.
Users do not have Kafka's source tree, so the project carries the facts it compares, derived by
this script and committed next to it; the test then runs everywhere.

What is kept, for each message we describe and nothing else: its type, api key, valid and
flexible versions, whether the latest version is unstable, and per field (in Kafka's order,
recursively) its name, type, versions, nullable versions, tag, tagged versions and default —
Kafka's spelling, unchanged. Structs named in ``commonStructs`` are written out where they are
used, so every message stands alone. Left out: the prose (``about``, comments) and attributes with
no effect on the bytes (``ignorable``, ``entityType``, ``mapKey``, ``zeroCopy``, ``listeners``,
``deprecatedVersions``). A field attribute outside both lists is an error: our descriptor
vocabulary (``wire.kafka.schema``) could not express it, so the check must not silently drop it.

Run from the repository root after adding or changing a descriptor::

    python -m tests.wire.kafka.derive_kafka_facts [SCHEMA_DIR]

``SCHEMA_DIR`` is a directory holding those ``*.json`` files (copied from apache/kafka). It
defaults to ``DEFAULT_SCHEMAS``, the place beside the repository where the maintainers keep
their copy. ``--check`` compares instead of writing (exit status 1 if the file is stale).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[3]
DEFAULT_SCHEMAS = REPO.parent / "shared" / "reference" / "kafka-protocol" / "messages"
FACTS_FILE = Path(__file__).with_name("kafka_facts.json")
SOURCE = (
    "Derived by tests/wire/kafka/derive_kafka_facts.py from apache/kafka "
    "clients/src/main/resources/common/message/*.json (Apache License 2.0); do not edit by hand."
)

# Field attributes the check compares, in the order they are written out.
WIRE_ATTRIBUTES = ("name", "type", "versions", "nullableVersions", "tag", "taggedVersions", "default")
# Field attributes with no effect on the bytes: dropped.
NO_WIRE_EFFECT = frozenset({"about", "ignorable", "entityType", "mapKey", "zeroCopy"})


class SchemaError(ValueError):
    """A schema the facts cannot be derived from (a missing file or an attribute we cannot express)."""


def load_schema(path: Path) -> dict[str, Any]:
    """Read one of Kafka's schema files: JSON with ``//`` comment lines (the licence, notes).

    Raises:
        SchemaError: the file does not exist.
    """
    if not path.is_file():
        raise SchemaError(f"no schema file {path}")
    lines = path.read_text().splitlines()
    return json.loads("\n".join(line for line in lines if not line.lstrip().startswith("//")))


def field_facts(field: dict[str, Any], common: dict[str, list[dict]], path: str) -> dict[str, Any]:
    """The compared attributes of one field, its struct's fields written out recursively.

    Args:
        field: the field as it appears in the schema.
        common: the schema's ``commonStructs``, by name.
        path: dotted location, for error messages.

    Raises:
        SchemaError: an attribute that is neither compared nor known to be without wire effect.
    """
    unknown = set(field) - set(WIRE_ATTRIBUTES) - NO_WIRE_EFFECT - {"fields"}
    if unknown:
        raise SchemaError(f"{path}: attributes our descriptors cannot express: {sorted(unknown)}")
    facts = {name: field[name] for name in WIRE_ATTRIBUTES if name in field}
    struct_name = field["type"].removeprefix("[]")
    if "fields" in field:
        children = field["fields"]
    elif struct_name in common:
        children = common[struct_name]
    else:
        return facts
    facts["fields"] = [field_facts(child, common, f"{path}.{child['name']}") for child in children]
    return facts


def message_facts(schema: dict[str, Any]) -> dict[str, Any]:
    """The compared facts of one message schema (see the module docstring)."""
    common = {struct["name"]: struct["fields"] for struct in schema.get("commonStructs", [])}
    facts: dict[str, Any] = {"type": schema["type"]}
    if "apiKey" in schema:
        facts["apiKey"] = schema["apiKey"]
    facts["validVersions"] = schema["validVersions"]
    facts["flexibleVersions"] = schema["flexibleVersions"]
    facts["latestVersionUnstable"] = schema.get("latestVersionUnstable", False)
    facts["fields"] = [field_facts(field, common, f"{schema['name']}.{field['name']}") for field in schema["fields"]]
    return facts


def derive(schema_dir: Path, names: Iterable[str]) -> dict[str, Any]:
    """The whole facts table for the messages ``names``.

    Args:
        schema_dir: the directory holding Kafka's ``<Name>.json`` files.
        names: message names (``ProduceRequest``, ``ConsumerProtocolAssignment``, ...).

    Returns:
        ``{"source": ..., "messages": {name: facts}}``, messages sorted by name.

    Raises:
        SchemaError: a schema is missing or cannot be expressed.
    """
    return {
        "source": SOURCE,
        "messages": {name: message_facts(load_schema(schema_dir / f"{name}.json")) for name in sorted(names)},
    }


def described_names() -> list[str]:
    """The names of every message ``wire.kafka.messages`` describes."""
    from wire.kafka import messages  # here, so the derivation above needs nothing of ours

    return [message.name for message in messages.MESSAGES]


def render(facts: dict[str, Any]) -> str:
    """JSON text with one field per line (a struct's fields indented below it), for readable diffs."""

    def value(item: Any, indent: str) -> str:
        if isinstance(item, dict) and any(isinstance(v, (dict, list)) for v in item.values()):
            inner = indent + "  "
            parts = [f"{inner}{json.dumps(k)}: {value(v, inner)}" for k, v in item.items()]
            return "{\n" + ",\n".join(parts) + f"\n{indent}}}"
        if isinstance(item, list) and item and isinstance(item[0], dict):
            inner = indent + "  "
            return "[\n" + ",\n".join(inner + value(v, inner) for v in item) + f"\n{indent}]"
        return json.dumps(item, separators=(", ", ": "))

    return value(facts, "") + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("schema_dir", nargs="?", type=Path, default=DEFAULT_SCHEMAS,
                        help=f"directory of Kafka's message JSON schemas (default: {DEFAULT_SCHEMAS})")
    parser.add_argument("--output", type=Path, default=FACTS_FILE, help=f"where to write (default: {FACTS_FILE})")
    parser.add_argument("--check", action="store_true", help="compare with --output instead of writing it")
    args = parser.parse_args(argv)
    if not args.schema_dir.is_dir():
        parser.error(f"no schema directory at {args.schema_dir}")
    try:
        text = render(derive(args.schema_dir, described_names()))
    except SchemaError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.check:
        current = args.output.read_text() if args.output.is_file() else ""
        if current != text:
            print(f"{args.output} is stale: run python -m tests.wire.kafka.derive_kafka_facts", file=sys.stderr)
            return 1
        return 0
    args.output.write_text(text)
    print(f"wrote {args.output} ({len(text.splitlines())} lines)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
