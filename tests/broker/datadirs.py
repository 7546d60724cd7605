"""Test helper: write a broker data directory straight to disk, fast.

Building a partition with tens of thousands of segments through the broker's own append path
would take minutes (every roll opens files and logs a line). These helpers write the files a
broker would have written — ``topics.json`` and, per segment, a ``.log`` holding valid
RecordBatch v2 bytes with dense offsets plus the empty ``.index`` / ``.timeindex`` a segment
of one small batch has — so tests and benchmarks can start a broker on a large data directory
in seconds. Used by the file-descriptor tests and ``bench/many_segments.py``.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

from tests.broker.batches import build_batch, with_base_offset


def write_topics_json(data_dir: Path, topics: dict[str, int]) -> None:
    """Write ``topics.json`` naming ``topics`` (name -> partition count), no overrides."""
    document = {
        "version": 1,
        "topics": [
            {"name": name, "topic_id": uuid.uuid4().hex, "partitions": count, "overrides": {}}
            for name, count in topics.items()
        ],
    }
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "topics.json").write_text(json.dumps(document, indent=2, sort_keys=True))


def write_segments(directory: Path, segments: int, *, batches_per_segment: int = 1, records_per_batch: int = 1,
                   value_size: int = 8, timestamp: int = 1_700_000_000_000) -> list[bytes]:
    """Write ``segments`` segments of ``batches_per_segment`` batches each, with dense offsets
    from 0, into ``directory``.

    Index files are written empty, which is right while a segment holds less than the
    broker's ``index_interval_bytes`` (4096 by default): keep segments small.

    Returns:
        The stored batches (offset-stamped), in offset order, so a test can compare what it reads.
    """
    directory.mkdir(parents=True, exist_ok=True)
    stored = []
    offset = 0
    for _ in range(segments):
        base = offset
        parts = []
        for _ in range(batches_per_segment):
            batch = with_base_offset(build_batch(records_per_batch, value_size, timestamp=timestamp,
                                                 fill=offset & 0xFF), offset)
            parts.append(batch)
            offset += records_per_batch
        stem = directory / f"{base:020d}"
        stem.with_suffix(".log").write_bytes(b"".join(parts))
        stem.with_suffix(".index").write_bytes(b"")
        stem.with_suffix(".timeindex").write_bytes(b"")
        stored.extend(parts)
    return stored
