"""A data dir with thousands of segments starts and serves under a low open-file limit.

Before sealed segments read through a bounded cache, recovery opened the three files of every
segment at start: with a limit of 1024 a broker holding more than ~330 segments could not
restart ("Too many open files"). Here ``dualmq serve`` runs with soft *and* hard limit 1024 —
the hard one too, since ``serve`` lifts the soft limit to the hard one — on 3,000 segments,
and real clients read every record. The full 50,000-segment run is ``bench/many_segments.py``
(too slow for the unit suite: the files alone take ~25 s to write here).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from dualmq.datadir_writer import write_segments, write_topics_json
from dualmq.process import BrokerProcess
from tests.support import KAFKA_PYTHON_NOISE, require_binary, require_module

pytestmark = [
    pytest.mark.interop,
    *KAFKA_PYTHON_NOISE,
]

OPEN_FILE_LIMIT = 1024
SEGMENTS = 3_000
START_TIMEOUT = 60.0
CLIENT_TIMEOUT = 60


@contextlib.contextmanager
def limited_broker(workdir: Path, data_dir: Path) -> Iterator[BrokerProcess]:
    """``dualmq serve`` with soft and hard open-file limit 1024, stopped on exit."""
    broker = BrokerProcess(data_dir, log_path=workdir / f"broker-{time.monotonic_ns()}.log",
                           open_file_limit=OPEN_FILE_LIMIT)
    # Started outside ``with`` for a longer timeout: recovery verifies all 3,000 segments.
    with broker.start(timeout=START_TIMEOUT):
        yield broker


def kcat_offsets(address: str, topic: str) -> list[int]:
    result = subprocess.run([require_binary("kcat", "kcat"), "-b", address, "-C", "-t", topic, "-e", "-q",
                             "-o", "beginning", "-f", "%o\n"], capture_output=True, timeout=CLIENT_TIMEOUT)
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    return [int(line) for line in result.stdout.split()]


def open_descriptors(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def test_thousands_of_segments_start_and_serve_under_ulimit_1024(tmp_path: Path) -> None:
    kafka = require_module("kafka", "kafka-python")
    data_dir = tmp_path / "data"
    write_topics_json(data_dir, {"many": 1})
    stored = write_segments(data_dir / "many-0", SEGMENTS)
    with limited_broker(tmp_path, data_dir) as broker:
        assert kcat_offsets(broker.kafka_address, "many") == list(range(SEGMENTS))
        # Reading every segment went through the cache: the broker holds about an eighth of
        # its limit in segment files (128) plus the active segment and its sockets.
        assert open_descriptors(broker.pid) < OPEN_FILE_LIMIT // 4
        producer = kafka.KafkaProducer(bootstrap_servers=broker.kafka_address, request_timeout_ms=10000)
        try:
            metadata = producer.send("many", b"after").get(timeout=20)
        finally:
            producer.close()
        assert metadata.offset == SEGMENTS
        consumer = kafka.KafkaConsumer(bootstrap_servers=broker.kafka_address, group_id=None,
                                       enable_auto_commit=False, consumer_timeout_ms=3000,
                                       request_timeout_ms=10000)
        try:
            tp = kafka.TopicPartition("many", 0)
            consumer.assign([tp])
            consumer.seek(tp, SEGMENTS - 5)
            records = []
            deadline = time.monotonic() + 20
            while len(records) < 6 and time.monotonic() < deadline:
                for batch in consumer.poll(timeout_ms=500).values():
                    records.extend(batch)
        finally:
            consumer.close()
        assert [r.offset for r in records] == list(range(SEGMENTS - 5, SEGMENTS + 1))
        assert records[-1].value == b"after"
        assert broker.stop() == 0
        assert "Too many open files" not in broker.log_path.read_text()
    # A restart under the same limit (a clean one now) serves the same records.
    with limited_broker(tmp_path, data_dir) as broker:
        assert kcat_offsets(broker.kafka_address, "many") == list(range(SEGMENTS + 1))
    assert len(stored) == SEGMENTS
