"""Benchmark: how long a producer waits when a partition's leader dies, and what it loses.

What it measures (issue 18, docs/cluster.md#failover): a three-broker cluster (one etcd,
``dualmq serve --cluster``), one partition with replication factor 3 and
``min.insync.replicas`` 2; kafka-python's producer (``acks=all``, retries) sends one record
at a time, each waiting for its acknowledgement. After a second of that, the partition's leader
is killed with SIGKILL. Per run:

* **gap** - milliseconds from the SIGKILL to the first acknowledged produce after it (the
  kill falls between two records, so that one is the new leader's: the lease must expire, the
  controller elect, the producer refresh its metadata and retry);
* **new leader** - milliseconds from the SIGKILL until a surviving broker's Metadata names
  another leader (polled: the lease expiry and the controller's election);
* **lost** - acknowledged records that a consumer reading the partition from the beginning
  afterwards does not find at their acknowledged offset (must be 0).

Each lease TTL (the default, 10 s, and 2 s) runs R times on a fresh cluster; medians printed
(lost: the largest count of any run).

Run:  .venv/bin/python bench/failover.py [--runs R] [--ttl S ...]
Needs etcd on PATH and kafka-python and httpx (the test and cluster extras).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import kafka  # noqa: E402

from dualmq.etcd_process import EtcdProcess  # noqa: E402
from dualmq.process import BrokerCluster  # noqa: E402

TOPIC = "failover"
STEADY_S = 1.0   # producing before the kill
AFTER_S = 1.0    # producing after the first acknowledgement past the kill


def leader_of(cluster: BrokerCluster, via: str | None = None) -> int:
    """The partition's leader as Metadata (through ``via``, else any broker) says; -1: none."""
    try:
        admin = kafka.KafkaAdminClient(bootstrap_servers=via or cluster.bootstrap, request_timeout_ms=1000)
    except kafka.errors.KafkaError:
        return -1
    try:
        [topic] = admin.describe_topics([TOPIC])
        leaders = [p.get("leader", p.get("leader_id", -1)) for p in topic.get("partitions", [])]
        return leaders[0] if leaders else -1
    except kafka.errors.KafkaError:
        return -1
    finally:
        admin.close()


def produce(cluster: BrokerCluster, stop: threading.Event, go: threading.Event, idle: threading.Event,
            acked: list) -> None:
    """Send one record at a time until ``stop``, appending (ack time, offset, value); between
    two records, wait while ``go`` is clear (saying so by setting ``idle``)."""
    # reconnect_backoff_max_ms: the Java client's default (1 s). kafka-python's own lets the
    # pause before reconnecting grow much longer while the dead leader refuses, which then
    # dominates the gap (seconds after the new leader is in Metadata).
    producer = kafka.KafkaProducer(bootstrap_servers=cluster.bootstrap, acks="all", retries=1000,
                                   retry_backoff_ms=50, request_timeout_ms=2000, max_block_ms=60000,
                                   metadata_max_age_ms=60000, reconnect_backoff_max_ms=1000)
    i = 0
    try:
        while not stop.is_set():
            if not go.is_set():
                idle.set()
                go.wait()
            value = b"r-%d" % i
            i += 1
            try:
                offset = producer.send(TOPIC, value=value, partition=0).get(60).offset
            except kafka.errors.KafkaError:
                continue
            acked.append((time.monotonic(), offset, value))
    finally:
        producer.close(5)


def read_all(cluster: BrokerCluster, count: int) -> dict[int, bytes]:
    consumer = kafka.KafkaConsumer(bootstrap_servers=cluster.bootstrap, group_id=None, enable_auto_commit=False)
    got: dict[int, bytes] = {}
    try:
        part = kafka.TopicPartition(TOPIC, 0)
        consumer.assign([part])
        consumer.seek_to_beginning(part)
        deadline = time.monotonic() + 30
        while len(got) < count and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=300).values():
                got.update((r.offset, r.value) for r in records)
    finally:
        consumer.close()
    return got


def one_run(ttl: int) -> tuple[float, int, int]:
    """One cluster, one kill: (gap ms, acknowledged, lost)."""
    with tempfile.TemporaryDirectory(prefix="dualmq-failover-") as tmp:
        workdir = Path(tmp)
        config = workdir / "cluster.toml"
        config.write_text(f"[cluster]\nlease_ttl_seconds = {ttl}\n")
        with EtcdProcess(workdir / "etcd") as etcd, \
                BrokerCluster(workdir, etcd.endpoint, 3, "--config", str(config)) as cluster:
            time.sleep(1)  # every broker sees the others
            admin = kafka.KafkaAdminClient(bootstrap_servers=cluster.bootstrap)
            try:
                admin.create_topics([kafka.admin.NewTopic(TOPIC, num_partitions=1, replication_factor=3,
                                                          topic_configs={"min.insync.replicas": "2"})])
            finally:
                admin.close()
            deadline = time.monotonic() + 10
            while (leader := leader_of(cluster)) < 0 and time.monotonic() < deadline:
                time.sleep(0.1)
            survivor = next(b.kafka_address for n, b in enumerate(cluster.brokers, 1) if n != leader)
            stop, go, idle, acked = threading.Event(), threading.Event(), threading.Event(), []
            go.set()
            thread = threading.Thread(target=produce, args=(cluster, stop, go, idle, acked))
            thread.start()
            try:
                time.sleep(STEADY_S)
                # The kill falls between two records: none is in flight, so the first
                # acknowledgement after it comes from the new leader.
                go.clear()
                idle.wait(10)
                killed_at = time.monotonic()
                cluster.node(leader).kill()
                go.set()
                deadline = killed_at + ttl + 30
                elected_at = None
                while time.monotonic() < deadline and not any(t > killed_at for t, _, _ in acked):
                    if elected_at is None and leader_of(cluster, survivor) not in (leader, -1):
                        elected_at = time.monotonic()
                    time.sleep(0.05)
                time.sleep(AFTER_S)
            finally:
                stop.set()
                go.set()
                thread.join(90)
            after = [t for t, _, _ in acked if t > killed_at]
            if not after:
                raise SystemExit(f"no acknowledgement within {ttl + 30} s of the kill")
            gap_ms = (min(after) - killed_at) * 1000
            elected_ms = (elected_at - killed_at) * 1000 if elected_at is not None else float("nan")
            stored = read_all(cluster, len(acked))
            lost = sum(1 for _, offset, value in acked if stored.get(offset) != value)
            return elected_ms, gap_ms, len(acked), lost


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--ttl", type=int, nargs="+", default=[10, 2], help="lease TTLs in seconds")
    args = parser.parse_args()
    print(f"{'lease TTL':>10} | {'new leader ms':>13} | {'gap ms':>7} | {'acked':>6} | {'lost':>4} | gaps of each run")
    for ttl in args.ttl:
        runs = [one_run(ttl) for _ in range(args.runs)]
        print(f"{ttl:>8} s | {statistics.median(r[0] for r in runs):>13,.0f} | "
              f"{statistics.median(r[1] for r in runs):>7,.0f} | {statistics.median(r[2] for r in runs):>6,.0f} | "
              f"{max(r[3] for r in runs):>4} | {', '.join(f'{r[1]:,.0f}' for r in runs)}", flush=True)

if __name__ == "__main__":
    main()
