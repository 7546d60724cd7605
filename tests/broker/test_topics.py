"""TopicRegistry: names, ids, overrides, partitions, persistence across restart."""

from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path

import attrs
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from broker.config import LogConfig
from broker.errors import ConfigError, DataDirError, InvalidPartitions, InvalidTopic, TopicExists, UnknownTopic
from broker.errors import DamagedFile
from broker.log.partition_log import PartitionLog
from broker.topics import (
    MAX_PARTITIONS,
    MetadataInvalid,
    TopicRegistry,
    parse_topics_metadata,
    partition_budget,
    validate_topic_name,
)
from tests.broker.batches import build_batch, with_base_offset

CONFIG = LogConfig(fsync="never")
T0 = 1_700_000_000_000


def open_registry(tmp_path: Path) -> TopicRegistry:
    return TopicRegistry.open(tmp_path / "data", CONFIG, now_ms=T0)


def test_create_and_lookup(tmp_path: Path) -> None:
    registry = open_registry(tmp_path)
    topic = registry.create("orders", 3, {"retention.ms": "1000", "cleanup.policy": "delete"}, now_ms=T0)
    assert topic.name == "orders" and len(topic.partitions) == 3
    assert len(topic.topic_id) == 16 and any(topic.topic_id)
    assert topic.config.retention_ms == 1000 and topic.config.segment_bytes == CONFIG.segment_bytes
    assert registry.get("orders") is topic and registry.by_id(topic.topic_id) is topic
    assert registry.get("missing") is None and registry.by_id(b"\x00" * 16) is None
    assert registry.partition("orders", 2) is topic.partitions[2]
    assert (tmp_path / "data" / "orders-2").is_dir()
    assert [t.name for t in registry.topics()] == ["orders"]
    with pytest.raises(UnknownTopic, match="no partition 3"):
        registry.partition("orders", 3)
    with pytest.raises(UnknownTopic, match="'nope' does not exist"):
        registry.partition("nope", 0)
    registry.close()


@pytest.mark.parametrize("name", ["", ".", "..", "a" * 250, "has space", "slash/", "ünicode", "colon:"])
def test_invalid_names(tmp_path: Path, name: str) -> None:
    registry = open_registry(tmp_path)
    with pytest.raises(InvalidTopic):
        registry.create(name, 1, now_ms=T0)
    registry.close()


@pytest.mark.parametrize("name", ["a", "A.b_c-9", "x" * 249, "...", "_"])
def test_valid_names(tmp_path: Path, name: str) -> None:
    registry = open_registry(tmp_path)
    assert registry.create(name, 1, now_ms=T0).name == name
    registry.close()


def test_exists_bad_overrides_bad_partitions(tmp_path: Path) -> None:
    registry = open_registry(tmp_path)
    registry.create("t", 1, now_ms=T0)
    with pytest.raises(TopicExists):
        registry.create("t", 1, now_ms=T0)
    with pytest.raises(ConfigError, match="unknown topic config"):
        registry.create("u", 1, {"bogus": "1"}, now_ms=T0)
    with pytest.raises(ConfigError):
        registry.create("u", 1, {"retention.ms": "abc"}, now_ms=T0)
    with pytest.raises(ConfigError, match="partitions"):
        registry.create("u", 0, now_ms=T0)
    assert registry.get("u") is None and not (tmp_path / "data" / "u-0").exists()
    registry.close()


def test_survives_restart(tmp_path: Path) -> None:
    registry = open_registry(tmp_path)
    topic = registry.create("events", 2, {"segment.bytes": "1000"}, now_ms=T0)
    batch = build_batch(3, 20)
    registry.partition("events", 1).append(batch, T0)
    topic_id = topic.topic_id
    registry.close()

    registry = open_registry(tmp_path)
    again = registry.get("events")
    assert again is not None
    assert again.topic_id == topic_id and registry.by_id(topic_id) is again
    assert again.overrides == {"segment.bytes": "1000"} and again.config.segment_bytes == 1000
    assert len(again.partitions) == 2
    assert registry.partition("events", 1).read(0, 10**6) == with_base_offset(batch, 0)
    assert registry.partition("events", 0).high_watermark == 0
    registry.close()


