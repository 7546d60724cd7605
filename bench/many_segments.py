"""Benchmark: a data dir with 50,000 segments starts and serves under ``ulimit -n 1024``.

Writes one partition of ``--segments`` one-batch segments straight to disk (what a topic with
``segment.bytes`` = 14 and one-record batches leaves behind), then runs ``dualmq serve`` with a
soft *and* hard open-file limit of 1024 (``serve`` lifts the soft limit to the hard one, so
both must be low) and prints:

* the start-up time after a crash (no clean-shutdown marker: every ``.log`` is verified and
  fsynced) and the median start-up time of ``--runs`` clean restarts (verified, no fsync);
* how long kcat takes to read every record from the beginning (``-C -e``), whether it got
  exactly offsets 0..N-1, and the most descriptors the broker held while serving it;
* that a produce after all that gets the next offset.

Usage: ``python bench/many_segments.py [--segments 50000] [--runs 3]``. Needs kcat.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import median  # noqa: E402
from dualmq.datadir_writer import write_segments, write_topics_json  # noqa: E402
from dualmq.process import BrokerProcess  # noqa: E402

LIMIT = 1024
START_TIMEOUT = 600.0


def descriptors(broker: BrokerProcess) -> int:
    return len(os.listdir(f"/proc/{broker.pid}/fd"))


def timed_start(broker: BrokerProcess) -> float:
    """Start ``broker``; seconds from spawn until it reported ready (recovery included)."""
    broker.start(START_TIMEOUT)
    return broker.ready_seconds


def read_all(broker: BrokerProcess, expected: int) -> tuple[float, bool, int]:
    """kcat -C -e from the beginning: (seconds, got exactly 0..expected-1, max descriptors)."""
    peak = [descriptors(broker)]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.05):
            try:
                peak[0] = max(peak[0], descriptors(broker))
            except OSError:
                return

    sampler = threading.Thread(target=sample)
    sampler.start()
    started = time.perf_counter()
    try:
        result = subprocess.run(["kcat", "-b", broker.kafka_address, "-C", "-t", "many", "-e", "-q", "-o", "beginning",
                                 "-f", "%o\n"], capture_output=True, timeout=600)
    finally:
        done.set()
        sampler.join()
    elapsed = time.perf_counter() - started
    offsets = [int(line) for line in result.stdout.split()]
    return elapsed, offsets == list(range(expected)), peak[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--segments", type=int, default=50_000)
    parser.add_argument("--runs", type=int, default=3, help="clean restarts to time (median)")
    args = parser.parse_args()
    if shutil.which("kcat") is None:
        raise SystemExit("kcat not found (Debian package kcat)")
    workdir = Path(tempfile.mkdtemp(prefix="dualmq-many-segments-"))
    data_dir = workdir / "data"
    try:
        started = time.perf_counter()
        write_topics_json(data_dir, {"many": 1})
        write_segments(data_dir / "many-0", args.segments)
        print(f"wrote {args.segments} segments in {time.perf_counter() - started:.1f} s; open-file limit {LIMIT}")
        broker = BrokerProcess(data_dir, log_path=workdir / "broker.log",
                               open_file_limit=LIMIT)
        crash_start = timed_start(broker)
        print(f"start-up after a crash (verify + fsync every segment): {crash_start:.1f} s, "
              f"{descriptors(broker)} descriptors open")
        seconds, exact, peak = read_all(broker, args.segments)
        print(f"kcat -C -e read {args.segments} records in {seconds:.1f} s: exact offsets 0..{args.segments - 1}: "
              f"{exact}; broker descriptors at most {peak}")
        produced = subprocess.run(["kcat", "-b", broker.kafka_address, "-P", "-t", "many"], input=b"after\n",
                                  capture_output=True, timeout=60)
        tail = subprocess.run(["kcat", "-b", broker.kafka_address, "-C", "-t", "many", "-e", "-q", "-o", "-1",
                               "-f", "%o:%s\n"], capture_output=True, timeout=60)
        print(f"produce after: exit {produced.returncode}, last record {tail.stdout.decode().strip()!r}")
        broker.stop()
        restarts = []
        for _ in range(args.runs):
            restarts.append(timed_start(broker))
            broker.stop()
        print(f"clean restart (verify, no fsync): median {median(restarts):.1f} s of {args.runs} "
              f"({', '.join(f'{t:.1f}' for t in restarts)})")
        log_text = broker.log_text()
        print(f"'Too many open files' in the broker log: {'Too many open files' in log_text}")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
