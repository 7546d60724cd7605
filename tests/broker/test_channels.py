"""Tests for ``broker.channels.PubSub``: counts, fan-out order, frame memoization, cut-offs.

The frames here are readable stand-ins built by ``make_frame`` below; the real RESP encoding is
the front-end's business.
"""

from __future__ import annotations

import pytest

from broker.channels import PubSub, PubSubStatistics
from broker.subscribers import HARD, SOFT, Outbox, OutputLimits, Subscriber


class FrameMaker:
    """A ``make_frame`` that records its calls."""

    def __init__(self) -> None:
        self.calls: list[tuple[bytes | None, bytes, bytes, int]] = []

    def __call__(self, pattern: bytes | None, channel: bytes, payload: bytes, fmt: int) -> bytes:
        self.calls.append((pattern, channel, payload, fmt))
        kind = b"message" if pattern is None else b"pmessage " + pattern
        return b"%d|%s|%s|%s" % (fmt, kind, channel, payload)


def new_sub(client_id: int, fmt: int = 2, hard: int = 0, soft: int = 0, seconds: int = 0) -> Subscriber:
    limits = OutputLimits(hard_bytes=hard, soft_bytes=soft, soft_seconds=seconds)
    return Subscriber(client_id=client_id, frame_format=fmt, outbox=Outbox(limits))


@pytest.fixture
def ps() -> PubSub:
    return PubSub()


def test_subscribe_counts_like_redis(ps: PubSub) -> None:
    a = new_sub(1)
    # observed: SUBSCRIBE ch1 ch1 ch2 -> 1, 1, 2
    assert [ps.subscribe(a, b"ch1"), ps.subscribe(a, b"ch1"), ps.subscribe(a, b"ch2")] == [1, 1, 2]
    assert ps.psubscribe(a, b"c*") == 3
    assert ps.psubscribe(a, b"c*") == 3
    assert ps.unsubscribe(a, b"zzz") == 3  # not subscribed: current count
    assert ps.punsubscribe(a, b"zzz") == 3
    assert ps.unsubscribe(a, b"ch1") == 2
    assert ps.punsubscribe(a, b"c*") == 1
    assert ps.unsubscribe(a, b"ch2") == 0
    assert ps.subscriber_count == 0 and ps.channels() == [] and ps.numpat() == 0


def test_unsubscribe_all_in_subscribe_order(ps: PubSub) -> None:
    a = new_sub(1)
    for channel in (b"z", b"a", b"m"):
        ps.subscribe(a, channel)
    for pattern in (b"p2*", b"p1*"):
        ps.psubscribe(a, pattern)
    assert ps.unsubscribe_all(a) == [b"z", b"a", b"m"]
    assert a.channels == set() and a.subscription_count == 2
    assert ps.unsubscribe_all(a) == []
    assert ps.punsubscribe_all(a) == [b"p2*", b"p1*"]
    assert ps.punsubscribe_all(a) == []
    assert ps.subscriber_count == 0


def test_resubscribe_moves_to_the_end_of_the_order(ps: PubSub) -> None:
    a = new_sub(1)
    ps.subscribe(a, b"x")
    ps.subscribe(a, b"y")
    ps.unsubscribe(a, b"x")
    ps.subscribe(a, b"x")
    assert ps.unsubscribe_all(a) == [b"y", b"x"]


def test_publish_to_nobody(ps: PubSub) -> None:
    make = FrameMaker()
    result = ps.publish(b"ch", b"m", 0, make)
    assert result.receivers == 0 and not result.disconnected
    assert make.calls == []
    stats = ps.statistics()
    assert stats.messages_published == 1 and stats.messages_dropped_no_subscriber == 1


def test_fan_out_order_and_count_matches_the_observed_redis_example(ps: PubSub) -> None:
    # As observed on redis-server 7.0.15: one client on ch1 and on *, c?1, [^x]h[0-9]; PUBLISH ch1 m1
    # -> 4, the message first (docs/resp.md#publishs-receiver-count).
    a = new_sub(1)
    ps.subscribe(a, b"ch1")
    for pattern in (b"*", b"c?1", b"[^x]h[0-9]", b"nomatch*"):
        ps.psubscribe(a, pattern)
    result = ps.publish(b"ch1", b"m1", 0, FrameMaker())
    assert result.receivers == 4
    assert a.outbox.take_all() == [
        b"2|message|ch1|m1",
        b"2|pmessage *|ch1|m1",
        b"2|pmessage c?1|ch1|m1",
        b"2|pmessage [^x]h[0-9]|ch1|m1",
    ]