def test_delete(tmp_path: Path) -> None:
    registry = open_registry(tmp_path)
    topic = registry.create("gone", 2, now_ms=T0)
    registry.partition("gone", 0).append(build_batch(), T0)
    registry.delete("gone")
    assert registry.get("gone") is None and registry.by_id(topic.topic_id) is None
    assert not (tmp_path / "data" / "gone-0").exists()
    with pytest.raises(UnknownTopic):
        registry.delete("gone")
    registry.close()
    registry = open_registry(tmp_path)
    assert registry.topics() == []
    # Re-creating starts empty with a new id.
    again = registry.create("gone", 1, now_ms=T0)
    assert again.topic_id != topic.topic_id and again.partitions[0].high_watermark == 0
    registry.close()


def test_add_partitions_grows_only_and_survives_restart(tmp_path: Path) -> None:
    registry = open_registry(tmp_path)
    topic = registry.create("grow", 2, now_ms=T0)
    batch = build_batch(2, 10)
    registry.partition("grow", 1).append(batch, T0)
    for bad in (2, 1, 0, True, "5", 10_001):
        with pytest.raises(InvalidPartitions):
            registry.add_partitions("grow", bad, now_ms=T0)
    with pytest.raises(UnknownTopic):
        registry.add_partitions("nope", 3, now_ms=T0)
    assert registry.add_partitions("grow", 5, now_ms=T0, validate_only=True) is topic
    assert len(topic.partitions) == 2 and not (tmp_path / "data" / "grow-2").exists()
    assert registry.add_partitions("grow", 5, now_ms=T0) is topic
    assert len(topic.partitions) == 5 and registry.partition("grow", 4).high_watermark == 0
    registry.close()

    registry = open_registry(tmp_path)
    again = registry.get("grow")
    assert again.topic_id == topic.topic_id and len(again.partitions) == 5
    assert registry.partition("grow", 1).read(0, 10**6) == with_base_offset(batch, 0)  # old data kept
    registry.close()


def test_leftover_partition_directory_is_not_adopted_by_growth(tmp_path: Path) -> None:
    registry = open_registry(tmp_path)
    registry.create("g", 2, now_ms=T0).partitions[1].append(build_batch(), T0)
    registry.close()
    # A crash after a shrink-by-hand or an interrupted growth: "g-1" exists, the metadata says 1.
    document = json.loads((tmp_path / "data" / "topics.json").read_text())
    document["topics"][0]["partitions"] = 1
    (tmp_path / "data" / "topics.json").write_text(json.dumps(document))
    registry = open_registry(tmp_path)
    assert registry.add_partitions("g", 2, now_ms=T0).partitions[1].high_watermark == 0
    registry.close()


def test_partition_budget_refuses_before_creating_anything(tmp_path: Path) -> None:
    # Each partition keeps files open: a request for more than the broker can hold open is
    # refused up front, with the reason, instead of running out of file descriptors.
    registry = attrs.evolve(open_registry(tmp_path), max_total_partitions=5)
    registry.create("a", 3, now_ms=T0)
    with pytest.raises(InvalidPartitions, match="at most 5"):
        registry.create("b", 3, now_ms=T0)
    with pytest.raises(InvalidPartitions, match="at most 5"):
        registry.add_partitions("a", 6, now_ms=T0)
    assert registry.get("b") is None and not (tmp_path / "data" / "b-0").exists()
    assert not (tmp_path / "data" / "a-3").exists()
    registry.add_partitions("a", 5, now_ms=T0)
    assert len(registry.get("a").partitions) == 5
    registry.close()
    assert partition_budget() >= 1


