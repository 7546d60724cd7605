"""Benchmark: what replication costs a producer, RF=1 against RF=3, acks=1 against acks=all.

What it measures (issue 18): ``kcat -P`` producing N messages of 100 bytes (librdkafka's
default batching) into a one-partition topic of a three-broker cluster (``dualmq serve
--cluster``, one etcd, default settings: fsync = interval), four ways:

* RF=1 acks=1 - the reference: one copy, answered after the leader's append;
* RF=1 acks=all - the same thing with one replica (the ISR is the leader);
* RF=3 acks=1 - two followers copy by fetching, the producer does not wait for them;
* RF=3 acks=all (min.insync.replicas=2) - every answer waits until both followers fetched
  the batch and the high watermark passed it.

Each case runs R times, each into a fresh topic, always through the partition's leader. Medians
in messages/s, and each case's ratio to the reference measured in the same run. The times are
kcat's whole run (start-up and metadata included), as ``time kcat ...`` would show.

Run:  .venv/bin/python bench/replication.py [--messages N] [--runs R]
Needs kcat and etcd on PATH, and the cluster extra (httpx).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dualmq.etcd_process import EtcdProcess  # noqa: E402
from dualmq.process import BrokerCluster  # noqa: E402

MESSAGE_SIZE = 100
TIMEOUT = 300
CASES = [(1, "1"), (1, "all"), (3, "1"), (3, "all")]


def run(args: list[str], timeout: float = TIMEOUT) -> str:
    done = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(args[:4])}... failed: {done.stderr[-2000:]}")
    return done.stdout


def create_topic(cluster: BrokerCluster, name: str, factor: int) -> str:
    """Create ``name`` (one partition) and return its leader's Kafka address."""
    python = str(Path(sys.executable))
    run([python, "-m", "dualmq", "topics", "create", name, "--replication-factor", str(factor),
         "--config", "min.insync.replicas=%d" % min(factor, 2), "-b", cluster.bootstrap])
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        listing = run(["kcat", "-L", "-b", cluster.bootstrap, "-t", name], timeout=30)
        for line in listing.splitlines():
            if "partition 0, leader " in line:
                leader = int(line.split("leader ")[1].split(",")[0])
                if leader > 0 and len(line.split("isrs: ")[1].split(",")) == factor:
                    return cluster.node(leader).kafka_address
        time.sleep(0.1)
    raise SystemExit(f"topic {name} has no leader with a full ISR")


def produce(address: str, topic: str, messages: Path, acks: str) -> float:
    with open(messages, "rb") as stdin:
        start = time.perf_counter()
        subprocess.run(["kcat", "-P", "-b", address, "-t", topic, "-X", f"acks={acks}"], stdin=stdin, check=True,
                       timeout=TIMEOUT)
        return time.perf_counter() - start


def end_offset(address: str, topic: str) -> int:
    out = run(["kcat", "-Q", "-b", address, "-t", f"{topic}:0:-1"], timeout=30)
    return int(out.split()[-1])


def committed(address: str, topic: str, expected: int) -> None:
    """Wait until the high watermark (ListOffsets' latest) covers every message: with acks=1
    kcat is done before the followers have fetched the last batches."""
    deadline = time.monotonic() + 30
    while (end := end_offset(address, topic)) != expected:
        if end > expected or time.monotonic() > deadline:
            raise SystemExit(f"{topic}: {end} messages committed, expected {expected}")
        time.sleep(0.1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="dualmq-bench-replication-") as scratch:
        workdir = Path(scratch)
        messages = workdir / "messages.txt"
        messages.write_bytes(b"".join(b"%0*d\n" % (MESSAGE_SIZE - 1, i) for i in range(args.messages)))
        config = workdir / "cluster.toml"
        config.write_text("[cluster]\nlease_ttl_seconds = 10\n")
        with EtcdProcess(workdir / "etcd", log_path=workdir / "etcd.log") as etcd, \
                BrokerCluster(workdir, etcd.endpoint, 3, "--config", str(config), "--log-level", "warning") as cluster:
            time.sleep(1)  # every broker sees the others registered before RF=3 is asked
            seconds: dict[tuple[int, str], list[float]] = {case: [] for case in CASES}
            for attempt in range(args.runs):
                for factor, acks in CASES:
                    topic = f"rf{factor}-acks{acks}-{attempt}"
                    leader = create_topic(cluster, topic, factor)
                    seconds[(factor, acks)].append(produce(leader, topic, messages, acks))
                    committed(leader, topic, args.messages)
    reference = args.messages / statistics.median(seconds[CASES[0]])
    print(f"kcat -P, {args.messages} x {MESSAGE_SIZE} B, one partition, 3 brokers; medians of {args.runs}")
    for factor, acks in CASES:
        rate = args.messages / statistics.median(seconds[(factor, acks)])
        print(f"  RF={factor} acks={acks:<3}  {rate:>10,.0f} msg/s  {rate * MESSAGE_SIZE / 1e6:6.1f} MB/s  "
              f"x{rate / reference:.2f} of RF=1 acks=1")


if __name__ == "__main__":
    main()