def test_exact_subscribers_first_then_each_pattern(ps: PubSub) -> None:
    a, b, c = new_sub(1), new_sub(2), new_sub(3)
    ps.psubscribe(c, b"n*")
    ps.subscribe(b, b"news")
    ps.subscribe(a, b"news")
    ps.psubscribe(a, b"n*")
    ps.psubscribe(b, b"*s")
    result = ps.publish(b"news", b"hi", 0, FrameMaker())
    assert result.receivers == 5
    assert b.outbox.take_all() == [b"2|message|news|hi", b"2|pmessage *s|news|hi"]
    assert a.outbox.take_all() == [b"2|message|news|hi", b"2|pmessage n*|news|hi"]
    assert c.outbox.take_all() == [b"2|pmessage n*|news|hi"]
    # an empty channel name is matched by no pattern, not even *
    ps.psubscribe(a, b"*")
    assert ps.publish(b"", b"x", 0, FrameMaker()).receivers == 0


def test_make_frame_called_once_per_pattern_and_format(ps: PubSub) -> None:
    subs = [new_sub(i, fmt=2 + i % 2) for i in range(10)]
    for sub in subs:
        ps.subscribe(sub, b"ch")
        ps.psubscribe(sub, b"c*")
        ps.psubscribe(sub, b"?h")
    make = FrameMaker()
    result = ps.publish(b"ch", b"p", 0, make)
    assert result.receivers == 30
    assert sorted(make.calls, key=repr) == sorted(
        [(pat, b"ch", b"p", fmt) for pat in (None, b"c*", b"?h") for fmt in (2, 3)], key=repr
    )
    # the same bytes object is shared by every subscriber of a format
    frames = [sub.outbox.take_all()[0] for sub in subs]
    assert all(frame is frames[0] for frame in frames[0::2])
    assert all(frame is frames[1] for frame in frames[1::2])


def test_cut_subscriber_removed_and_others_unaffected(ps: PubSub) -> None:
    frame_len = len(b"2|message|ch|12345")
    slow = new_sub(1, hard=2 * frame_len)  # room for one frame only
    fast = new_sub(2)
    for sub in (slow, fast):
        ps.subscribe(sub, b"ch")
        ps.psubscribe(sub, b"c*")  # the pattern frame is larger still
    first = ps.publish(b"ch", b"12345", 100, FrameMaker())
    # slow took the message, then the pmessage broke its hard limit: cut before being counted
    assert first.receivers == 3
    assert first.disconnected == [(slow, frame_len + len(b"2|pmessage c*|ch|12345"), HARD)]
    assert slow.closed and slow.subscription_count == 0
    assert slow.outbox.take_all() == [b"2|message|ch|12345"]
    assert fast.outbox.take_all() == [b"2|message|ch|12345", b"2|pmessage c*|ch|12345"]
    assert ps.numsub(b"ch") == 1 and ps.subscriber_count == 1

    second = ps.publish(b"ch", b"12345", 200, FrameMaker())
    assert second.receivers == 2 and not second.disconnected
    assert slow.outbox.take_all() == []
    # a late SUBSCRIBE from the cut client's connection does not bring it back
    assert ps.subscribe(slow, b"ch") == 0
    assert ps.numsub(b"ch") == 1
    stats = ps.statistics()
    assert stats.subscribers_disconnected_hard == 1 and stats.subscribers_disconnected_soft == 0
    assert stats.frames_delivered == 5


def test_cut_on_exact_channel_skips_its_pattern_frames(ps: PubSub) -> None:
    slow = new_sub(1, hard=1)
    ps.subscribe(slow, b"ch")
    ps.psubscribe(slow, b"*")
    result = ps.publish(b"ch", b"x", 0, FrameMaker())
    assert result.receivers == 0
    assert [d[0] for d in result.disconnected] == [slow]
    assert ps.numpat() == 0 and ps.channels() == []
    assert ps.statistics().messages_dropped_no_subscriber == 1


def test_sweep_cuts_expired_soft_limit(ps: PubSub) -> None:
    slow = new_sub(1, soft=10, seconds=1)
    idle = new_sub(2, soft=10, seconds=1)
    ps.subscribe(slow, b"ch")
    ps.subscribe(idle, b"other")
    ps.publish(b"ch", b"0123456789", 0, FrameMaker())  # slow is above soft from t=0
    assert ps.sweep(1000) == []
    cut = ps.sweep(1001)
    assert cut == [(slow, len(b"2|message|ch|0123456789"), SOFT)]
    assert slow.closed and ps.subscriber_count == 1
    assert ps.statistics().subscribers_disconnected_soft == 1
    assert ps.sweep(10_000) == []


def test_remove_is_complete_and_idempotent(ps: PubSub) -> None:
    a, b = new_sub(1), new_sub(2)
    ps.subscribe(a, b"x")
    ps.subscribe(b, b"x")
    ps.psubscribe(a, b"x*")
    ps.remove(a)
    ps.remove(a)
    assert ps.numsub(b"x") == 1 and ps.numpat() == 0 and ps.subscriber_count == 1
    assert a.subscription_count == 0
    assert ps.publish(b"x", b"m", 0, FrameMaker()).receivers == 1


