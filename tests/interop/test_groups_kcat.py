"""kcat (librdkafka 2.0.2) balanced consumers against ``dualmq serve`` (issue 5).

Two ``kcat -G GROUP TOPIC`` processes on a 4-partition topic must split the partitions; after
one of them is SIGKILLed (no LeaveGroup: only its session timeout can tell the broker), the
other must take all four once the session expires. Messages are produced throughout; all must
be consumed, and duplicates may only be records the dead consumer had already received but not
yet committed (kcat auto-commits every ``auto.commit.interval.ms``) — counted and bounded.

The broker's initial rebalance delay is cut to 100 ms and the session timeout to 6 s (the
minimum Kafka allows) to keep the test short.
"""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from tests.support import broker_process, require_binary
from wire.kafka import codec
from wire.kafka.framing import decode_response_header, encode_request
from wire.kafka.messages.admin import CREATE_TOPICS

pytestmark = pytest.mark.interop

TOPIC = "balanced"
PARTITIONS = 4
SESSION_TIMEOUT_MS = 6000
COMMIT_INTERVAL_MS = 500
PER_ROUND = 8  # two records per partition every round
ROUND_SECONDS = 0.1


def create_topic(address: tuple[str, int], name: str, partitions: int) -> None:
    body = codec.encode(CREATE_TOPICS.request, 5, {"topics": [
        {"name": name, "num_partitions": partitions, "replication_factor": 1}], "timeout_ms": 5000})
    with socket.create_connection(address, timeout=5) as sock:
        sock.sendall(encode_request(19, 5, 1, "test", body, flexible_header=True))
        data = b""
        while len(data) < 4 or len(data) < 4 + int.from_bytes(data[:4], "big"):
            chunk = sock.recv(65536)
            assert chunk, "connection closed"
            data += chunk
    _, at = decode_response_header(data[4:], True)
    assert codec.decode(CREATE_TOPICS.response, 5, data[4 + at:])["topics"][0]["error_code"] == 0


class Consumer:
    """A ``kcat -G`` process writing ``partition offset value`` lines to a file."""

    def __init__(self, workdir: Path, name: str, address: str, group: str) -> None:
        self.out_path = workdir / f"{name}.out"
        self.err_path = workdir / f"{name}.err"
        with open(self.out_path, "wb") as out, open(self.err_path, "wb") as err:
            self.process = subprocess.Popen(
                [require_binary("kcat", "kcat"), "-b", address, "-G", group, TOPIC, "-u",
                 "-X", "auto.offset.reset=earliest",
                 "-X", f"session.timeout.ms={SESSION_TIMEOUT_MS}", "-X", "heartbeat.interval.ms=1000",
                 "-X", f"auto.commit.interval.ms={COMMIT_INTERVAL_MS}",
                 "-f", "%p %o %s\n"],
                stdin=subprocess.DEVNULL, stdout=out, stderr=err)

    def records(self) -> list[tuple[int, int, str]]:
        out = []
        for line in self.out_path.read_text().splitlines():
            parts = line.split(" ")
            if len(parts) == 3:
                out.append((int(parts[0]), int(parts[1]), parts[2]))
        return out

    def assignments(self) -> list[set[int]]:
        """Every ``assigned:`` set kcat reported, in order."""
        found = []
        for line in self.err_path.read_text().splitlines():
            if "assigned:" in line:
                found.append({int(p) for p in re.findall(rf"{TOPIC} \[(\d+)\]", line)})
        return found

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


def wait_for(predicate, timeout: float, what: str, tick=None) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        if tick is not None:
            tick()
        time.sleep(ROUND_SECONDS)


