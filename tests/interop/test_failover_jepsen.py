"""A Jepsen-style run: real clients write ``acks=all`` into RF=3 while a nemesis kills and pauses
brokers at random; then everything is healed, read back and checked (docs/cluster.md#failover).

Load: kafka-python's producer (``acks=all``, retries) on partition 0 and kcat's (librdkafka,
``acks=all``, ordered) on partition 1 of a topic with ``min.insync.replicas`` 2, and a reader
fetching both partitions from their leaders the whole time. The nemesis, one broker at a time:
SIGKILL a leader or a follower (started again after a moment), or SIGSTOP one (a leader past
the 2 s lease TTL, so it is deposed while paused) then SIGCONT.

Checked at the end, over every read made during and after the run:

* every acknowledged record is in the log, at exactly one offset - the one it was acknowledged at;
* no offset was ever read with two different values;
* no fetch returned a record at or above the high watermark it reported;
* every broker's log holds the same bytes (a returning ex-leader truncated its divergent tail).

The run is bounded (``RUN_S`` of nemesis). Its seed is printed; ``DUALMQ_JEPSEN_SEED=N`` replays it.
"""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import threading
import time

import pytest
import trio

from dualmq.process import BrokerCluster
from tests.interop.cluster_support import (  # noqa: F401  (fixtures)
    create_replicated, kafka, kafka_call, kcat, log_bytes, wait_until,
)
from tests.support import KAFKA_PYTHON_NOISE, etcd_process
from wire.kafka.batch import split_batches
from wire.kafka.errors import ErrorCode
from wire.kafka.messages.metadata import METADATA
from wire.kafka.messages.produce_fetch import FETCH
from wire.kafka.records import decode_batch

pytestmark = [pytest.mark.interop, pytest.mark.timeout(150), *KAFKA_PYTHON_NOISE]

TOPIC = "jepsen"
LEASE_TTL_S = 2
LAG_MS = 1500
RUN_S = 18.0
KCAT_PARTITION = 1
# What a call to a broker that is being killed or paused may raise.
CALL_ERRORS = (OSError, EOFError, ValueError, trio.TooSlowError, trio.BrokenResourceError, trio.ClosedResourceError)


def metadata(cluster: BrokerCluster, via: int) -> dict:
    async def call():
        with trio.fail_after(2):
            return await kafka_call(cluster.node(via).kafka, METADATA.key, 9, {
                "topics": [{"name": TOPIC}], "allow_auto_topic_creation": False,
                "include_topic_authorized_operations": False})
    return trio.run(call)


def partitions(cluster: BrokerCluster) -> dict[int, dict] | None:
    """Partition index -> state, from the first broker that answers (None: none did)."""
    for node in random.sample((1, 2, 3), 3):
        if not cluster.node(node).running:
            continue
        try:
            [entry] = metadata(cluster, node)["topics"]
        except CALL_ERRORS:
            continue
        if entry["error_code"] == ErrorCode.NONE:
            return {p["partition_index"]: p for p in entry["partitions"]}
    return None


class Reads:
    """Every (partition, offset) -> value any read saw, and what looked wrong."""

    def __init__(self) -> None:
        self.seen: dict[tuple[int, int], bytes] = {}
        self.conflicts: list[str] = []
        self.above_hw: list[str] = []
        self.fetches = 0

    def saw(self, partition: int, offset: int, value: bytes, where: str) -> None:
        old = self.seen.setdefault((partition, offset), value)
        if old != value:
            self.conflicts.append(f"{where}: partition {partition} offset {offset} read {old!r} then {value!r}")


def fetch_once(cluster: BrokerCluster, leader: int, positions: dict[int, int], reads: Reads) -> None:
    """One Fetch of both partitions from ``leader`` at ``positions``, recorded in ``reads``."""
    async def call():
        with trio.fail_after(2):
            return await kafka_call(cluster.node(leader).kafka, FETCH.key, 12, {
                "replica_id": -1, "max_wait_ms": 100, "min_bytes": 1, "max_bytes": 1 << 20, "isolation_level": 0,
                "session_id": 0, "session_epoch": -1, "forgotten_topics_data": [], "rack_id": "",
                "topics": [{"topic": TOPIC, "partitions": [{
                    "partition": p, "fetch_offset": offset, "partition_max_bytes": 1 << 20,
                    "current_leader_epoch": -1, "log_start_offset": -1, "last_fetched_epoch": -1}
                    for p, offset in positions.items()]}]})
    response = trio.run(call)
    reads.fetches += 1
    for part in response["responses"][0]["partitions"]:
        if part["error_code"] != ErrorCode.NONE or not part["records"]:
            continue
        index, hw = part["partition_index"], part["high_watermark"]
        for batch in split_batches(part["records"]):
            for record in decode_batch(batch):
                if record.offset < positions[index]:
                    continue
                if record.offset >= hw:
                    reads.above_hw.append(f"partition {index} offset {record.offset} served with high watermark {hw}")
                reads.saw(index, record.offset, record.value, f"fetch from {leader}")
                positions[index] = record.offset + 1