def test_a_disk_error_midway_leaves_nothing_half_made(tmp_path: Path, monkeypatch) -> None:
    registry = open_registry(tmp_path)
    registry.create("a", 1, now_ms=T0)
    real_open = PartitionLog.open
    calls = []

    def failing_open(directory, config, *, now_ms, storage=None):
        calls.append(directory)
        if len(calls) == 3:
            raise OSError(24, "Too many open files")
        return real_open(directory, config, now_ms=now_ms, storage=storage)

    monkeypatch.setattr(PartitionLog, "open", staticmethod(failing_open))
    with pytest.raises(OSError):
        registry.add_partitions("a", 5, now_ms=T0)
    calls.clear()
    with pytest.raises(OSError):
        registry.create("b", 4, now_ms=T0)
    monkeypatch.undo()

    def metadata_write_fails(self) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(TopicRegistry, "_save_metadata", metadata_write_fails)
    with pytest.raises(OSError):
        registry.add_partitions("a", 3, now_ms=T0)
    with pytest.raises(OSError):
        registry.create("c", 2, now_ms=T0)
    monkeypatch.undo()
    assert registry.get("c") is None
    assert len(registry.get("a").partitions) == 1 and registry.get("b") is None
    assert sorted(p.name for p in (tmp_path / "data").iterdir() if p.is_dir()) == ["a-0"]
    registry.close()
    reopened = open_registry(tmp_path)  # the metadata agrees
    assert [(t.name, len(t.partitions)) for t in reopened.topics()] == [("a", 1)]
    reopened.close()


def test_leftover_directory_is_not_adopted(tmp_path: Path) -> None:
    registry = open_registry(tmp_path)
    registry.create("t", 1, now_ms=T0).partitions[0].append(build_batch(), T0)
    registry.close()
    # Simulate a crash after the metadata forgot the topic but before its directory was removed.
    (tmp_path / "data" / "topics.json").write_text(json.dumps({"version": 1, "topics": []}))
    registry = open_registry(tmp_path)
    assert registry.create("t", 1, now_ms=T0).partitions[0].high_watermark == 0
    registry.close()


def test_metadata_file_is_atomic_json(tmp_path: Path) -> None:
    registry = open_registry(tmp_path)
    registry.create("a", 1, now_ms=T0)
    document = json.loads((tmp_path / "data" / "topics.json").read_text())
    assert document["topics"][0]["name"] == "a"
    assert not list((tmp_path / "data").glob("*.tmp"))
    registry.close()


def test_damaged_metadata(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "topics.json").write_text("{not json")
    with pytest.raises(DataDirError, match="damaged"):
        open_registry(tmp_path)


def test_maintain_and_logs_to_flush(tmp_path: Path) -> None:
    registry = open_registry(tmp_path)
    batch = build_batch(1, 10)
    registry.create("m", 2, {"segment.bytes": str(len(batch)), "retention.ms": "1000", "segment.ms": "500"},
                    now_ms=T0)
    for _ in range(3):
        registry.partition("m", 0).append(build_batch(1, 10, timestamp=T0), T0)
    counts = registry.maintain(T0 + 600)
    assert counts.segments_rolled == 1  # partition 0's active segment aged; partition 1 is empty
    counts = registry.maintain(T0 + 1001)
    assert counts.segments_deleted == 3
    assert registry.partition("m", 0).log_start_offset == 3
    registry.partition("m", 1).append(batch, T0)
    assert registry.partition("m", 1).has_unflushed
    assert registry.partition("m", 1) in registry.logs_to_flush()
    for log in registry.logs_to_flush():
        log.flush_sync()
    assert registry.logs_to_flush() == []
    registry.close()


# ------------------------------------------------------------------ a damaged topics.json

VALID_ID = "0123456789abcdef0123456789abcdef"
OTHER_ID = "fedcba9876543210fedcba9876543210"


def valid_document() -> dict:
    return {"version": 1, "topics": [
        {"name": "orders", "topic_id": VALID_ID, "partitions": 2, "overrides": {"retention.ms": "1000"}},
        {"name": "audit", "topic_id": OTHER_ID, "partitions": 1, "overrides": {}},
    ]}


def partition_dirs(data_dir: Path) -> list[str]:
    return sorted(p.name for p in data_dir.iterdir() if p.is_dir())


