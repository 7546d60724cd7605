"""The controller's failover rules (``broker.cluster.failover``): leaders chosen from the live
ISR in replica order, never outside it, epochs bumped on every change of leader."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from broker.cluster.failover import NO_LEADER, elect, elect_topic, resign
from broker.cluster.model import PartitionState, TopicAssignment


def state(leader: int, replicas: tuple[int, ...], isr: tuple[int, ...], epoch: int = 3) -> PartitionState:
    return PartitionState(leader=leader, replicas=replicas, isr=isr, leader_epoch=epoch)


def test_a_live_leader_keeps_the_partition_and_its_epoch() -> None:
    before = state(1, (1, 2, 3), (1, 2, 3))
    assert elect(before, {1, 2, 3}) is before
    # A dead follower leaves the ISR; the leader and the epoch stay.
    assert elect(before, {1, 3}) == state(1, (1, 2, 3), (1, 3))


def test_a_dead_leader_is_replaced_by_the_first_live_isr_member_in_replica_order() -> None:
    assert elect(state(1, (1, 2, 3), (3, 1, 2)), {2, 3}) == state(2, (1, 2, 3), (3, 2), epoch=4)
    assert elect(state(2, (2, 3, 1), (2, 1)), {1, 3}) == state(1, (2, 3, 1), (1,), epoch=4)


def test_a_replica_outside_the_isr_never_leads_unclean_election_is_off() -> None:
    # Broker 3 is alive but out of sync: the partition goes offline, the ISR stays as it was
    # (its members may lead again once they return).
    assert elect(state(1, (1, 2, 3), (1, 2)), {3}) == state(NO_LEADER, (1, 2, 3), (1, 2), epoch=4)
    offline = state(NO_LEADER, (1, 2, 3), (1, 2), epoch=4)
    assert elect(offline, {3}) is offline  # no second bump while it stays offline
    # An ISR member returns: it leads.
    assert elect(offline, {2, 3}) == state(2, (1, 2, 3), (2,), epoch=5)


def test_a_restarted_leader_hands_over_to_another_isr_member_or_leads_again_in_a_new_epoch() -> None:
    assert elect(state(1, (1, 2, 3), (1, 2, 3)), {1, 2, 3}, restarted={1}) == state(2, (1, 2, 3), (1, 2, 3), epoch=4)
    assert elect(state(1, (1, 2, 3), (1,)), {1, 2, 3}, restarted={1}) == state(1, (1, 2, 3), (1,), epoch=4)
    # A restarted follower changes nothing here (it left the ISR when its key disappeared).
    before = state(1, (1, 2, 3), (1, 2))
    assert elect(before, {1, 2, 3}, restarted={3}) is before


def test_elect_topic_says_none_when_nothing_changes() -> None:
    topic = TopicAssignment.new("t", bytes(range(1, 17)), [[1, 2], [2, 1]], {})
    assert elect_topic(topic, {1, 2}) is None
    changed = elect_topic(topic, {2})
    assert changed is not None
    assert [(p.leader, p.isr, p.leader_epoch) for p in changed.partitions] == [(2, (2,), 1), (2, (2,), 0)]
    assert changed.topic_id == topic.topic_id and changed.name == "t"


@given(replicas=st.lists(st.integers(0, 6), min_size=1, max_size=4, unique=True), data=st.data())
def test_the_leader_is_always_a_live_isr_member_or_none_and_the_epoch_never_falls(replicas, data) -> None:
    isr = tuple(data.draw(st.lists(st.sampled_from(replicas), min_size=1, unique=True)))
    leader = data.draw(st.sampled_from([*isr, NO_LEADER]))
    before = state(leader, tuple(replicas), isr)
    live = data.draw(st.sets(st.integers(0, 6)))
    restarted = data.draw(st.sets(st.sampled_from(sorted(live)))) if live else set()
    after = elect(before, live, restarted)
    assert after.leader_epoch >= before.leader_epoch
    assert after.isr and set(after.isr) <= set(before.isr)
    if after.leader != NO_LEADER:
        assert after.leader in live and after.leader in after.isr
    else:
        assert not set(before.isr) & live
    if after.leader != before.leader:
        assert after.leader_epoch == before.leader_epoch + 1


def test_a_broker_that_registers_anew_resigns_its_leadership_and_leaves_the_isr_of_live_leaders() -> None:
    assert resign(state(2, (2, 1, 3), (2, 1, 3)), 2, {1, 2, 3}) == state(1, (2, 1, 3), (2, 1, 3), epoch=4)
    assert resign(state(1, (1, 2, 3), (1, 2, 3)), 2, {1, 2, 3}) == state(1, (1, 2, 3), (1, 3))
    # No live leader: it stays in the ISR, which may elect it (it holds every committed record).
    offline = state(NO_LEADER, (1, 2, 3), (1, 2))
    assert resign(offline, 2, {2, 3}) is offline
    # Not in the ISR, or its only member: nothing changes.
    outside = state(1, (1, 2, 3), (1, 3))
    assert resign(outside, 2, {1, 2, 3}) is outside