def reader(cluster: BrokerCluster, reads: Reads, stop: threading.Event) -> None:
    """Fetch both partitions from their leaders until ``stop``; every tenth round from 0 again."""
    positions = {0: 0, 1: 0}
    rounds = 0
    while not stop.is_set():
        rounds += 1
        if rounds % 10 == 0:
            positions = {0: 0, 1: 0}
        states = partitions(cluster)
        leaders = {p["leader_id"] for p in (states or {}).values()} - {-1}
        for leader in leaders:
            if not cluster.node(leader).running:
                continue
            mine = {p: positions[p] for p, s in states.items() if s["leader_id"] == leader}
            try:
                fetch_once(cluster, leader, mine, reads)
            except CALL_ERRORS:
                pass
            positions.update(mine)
        time.sleep(0.05)


def kafka_python_load(kafka, cluster: BrokerCluster, stop: threading.Event, acked: dict, failed: list) -> None:
    producer = kafka.KafkaProducer(bootstrap_servers=cluster.bootstrap, acks="all", retries=1000,
                                   retry_backoff_ms=100, request_timeout_ms=3000, max_block_ms=30000,
                                   linger_ms=2, max_in_flight_requests_per_connection=1,
                                   metadata_max_age_ms=1000)
    sent = []
    try:
        i = 0
        while not stop.is_set():
            value = b"kp-%d" % i
            sent.append((value, producer.send(TOPIC, value=value, partition=0)))
            i += 1
            time.sleep(0.01)
        producer.flush(60)
    finally:
        for value, future in sent:
            try:
                acked[value] = (0, future.get(0).offset)
            except Exception as exc:  # noqa: BLE001 - kafka-python's errors, any of them: not acknowledged
                failed.append(f"{value!r}: {exc!r}")
        producer.close(5)


def kcat_load(kcat: str, cluster: BrokerCluster, stop: threading.Event, acked: dict, failed: list, report) -> None:
    """kcat -P with delivery reports (-vv, into the file ``report``): librdkafka reports each
    partition's messages in order (one in flight, so retries keep the order), so the n-th
    report is the n-th line."""
    with open(report, "wb") as err_file:
        process = subprocess.Popen([kcat, "-P", "-b", cluster.bootstrap, "-t", TOPIC, "-p", str(KCAT_PARTITION),
                                    "-vv", "-X", "acks=all", "-X", "max.in.flight.requests.per.connection=1",
                                    "-X", "message.timeout.ms=60000", "-X", "retry.backoff.ms=100",
                                    "-X", "topic.metadata.refresh.interval.ms=1000"],
                                   stdin=subprocess.PIPE, stderr=err_file, stdout=subprocess.DEVNULL)
    lines = []
    try:
        i = 0
        while not stop.is_set():
            line = b"kc-%d" % i
            process.stdin.write(line + b"\n")
            process.stdin.flush()
            lines.append(line)
            i += 1
            time.sleep(0.01)
    finally:
        try:
            process.communicate(timeout=70)  # closes stdin: kcat delivers the rest and exits
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()
    err = report.read_bytes()
    reports = re.findall(rb"Message delivered to partition (\d+) \(offset (-?\d+)\)|(Delivery failed)[^\n]*", err)
    assert len(reports) == len(lines), f"{len(reports)} delivery reports for {len(lines)} lines:\n{err[-2000:]!r}"
    for line, (partition, offset, failure) in zip(lines, reports):
        if failure:
            failed.append(f"{line!r}: kcat delivery failed")
        else:
            acked[line] = (int(partition), int(offset))


def nemesis(cluster: BrokerCluster, rng: random.Random, until: float, actions: list[str]) -> None:
    """Impair one broker at a time, at random, until ``until`` (monotonic)."""
    while time.monotonic() < until:
        time.sleep(rng.uniform(0.5, 1.5))
        states = partitions(cluster)
        if states is None:
            continue
        leaders = sorted({p["leader_id"] for p in states.values()} - {-1})
        kind = rng.choice(["kill-leader", "pause-leader", "kill-follower", "pause-follower"])
        if kind.endswith("leader") and leaders:
            node = rng.choice(leaders)
        else:
            node = rng.choice([n for n in (1, 2, 3) if n not in leaders] or [1, 2, 3])
        broker = cluster.node(node)
        actions.append(f"{time.monotonic() - (until - RUN_S):5.1f}s {kind} {node}")
        if kind.startswith("kill"):
            broker.kill()
            time.sleep(rng.uniform(0.2, 1.0))
            broker.start()
        else:
            os.kill(broker.pid, signal.SIGSTOP)
            try:
                time.sleep(rng.uniform(2.5, 3.5) if kind == "pause-leader" else rng.uniform(0.3, 2.0))
            finally:
                os.kill(broker.pid, signal.SIGCONT)


