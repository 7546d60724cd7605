"""A leader's view of its followers (``broker.cluster.replication``) and the fenced ISR update."""

from __future__ import annotations

import pytest

from broker.cluster.model import TopicAssignment
from broker.cluster.replication import UNKNOWN_OFFSET, LeaderPartition, expand, shrink
from broker.config import LogConfig, topic_log_config
from broker.errors import ConfigError

LAG = 1000


def leading(now: int = 0) -> LeaderPartition:
    return LeaderPartition.begin(1, (1, 2, 3), now)


def test_the_high_watermark_is_the_lowest_log_end_over_the_isr() -> None:
    state = leading()
    assert state.high_watermark((1, 2, 3), 10) == UNKNOWN_OFFSET  # nobody has fetched yet
    assert state.high_watermark((1,), 10) == 10                    # the leader alone: its log end
    state.record_fetch(2, 7, 10, now_ms=5)
    state.record_fetch(3, 4, 10, now_ms=5)
    assert state.high_watermark((1, 2, 3), 10) == 4
    assert state.high_watermark((1, 2), 10) == 7                   # 3 left the ISR: it no longer counts


def test_a_follower_is_caught_up_when_it_fetches_the_log_end_or_what_it_was_at_its_last_fetch() -> None:
    state = leading(now=0)
    state.record_fetch(2, 10, 10, now_ms=100)            # asks for the log end: caught up now
    assert state.followers[2].caught_up_ms == 100
    state.record_fetch(2, 10, 15, now_ms=200)            # the leader grew meanwhile: it was caught
    assert state.followers[2].caught_up_ms == 100        # up at 100 (its fetch then reached the end)
    state.record_fetch(2, 15, 20, now_ms=300)            # holds what the log was at 200
    assert state.followers[2].caught_up_ms == 200
    state.record_fetch(2, 16, 30, now_ms=400)            # less than the end at 300 (20): no news
    assert state.followers[2].caught_up_ms == 200


def test_followers_not_caught_up_for_the_lag_time_leave_and_caught_up_ones_may_rejoin() -> None:
    state = leading(now=0)
    assert state.lagging((1, 2, 3), now_ms=LAG, lag_max_ms=LAG) == []   # one full lag time of grace
    state.record_fetch(2, 5, 5, now_ms=900)
    assert state.lagging((1, 2, 3), now_ms=LAG + 1, lag_max_ms=LAG) == [3]
    isr = shrink((1, 2, 3), [3])
    assert isr == (1, 2)
    assert not state.may_rejoin(3, isr, 5)               # never fetched
    state.record_fetch(3, 4, 5, now_ms=1500)
    assert not state.may_rejoin(3, isr, 5)               # below the high watermark
    state.record_fetch(3, 5, 5, now_ms=1600)
    assert state.may_rejoin(3, isr, 5)
    assert not state.may_rejoin(2, isr, 5)               # in the ISR already
    assert expand(isr, 3, (3, 1, 2)) == (3, 1, 2)        # in the replicas' order


def test_only_the_leader_of_the_epoch_may_rewrite_the_isr() -> None:
    topic = TopicAssignment.new("t", bytes(range(1, 17)), [[1, 2, 3], [2, 3, 1]], {})
    updated = topic.with_isr(0, (1, 2), leader=1, leader_epoch=0)
    assert updated is not None and updated.partitions[0].isr == (1, 2)
    assert updated.partitions[1] == topic.partitions[1]
    assert TopicAssignment.from_json(updated.to_json()) == updated
    assert topic.with_isr(1, (2,), leader=1, leader_epoch=0) is None      # 2 leads partition 1
    assert topic.with_isr(0, (1, 2), leader=1, leader_epoch=1) is None    # another epoch
    assert topic.with_isr(0, (1, 4), leader=1, leader_epoch=0) is None    # 4 is no replica
    assert topic.with_isr(5, (1,), leader=1, leader_epoch=0) is None      # no such partition


def test_min_insync_replicas_is_a_topic_config_of_at_least_one() -> None:
    assert topic_log_config(LogConfig(), {"min.insync.replicas": "2"}).min_insync_replicas == 2
    assert LogConfig().min_insync_replicas == 1
    for bad in ("0", "two"):
        with pytest.raises(ConfigError, match="min.insync.replicas"):
            topic_log_config(LogConfig(), {"min.insync.replicas": bad})
