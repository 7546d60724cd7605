"""Benchmark: what a replicated commit costs a consumer, one broker against a three-broker cluster.

What it measures (issue 18, docs/cluster.md#groups): kafka-python's synchronous
``consumer.commit(offsets)`` of one partition, N times in a row, by a consumer with a manual
assignment (a "simple" commit: no group membership), against

* **one broker**: the commit goes to the local offset store, answered after its journal's
  write and fsync (``broker/offsets.py``);
* **a three-broker cluster**: the commit is a record appended to the group's
  ``__consumer_offsets`` partition (replication factor 3), answered once both followers
  fetched it and the high watermark passed it (``modes/cluster/offsets.py``).

Medians and 99th percentiles of the commit's round trip in milliseconds, per setup, R runs.

Run:  .venv/bin/python bench/offset_commit.py [--commits N] [--runs R]
Needs etcd on PATH, kafka-python and the cluster extra (httpx).
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
from dualmq.process import BrokerCluster, BrokerProcess  # noqa: E402

TOPIC = "commits"


def create_topic(bootstrap: str, factor: int) -> None:
    done = subprocess.run([sys.executable, "-m", "dualmq", "topics", "create", TOPIC, "--partitions", "1",
                           "--replication-factor", str(factor), "-b", bootstrap], capture_output=True, text=True,
                          timeout=60)
    if done.returncode != 0:
        raise SystemExit(f"topics create failed: {done.stderr[-2000:]}")


def commit_latencies(bootstrap: str, group: str, commits: int) -> list[float]:
    """Milliseconds per synchronous commit (the first, which finds the coordinator, left out)."""
    import kafka

    consumer = kafka.KafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False,
                                   request_timeout_ms=10000, retry_backoff_ms=100)
    try:
        partition = kafka.TopicPartition(TOPIC, 0)
        consumer.assign([partition])
        offset = kafka.structs.OffsetAndMetadata
        deadline = time.monotonic() + 30
        while True:  # the first commit waits for __consumer_offsets to exist and load
            try:
                consumer.commit({partition: offset(0, "", -1)})
                break
            except kafka.errors.KafkaError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        out = []
        for n in range(1, commits + 1):
            start = time.perf_counter()
            consumer.commit({partition: offset(n, "", -1)})
            out.append((time.perf_counter() - start) * 1000)
        return out
    finally:
        consumer.close()


def summary(samples: list[float]) -> str:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return f"median {statistics.median(ordered):6.2f} ms   p99 {p99:6.2f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--commits", type=int, default=500)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    results: dict[str, list[float]] = {"one broker (local store)": [], "3 brokers, RF=3 (__consumer_offsets)": []}
    with tempfile.TemporaryDirectory(prefix="dualmq-bench-commit-") as scratch:
        workdir = Path(scratch)
        with BrokerProcess(workdir / "single", "--log-level", "warning") as broker:
            create_topic(broker.kafka_address, 1)
            for run in range(args.runs):
                results["one broker (local store)"] += commit_latencies(broker.kafka_address, f"g{run}", args.commits)
        with EtcdProcess(workdir / "etcd", log_path=workdir / "etcd.log") as etcd, \
                BrokerCluster(workdir / "cluster", etcd.endpoint, 3, "--log-level", "warning") as cluster:
            time.sleep(2)  # every broker registered and seen by the others
            create_topic(cluster.bootstrap, 3)
            for run in range(args.runs):
                results["3 brokers, RF=3 (__consumer_offsets)"] += commit_latencies(
                    cluster.bootstrap, f"g{run}", args.commits)
    print(f"kafka-python consumer.commit(), {args.commits} commits x {args.runs} runs")
    for name, samples in results.items():
        print(f"  {name:40s} {summary(samples)}")


if __name__ == "__main__":
    main()
