"""The consumer group's state machine: the events that move a group, and THE transition table.

What lives here: ``Event`` (what can happen to a group); the *actions*, plain functions that
do what a move entails once the group is in its new state (start a rebalance, end it and
answer the held JoinGroups, hand out the assignments ...); ``TRANSITIONS``, the one table
(state x event -> next state, action) at the bottom of this file — read it first; ``fire``,
which applies it; and ``drop_member`` / ``remove_member``, which take a member out (the
latter also fires MEMBER_REMOVED).

What does not: the requests that cause events (``broker.groups.coordinator``), the group and
member records (``broker.groups.members``) and the values handed to front-ends
(``broker.groups.model``).

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
from collections.abc import Callable
from typing import NamedTuple

import attrs

from broker.errors import BrokerError
from broker.groups.members import (
    GroupData,
    join_response,
    max_rebalance_timeout,
    select_protocol,
    sync_response,
)
from broker.groups.model import COMPLETING, DEAD, EMPTY, PREPARING, STABLE, GroupState
from broker.groups.model import AnsweredTickets, JoinResponse, SyncResponse
from broker.loggers import get_logger
from broker.outcome import ErrorKind

__all__ = [
    "Event", "Action", "Transition", "TRANSITIONS", "ActionContext", "IllegalGroupTransition",
    "fire", "try_complete_join", "drop_member", "remove_member",
]

log = get_logger(__name__)


class IllegalGroupTransition(BrokerError):
    """A (state, event) pair missing from ``TRANSITIONS``: a bug in the coordinator, never input."""


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


@attrs.frozen
class ActionContext:
    """What the state machine's steps may touch besides the group they act on: where tickets
    are answered, and the one setting they read. The actions here get it from ``fire``; the
    join steps (``broker.groups.joining``) get it from the coordinator and pass it on."""

    answers: AnsweredTickets
    initial_rebalance_delay_ms: int


# An action: (the group, now, context) -> None. It runs *after* the group entered its new state.
Action = Callable[[GroupData, int, ActionContext], None]


class Transition(NamedTuple):
    """One row's right-hand side: where the group goes, and what happens then."""

    next_state: GroupState
    action: Action


def fire(group: GroupData, event: Event, now_ms: int, ctx: ActionContext) -> None:
    """Move ``group`` as the table says for ``event``, then run the row's action.

    Raises:
        IllegalGroupTransition: the table has no row for (the group's state, ``event``).
    """
    try:
        next_state, action = TRANSITIONS[(group.state, event)]
    except KeyError:
        raise IllegalGroupTransition(
            f"group {group.group_id!r}: no transition for {event.name} in "
            f"{group.state.value}") from None
    if next_state is not group.state:
        log.debug("group_state_changed", group_id=group.group_id,
                  old=group.state.value, new=next_state.value, trigger=event.name)
    group.state = next_state
    action(group, now_ms, ctx)


# ---------------------------------------------------------------------------- actions


def nothing(group: GroupData, now_ms: int, ctx: ActionContext) -> None:
    """The move itself is all there is to do."""


def start_initial_rebalance(group: GroupData, now_ms: int, ctx: ActionContext) -> None:
    """A new group: wait a little for more members before forming the first generation."""
    group.rebalance_started_ms = now_ms
    group.rebalance_timeout_ms = max_rebalance_timeout(group)
    group.in_initial_delay = True
    group.join_deadline_ms = now_ms + min(ctx.initial_rebalance_delay_ms,
                                          group.rebalance_timeout_ms)
    try_complete_join(group, now_ms, ctx)


def extend_initial_delay(group: GroupData, now_ms: int, ctx: ActionContext) -> None:
    """Another member arrived while a new group waits for more."""
    if group.in_initial_delay:
        # Give the next one the same chance, but never beyond the rebalance timeout.
        group.rebalance_timeout_ms = max(group.rebalance_timeout_ms,
                                         max_rebalance_timeout(group))
        group.join_deadline_ms = min(now_ms + ctx.initial_rebalance_delay_ms,
                                     group.rebalance_started_ms + group.rebalance_timeout_ms)
    try_complete_join(group, now_ms, ctx)


