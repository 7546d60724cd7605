"""Pure parts of the pull-mode SDK, without a broker: partitioner, assignors, protocol bytes,
batching rules, dead-letter headers."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dualmq.pull import ConsumerRecord
from dualmq.pull.accumulator import RecordAccumulator, record_size
from dualmq.pull.assignors import (
    assign_range,
    assign_roundrobin,
    decode_assignment,
    decode_subscription,
    encode_assignment,
    encode_subscription,
)
from dualmq.pull.connection import CLIENT_VERSIONS, choose_versions
from dualmq.pull.dead_letters import dead_letter_headers
from dualmq.pull.partitioner import StickyPartitioner, murmur2, partition_for_key, to_positive
from wire.errors import LocalProtocolError
from wire.kafka.records import build_batch, decode_records, finish_batch

# --- murmur2 ---------------------------------------------------------------------------------------

# Kafka's own vectors (clients/src/test/java/org/apache/kafka/common/utils/UtilsTest.java, testMurmur2).
KAFKA_VECTORS = {
    b"21": -973932308,
    b"foobar": -790332482,
    b"a-little-bit-long-string": -985981536,
    b"a-little-bit-longer-string": -1486304829,
    b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
    b"abc": 479470107,
}


@pytest.mark.parametrize(("data", "expected"), KAFKA_VECTORS.items())
def test_murmur2_matches_kafka_vectors(data: bytes, expected: int) -> None:
    assert murmur2(data) == expected


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=64), st.integers(1, 200))
def test_partition_for_key_matches_kafka_python(key: bytes, partitions: int) -> None:
    kafka_python = pytest.importorskip("kafka.partitioner.default")
    # kafka-python's murmur2 returns the unsigned form; the partition rule is the same.
    assert to_positive(murmur2(key)) == kafka_python.murmur2(key) & 0x7FFFFFFF
    assert partition_for_key(key, partitions) == (kafka_python.murmur2(key) & 0x7FFFFFFF) % partitions


def test_sticky_partitioner_sticks_until_batch_completes() -> None:
    partitioner = StickyPartitioner()
    first = partitioner.partition("t", None, 4)
    assert all(partitioner.partition("t", None, 4) == first for _ in range(10))
    partitioner.batch_completed("t", first, 4)
    second = partitioner.partition("t", None, 4)
    assert second != first
    assert partitioner.partition("t", b"key", 4) == partition_for_key(b"key", 4)


# --- consumer protocol bytes (Kafka's ConsumerProtocolSubscription / Assignment) -----------------------

def test_subscription_v0_golden() -> None:
    assert encode_subscription(["t1"]) == bytes.fromhex("0000" "00000001" "00027431" "00000000")


def test_assignment_v0_golden() -> None:
    expected = bytes.fromhex("0000" "00000001" "00027431" "00000002" "00000000" "00000001" "00000000")
    assert encode_assignment([("t1", 1), ("t1", 0)]) == expected
    assert decode_assignment(expected) == [("t1", 0), ("t1", 1)]


def test_subscription_decodes_java_null_user_data_and_newer_versions() -> None:
    java_v0 = bytes.fromhex("0000" "00000001" "00027431" "ffffffff")
    assert decode_subscription(java_v0).topics == ("t1",)
    assert decode_subscription(java_v0).user_data is None
    v1 = encode_subscription(["a", "b"], version=1, owned_partitions=[("a", 3)])
    assert decode_subscription(v1).owned_partitions == (("a", 3),)
    # A future version 9 with unknown trailing bytes still yields what we know.
    future = b"\x00\x09" + v1[2:] + b"\xff\xff\xff\xff" + b"\x00\x00extra"
    assert decode_subscription(future).topics == ("a", "b")


def test_empty_assignment_means_no_partitions() -> None:
    assert decode_assignment(b"") == []


# --- assignors ----------------------------------------------------------------------------------------

def test_range_matches_java_example() -> None:
    # Java RangeAssignor docs: two consumers, two topics of three partitions each.
    plan = assign_range({"C0": ["t0", "t1"], "C1": ["t0", "t1"]}, {"t0": 3, "t1": 3})
    assert plan == {"C0": [("t0", 0), ("t0", 1), ("t1", 0), ("t1", 1)], "C1": [("t0", 2), ("t1", 2)]}


def test_roundrobin_matches_java_example() -> None:
    plan = assign_roundrobin({"C0": ["t0", "t1"], "C1": ["t0", "t1"]}, {"t0": 3, "t1": 3})
    assert plan == {"C0": [("t0", 0), ("t0", 2), ("t1", 1)], "C1": [("t0", 1), ("t1", 0), ("t1", 2)]}


members = st.lists(st.text("abcdefgh", min_size=1, max_size=6), min_size=1, max_size=8, unique=True)
topic_counts = st.dictionaries(st.sampled_from(["t0", "t1", "t2"]), st.integers(0, 20), min_size=1)


@settings(max_examples=200, deadline=None)
@given(members, topic_counts, st.sampled_from([assign_range, assign_roundrobin]))
def test_assignors_assign_every_partition_exactly_once_and_balance(names, counts, assignor) -> None:
    subscriptions = {m: sorted(counts) for m in names}  # everyone subscribes to everything
    plan = assignor(subscriptions, counts)
    assigned = [tp for tps in plan.values() for tp in tps]
    expected = [(t, p) for t, n in counts.items() for p in range(n)]
    assert sorted(assigned) == sorted(expected)
    if assignor is assign_roundrobin:
        sizes = [len(tps) for tps in plan.values()]
        assert max(sizes) - min(sizes) <= 1
    else:  # range balances per topic
        for topic in counts:
            per = [sum(1 for t, _ in tps if t == topic) for tps in plan.values()]
            assert max(per) - min(per) <= 1


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(st.text("abc", min_size=1, max_size=4),
                       st.lists(st.sampled_from(["t0", "t1", "t2"]), min_size=1, unique=True), min_size=1),
       st.sampled_from([assign_range, assign_roundrobin]))
def test_assignors_respect_subscriptions(subscriptions, assignor) -> None:
    counts = {"t0": 4, "t1": 3, "t2": 1}
    plan = assignor(subscriptions, counts)
    for member, tps in plan.items():
        assert all(t in subscriptions[member] for t, _ in tps)
    wanted = {t for ts in subscriptions.values() for t in ts}
    assert sorted(tp for tps in plan.values() for tp in tps) == sorted(
        (t, p) for t in wanted for p in range(counts[t]))


# --- version negotiation ----------------------------------------------------------------------------

def test_choose_versions_picks_highest_common() -> None:
    chosen = choose_versions({0: (0, 11), 1: (4, 12), 3: (0, 5), 22: (0, 4), 99: (0, 1), 19: (8, 9)})
    assert chosen[0] == 9 and chosen[1] == 12 and chosen[3] == 5 and chosen[22] == 4
    assert 99 not in chosen and 19 not in chosen  # unknown to us / no overlap


def test_client_versions_are_what_the_sdk_has_always_spoken() -> None:
    # Written out by hand: CLIENT_VERSIONS is built from the API declarations, so a change to a
    # declaration would silently change what the SDK negotiates with real Kafka brokers too.
    assert CLIENT_VERSIONS == {
        0: (3, 9), 1: (4, 12), 2: (1, 7), 3: (1, 12), 8: (2, 8), 9: (1, 7), 10: (0, 3), 11: (0, 7),
        12: (0, 4), 13: (0, 4), 14: (0, 4), 15: (0, 5), 16: (0, 4), 17: (1, 1), 18: (0, 4), 19: (2, 7),
        20: (1, 6), 22: (0, 4), 29: (1, 3), 30: (1, 3), 31: (1, 3), 36: (0, 2), 37: (0, 3), 42: (0, 2),
    }


# --- accumulator ----------------------------------------------------------------------------------------

class _News:
    """Records the accumulator's ``on_batch`` calls: ``(batch, full)``."""

    def __init__(self) -> None:
        self.calls: list[tuple[object, bool]] = []

    def __call__(self, batch, full: bool) -> None:
        self.calls.append((batch, full))

    def take(self) -> list[tuple[object, bool]]:
        calls, self.calls = self.calls, []
        return calls


