"""A damaged byte inside an *older* segment is never served: kcat reads exactly the intact prefix.

Before every segment was verified at start-up, only the newest one was; an older segment got a
cheap check from its last index entry to its end. Damage before that entry was served as is:
a flipped ``baseOffset`` byte (outside Kafka's CRC) delivered records under offsets in the
billions, a flipped ``batchLength`` made consumers stop silently in the middle of the log.
Here the data dir is written by the log itself (so the older segments have index entries), one
byte is damaged early in the third segment, and ``dualmq serve`` must cut there: kcat sees the
records before the damage, with their right offsets, and nothing else; the broker log names the
file and position; producing continues at the new log end.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from broker.config import LogConfig
from broker.log.partition_log import PartitionLog
from tests.broker.batches import build_batch
from dualmq.datadir_writer import write_topics_json
from tests.support import broker_process, require_binary

pytestmark = pytest.mark.interop

RECORDS_PER_BATCH = 10
BATCHES = 200
KCAT_TIMEOUT = 60


def kcat(*args: str, stdin: bytes | None = None) -> bytes:
    result = subprocess.run([require_binary("kcat", "kcat"), *args], input=stdin, capture_output=True,
                            timeout=KCAT_TIMEOUT)
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    return result.stdout


def build(data_dir: Path) -> list[Path]:
    """One topic, ~12 segments of ~20 KB (each with several index entries); returns the files."""
    write_topics_json(data_dir, {"dmg": 1})
    now = time.time_ns() // 1_000_000
    log = PartitionLog.open(data_dir / "dmg-0", LogConfig(segment_bytes=20_000), now_ms=now)
    for i in range(BATCHES):
        log.append(build_batch(RECORDS_PER_BATCH, 100, fill=i, timestamp=now), now)
    log.close()
    files = sorted((data_dir / "dmg-0").glob("*.log"))
    assert len(files) > 5
    assert (data_dir / "dmg-0" / files[2].with_suffix(".index").name).stat().st_size > 0
    return files


@pytest.mark.parametrize("field", ["baseOffset", "batchLength", "crc"])
def test_kcat_reads_exactly_the_intact_prefix(tmp_path: Path, field: str) -> None:
    data_dir = tmp_path / "data"
    files = build(data_dir)
    victim = files[2]
    data = bytearray(victim.read_bytes())
    batch_size = int.from_bytes(data[8:12], "big") + 12
    position = batch_size  # the second batch of the third segment: before its index entries
    offset = {"baseOffset": 3, "batchLength": 10, "crc": 20}[field]
    data[position + offset] ^= 0x01
    victim.write_bytes(bytes(data))
    intact = int(victim.stem) + RECORDS_PER_BATCH  # the third segment's first batch is intact

    with broker_process(tmp_path, data_dir=data_dir) as broker:
        out = kcat("-b", broker.kafka_address, "-C", "-t", "dmg", "-e", "-q", "-o", "beginning", "-f", "%o\n")
        assert [int(line) for line in out.split()] == list(range(intact))
        kcat("-b", broker.kafka_address, "-P", "-t", "dmg", stdin=b"after\n")
        out = kcat("-b", broker.kafka_address, "-C", "-t", "dmg", "-e", "-q", "-o", str(intact), "-f", "%o:%s\n")
        assert out == f"{intact}:after\n".encode()
        lines = broker.log_lines()
    (cut,) = [e for e in lines if e["event"] == "segment_tail_truncated"]
    assert cut["level"] == "warning"
    assert (cut["file"], cut["position"]) == (str(victim), position)
    assert cut["later_segments_dropped"] == len(files) - 3