def start_rebalance(group: GroupData, now_ms: int, ctx: ActionContext) -> None:
    """Membership changed: every member must re-join within the rebalance timeout."""
    # SyncGroups held for the generation that just ended will never get assignments.
    for member in group.members.values():
        if member.sync_ticket is not None:
            ctx.answers.answer(member.sync_ticket,
                               SyncResponse.failed(ErrorKind.REBALANCE_IN_PROGRESS))
            member.sync_ticket = None
            # It could not heartbeat while we held it: its session starts afresh now.
            member.session_deadline_ms = now_ms + member.session_timeout_ms
    group.pending_sync.clear()
    group.in_initial_delay = False
    group.rebalance_started_ms = now_ms
    group.rebalance_timeout_ms = max_rebalance_timeout(group)
    group.join_deadline_ms = now_ms + group.rebalance_timeout_ms
    log.info("group_rebalance_started", group_id=group.group_id,
             generation_id=group.generation_id, members=len(group.members))
    try_complete_join(group, now_ms, ctx)


def try_complete_join(group: GroupData, now_ms: int, ctx: ActionContext) -> None:
    """End the rebalance if it can end: fires ALL_JOINED or ALL_LEFT when it does.

    It can end when every member (and every pending member) has re-joined, or at the join
    deadline; during a new group's initial delay, only at the deadline. Members that did not
    re-join by then are removed. Also called by the coordinator when a deadline passes.
    """
    if group.state is not PREPARING:
        return
    timed_out = now_ms >= group.join_deadline_ms
    if group.in_initial_delay:
        ready = timed_out
    else:
        everyone = (all(m.join_ticket is not None for m in group.members.values())
                    and not group.pending_members)
        ready = everyone or timed_out
    if not ready:
        return
    for member in list(group.members.values()):
        if member.join_ticket is None:
            # Did not re-join in time: out (its next request gets UNKNOWN_MEMBER_ID).
            drop_member(group, member.member_id, ctx, reason="rebalance_timeout")
    fire(group, Event.ALL_JOINED if group.members else Event.ALL_LEFT, now_ms, ctx)


def complete_join(group: GroupData, now_ms: int, ctx: ActionContext) -> None:
    """A new generation: choose the assignor and the leader, answer every held JoinGroup."""
    group.generation_id += 1
    group.in_initial_delay = False
    group.protocol_name = select_protocol(group)
    if group.leader_id not in group.members:
        group.leader_id = next(iter(group.members))
    group.pending_sync = set(group.members)
    group.rebalance_timeout_ms = max_rebalance_timeout(group)
    group.sync_deadline_ms = now_ms + group.rebalance_timeout_ms
    for member in group.members.values():
        member.assignment = b""
        member.session_deadline_ms = now_ms + member.session_timeout_ms
    for member in group.members.values():
        ticket, member.join_ticket = member.join_ticket, None
        ctx.answers.answer(ticket, join_response(group, member))
    log.info("group_generation_started", group_id=group.group_id,
             generation_id=group.generation_id, protocol_name=group.protocol_name,
             leader_id=group.leader_id, members=len(group.members))


def become_empty(group: GroupData, now_ms: int, ctx: ActionContext) -> None:
    """The rebalance ended with nobody left: a new (empty) generation, committed offsets stay."""
    group.generation_id += 1
    group.protocol_name = None
    group.leader_id = ""
    group.in_initial_delay = False
    log.info("group_emptied", group_id=group.group_id, generation_id=group.generation_id)


def distribute_assignments(group: GroupData, now_ms: int, ctx: ActionContext) -> None:
    """The leader's assignments are in: answer every held SyncGroup with its member's bytes."""
    for member in group.members.values():
        if member.sync_ticket is not None:
            ticket, member.sync_ticket = member.sync_ticket, None
            ctx.answers.answer(ticket, sync_response(group, member))
            member.session_deadline_ms = now_ms + member.session_timeout_ms
    log.info("group_stabilized", group_id=group.group_id, generation_id=group.generation_id)


