"""Benchmark: PartitionLog append and read throughput, per fsync policy.

Appends 1,000,000 records of 100 bytes in batches of 1,000 records, then reads everything back
with ``read(offset, 1 MiB)`` loops. Batches are built once before timing (building them is the
producer's cost, not the log's). Each policy runs 3 times; medians are printed, next to a
reference run measured in the same script: plain ``os.write`` of the same bytes to one file
and ``os.pread`` of them back in 1 MiB pieces — the ceiling the log's bookkeeping (validation
with CRC-32C, offset stamping, indexes, segment rolls) is compared against.

Policies: ``never`` (page cache only) and ``interval`` (fsync every 100 ms of wall time,
called from the append loop the way the daemon's flush tick would).

Run: ``.venv/bin/python bench/log_append.py [--records N]``
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

import structlog  # noqa: E402

from broker.config import LogConfig  # noqa: E402
from broker.log.partition_log import PartitionLog  # noqa: E402
from wire.kafka.records import build_batch  # noqa: E402

RECORDS_PER_BATCH = 1000
VALUE_SIZE = 100
READ_MAX_BYTES = 1024 * 1024
RUNS = 3
DISTINCT_BATCHES = 16
NOW_MS = 1_700_000_000_000


def run_log(batches: list[bytes], count: int, policy: str, interval_ms: int) -> tuple[float, float, int]:
    """One run: returns (append seconds, read seconds, bytes)."""
    root = Path(tempfile.mkdtemp(prefix="dualmq-bench-"))
    try:
        config = LogConfig(fsync=policy, flush_interval_ms=interval_ms, max_message_bytes=8 * 1024 * 1024)
        log = PartitionLog.open(root / "bench-0", config, now_ms=NOW_MS)
        append = log.append
        interval = interval_ms / 1000
        start = time.perf_counter()
        next_flush = start + interval
        for i in range(count):
            append(batches[i % len(batches)], NOW_MS)
            if policy == "interval":
                now = time.perf_counter()
                if now >= next_flush:
                    log.flush_sync()
                    next_flush = now + interval
        if policy == "interval":
            log.flush_sync()
        appended = time.perf_counter() - start
        total = log.size_bytes

        start = time.perf_counter()
        offset, end, read_bytes = 0, log.high_watermark, 0
        read = log.read
        while offset < end:
            data = read(offset, READ_MAX_BYTES)
            read_bytes += len(data)
            # The next offset is the one after the last batch returned: every batch here holds
            # RECORDS_PER_BATCH records, so count batches by size without decoding anything.
            offset += (len(data) // len(batches[0])) * RECORDS_PER_BATCH
        read_seconds = time.perf_counter() - start
        assert read_bytes == total, (read_bytes, total)
        log.close()
        return appended, read_seconds, total
    finally:
        shutil.rmtree(root, ignore_errors=True)


def run_reference(batches: list[bytes], count: int) -> tuple[float, float, int]:
    """Plain os.write / os.pread of the same bytes: the ceiling."""
    root = Path(tempfile.mkdtemp(prefix="dualmq-bench-ref-"))
    try:
        fd = os.open(root / "plain", os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
        start = time.perf_counter()
        for i in range(count):
            os.write(fd, batches[i % len(batches)])
        appended = time.perf_counter() - start
        total = os.fstat(fd).st_size
        start = time.perf_counter()
        position = 0
        while position < total:
            position += len(os.pread(fd, READ_MAX_BYTES, position))
        read_seconds = time.perf_counter() - start
        os.close(fd)
        return appended, read_seconds, total
    finally:
        shutil.rmtree(root, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    args = parser.parse_args()
    # Segment rolls log at info level; keep the benchmark's output to its numbers.
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    count = args.records // RECORDS_PER_BATCH
    records = count * RECORDS_PER_BATCH
    # What a producer sends: uncompressed batches of null-key records (the SDK's own encoder).
    batches = [build_batch([(None, bytes([i]) * VALUE_SIZE, None)] * RECORDS_PER_BATCH, base_timestamp=NOW_MS)
               for i in range(DISTINCT_BATCHES)]
    print(f"{records:,} records of {VALUE_SIZE} B in batches of {RECORDS_PER_BATCH} "
          f"({len(batches[0]):,} B each); read max_bytes {READ_MAX_BYTES:,}; median of {RUNS} runs")

    def report(label: str, runs: list[tuple[float, float, int]], reference: tuple[float, float] | None) -> tuple[float, float]:
        append_s = statistics.median(r[0] for r in runs)
        read_s = statistics.median(r[1] for r in runs)
        size = runs[0][2]
        line = (f"{label:<22} append {records / append_s / 1e6:7.2f} M rec/s {size / append_s / 1e6:8.1f} MB/s"
                f" | read {records / read_s / 1e6:7.2f} M rec/s {size / read_s / 1e6:8.1f} MB/s")
        if reference:
            line += f" | vs plain I/O: append x{reference[0] / append_s:.2f}, read x{reference[1] / read_s:.2f}"
        print(line)
        return append_s, read_s

    reference = report("plain os.write/pread", [run_reference(batches, count) for _ in range(RUNS)], None)
    for policy in ("never", "interval"):
        runs = [run_log(batches, count, policy, 100) for _ in range(RUNS)]
        report(f"fsync={policy}" + (" (100ms)" if policy == "interval" else ""), runs, reference)


if __name__ == "__main__":
    main()