def test_batch_closes_at_batch_bytes() -> None:
    news = _News()
    acc = RecordAccumulator(batch_bytes=1000, linger=0.005, delivery_timeout=120, on_batch=news)
    size = record_size(None, b"x" * 100, None)
    closed_at = None
    for i in range(20):
        acc.append("t", 0, None, b"x" * 100, None, 0, now=0.0)
        if any(full for _, full in news.take()) and closed_at is None:
            closed_at = i
    assert closed_at is not None
    ready_batch = acc.ready[("t", 0)][0]
    assert 61 + len(ready_batch) * size <= 1000 + size
    assert acc.incomplete == len(acc.ready[("t", 0)]) + (1 if ("t", 0) in acc.open else 0)


def test_on_batch_reports_opens_and_fills_never_plain_records() -> None:
    news = _News()
    acc = RecordAccumulator(batch_bytes=300, linger=1, delivery_timeout=120, on_batch=news)
    first = acc.append("t", 0, None, b"a" * 100, None, 0, now=0)
    assert news.take() == [(first._batch, False)]
    acc.append("t", 0, None, b"b" * 100, None, 0, now=0)
    assert news.take() == []
    third = acc.append("t", 0, None, b"c" * 100, None, 0, now=0)  # does not fit: closes the first
    assert news.take() == [(first._batch, True), (third._batch, False)]


