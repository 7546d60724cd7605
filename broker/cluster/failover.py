"""The controller's failover rules: who leads a partition once brokers come and go.

Pure (no I/O); ``modes/cluster/node.py`` applies them to the topics in etcd whenever a broker's
key disappears or appears, and once when a broker becomes controller (docs/cluster.md#failover).

Kafka's rules, with unclean leader election off:

* A partition whose leader is **alive and was not restarted** keeps it.
* Otherwise the new leader is the first replica (in replica order) that is alive, in the ISR,
  and not a broker that has just restarted - unless that restarted broker is the only live
  ISR member: then it leads again (its log holds everything committed; its old leadership
  state is gone, so it needs a new epoch all the same).
* No live ISR member: leader -1 (the partition is offline). A replica outside the ISR may lack
  committed records, so it is never chosen (unclean election off). The ISR is then left as it
  was: its members are the ones that may lead once they return.
* Every dead broker leaves the ISR of every partition (Kafka's controller does the same), so
  acknowledgements stop waiting for it at once - except that the ISR never becomes empty.
* Every change of leader, or a restarted leader elected again, bumps ``leader_epoch``; a
  change of the ISR alone does not.
* A broker that registers anew **resigns** (``resign``): what it led gets a new leader as
  above, and it leaves the ISR of the partitions a live leader leads (its leader-side state
  is gone, and the leader adds it back once it has caught up). A partition with no live
  leader keeps it in its ISR: it holds every committed record and may be elected.
"""

from __future__ import annotations

from collections.abc import Collection

import attrs

from broker.cluster.model import NO_CONTROLLER, PartitionState, TopicAssignment

NO_LEADER = NO_CONTROLLER  # -1, Kafka's "no leader"


def elect(state: PartitionState, live: Collection[int], restarted: Collection[int] = ()) -> PartitionState:
    """One partition's state after brokers died (not in ``live``) or restarted.

    Args:
        state: the partition as etcd has it.
        live: the brokers registered now.
        restarted: live brokers that registered anew (a new life: what they led before is void).
    """
    isr = tuple(r for r in state.isr if r in live) or state.isr
    if state.leader in live and state.leader not in restarted:
        return attrs.evolve(state, isr=isr) if isr != state.isr else state
    candidates = [r for r in state.replicas if r in isr and r in live and r not in restarted]
    if not candidates:
        candidates = [r for r in state.replicas if r in isr and r in live]
    if not candidates:
        if state.leader == NO_LEADER:
            return state
        return attrs.evolve(state, leader=NO_LEADER, leader_epoch=state.leader_epoch + 1)
    return PartitionState(leader=candidates[0], replicas=state.replicas, isr=isr,
                          leader_epoch=state.leader_epoch + 1)


def resign(state: PartitionState, me: int, live: Collection[int]) -> PartitionState:
    """One partition's state once broker ``me`` registered anew (a restart, a lost lease)."""
    if state.leader == me:
        return elect(state, live, {me})
    if me in state.isr and state.leader in live and len(state.isr) > 1:
        return attrs.evolve(state, isr=tuple(r for r in state.isr if r != me))
    return state


def elect_topic(topic: TopicAssignment, live: Collection[int],
                restarted: Collection[int] = ()) -> TopicAssignment | None:
    """``topic`` with every partition re-elected (``elect``), or None when nothing changed."""
    partitions = tuple(elect(p, live, restarted) for p in topic.partitions)
    if partitions == topic.partitions:
        return None
    return attrs.evolve(topic, partitions=partitions)
