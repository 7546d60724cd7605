"""Tests for ``broker.subscribers``: Redis's pub/sub output-buffer rule at its exact boundaries.

Rule (docs/resp.md#output-buffer-limits): queued bytes >= hard -> cut; >= soft first seen -> start the clock; still
>= soft when MORE than soft-seconds elapsed -> cut; seen below soft -> clock forgotten; 0 disables.
"""

from __future__ import annotations

from broker.config import RespConfig
from broker.subscribers import HARD, SOFT, Outbox, OutputLimits, Subscriber


def outbox(hard: int = 0, soft: int = 0, seconds: int = 0) -> Outbox:
    return Outbox(OutputLimits(hard_bytes=hard, soft_bytes=soft, soft_seconds=seconds))


def test_limits_from_config() -> None:
    limits = OutputLimits.from_config(RespConfig())
    assert limits == OutputLimits(hard_bytes=32 * 1024 * 1024, soft_bytes=8 * 1024 * 1024, soft_seconds=60)
    custom = OutputLimits.from_config(RespConfig(pubsub_hard_limit=0, pubsub_soft_limit=5, pubsub_soft_seconds=2))
    assert custom == OutputLimits(hard_bytes=0, soft_bytes=5, soft_seconds=2)


def test_put_take_all_and_counters() -> None:
    box = outbox()
    assert box.put(b"abc", 0)
    assert box.put(b"de", 0)
    assert box.pending_bytes == 5 and len(box) == 2
    assert box.take_all() == [b"abc", b"de"]
    assert box.pending_bytes == 0 and len(box) == 0
    assert box.take_all() == []
    assert box.put(b"x", 0)
    assert box.high_water_bytes == 5  # the maximum ever pending, not the current amount


def test_hard_limit_boundary_is_inclusive_and_nothing_is_queued() -> None:
    box = outbox(hard=10)
    assert box.put(b"123456789", 0)  # 9 < 10
    assert not box.put(b"x", 0)  # 10 >= 10: cut
    assert box.pending_bytes == 9 and box.take_all() == [b"123456789"]
    assert box.cut_reason == HARD and box.cut_bytes == 10
    # once cut, always refused
    assert not box.put(b"", 0)
    assert not box.check(0)


def test_single_frame_above_hard_limit_is_refused_on_empty_outbox() -> None:
    box = outbox(hard=4)
    assert not box.put(b"12345", 0)
    assert box.pending_bytes == 0 and box.cut_reason == HARD


def test_zero_disables_both_byte_limits() -> None:
    box = outbox(hard=0, soft=0, seconds=0)
    for t in range(100):
        assert box.put(b"x" * 1000, t * 1000)
    assert box.check(10**9)
    assert box.pending_bytes == 100_000


def test_soft_limit_needs_more_than_soft_seconds() -> None:
    box = outbox(soft=10, seconds=2)
    assert box.put(b"x" * 10, 1000)  # reached at t=1000: clock starts, no cut
    assert box.soft_since_ms == 1000
    assert box.put(b"y", 2000)
    assert box.check(3000)  # exactly 2 s elapsed: not MORE than 2 s
    assert box.put(b"z", 3000)
    assert not box.put(b"w", 3001)  # 2.001 s: cut, and w is not queued
    assert box.cut_reason == SOFT and box.cut_bytes == 13
    assert box.pending_bytes == 12


def test_soft_limit_expires_on_check_without_new_messages() -> None:
    box = outbox(soft=5, seconds=1)
    assert box.put(b"12345", 0)
    assert box.check(1000)
    assert not box.check(1001)
    assert box.cut_reason == SOFT and box.cut_bytes == 5


def test_soft_seconds_zero_cuts_at_the_next_later_check() -> None:
    box = outbox(soft=5, seconds=0)
    assert box.put(b"12345", 7)
    assert box.check(7)  # same instant: 0 ms elapsed is not more than 0
    assert not box.check(8)


def test_dropping_below_soft_resets_the_timer() -> None:
    box = outbox(soft=10, seconds=1)
    assert box.put(b"x" * 10, 0)
    assert box.soft_since_ms == 0
    box.take_all()  # the writer drained it
    assert box.soft_since_ms is None
    assert box.put(b"x" * 10, 5000)  # reached again: a fresh clock, not 5 s old
    assert box.soft_since_ms == 5000
    assert box.check(6000)
    assert not box.check(6001)


def test_check_below_soft_resets_the_timer() -> None:
    # take_all already forgets the clock; check must forget it too whenever it sees the queue
    # below soft (here we set the clock by hand: no public path leaves it running below soft).
    box = outbox(soft=10, seconds=1)
    assert box.put(b"x" * 3, 100)
    box.soft_since_ms = 0
    assert box.check(5000)  # 3 < 10: fine, and the clock is forgotten
    assert box.soft_since_ms is None


def test_hard_wins_when_both_fire() -> None:
    box = outbox(hard=20, soft=10, seconds=0)
    assert box.put(b"x" * 10, 0)
    assert not box.put(b"x" * 10, 5)  # 20 >= hard and soft expired
    assert box.cut_reason == HARD


def test_soft_below_hard_lets_bursts_through() -> None:
    box = outbox(hard=100, soft=10, seconds=60)
    for _ in range(9):
        assert box.put(b"x" * 10, 0)
    assert box.pending_bytes == 90
    assert not box.put(b"x" * 10, 0)  # 100: hard
    assert box.cut_reason == HARD


def test_wakeup_only_on_empty_to_non_empty() -> None:
    calls: list[int] = []
    box = outbox()
    box.wakeup = lambda: calls.append(1)
    box.put(b"a", 0)
    box.put(b"b", 0)
    assert calls == [1]
    box.take_all()
    box.put(b"c", 0)
    assert calls == [1, 1]
    # an empty frame still makes the queue non-empty
    box.take_all()
    box.put(b"", 0)
    assert calls == [1, 1, 1]


def test_wakeup_not_called_when_refused() -> None:
    calls: list[int] = []
    box = outbox(hard=1)
    box.wakeup = lambda: calls.append(1)
    assert not box.put(b"ab", 0)
    assert calls == []


def test_subscriber_identity_and_count() -> None:
    a = Subscriber(client_id=1, frame_format=2, outbox=outbox())
    b = Subscriber(client_id=1, frame_format=2, outbox=outbox())
    assert a != b and len({a, b}) == 2
    assert a.subscription_count == 0
    a.channels.add(b"c")
    a.patterns.add(b"p*")
    assert a.subscription_count == 2
    assert not a.closed and a.name == b""


def test_headroom_is_what_put_accepts_without_a_limit_test() -> None:
    box = Outbox(OutputLimits(hard_bytes=100, soft_bytes=40, soft_seconds=1))
    assert box.headroom() == 40
    assert box.put(b"x" * 30, 0)
    assert box.headroom() == 10
    assert box.put(b"x" * 15, 0)  # reaches the soft limit: the timer starts
    assert box.headroom() == 0
    assert Outbox(OutputLimits.unlimited()).headroom() == float("inf")


def test_high_water_survives_takes_and_put_back() -> None:
    box = Outbox(OutputLimits.unlimited())
    box.put(b"abc", 0)
    box.put(b"de", 0)
    assert box.high_water_bytes == 5
    assert box.take_bytes() == b"abcde"
    box.put_back(b"cde")
    box.put(b"f", 0)
    assert box.high_water_bytes == 5
    box.put(b"gh", 0)
    assert box.high_water_bytes == 6
    assert box.take_all() == [b"cde", b"f", b"gh"]
    assert box.high_water_bytes == 6