# ---------------------------------------------------------------------------- members leaving


def drop_member(group: GroupData, member_id: str, ctx: ActionContext, *, reason: str) -> None:
    """Take a member out without firing an event (the caller fires one, or is an action).

    Its held JoinGroup / SyncGroup are answered UNKNOWN_MEMBER_ID, so nothing waits forever.
    """
    member = group.forget_member(member_id)
    if member.join_ticket is not None:
        ctx.answers.answer(member.join_ticket,
                           JoinResponse.failed(ErrorKind.UNKNOWN_MEMBER_ID, member_id))
    if member.sync_ticket is not None:
        ctx.answers.answer(member.sync_ticket, SyncResponse.failed(ErrorKind.UNKNOWN_MEMBER_ID))
    log.info("group_member_removed", group_id=group.group_id, member_id=member_id,
             reason=reason)


def remove_member(group: GroupData, member_id: str, now_ms: int, ctx: ActionContext, *,
                  reason: str) -> None:
    """A member leaves (LeaveGroup, expired session, missed SyncGroup): drop it, fire the event."""
    drop_member(group, member_id, ctx, reason=reason)
    fire(group, Event.MEMBER_REMOVED, now_ms, ctx)


# ---------------------------------------------------------------------------- THE table

# (state, event) -> (next state, action). A pair that is not here cannot happen; ``fire``
# raises IllegalGroupTransition if it does. The action runs after the state is set and may
# fire further events (``try_complete_join`` fires ALL_JOINED / ALL_LEFT when the rebalance
# can end). No row leaves Dead: a deleted group is forgotten at once.
TRANSITIONS: dict[tuple[GroupState, Event], Transition] = {
    (EMPTY, Event.MEMBER_ADDED): Transition(PREPARING, start_initial_rebalance),
    (EMPTY, Event.GROUP_DELETED): Transition(DEAD, nothing),
    (PREPARING, Event.MEMBER_ADDED): Transition(PREPARING, extend_initial_delay),
    (PREPARING, Event.MEMBER_CHANGED): Transition(PREPARING, try_complete_join),
    (PREPARING, Event.MEMBER_REJOINED): Transition(PREPARING, try_complete_join),
    (PREPARING, Event.MEMBER_REMOVED): Transition(PREPARING, try_complete_join),
    (PREPARING, Event.STATIC_MEMBER_REPLACED): Transition(PREPARING, try_complete_join),
    (PREPARING, Event.ALL_JOINED): Transition(COMPLETING, complete_join),
    (PREPARING, Event.ALL_LEFT): Transition(EMPTY, become_empty),
    (COMPLETING, Event.MEMBER_ADDED): Transition(PREPARING, start_rebalance),
    (COMPLETING, Event.MEMBER_CHANGED): Transition(PREPARING, start_rebalance),
    (COMPLETING, Event.MEMBER_REMOVED): Transition(PREPARING, start_rebalance),
    # Kafka rebalances here even for unchanged metadata: the join answers already sent name
    # the old member id.
    (COMPLETING, Event.STATIC_MEMBER_REPLACED): Transition(PREPARING, start_rebalance),
    (COMPLETING, Event.LEADER_SYNCED): Transition(STABLE, distribute_assignments),
    (STABLE, Event.MEMBER_ADDED): Transition(PREPARING, start_rebalance),
    (STABLE, Event.MEMBER_CHANGED): Transition(PREPARING, start_rebalance),
    (STABLE, Event.MEMBER_REMOVED): Transition(PREPARING, start_rebalance),
    # The point of static membership: a restarted consumer keeps its partitions.
    (STABLE, Event.STATIC_MEMBER_REPLACED): Transition(STABLE, nothing),
}