def test_linger_closes_old_batches_only() -> None:
    acc = RecordAccumulator(batch_bytes=1 << 20, linger=0.010, delivery_timeout=120)
    acc.append("t", 0, None, b"a", None, 0, now=0.0)
    acc.append("t", 1, None, b"b", None, 0, now=0.008)
    assert acc.next_linger_deadline() == pytest.approx(0.010)
    assert acc.expire_linger(0.009) is False
    assert acc.expire_linger(0.010) is True
    assert ("t", 0) in acc.ready and ("t", 1) in acc.open
    assert acc.expire_linger(0.011, flush=True) is True
    assert not acc.open


def test_oversized_record_gets_its_own_batch() -> None:
    news = _News()
    acc = RecordAccumulator(batch_bytes=100, linger=1, delivery_timeout=120, on_batch=news)
    acc.append("t", 0, None, b"x", None, 0, now=0)
    news.take()
    delivery = acc.append("t", 0, None, b"y" * 500, None, 0, now=0)
    assert delivery._index == 0 and (delivery._batch, True) in news.take()
    assert [len(b) for b in acc.ready[("t", 0)]] == [1, 1]
    assert acc.buffered_bytes == sum(b.size for b in acc.ready[("t", 0)])


def test_requeue_orders_retries_by_sequence() -> None:
    acc = RecordAccumulator(batch_bytes=10, linger=1, delivery_timeout=120)
    batches = [acc.append("t", 0, None, b"x" * 20, None, 0, now=0)._batch for _ in range(3)]
    acc.ready.clear()
    for seq, batch in enumerate(batches):
        batch.base_sequence = seq * 10
    acc.requeue(batches[2])
    acc.requeue(batches[0])
    acc.requeue(batches[1])
    assert [b.base_sequence for b in acc.ready[("t", 0)]] == [0, 10, 20]


async def test_delivery_reports_offset_of_record() -> None:
    acc = RecordAccumulator(batch_bytes=1 << 20, linger=1, delivery_timeout=120)
    first = acc.append("t", 3, None, b"a", None, 0, now=0)
    second = acc.append("t", 3, None, b"b", None, 0, now=0)
    assert first._batch is second._batch and second._index == 1
    first._batch.complete(100)
    assert await second.wait() == (3, 101)
    assert await first.wait() == (3, 100)


def _built(batch) -> bytes:
    return finish_batch(batch.body, batch.count, base_timestamp=batch.base_timestamp,
                        max_timestamp=batch.max_timestamp)