def test_a_huge_partition_count_is_refused_before_any_directory_is_made(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    document = valid_document()
    document["topics"][1]["partitions"] = 100_000
    (data_dir / "topics.json").write_text(json.dumps(document))
    with pytest.raises(DamagedFile) as refused:
        open_registry(tmp_path)
    message = str(refused.value)
    assert str(data_dir / "topics.json") in message and "100000" in message and "\n" not in message
    assert partition_dirs(data_dir) == []  # not even the valid "orders" topic was opened


def test_more_partitions_than_the_budget_are_refused_before_any_directory_is_made(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / "topics.json").write_text(json.dumps(valid_document()))  # 3 partitions in all
    registry = TopicRegistry(data_dir=data_dir, config=CONFIG, max_total_partitions=2)
    with pytest.raises(DataDirError, match="3 partitions.*ulimit -n"):
        registry._load_metadata()
    assert partition_dirs(data_dir) == []


def _mutated(change) -> dict:
    document = valid_document()
    change(document)
    return document


@pytest.mark.parametrize(("document", "named"), [
    ([], "expected an object"),
    ({"topics": []}, "expected an object"),
    ({"version": 2, "topics": []}, "version = 2"),
    ({"version": True, "topics": []}, "version = True"),
    ({"version": 1, "topics": {}}, "expected a list"),
    ({"version": 1, "topics": [], "extra": 1}, "expected an object"),
    (_mutated(lambda d: d["topics"][0].update(name="bad name")), "may contain only"),
    (_mutated(lambda d: d["topics"][0].update(name=7)), "expected a string"),
    (_mutated(lambda d: d["topics"][0].update(name="x" * 250)), "249"),
    (_mutated(lambda d: d["topics"][1].update(name="orders")), "listed twice"),
    (_mutated(lambda d: d["topics"][0].update(topic_id="00" * 16)), "all zeros"),
    (_mutated(lambda d: d["topics"][0].update(topic_id="01 23" * 8)), "32 hex digits"),
    (_mutated(lambda d: d["topics"][0].update(topic_id=VALID_ID[:30])), "32 hex digits"),
    (_mutated(lambda d: d["topics"][1].update(topic_id=VALID_ID)), "another topic"),
    (_mutated(lambda d: d["topics"][0].update(partitions=0)), "partitions = 0"),
    (_mutated(lambda d: d["topics"][0].update(partitions=-3)), "partitions = -3"),
    (_mutated(lambda d: d["topics"][0].update(partitions=2.0)), "partitions = 2.0"),
    (_mutated(lambda d: d["topics"][0].update(partitions="2")), "partitions = '2'"),
    (_mutated(lambda d: d["topics"][0].update(partitions=True)), "partitions = True"),
    (_mutated(lambda d: d["topics"][0].update(overrides={"retention.ms": 5})), "expected an object of strings"),
    (_mutated(lambda d: d["topics"][0].update(overrides={"retention.ms": "soon"})), "expected an integer"),
    (_mutated(lambda d: d["topics"][0].update(overrides={"no.such": "1"})), "unknown topic config"),
    (_mutated(lambda d: d["topics"][0].update(overrides={"segment.bytes": "1"})), "segment"),
    (_mutated(lambda d: d["topics"][0].pop("overrides")), "expected an object with the keys"),
    (_mutated(lambda d: d["topics"][0].update(colour="red")), "expected an object with the keys"),
    (_mutated(lambda d: d["topics"].append(None)), "topics[2] = None"),
])
def test_every_field_is_checked(tmp_path: Path, document, named: str) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / "topics.json").write_text(json.dumps(document))
    with pytest.raises(DamagedFile, match="topics.json is damaged") as refused:
        open_registry(tmp_path)
    assert named in str(refused.value) and "\n" not in str(refused.value)
    assert partition_dirs(data_dir) == []


@pytest.mark.parametrize(("text", "named"), [
    ('{"version": 1, "version": 1, "topics": []}', "appears twice"),
    ('{"version": 1, "topics": [' + "[" * 100_000, "not valid JSON"),
    ('{"version": 1, "topics": [{"name": "a", "topic_id": "%s", "partitions": 1e999, "overrides": {}}]}' % VALID_ID,
     "partitions = inf"),
    ('{"version": 1, "topics": [{"name": "a", "topic_id": "%s", "partitions": NaN, "overrides": {}}]}' % VALID_ID,
     "partitions = nan"),
    ('{"version": 1, "topics": [{"name": "a", "topic_id": "%s", "partitions": %s, "overrides": {}}]}'
     % (VALID_ID, "9" * 5000), "not valid JSON"),
])
def test_malformed_json_text_is_refused(tmp_path: Path, text: str, named: str) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / "topics.json").write_text(text)
    with pytest.raises(DamagedFile, match=re.escape(named)):
        open_registry(tmp_path)
    assert partition_dirs(data_dir) == []