def test_introspection(ps: PubSub) -> None:
    a, b = new_sub(1), new_sub(2)
    ps.subscribe(a, b"news.tech")
    ps.subscribe(b, b"news.tech")
    ps.subscribe(a, b"sport")
    ps.psubscribe(a, b"news.*")
    ps.psubscribe(b, b"news.*")
    ps.psubscribe(b, b"s*")
    assert sorted(ps.channels()) == [b"news.tech", b"sport"]
    assert ps.channels(b"news.*") == [b"news.tech"]
    assert ps.channels(b"nothing") == []
    assert ps.numsub(b"news.tech") == 2 and ps.numsub(b"sport") == 1 and ps.numsub(b"zzz") == 0
    assert ps.numpat() == 2  # distinct patterns, not (client, pattern) pairs
    assert ps.subscriber_count == 2
    assert ps.statistics() == PubSubStatistics(
        channels=2,
        patterns=2,
        shard_channels=0,
        subscribers=2,
        messages_published=0,
        frames_delivered=0,
        messages_dropped_no_subscriber=0,
        subscribers_disconnected_hard=0,
        subscribers_disconnected_soft=0,
    )


def test_wakeup_fires_on_publish(ps: PubSub) -> None:
    woken: list[int] = []
    a = new_sub(1)
    a.outbox.wakeup = lambda: woken.append(a.client_id)
    ps.subscribe(a, b"c")
    ps.publish(b"c", b"1", 0, FrameMaker())
    ps.publish(b"c", b"2", 0, FrameMaker())
    assert woken == [1]


# -- publish_deferred: a batch's deliveries, one put per subscriber ------------------------------


def test_publish_deferred_delivers_at_flush_in_order(ps: PubSub) -> None:
    a, b = new_sub(1), new_sub(2)
    ps.subscribe(a, b"ch")
    ps.subscribe(b, b"ch")
    make = FrameMaker()
    assert [ps.publish_deferred(b"ch", p, make) for p in (b"1", b"2", b"3")] == [2, 2, 2]
    assert len(make.calls) == 3  # one frame per message, shared by both subscribers
    assert a.outbox.pending_bytes == 0  # held back until the flush
    assert ps.flush_deferred(0) == ()
    for sub in (a, b):
        assert b"".join(sub.outbox.take_all()) == b"2|message|ch|12|message|ch|22|message|ch|3"
    stats = ps.statistics()
    assert (stats.messages_published, stats.frames_delivered) == (3, 6)
    assert ps.flush_deferred(0) == ()  # nothing left


def test_publish_deferred_declines_when_it_could_be_observed(ps: PubSub) -> None:
    make = FrameMaker()
    a, b = new_sub(1), new_sub(2, fmt=3)
    ps.subscribe(a, b"two")
    ps.subscribe(a, b"other")  # a second subscription: other frames could interleave
    assert ps.publish_deferred(b"two", b"x", make) == -1
    ps.subscribe(b, b"mixed")
    ps.subscribe(new_sub(3, fmt=2), b"mixed")  # two frame formats
    assert ps.publish_deferred(b"mixed", b"x", make) == -1
    c = new_sub(4)
    ps.subscribe(c, b"plain")
    ps.psubscribe(new_sub(5), b"zzz")  # any pattern subscription
    assert ps.publish_deferred(b"plain", b"x", make) == -1
    assert make.calls == []
    assert ps.statistics().messages_published == 0  # declined publishes did nothing


def test_publish_deferred_stays_below_the_limits(ps: PubSub) -> None:
    """Frames are held back only while every put would take Outbox's no-limit fast path;
    then the channel goes through publish (which applies the limits exactly)."""
    make = FrameMaker()
    frame_len = len(make(None, b"ch", b"x", 2))
    a = new_sub(1, hard=3 * frame_len)
    ps.subscribe(a, b"ch")
    assert ps.publish_deferred(b"ch", b"x", make) == 1
    assert ps.publish_deferred(b"ch", b"x", make) == 1
    assert ps.publish_deferred(b"ch", b"x", make) == -1  # would reach the hard limit
    assert a.outbox.pending_bytes == 2 * frame_len  # what was held back is queued first
    result = ps.publish(b"ch", b"x", 0, make)
    assert result.receivers == 0 and result.disconnected == [(a, 3 * frame_len, HARD)]
    assert ps.flush_deferred(0) == ()


def test_registry_changes_deliver_deferred_frames_first(ps: PubSub) -> None:
    a = new_sub(1)
    ps.subscribe(a, b"ch")
    make = FrameMaker()
    assert ps.publish_deferred(b"ch", b"1", make) == 1
    ps.subscribe(a, b"other")
    assert a.outbox.take_all() == [b"2|message|ch|1"]
    assert ps.flush_deferred(0) == ()


def test_publish_deferred_to_nobody_counts_like_publish(ps: PubSub) -> None:
    make = FrameMaker()
    assert ps.publish_deferred(b"nobody", b"x", make) == 0
    stats = ps.statistics()
    assert (stats.messages_published, stats.messages_dropped_no_subscriber) == (1, 1)
    ps.psubscribe(new_sub(1), b"n*")
    assert ps.publish_deferred(b"nobody", b"x", make) == -1  # patterns: publish decides
    assert make.calls == []