def test_acknowledged_records_survive_kills_and_pauses_and_every_read_agrees(kafka, kcat, tmp_path):
    seed = int(os.environ.get("DUALMQ_JEPSEN_SEED", random.randrange(1 << 32)))
    print(f"jepsen seed: {seed} (replay with DUALMQ_JEPSEN_SEED={seed})")
    rng = random.Random(seed)
    config = tmp_path / "cluster.toml"
    config.write_text(f"[cluster]\nlease_ttl_seconds = {LEASE_TTL_S}\nreplica_lag_time_max_ms = {LAG_MS}\n")
    with etcd_process(tmp_path) as etcd, BrokerCluster(tmp_path, etcd.endpoint, 3, "--config", str(config)) as cluster:
        try:
            wait_until(lambda: all(len(metadata(cluster, n)["brokers"]) == 3 for n in (1, 2, 3)), 10, "brokers seen")
            create_replicated(kafka, cluster, TOPIC, 2)
            wait_until(lambda: partitions(cluster) is not None, 10, "the topic everywhere")

            reads, acked, failed, actions = Reads(), {}, [], []
            stop_load, stop_reads = threading.Event(), threading.Event()
            threads = [threading.Thread(target=kafka_python_load, args=(kafka, cluster, stop_load, acked, failed)),
                       threading.Thread(target=kcat_load, args=(kcat, cluster, stop_load, acked, failed, tmp_path / "kcat.err")),
                       threading.Thread(target=reader, args=(cluster, reads, stop_reads))]
            for thread in threads:
                thread.start()
            try:
                nemesis(cluster, rng, time.monotonic() + RUN_S, actions)
            finally:
                # Heal: everyone runs and is continued, then the load stops and drains.
                for broker in cluster.brokers:
                    if broker.running:
                        os.kill(broker.pid, signal.SIGCONT)
                    else:
                        broker.start()
                stop_load.set()
                for thread in threads[:2]:
                    thread.join(90)
            print("nemesis:", *actions, sep="\n  ")

            def healed() -> bool:
                states = partitions(cluster)
                return states is not None and all(sorted(s["isr_nodes"]) == [1, 2, 3] and s["leader_id"] != -1
                                                  for s in states.values())
            wait_until(healed, 20, "every partition led with all three in sync")
            # The reader catches up with everything, from offset 0 again.
            time.sleep(1.5)
            stop_reads.set()
            threads[2].join(10)
            final = Reads()
            states = partitions(cluster)
            for index, state in states.items():
                positions = {index: 0}
                for _ in range(200):
                    before = positions[index]
                    try:
                        fetch_once(cluster, state["leader_id"], positions, final)
                    except CALL_ERRORS:
                        time.sleep(0.1)
                        continue
                    if positions[index] == before:
                        break
            for (index, offset), value in final.seen.items():
                reads.saw(index, offset, value, "final read")
            truncations = sum(line.get("event") == "replica_truncated" for b in cluster.brokers for line in b.log_lines())
            print(f"acknowledged {len(acked)}, not acknowledged {len(failed)}, fetches {reads.fetches}, "
                  f"records read {len(final.seen)}, truncations {truncations}")
        finally:
            for broker in cluster.brokers:
                if broker.running:
                    os.kill(broker.pid, signal.SIGCONT)

        assert not reads.conflicts, reads.conflicts[:10]
        assert not reads.above_hw and not final.above_hw, (reads.above_hw + final.above_hw)[:10]
        assert len(acked) > 100, (len(acked), failed[:5])
        where: dict[bytes, list[tuple[int, int]]] = {}
        for (index, offset), value in final.seen.items():
            where.setdefault(value, []).append((index, offset))
        lost = {v: at for v, at in acked.items() if where.get(v) != [at]}
        assert not lost, f"{len(lost)} acknowledged records missing or misplaced: " + \
            ", ".join(f"{v!r} acked at {at}, read at {where.get(v)}" for v, at in list(lost.items())[:10])
        for index in states:
            copies = [log_bytes(cluster.node(n).data_dir, TOPIC, index) for n in (1, 2, 3)]
            assert copies[0] == copies[1] == copies[2], f"partition {index}: the brokers' logs differ"