# Arbitrary JSON, plus values close to legal ones (small counts, names, ids) so that mutated
# documents are often still valid and the accepting path is exercised too.
plausible = (st.integers(-2, 12) | st.from_regex(r"[a-z.]{1,4}", fullmatch=True)
             | st.sampled_from([VALID_ID, OTHER_ID, "00" * 16, VALID_ID.upper(), {}, {"retention.ms": "5"}]))
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=30) | plausible,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=12,
)


def _replace_somewhere(document, path: list, value):
    """``document`` with the value at ``path`` (keys/indexes, followed as far as they go) replaced."""
    if not path or not isinstance(document, (dict, list)) or not document:
        return value
    key = path[0]
    if isinstance(document, dict):
        chosen = sorted(document)[key % len(document)]
        return {**document, chosen: _replace_somewhere(document[chosen], path[1:], value)}
    index = key % len(document)
    return [*document[:index], _replace_somewhere(document[index], path[1:], value), *document[index + 1:]]


@settings(max_examples=300)
@given(st.one_of(
    json_values,
    st.builds(_replace_somewhere, st.just(valid_document()), st.lists(st.integers(0, 10), max_size=4), json_values),
    # one field of one topic entry ("topics" sorts first among the document's keys)
    st.builds(_replace_somewhere, st.just(valid_document()),
              st.tuples(st.just(0), st.integers(0, 1), st.integers(0, 3)).map(list), plausible),
))
def test_any_json_value_is_a_valid_topic_list_or_a_clean_refusal(document) -> None:
    raw = json.dumps(document).encode()
    try:
        topics = parse_topics_metadata(raw, CONFIG)
    except MetadataInvalid as exc:
        assert "\n" not in str(exc)
        event("refused")
        return
    event("accepted")
    # Accepted: it must be a list the registry could have written itself.
    assert topics == document["topics"]
    assert len({t["name"] for t in topics}) == len({t["topic_id"] for t in topics}) == len(topics)
    for entry in topics:
        validate_topic_name(entry["name"])
        assert type(entry["partitions"]) is int and 1 <= entry["partitions"] <= MAX_PARTITIONS
        assert len(bytes.fromhex(entry["topic_id"])) == 16 and any(bytes.fromhex(entry["topic_id"]))


@settings(max_examples=300)
@given(st.data())
def test_a_mutated_file_opens_as_written_or_is_refused_creating_nothing(data) -> None:
    raw = bytearray(json.dumps(valid_document()).encode())
    position = data.draw(st.integers(0, len(raw) - 1), label="position")
    how = data.draw(st.sampled_from(["flip", "delete", "insert", "truncate"]), label="how")
    if how == "flip":
        raw[position] ^= data.draw(st.integers(1, 255), label="mask")
    elif how == "delete":
        del raw[position]
    elif how == "insert":
        raw.insert(position, data.draw(st.integers(0, 255), label="byte"))
    else:
        del raw[position:]
    with tempfile.TemporaryDirectory() as directory:
        data_dir = Path(directory)
        (data_dir / "topics.json").write_bytes(bytes(raw))
        try:
            registry = TopicRegistry.open(data_dir, CONFIG, now_ms=T0)
        except DamagedFile as exc:
            assert "topics.json" in str(exc) and "\n" not in str(exc)
            assert partition_dirs(data_dir) == []
            event("refused")
            return
        event("accepted")
        expected = json.loads(bytes(raw))["topics"]
        assert [(t.name, t.topic_id, len(t.partitions), t.overrides) for t in registry.topics()] == [
            (e["name"], bytes.fromhex(e["topic_id"]), e["partitions"], e["overrides"]) for e in expected]
        registry.close()
