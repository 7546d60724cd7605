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
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import median  # noqa: E402
from tests.broker.datadirs import write_segments, write_topics_json  # noqa: E402

LIMIT = 1024
START_TIMEOUT = 600.0


def limit_open_files() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (LIMIT, LIMIT))


class Broker:
    """``dualmq serve`` under the low limit; ``start`` returns seconds until ready."""

    def __init__(self, data_dir: Path, workdir: Path) -> None:
        self.data_dir = data_dir
        self.workdir = workdir
        self.process: subprocess.Popen | None = None
        self.kafka = ""

    def start(self) -> float:
        ready = self.workdir / "ready.json"
        ready.unlink(missing_ok=True)
        log = open(self.workdir / "broker.log", "ab")
        started = time.perf_counter()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "dualmq", "serve", "--data-dir", str(self.data_dir), "--kafka", "127.0.0.1:0",
             "--resp", "127.0.0.1:0", "--ready-file", str(ready), "--log-format", "json"],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, preexec_fn=limit_open_files)
        log.close()
        while not ready.exists():
            if self.process.poll() is not None:
                tail = (self.workdir / "broker.log").read_text()[-3000:]
                raise SystemExit(f"broker exited with {self.process.returncode}:\n{tail}")
            if time.perf_counter() - started > START_TIMEOUT:
                raise SystemExit("broker not ready in time")
            time.sleep(0.02)
        elapsed = time.perf_counter() - started
        self.kafka = json.loads(ready.read_text())["kafka"]
        return elapsed

    def descriptors(self) -> int:
        assert self.process is not None
        return len(os.listdir(f"/proc/{self.process.pid}/fd"))

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


def read_all(broker: Broker, expected: int) -> tuple[float, bool, int]:
    """kcat -C -e from the beginning: (seconds, got exactly 0..expected-1, max descriptors)."""
    peak = [broker.descriptors()]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.05):
            try:
                peak[0] = max(peak[0], broker.descriptors())
            except OSError:
                return

    sampler = threading.Thread(target=sample)
    sampler.start()
    started = time.perf_counter()
    try:
        result = subprocess.run(["kcat", "-b", broker.kafka, "-C", "-t", "many", "-e", "-q", "-o", "beginning",
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
        broker = Broker(data_dir, workdir)
        crash_start = broker.start()
        print(f"start-up after a crash (verify + fsync every segment): {crash_start:.1f} s, "
              f"{broker.descriptors()} descriptors open")
        seconds, exact, peak = read_all(broker, args.segments)
        print(f"kcat -C -e read {args.segments} records in {seconds:.1f} s: exact offsets 0..{args.segments - 1}: "
              f"{exact}; broker descriptors at most {peak}")
        produced = subprocess.run(["kcat", "-b", broker.kafka, "-P", "-t", "many"], input=b"after\n",
                                  capture_output=True, timeout=60)
        tail = subprocess.run(["kcat", "-b", broker.kafka, "-C", "-t", "many", "-e", "-q", "-o", "-1",
                               "-f", "%o:%s\n"], capture_output=True, timeout=60)
        print(f"produce after: exit {produced.returncode}, last record {tail.stdout.decode().strip()!r}")
        broker.stop()
        restarts = []
        for _ in range(args.runs):
            restarts.append(broker.start())
            broker.stop()
        print(f"clean restart (verify, no fsync): median {median(restarts):.1f} s of {args.runs} "
              f"({', '.join(f'{t:.1f}' for t in restarts)})")
        log_text = (workdir / "broker.log").read_text()
        print(f"'Too many open files' in the broker log: {'Too many open files' in log_text}")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
