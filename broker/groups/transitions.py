"""The consumer group's state machine: the events that move a group, and THE transition table.

What lives here: ``Event`` (what can happen to a group), ``TRANSITIONS`` (state x event ->
next state and action) and ``IllegalGroupTransition``. What does not: the requests that cause
events (``broker.groups.coordinator``), the group and member records
(``broker.groups.members``) and the values handed to front-ends (``broker.groups.model``).

Kafka's classic group protocol, the life of a group, in our words:

* A group is **Empty** (no members) → **PreparingRebalance** (collecting JoinGroups) →
  **CompletingRebalance** (joins answered, waiting for the leader's SyncGroup) → **Stable**.
  Anything that changes the membership — a new member, a member leaving or timing out, a
  member re-joining with new metadata, the leader re-joining — sends it back to
  PreparingRebalance. When the last member is gone the group is Empty again (its committed
  offsets stay). Deleting an Empty group makes it **Dead** (and forgotten).
* A rebalance ends when every member has re-joined, or when the rebalance timeout (the largest
  ``rebalance_timeout_ms`` among members) runs out; members that did not re-join are removed.
  A brand-new group additionally waits ``group_initial_rebalance_delay_ms`` (extended on every
  new arrival, capped by the rebalance timeout) so that consumers starting together end up in
  one generation instead of a cascade of rebalances.
* The end of a rebalance starts a new **generation**: its number goes up by one, an assignor
  is chosen (``broker.groups.members.select_protocol``), and every waiting JoinGroup is
  answered. The leader's answer lists all members' metadata; the leader runs the assignor and
  brings the assignments in its SyncGroup, which makes the group Stable.
"""

from __future__ import annotations

import enum

from broker.errors import BrokerError
from broker.groups.model import COMPLETING, DEAD, EMPTY, PREPARING, STABLE, GroupState

__all__ = ["Event", "TRANSITIONS", "IllegalGroupTransition"]


class IllegalGroupTransition(BrokerError):
    """A (state, event) pair missing from ``TRANSITIONS``: a bug in this module, never input."""


class Event(enum.Enum):
    """Things that happen to a group and may move it to another state."""

    MEMBER_ADDED = "a new member joined"
    MEMBER_CHANGED = "a member re-joined with new metadata, or the leader re-joined"
    MEMBER_REJOINED = "a known member re-joined during a rebalance"
    MEMBER_REMOVED = "a member left, its session expired, or it missed the join/sync deadline"
    STATIC_MEMBER_REPLACED = "a static member came back under a new member id, same metadata"
    ALL_JOINED = "every member re-joined (or the rebalance timeout ran out); members remain"
    ALL_LEFT = "the rebalance ended without members"
    LEADER_SYNCED = "the leader's SyncGroup brought the assignments"
    GROUP_DELETED = "DeleteGroups on an empty group"


# THE transition table: (state, event) -> (next state, action). The action (a method name of
# GroupCoordinator, ``_act_<name>``) runs *after* the state is set; it may fire further events
# (``try_complete_join`` fires ALL_JOINED / ALL_LEFT when the rebalance can end). A pair that is
# not here cannot happen; ``_fire`` raises IllegalGroupTransition if it does.
TRANSITIONS: dict[tuple[GroupState, Event], tuple[GroupState, str]] = {
    (EMPTY, Event.MEMBER_ADDED): (PREPARING, "start_initial_rebalance"),
    (EMPTY, Event.GROUP_DELETED): (DEAD, "nothing"),
    (PREPARING, Event.MEMBER_ADDED): (PREPARING, "extend_initial_delay"),
    (PREPARING, Event.MEMBER_CHANGED): (PREPARING, "try_complete_join"),
    (PREPARING, Event.MEMBER_REJOINED): (PREPARING, "try_complete_join"),
    (PREPARING, Event.MEMBER_REMOVED): (PREPARING, "try_complete_join"),
    (PREPARING, Event.STATIC_MEMBER_REPLACED): (PREPARING, "try_complete_join"),
    (PREPARING, Event.ALL_JOINED): (COMPLETING, "complete_join"),
    (PREPARING, Event.ALL_LEFT): (EMPTY, "become_empty"),
    (COMPLETING, Event.MEMBER_ADDED): (PREPARING, "start_rebalance"),
    (COMPLETING, Event.MEMBER_CHANGED): (PREPARING, "start_rebalance"),
    (COMPLETING, Event.MEMBER_REMOVED): (PREPARING, "start_rebalance"),
    # Kafka rebalances here even for unchanged metadata: the join answers already sent name
    # the old member id.
    (COMPLETING, Event.STATIC_MEMBER_REPLACED): (PREPARING, "start_rebalance"),
    (COMPLETING, Event.LEADER_SYNCED): (STABLE, "distribute_assignments"),
    (STABLE, Event.MEMBER_ADDED): (PREPARING, "start_rebalance"),
    (STABLE, Event.MEMBER_CHANGED): (PREPARING, "start_rebalance"),
    (STABLE, Event.MEMBER_REMOVED): (PREPARING, "start_rebalance"),
    # The point of static membership: a restarted consumer keeps its partitions.
    (STABLE, Event.STATIC_MEMBER_REPLACED): (STABLE, "nothing"),
}
