"""``dualmq serve`` on a data directory whose metadata files are damaged.

Each file has one rule, and these tests hold the real process to it: either the broker
refuses to start with one line naming the file (exit status 1, no traceback, nothing
created), or it starts and keeps every record that is provably intact.

* ``__producer_ids/producer_ids`` garbage or a negative number: refused.
* ``topics.json`` naming 100,000 partitions: refused before a single partition directory exists.
* ``__consumer_offsets/snapshot`` damaged: refused.
* ``__consumer_offsets/journal.N`` with a byte flipped in the middle: the broker starts, and
  groups committed before *and after* the damaged frame keep their offsets (read back with
  kafka-python), with a warning naming the file.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.support import broker_process, kafka_python_noise, require_module, serve_command

RUN_TIMEOUT_SECONDS = 60


def serve_expecting_refusal(tmp_path: Path, data_dir: Path) -> str:
    """Run ``dualmq serve`` on ``data_dir``; assert it exits non-zero with one clean error
    line and never became ready; return that line."""
    ready = tmp_path / "ready.json"
    result = subprocess.run(serve_command(data_dir, ready), capture_output=True, text=True,
                            timeout=RUN_TIMEOUT_SECONDS, stdin=subprocess.DEVNULL)
    assert result.returncode == 1, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr + result.stdout
    errors = [line for line in result.stderr.splitlines() if line.startswith("dualmq: error:")]
    assert len(errors) == 1, result.stderr
    # Anything else on stderr is a JSON log line, never a stray multi-line dump.
    for line in result.stderr.splitlines():
        if line not in errors:
            json.loads(line)
    assert not ready.exists()
    return errors[0]


def partition_dirs(data_dir: Path) -> list[str]:
    return sorted(p.name for p in data_dir.iterdir() if p.is_dir() and not p.name.startswith("__"))


@pytest.mark.parametrize("content", ["garbage\n", "-5\n", ""])
def test_a_damaged_producer_id_file_stops_the_start_with_one_line(tmp_path: Path, content: str) -> None:
    data_dir = tmp_path / "data"
    (data_dir / "__producer_ids").mkdir(parents=True)
    (data_dir / "__producer_ids" / "producer_ids").write_text(content)
    line = serve_expecting_refusal(tmp_path, data_dir)
    assert str(data_dir / "__producer_ids" / "producer_ids") in line and "damaged" in line


def test_topics_json_with_100000_partitions_is_refused_and_creates_nothing(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / "topics.json").write_text(json.dumps({"version": 1, "topics": [
        {"name": "fine", "topic_id": "11" * 16, "partitions": 2, "overrides": {}},
        {"name": "huge", "topic_id": "22" * 16, "partitions": 100_000, "overrides": {}},
    ]}))
    line = serve_expecting_refusal(tmp_path, data_dir)
    assert str(data_dir / "topics.json") in line and "100000" in line
    assert partition_dirs(data_dir) == []


def _frame(record: object) -> bytes:
    """One offsets-store frame, built by hand: [u32 length][u32 CRC-32C][JSON payload]."""
    import crc32c

    payload = json.dumps(record, separators=(",", ":")).encode()
    return len(payload).to_bytes(4, "big") + crc32c.crc32c(payload).to_bytes(4, "big") + payload


COMMIT = {"op": "commit", "g": "g", "t": "t", "p": 0, "o": 5, "e": -1, "m": None, "ts": 0}


@pytest.mark.parametrize("snapshot", [
    pytest.param(b"\x00\x00\x00\x05\x00\x00\x00\x00hello", id="bad-crc"),
    # the CRC is right, the header is not a snapshot header (was a KeyError traceback)
    pytest.param(_frame({"op": "snapshot"}) + _frame(COMMIT), id="header-without-journal"),
    # every frame intact, one missing at the end (was loaded silently, the commit forgotten)
    pytest.param(_frame({"op": "snapshot", "journal": 1, "records": 2}) + _frame(COMMIT), id="cut-between-frames"),
])
def test_a_damaged_offsets_snapshot_stops_the_start_with_one_line(tmp_path: Path, snapshot: bytes) -> None:
    data_dir = tmp_path / "data"
    offsets = data_dir / "__consumer_offsets"
    offsets.mkdir(parents=True)
    (offsets / "snapshot").write_bytes(snapshot)
    line = serve_expecting_refusal(tmp_path, data_dir)
    assert str(offsets / "snapshot") in line and "damaged" in line


@pytest.mark.interop
@kafka_python_noise
def test_a_flipped_byte_in_the_offsets_journal_keeps_the_commits_around_it(tmp_path: Path) -> None:
    kafka = require_module("kafka", "kafka-python")
    from kafka.admin import NewTopic
    from kafka.structs import OffsetAndMetadata, TopicPartition

    partition = TopicPartition("events", 0)
    commits = {"early": 100, "victim": 500, "late": 12_345}

    def committed(address: str, group: str) -> int | None:
        consumer = kafka.KafkaConsumer(bootstrap_servers=address, group_id=group, enable_auto_commit=False,
                                       request_timeout_ms=10000)
        try:
            return consumer.committed(partition)
        finally:
            consumer.close()

    data_dir = tmp_path / "data"
    with broker_process(tmp_path, data_dir=data_dir) as broker:
        admin = kafka.KafkaAdminClient(bootstrap_servers=broker.kafka_address, request_timeout_ms=10000)
        try:
            admin.create_topics([NewTopic("events", 1, 1)])
        finally:
            admin.close()
        for group, offset in commits.items():  # one OffsetCommit, one journal frame each, in order
            consumer = kafka.KafkaConsumer(bootstrap_servers=broker.kafka_address, group_id=group,
                                           enable_auto_commit=False, request_timeout_ms=10000)
            try:
                consumer.assign([partition])
                consumer.commit({partition: OffsetAndMetadata(offset, "", -1)})
            finally:
                consumer.close()
        assert broker.stop() == 0

    journal = data_dir / "__consumer_offsets" / "journal.0"
    data = bytearray(journal.read_bytes())
    victim = data.index(b'"g":"victim"')
    data[victim + 3] ^= 0x20  # inside the middle frame's payload: its CRC no longer matches
    journal.write_bytes(bytes(data))

    with broker_process(tmp_path, data_dir=data_dir) as broker:
        assert committed(broker.kafka_address, "late") == 12_345
        assert committed(broker.kafka_address, "early") == 100
        assert committed(broker.kafka_address, "victim") is None  # resumes from its reset policy
        warnings = [line for line in broker.log_lines() if line.get("event") == "offsets_journal_damage_skipped"]
        assert len(warnings) == 1 and warnings[0]["path"] == str(journal) and warnings[0]["level"] == "warning"
        assert "Traceback" not in broker.log_path.read_text()
