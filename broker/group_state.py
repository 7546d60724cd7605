"""The group state machine's data and its one transition table.

What lives here: ``Event`` (what can happen to a group), ``TRANSITIONS`` (state x event ->
next state and action), ``HEARTBEAT_REPLY`` (state -> Heartbeat's answer), the mutable records
``GroupData`` / ``MemberData``, and small pure rules over them (member validation, protocol
choice). What does not: the actions themselves and the request handling, which are in
``broker.groups`` (read its docstring first); values handed to front-ends are in
``broker.group_model``.

Split from ``broker.groups`` to keep each file near one concept: *what the states are and
which moves exist* here, *how requests make those moves* there.
"""

from __future__ import annotations

import enum
from collections import Counter
from collections.abc import Sequence

import attrs

from broker.errors import BrokerError
from broker.outcome import ErrorKind
from broker.group_model import GroupState, JoinTicket, SyncTicket

__all__ = [
    "Event", "TRANSITIONS", "HEARTBEAT_REPLY", "IllegalGroupTransition", "GroupData",
    "MemberData", "Protocols", "validate_member", "supports_protocols", "select_protocol",
    "max_rebalance_timeout", "EMPTY", "PREPARING", "COMPLETING", "STABLE", "DEAD",
]

Protocols = Sequence[tuple[str, bytes]]

EMPTY = GroupState.EMPTY
PREPARING = GroupState.PREPARING_REBALANCE
COMPLETING = GroupState.COMPLETING_REBALANCE
STABLE = GroupState.STABLE
DEAD = GroupState.DEAD


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

# Heartbeat's answer for a known member of the right generation, by state (GUIDE §4.1 step 4).
HEARTBEAT_REPLY: dict[GroupState, ErrorKind] = {
    EMPTY: ErrorKind.UNKNOWN_MEMBER_ID,
    PREPARING: ErrorKind.REBALANCE_IN_PROGRESS,  # "stop fetching and re-join"
    COMPLETING: ErrorKind.NONE,
    STABLE: ErrorKind.NONE,
    DEAD: ErrorKind.COORDINATOR_NOT_AVAILABLE,
}


@attrs.define(eq=False)
class MemberData:
    member_id: str
    instance_id: str | None
    client_id: str
    client_host: str
    session_timeout_ms: int
    rebalance_timeout_ms: int
    protocols: tuple[tuple[str, bytes], ...]
    session_deadline_ms: int
    assignment: bytes = b""
    join_ticket: JoinTicket | None = None
    sync_ticket: SyncTicket | None = None

    def metadata_for(self, protocol_name: str | None) -> bytes:
        return next((meta for name, meta in self.protocols if name == protocol_name), b"")

    @property
    def kept_alive(self) -> bool:
        # While we hold its JoinGroup or SyncGroup, the member cannot heartbeat: not its fault.
        return self.join_ticket is not None or self.sync_ticket is not None


@attrs.define(eq=False)
class GroupData:
    group_id: str
    state: GroupState = EMPTY
    generation_id: int = 0
    protocol_type: str | None = None
    protocol_name: str | None = None
    leader_id: str = ""
    members: dict[str, MemberData] = attrs.field(factory=dict)  # join order
    static_members: dict[str, str] = attrs.field(factory=dict)  # instance id -> member id
    pending_members: dict[str, int] = attrs.field(factory=dict)  # member id -> deadline
    rebalance_started_ms: int = 0
    rebalance_timeout_ms: int = 0
    join_deadline_ms: int = 0
    in_initial_delay: bool = False
    pending_sync: set[str] = attrs.field(factory=set)
    sync_deadline_ms: int = 0


def validate_member(group: GroupData, member_id: str, instance_id: str | None) -> ErrorKind:
    """Is ``member_id`` a current member (and the current holder of ``instance_id``)?"""
    if instance_id is not None:
        current = group.static_members.get(instance_id)
        if current is None:
            return ErrorKind.UNKNOWN_MEMBER_ID
        if current != member_id:
            return ErrorKind.FENCED_INSTANCE_ID
    if member_id not in group.members:
        return ErrorKind.UNKNOWN_MEMBER_ID
    return ErrorKind.NONE



def supports_protocols(group: GroupData, protocol_type: str, protocols: Protocols,
                       exclude: str | None) -> bool:
    """Can a member with these protocols be in the group? (Empty: any non-empty offer.)"""
    others = [m for m in group.members.values() if m.member_id != exclude]
    if not others:
        return bool(protocol_type) and bool(protocols)
    if protocol_type != group.protocol_type:
        return False
    common = set.intersection(*({name for name, _ in m.protocols} for m in others))
    return any(name in common for name, _ in protocols)



def select_protocol(group: GroupData) -> str:
    """Kafka's vote: each member picks its favourite among the names all members support."""
    members = list(group.members.values())
    common = set.intersection(*({name for name, _ in m.protocols} for m in members))
    votes = Counter(next(name for name, _ in m.protocols if name in common) for m in members)
    order = [name for name, _ in members[0].protocols if name in common]
    return max(order, key=lambda name: (votes[name], -order.index(name)))


def max_rebalance_timeout(group: GroupData) -> int:
    return max((m.rebalance_timeout_ms for m in group.members.values()), default=0)
