"""Measured runs: the records of the role processes merged into figures, and real runs in both modes.

``analyse`` is fed synthetic records with known rates, duplicates, gaps and latencies and must
give exactly those figures; then short real runs (small message counts, no minimum duration:
CI time) check that the roles run in their own processes, deliver everything and are counted
right, in both modes and for a consumer group.
"""

from __future__ import annotations

import math
from array import array

import pytest
import trio

from dualmq.compare import payload
from dualmq.compare.brokers import open_broker
from dualmq.compare.measured import WARM_UP_SHARE, analyse, measure_mode
from dualmq.compare.roles import read_record, write_record
from dualmq.compare.workload import Workload

RUN = bytes.fromhex("0011223344556677")
SECOND = 1_000_000_000


def received(seqs: list[int], sent_ns: list[int], received_ns: list[int], producer: int = 0,
             run: bytes = RUN) -> tuple[array, array]:
    headers = b"".join(payload.encode(run, producer, s, t, 32) for s, t in zip(seqs, sent_ns))
    return payload.words(headers), array("q", received_ns)


def producer_record(sent: int, start: int, end: int) -> tuple[dict, dict[str, array]]:
    """A producer that sent ``sent`` messages evenly from ``start`` to ``end`` (ns)."""
    checkpoints = array("q")
    for i in range(11):
        checkpoints.extend((start + (end - start) * i // 10, sent * i // 10))
    return {"sent": sent, "failed_batches": 0}, {"checkpoints": checkpoints}


def test_payload_words_round_trip() -> None:
    words, _ = received([5, 6], [100, 200], [0, 0], producer=3)
    assert list(words) == [payload.magic_word(3), payload.run_word(RUN), 5, 100,
                           payload.magic_word(3), payload.run_word(RUN), 6, 200]


def test_analyse_counts_rates_in_the_steady_window_only() -> None:
    # 10,000 messages sent evenly over 10 s; each received 2 ms after it was sent.
    n = 10_000
    sent = [i * SECOND // 1000 for i in range(n)]
    got = [t + 2_000_000 for t in sent]
    w = Workload(messages=n)
    m = analyse("pull", w, [producer_record(n, 0, 10 * SECOND)], {"c0": received(list(range(n)), sent, got)}, RUN)
    assert m.window_s == pytest.approx(10 * (1 - 2 * WARM_UP_SHARE))
    assert m.send_per_s == pytest.approx(1000, rel=0.01)
    assert m.delivered_per_s == pytest.approx(1000, rel=0.01)
    assert m.p50_ms == pytest.approx(2.0) and m.p99_ms == pytest.approx(2.0)
    assert (m.delivered, m.duplicated, m.not_delivered) == (n, 0, 0)
    assert m.delivered_mb_per_s == pytest.approx(1000 * w.message_size / 1e6, rel=0.01)


def test_analyse_duplicates_gaps_fan_out_and_foreign_traffic() -> None:
    n = 1000
    sent = [i * 1_000_000 for i in range(n)]
    # c0 got everything, 100 of it twice; c1 missed the last 300; plus a foreign run's messages.
    seqs0 = list(range(n)) + list(range(100))
    c0 = received(seqs0, [sent[s] for s in seqs0], sorted(sent[s] + 1_000_000 for s in seqs0))
    foreign_words, foreign_times = received([1, 2], [0, 0], [0, 0], run=b"x" * 8)
    c1_words, c1_times = received(list(range(700)), sent[:700], [t + 3_000_000 for t in sent[:700]])
    words = foreign_words + c1_words
    times = foreign_times + c1_times
    m = analyse("push", Workload(messages=n, consumers=2), [producer_record(n, 0, sent[-1])],
                {"c0": c0, "c1": (words, times)}, RUN)
    assert m.consumers == 2
    assert m.delivered == n + 700
    assert m.duplicated == 100
    assert m.not_delivered == 300
    # Each message counts once in distinct/s, whoever received it.
    assert m.distinct_per_s <= m.delivered_per_s
    assert m.per_consumer_per_s == pytest.approx(m.delivered_per_s / 2)


def test_analyse_with_nothing_received_says_so() -> None:
    m = analyse("push", Workload(messages=10), [producer_record(10, 0, SECOND)], {"c0": (array("Q"), array("q"))}, RUN)
    assert m.delivered == 0 and m.not_delivered == 10 and m.delivered_per_s == 0
    assert m.p50_ms == 0.0 and math.isnan(m.max_ms)


def test_record_file_round_trip(tmp_path) -> None:
    path = str(tmp_path / "r.rec")
    arrays = {"a.words": array("Q", [1, 2, 2**64 - 1]), "a.received_ns": array("q", [-5, 7])}
    write_record(path, {"sent": 3, "names": ["a"]}, arrays)
    meta, back = read_record(path)
    assert meta == {"sent": 3, "names": ["a"]} and back == arrays


@pytest.mark.timeout(120)
@pytest.mark.parametrize("mode, changes", [
    ("pull", dict(consumers=2)),
    ("push", dict(consumers=2)),
    ("pull", dict(consumers=2, partitions=4, pull_consumers="group")),
])
def test_real_run_in_separate_processes_delivers_everything(mode, changes) -> None:
    workload = Workload(name="t", messages=3000, min_seconds=0.0, **changes)

    async def main():
        async with open_broker("subprocess", {}) as broker:
            return await measure_mode(mode, workload, broker, payload.new_run_id())

    m = trio.run(main)
    receivers = 1 if changes.get("pull_consumers") == "group" else changes["consumers"]
    assert m.sent == 3000 and m.failed_sends == 0
    assert m.consumers == receivers
    assert m.delivered == 3000 * receivers and m.duplicated == 0 and m.not_delivered == 0
    assert m.send_per_s > 0 and m.sending_s > 0


@pytest.mark.timeout(60)
def test_a_role_that_cannot_connect_fails_with_its_log() -> None:
    from dualmq.compare.brokers import BrokerHandle
    from dualmq.compare.measured import RoleError

    async def main():
        # Nothing listens there: the subscriber's process fails and its error is quoted.
        broker = BrokerHandle("external", None, "127.0.0.1:1", {})
        await measure_mode("push", Workload(messages=10), broker, payload.new_run_id())

    with pytest.raises(RoleError, match="push-consumers-0 exited .* before it could subscribe"):
        trio.run(main)