def test_two_kcat_consumers_split_partitions_and_take_over_after_sigkill(tmp_path):
    kcat = require_binary("kcat", "kcat")
    config = tmp_path / "broker.toml"
    config.write_text("[kafka]\ngroup_initial_rebalance_delay_ms = 100\n")
    with broker_process(tmp_path, "--config", str(config)) as broker:
        create_topic(broker.kafka, TOPIC, PARTITIONS)
        address = broker.kafka_address
        produced: list[str] = []
        # One long-lived kcat producer fed through stdin, partition chosen per line by key.
        producer_err = tmp_path / "producer.err"
        with open(producer_err, "wb") as err:
            producer = subprocess.Popen([kcat, "-b", address, "-P", "-t", TOPIC, "-K:", "-X", "linger.ms=5",
                                         "-X", "partitioner=murmur2_random"],
                                        stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=err)

        def produce_round() -> None:
            lines = []
            for _ in range(PER_ROUND):
                value = f"m{len(produced):06d}"
                produced.append(value)
                lines.append(f"{value}:{value}\n")
            producer.stdin.write("".join(lines).encode())
            producer.stdin.flush()

        first = Consumer(tmp_path, "first", address, "kg")
        second = Consumer(tmp_path, "second", address, "kg")
        try:
            # Both in one generation, two partitions each.
            wait_for(lambda: first.assignments() and second.assignments()
                     and first.assignments()[-1] | second.assignments()[-1] == set(range(PARTITIONS))
                     and not first.assignments()[-1] & second.assignments()[-1]
                     and len(first.assignments()[-1]) == 2,
                     30, "the two consumers to split the partitions", tick=produce_round)
            first_partitions = first.assignments()[-1]
            # Let records flow to both for a while, then kill the first one without goodbye.
            for _ in range(20):
                produce_round()
                time.sleep(ROUND_SECONDS)
            wait_for(lambda: {p for p, _, _ in first.records()} == first_partitions, 10,
                     "the first consumer to receive records")
            killed_at = time.monotonic()
            first.stop(signal.SIGKILL)
            # The second consumer takes all four after the session timeout.
            wait_for(lambda: second.assignments()[-1] == set(range(PARTITIONS)),
                     SESSION_TIMEOUT_MS / 1000 + 15, "the survivor to take all partitions", tick=produce_round)
            took_over = time.monotonic() - killed_at
            assert took_over >= SESSION_TIMEOUT_MS / 1000 - 1.5, f"rebalanced after {took_over:.1f} s"
            for _ in range(10):
                produce_round()
                time.sleep(ROUND_SECONDS)
            producer.stdin.close()
            assert producer.wait(30) == 0, producer_err.read_text()
            everything = set(produced)
            wait_for(lambda: {v for _, _, v in first.records() + second.records()} >= everything, 30,
                     "every produced message to be consumed")
        finally:
            if producer.poll() is None:
                producer.kill()
                producer.wait(10)
            if not producer.stdin.closed:
                producer.stdin.close()
            first.stop()
            second.stop()

        a, b = first.records(), second.records()
        values = [v for _, _, v in a + b]
        assert set(values) == everything
        duplicates = len(values) - len(set(values))
        seen_by_first = {v for _, _, v in a}
        counts: dict[str, int] = {}
        for v in values:
            counts[v] = counts.get(v, 0) + 1
        duplicated = {v for v, n in counts.items() if n > 1}
        # Only around the rebalance: records the dead consumer had but had not committed, i.e.
        # on its partitions, at most one commit interval (plus a round of slack) of production.
        assert duplicated <= seen_by_first
        assert all(p in first_partitions for p, _, v in b if v in duplicated)
        rate = PER_ROUND / ROUND_SECONDS
        bound = int(rate * (COMMIT_INTERVAL_MS / 1000 + 1.0))
        assert duplicates <= bound, f"{duplicates} duplicates, bound {bound}"
        print(f"took over after {took_over:.1f} s; {len(everything)} messages, {duplicates} duplicates")
        # Each consumer saw its partitions in offset order, without gaps or repeats.
        for records in (a, b):
            by_partition: dict[int, list[int]] = {}
            for p, o, _ in records:
                by_partition.setdefault(p, []).append(o)
            for offsets in by_partition.values():
                assert offsets == sorted(set(offsets))
