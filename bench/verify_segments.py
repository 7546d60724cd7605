"""Benchmark: what verifying every segment costs, to choose between start-up and first-read checks.

Every batch of every segment is checked before it is served (offsets, lengths, CRC-32C). That
work can be done for all segments when the broker starts, or for each sealed segment just
before its first read. This script measures the walk on segments in the page cache and prints,
per batch size:

* CRC-32C alone over the same bytes (the hardware-accelerated floor);
* the walk (``verify.scan_partition``) in GB/s and µs per batch;
* eager: the start-up time of ``PartitionLog.open`` per GiB of segments (after a clean
  shutdown, so no fsyncs — see ``recovery.py``);
* lazy: how long the first read of one default-size (1 GiB) segment would stall the event loop.

Usage: ``python bench/verify_segments.py [--mib 256] [--runs 3]``. Medians of ``--runs``.
Figures are for a warm page cache; from a cold disk the walk runs at most at disk speed.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import crc32c  # noqa: E402
import structlog  # noqa: E402

from broker.config import LogConfig  # noqa: E402
from broker.log.partition_log import CLEAN_SHUTDOWN_MARKER, PartitionLog  # noqa: E402
from broker.log.verify import scan_partition  # noqa: E402
from wire.kafka.batch import patched_prefix  # noqa: E402
from dualmq.datadir_writer import stored_batch  # noqa: E402

GIB = 1 << 30
SEGMENT_BYTES = 128 << 20
# (records per batch, value bytes): ~16 KB, ~1 KB and 170-byte one-record batches.
SHAPES = [(16, 1000), (1, 1000), (1, 100)]


def write_partition(directory: Path, total: int, records: int, value_size: int) -> tuple[int, int]:
    """Write ``total`` bytes of batches as SEGMENT_BYTES segments; return (batches, bytes)."""
    directory.mkdir(parents=True)
    proto = stored_batch(records, value_size, 0)
    per_segment = max(1, SEGMENT_BYTES // len(proto))
    count = max(1, total // len(proto))
    offset = 0
    written = 0
    while written < count:
        n = min(per_segment, count - written)
        base = offset
        parts = []
        for _ in range(n):
            parts.append(patched_prefix(proto, offset, 0) + proto[16:])
            offset += records
        (directory / f"{base:020d}.log").write_bytes(b"".join(parts))
        written += n
    # The indexes: let one open build them, then mark the shutdown clean.
    PartitionLog.open(directory, LogConfig(segment_bytes=SEGMENT_BYTES), now_ms=0).close()
    return count, count * len(proto)


def median_time(function, runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mib", type=int, default=256, help="MiB of segments per batch shape (default 256)")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))

    sample = os.urandom(64 << 20)
    crc_s = median_time(lambda: crc32c.crc32c(sample), args.runs)
    print(f"CRC-32C alone: {len(sample) / crc_s / 1e9:.1f} GB/s (64 MiB, median of {args.runs})")
    print(f"{'batch':>8} {'batches':>9} {'walk GB/s':>10} {'us/batch':>9} {'start-up s/GiB':>15} "
          f"{'first read of a 1 GiB segment, s':>34}")
    root = Path(tempfile.mkdtemp(prefix="dualmq-verify-bench-"))
    try:
        for records, value_size in SHAPES:
            directory = root / f"t{records}x{value_size}-0"
            batches, size = write_partition(directory, args.mib << 20, records, value_size)
            batch_bytes = size // batches
            walk_s = median_time(lambda: scan_partition(directory, 4096), args.runs)

            def clean_open() -> None:
                (directory / CLEAN_SHUTDOWN_MARKER).touch()
                PartitionLog.open(directory, LogConfig(segment_bytes=SEGMENT_BYTES), now_ms=0).close()

            open_s = median_time(clean_open, args.runs)
            per_gib = GIB / size
            print(f"{batch_bytes:>7}B {batches:>9} {size / walk_s / 1e9:>10.2f} {walk_s / batches * 1e6:>9.2f} "
                  f"{open_s * per_gib:>15.2f} {walk_s * per_gib:>34.2f}")
            shutil.rmtree(directory)
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
