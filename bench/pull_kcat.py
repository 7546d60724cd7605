"""Benchmark: pull mode end to end with kcat, against a Redis Streams reference.

What it measures (issue 4): ``kcat -P`` producing 1,000,000 messages of 100 bytes with
librdkafka's default batching into a 1-partition topic, then ``kcat -C -e`` consuming them all
back, against ``dualmq serve`` (default settings: fsync = interval). Three runs, each into a
fresh topic; medians in messages/s and MB/s (payload bytes). The reference, measured in the
same script on the same machine: ``redis-benchmark -P 64 -c 50 -n 1000000 XADD s '*' f v``
against a local ``redis-server`` with persistence off.

Both kcat figures are wall-clock times of the whole kcat process, so they include its start-up,
metadata round trips and — for the consumer — the final empty long-poll Fetch (librdkafka's
``fetch.wait.max.ms`` = 500 ms) through which ``-e`` learns it has reached the end. That is
what a user measures with ``time kcat ...``.

Run:  .venv/bin/python bench/pull_kcat.py [--messages N] [--runs R]
Needs kcat, redis-server and redis-benchmark on PATH.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import free_port, stop_process  # noqa: E402
from dualmq.process import BrokerProcess, BrokerStartError  # noqa: E402

MESSAGE_SIZE = 100
TIMEOUT = 300


def start_broker(workdir: Path) -> BrokerProcess:
    """``dualmq serve`` with default settings on free ports (``dualmq.process``)."""
    broker = BrokerProcess(workdir / "data", log_path=workdir / "broker.log", log_level="warning")
    try:
        return broker.start()
    except BrokerStartError as exc:
        raise SystemExit(f"broker did not start: {exc}") from None


def process_cpu_seconds(pid: int) -> float:
    """utime + stime of a running process (Linux /proc), to see which side is busy."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def kcat_produce(address: str, topic: str, messages: Path, extra: tuple[str, ...] = ()) -> float:
    """Seconds ``kcat -P`` takes to send the lines of ``messages`` (``extra``: more kcat options)."""
    with open(messages, "rb") as stdin:
        start = time.perf_counter()
        subprocess.run(["kcat", "-P", "-b", address, "-t", topic, *extra], stdin=stdin, check=True, timeout=TIMEOUT)
        return time.perf_counter() - start


def kcat_consume(address: str, topic: str, expected: int, extra: tuple[str, ...] = ()) -> float:
    """Seconds ``kcat -C -e`` takes to read ``expected`` messages back (exits if it got another count)."""
    start = time.perf_counter()
    process = subprocess.Popen(["kcat", "-C", "-b", address, "-t", topic, "-e", "-o", "beginning", "-q", *extra],
                               stdout=subprocess.PIPE)
    lines = 0
    while chunk := process.stdout.read(1 << 20):
        lines += chunk.count(b"\n")
    process.wait(TIMEOUT)
    elapsed = time.perf_counter() - start
    if process.returncode != 0 or lines != expected:
        raise SystemExit(f"consume of {topic} got {lines} messages (exit {process.returncode}), expected {expected}")
    return elapsed


def redis_xadd(messages: int) -> float:
    """One redis-benchmark XADD run; returns requests per second."""
    port = free_port()
    server = subprocess.Popen(["redis-server", "--port", str(port), "--save", "", "--appendonly", "no"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while subprocess.run(["redis-cli", "-p", str(port), "ping"], capture_output=True).stdout.strip() != b"PONG":
            if time.monotonic() > deadline:
                raise SystemExit("redis-server did not start")
            time.sleep(0.05)
        out = subprocess.run(["redis-benchmark", "-p", str(port), "-P", "64", "-c", "50", "-n", str(messages), "-q",
                              "XADD", "s", "*", "f", "v"], capture_output=True, text=True, check=True,
                             timeout=TIMEOUT).stdout
        # e.g. "XADD s * f v: 1234567.00 requests per second, p50=..."; -q output uses \r.
        line = [part for part in out.replace("\r", "\n").splitlines() if "requests per second" in part][-1]
        return float(line.split(":")[1].split("requests")[0])
    finally:
        stop_process(server)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    for tool in ("kcat", "redis-server", "redis-benchmark", "redis-cli"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} not found on PATH")
    payload_mb = args.messages * MESSAGE_SIZE / 1e6
    with tempfile.TemporaryDirectory(prefix="dualmq-bench-") as tmp:
        workdir = Path(tmp)
        messages = workdir / "messages.txt"
        messages.write_bytes((b"m" * MESSAGE_SIZE + b"\n") * args.messages)
        broker = start_broker(workdir)
        address = broker.kafka_address
        produce, consume = [], []
        try:
            for run in range(args.runs):
                topic = f"bench-{run}"
                broker_cpu, kcat_cpu = process_cpu_seconds(broker.pid), children_cpu_seconds()
                produce.append(kcat_produce(address, topic, messages))
                broker_mid, kcat_mid = process_cpu_seconds(broker.pid), children_cpu_seconds()
                consume.append(kcat_consume(address, topic, args.messages))
                broker_end, kcat_end = process_cpu_seconds(broker.pid), children_cpu_seconds()
                print(f"run {run + 1}: produce {produce[-1]:.2f} s wall (kcat cpu {kcat_mid - kcat_cpu:.2f} s, "
                      f"broker cpu {broker_mid - broker_cpu:.2f} s); consume {consume[-1]:.2f} s wall "
                      f"(kcat cpu {kcat_end - kcat_mid:.2f} s, broker cpu {broker_end - broker_mid:.2f} s)",
                      flush=True)
        finally:
            broker.stop()
    redis = [redis_xadd(args.messages) for _ in range(args.runs)]

    produce_rate = args.messages / statistics.median(produce)
    consume_rate = args.messages / statistics.median(consume)
    redis_rate = statistics.median(redis)
    print()
    print(f"dualmq pull mode (fsync=interval), {args.messages:,} x {MESSAGE_SIZE} B, median of {args.runs}, "
          f"{os.cpu_count()} CPUs")
    print(f"{'':28}{'msgs/s':>14}{'MB/s':>10}{'vs Redis XADD':>16}")
    print(f"{'kcat -P (produce)':28}{produce_rate:>14,.0f}{produce_rate * MESSAGE_SIZE / 1e6:>10.1f}"
          f"{produce_rate / redis_rate:>15.2f}x")
    print(f"{'kcat -C -e (consume)':28}{consume_rate:>14,.0f}{consume_rate * MESSAGE_SIZE / 1e6:>10.1f}"
          f"{consume_rate / redis_rate:>15.2f}x")
    tail = statistics.median(consume) - 0.5
    print(f"{'  same, minus final 500 ms':28}{args.messages / tail:>14,.0f}"
          f"{args.messages / tail * MESSAGE_SIZE / 1e6:>10.1f}{args.messages / tail / redis_rate:>15.2f}x"
          "   (derived: kcat -e waits out one empty long-poll Fetch)")
    print(f"{'redis-benchmark XADD -P 64':28}{redis_rate:>14,.0f}{'':>10}{1:>15.2f}x")
    print(f"(payload {payload_mb:.0f} MB per run; targets: produce >= 1,000,000 msgs/s, consume >= 2,000,000 msgs/s)")


if __name__ == "__main__":
    main()