def test_batch_bytes_equal_build_batch_and_size_is_exact() -> None:
    acc = RecordAccumulator(batch_bytes=1 << 20, linger=1, delivery_timeout=120)
    records = [(None, b"v1", None), (b"k", None, [("h", b"x"), ("n", None)]), (b"k" * 3000, b"v" * 5000, None)]
    stamps = [1000, 990, 1200]  # out of order: the base is the first, the max the largest
    for (key, value, headers), stamp in zip(records, stamps):
        batch = acc.append("t", 0, key, value, headers, stamp, now=0)._batch
    assert len(batch) == 3 and batch.base_timestamp == 1000 and batch.max_timestamp == 1200
    assert _built(batch) == build_batch(records, timestamps=stamps)
    assert batch.size == len(_built(batch))
    # An open batch holds a whole batch_bytes of the buffer; closing it gives back the rest.
    assert acc.buffered_bytes == 1 << 20
    acc.expire_linger(0, flush=True)
    assert acc.buffered_bytes == batch.size == len(_built(batch))
    acc.finished(batch)
    assert acc.buffered_bytes == 0 and acc.incomplete == 0


def test_overflowing_record_moves_to_a_new_batch_with_fresh_deltas() -> None:
    news = _News()
    acc = RecordAccumulator(batch_bytes=300, linger=1, delivery_timeout=120, on_batch=news)
    first = acc.append("t", 0, None, b"a" * 100, None, 5000, now=0)._batch
    acc.append("t", 0, None, b"b" * 100, None, 5001, now=0)
    delivery = acc.append("t", 0, None, b"c" * 100, None, 5002, now=0)
    second = delivery._batch
    assert delivery._index == 0 and second is not first and acc.ready[("t", 0)][0] is first
    assert (first, True) in news.take()
    assert first.size <= 300 and first.size == len(_built(first))  # the third record was rolled back
    assert [r[1:4] for r in decode_records(_built(first))] == [(5000, None, b"a" * 100), (5001, None, b"b" * 100)]
    assert decode_records(_built(second)) == [(0, 5002, None, b"c" * 100, ())]
    assert acc.buffered_bytes == first.size + 300  # the closed batch's size, the open one's reservation


def test_unencodable_record_changes_nothing() -> None:
    acc = RecordAccumulator(batch_bytes=1 << 20, linger=1, delivery_timeout=120)
    with pytest.raises(LocalProtocolError):
        acc.append("t", 0, None, "text", None, 0, now=0)
    assert not acc.open and acc.incomplete == 0 and acc.buffered_bytes == 0
    batch = acc.append("t", 0, None, b"ok", None, 0, now=0)._batch
    before = (bytes(batch.body), batch.size, acc.buffered_bytes)
    with pytest.raises(LocalProtocolError):
        acc.append("t", 0, b"k", 42, None, 0, now=0)
    assert (bytes(batch.body), batch.size, acc.buffered_bytes, len(batch)) == (*before, 1)


def test_clock_is_read_only_when_a_batch_starts() -> None:
    reads = []
    acc = RecordAccumulator(batch_bytes=1 << 20, linger=1, delivery_timeout=120,
                            clock=lambda: reads.append(1) or 7.0)
    for _ in range(5):
        batch = acc.append("t", 0, None, b"x", None, 0)._batch
    assert len(reads) == 1 and batch.created == 7.0


def test_sticky_partition_is_readable_directly() -> None:
    partitioner = StickyPartitioner()
    assert partitioner.sticky.get("t") is None
    chosen = partitioner.partition("t", None, 3)
    assert partitioner.sticky["t"] == chosen


# --- dead letters -------------------------------------------------------------------------------------------

def test_dead_letter_headers() -> None:
    record = ConsumerRecord("orders", 2, 41, 1700000000000, b"k", b"v", (("trace", b"abc"),))
    headers = dead_letter_headers(record, ValueError("bad amount"), 4)
    assert headers == [
        ("trace", b"abc"),
        ("dlq.error", b"ValueError: bad amount"),
        ("dlq.attempts", b"4"),
        ("dlq.origin.topic", b"orders"),
        ("dlq.origin.partition", b"2"),
        ("dlq.origin.offset", b"41"),
        ("dlq.origin.timestamp", b"1700000000000"),
    ]
