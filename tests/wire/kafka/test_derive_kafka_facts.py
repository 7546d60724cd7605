"""The script that derives ``kafka_facts.json``, run on small schemas of our own (no Kafka tree needed)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.wire.kafka.derive_kafka_facts import SchemaError, derive, main, render

LICENCE = "// Licensed to the Apache Software Foundation (ASF) under one or more\n//\n"

WIDGET_REQUEST = {
    "apiKey": 99, "type": "request", "listeners": ["broker"], "name": "WidgetRequest",
    "validVersions": "0-3", "flexibleVersions": "2+", "latestVersionUnstable": True,
    "fields": [
        {"name": "TopicName", "type": "string", "versions": "0+", "entityType": "topicName",
         "about": "The topic.", "nullableVersions": "1+", "default": "null"},
        {"name": "Parts", "type": "[]Part", "versions": "0+", "about": "Parts, by common struct."},
        {"name": "Extra", "type": "int32", "versions": "2+", "tag": 0, "taggedVersions": "2+",
         "ignorable": True, "default": "-1", "about": "A tagged field."},
    ],
    "commonStructs": [
        {"name": "Part", "versions": "0+", "fields": [
            {"name": "Index", "type": "int32", "versions": "0+", "mapKey": True, "about": "Index."},
        ]},
    ],
}


def write_schema(directory: Path, schema: dict) -> None:
    body = json.dumps(schema, indent=2).replace('"validVersions"', '// Version 1 adds nulls.\n  "validVersions"', 1)
    (directory / f"{schema['name']}.json").write_text(LICENCE + body)


def test_keeps_the_wire_facts_and_drops_the_prose(tmp_path: Path) -> None:
    write_schema(tmp_path, WIDGET_REQUEST)
    facts = derive(tmp_path, ["WidgetRequest"])
    assert facts["messages"] == {"WidgetRequest": {
        "type": "request", "apiKey": 99, "validVersions": "0-3", "flexibleVersions": "2+",
        "latestVersionUnstable": True,
        "fields": [
            {"name": "TopicName", "type": "string", "versions": "0+", "nullableVersions": "1+", "default": "null"},
            {"name": "Parts", "type": "[]Part", "versions": "0+", "fields": [
                {"name": "Index", "type": "int32", "versions": "0+"},
            ]},
            {"name": "Extra", "type": "int32", "versions": "2+", "tag": 0, "taggedVersions": "2+", "default": "-1"},
        ],
    }}
    assert "about" not in render(facts) and "Licensed" not in render(facts)
    assert json.loads(render(facts)) == facts


def test_a_data_schema_has_no_api_key(tmp_path: Path) -> None:
    write_schema(tmp_path, {"type": "data", "name": "Blob", "validVersions": "0", "flexibleVersions": "none",
                            "fields": [{"name": "Bytes", "type": "bytes", "versions": "0+"}]})
    facts = derive(tmp_path, ["Blob"])["messages"]["Blob"]
    assert "apiKey" not in facts and facts["latestVersionUnstable"] is False


def test_refuses_an_attribute_our_descriptors_cannot_express(tmp_path: Path) -> None:
    schema = json.loads(json.dumps(WIDGET_REQUEST))
    schema["commonStructs"][0]["fields"][0]["flexibleVersions"] = "3+"
    write_schema(tmp_path, schema)
    with pytest.raises(SchemaError, match=r"WidgetRequest\.Parts\.Index: .*flexibleVersions"):
        derive(tmp_path, ["WidgetRequest"])


def test_a_missing_schema_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(SchemaError, match="NopeRequest.json"):
        derive(tmp_path, ["NopeRequest"])


def test_check_mode_reports_a_stale_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    schemas = tmp_path / "schemas"
    schemas.mkdir()
    write_schema(schemas, WIDGET_REQUEST)
    monkeypatch.setattr("tests.wire.kafka.derive_kafka_facts.described_names", lambda: ["WidgetRequest"])
    output = tmp_path / "facts.json"
    assert main([str(schemas), "--output", str(output), "--check"]) == 1  # absent counts as stale
    assert main([str(schemas), "--output", str(output)]) == 0
    assert main([str(schemas), "--output", str(output), "--check"]) == 0
    output.write_text(output.read_text().replace('"0-3"', '"0-4"'))
    assert main([str(schemas), "--output", str(output), "--check"]) == 1
