"""Write a broker data directory straight to disk, fast: for tests, benchmarks and lessons.

Building a partition with tens of thousands of segments through the broker's own append path
would take minutes (every roll opens files and logs a line). These helpers write the files a
broker would have written — ``topics.json`` and, per segment, a ``.log`` holding valid
RecordBatch v2 bytes with dense offsets plus the empty ``.index`` / ``.timeindex`` a segment
of one small batch has — so a broker can be started on a large data directory in seconds.
The files are described in docs/kafka.md#segments-and-sparse-indexes and the batch format in
docs/kafka.md#record-batches.

Batches come from the SDK's own encoder (``wire.kafka.records.build_batch``); the log's unit
tests use an independent spec-only encoder instead (``tests/broker/batches.py``), because they
check the format, while these writers only need valid bytes in quantity.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

from wire.kafka.batch import patch_base_offset
from wire.kafka.records import build_batch

DEFAULT_TIMESTAMP_MS = 1_700_000_000_000


def stored_batch(records: int, value_size: int, offset: int, *, fill: int = 0,
                 timestamp: int = DEFAULT_TIMESTAMP_MS) -> bytes:
    """One uncompressed batch as the log stores it: ``baseOffset`` = ``offset``, leader epoch 0.

    Args:
        records: how many records (each with a null key and a ``value_size``-byte value).
        value_size: bytes per value, all equal to ``fill``.
        offset: the base offset to stamp.
        fill: the byte the values are made of (so neighbouring batches differ).
        timestamp: every record's timestamp, in ms.

    Returns:
        The batch bytes.
    """
    value = bytes([fill & 0xFF]) * value_size
    batch = bytearray(build_batch([(None, value, None)] * records, base_timestamp=timestamp))
    patch_base_offset(batch, offset, 0)
    return bytes(batch)


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
                   value_size: int = 8, timestamp: int = DEFAULT_TIMESTAMP_MS) -> list[bytes]:
    """Write ``segments`` segments of ``batches_per_segment`` batches each, with dense offsets
    from 0, into ``directory``.

    Index files are written empty, which is right while a segment holds less than the
    broker's ``index_interval_bytes`` (4096 by default): keep segments small.

    Returns:
        The stored batches (offset-stamped), in offset order, so a caller can compare what it reads.
    """
    directory.mkdir(parents=True, exist_ok=True)
    stored = []
    offset = 0
    for _ in range(segments):
        base = offset
        parts = []
        for _ in range(batches_per_segment):
            parts.append(stored_batch(records_per_batch, value_size, offset, fill=offset, timestamp=timestamp))
            offset += records_per_batch
        stem = directory / f"{base:020d}"
        stem.with_suffix(".log").write_bytes(b"".join(parts))
        stem.with_suffix(".index").write_bytes(b"")
        stem.with_suffix(".timeindex").write_bytes(b"")
        stored.extend(parts)
    return stored
