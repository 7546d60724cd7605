"""Who is in a consumer group: the group and member records, and the rules read off them.

What lives here: ``GroupData`` and ``MemberData``, the mutable records the coordinator keeps per
group and per member, and the small rules that only *read* them: is this member id (and static
instance id) a current member (``validate_member``), can a member offering these assignors
join (``supports_protocols``), which assignor does the group use (``select_protocol``), how
long may a rebalance take (``max_rebalance_timeout``), and what a member's successful
JoinGroup / SyncGroup answer says (``join_response``, ``sync_response``).

What does not: moving a group from one state to another (``broker.groups.transitions``), the
requests that change membership (``broker.groups.coordinator``), and the values handed to a
front-end (``broker.groups.model``).

Kafka's classic group protocol, the part implemented here: a member joins with a *protocol
type* ("consumer" for consumers) and a list of *protocols* — assignor names such as "range" or
"cooperative-sticky", each with opaque metadata bytes (the consumer's subscription), in the
member's order of preference. All members of a group must share the protocol type and at
least one assignor. Static members (``group.instance.id``) are additionally known by their
instance id, which survives a restart of the consumer while its member id does not.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import attrs

from broker.groups.model import (
    EMPTY,
    GroupState,
    JoinMember,
    JoinResponse,
    JoinTicket,
    SyncResponse,
    SyncTicket,
)
from broker.outcome import ErrorKind

__all__ = [
    "Protocols", "MemberData", "GroupData", "validate_member", "supports_protocols",
    "select_protocol", "max_rebalance_timeout", "join_response", "sync_response",
]

# ``(assignor name, opaque metadata)`` pairs, in the member's order of preference.
Protocols = Sequence[tuple[str, bytes]]


@attrs.define(eq=False)
class MemberData:
    """One member of one group, as the coordinator keeps it."""

    member_id: str
    instance_id: str | None  # group.instance.id of a static member, else None
    client_id: str
    client_host: str
    session_timeout_ms: int
    rebalance_timeout_ms: int
    protocols: tuple[tuple[str, bytes], ...]
    session_deadline_ms: int  # removed when now_ms reaches it (unless kept_alive)
    assignment: bytes = b""  # the leader's bytes for this member in the current generation
    join_ticket: JoinTicket | None = None  # its JoinGroup we are holding, if any
    sync_ticket: SyncTicket | None = None  # its SyncGroup we are holding, if any

    def metadata_for(self, protocol_name: str | None) -> bytes:
        """This member's metadata for the assignor ``protocol_name`` (b"" if it offers none)."""
        return next((meta for name, meta in self.protocols if name == protocol_name), b"")

    @property
    def kept_alive(self) -> bool:
        # While we hold its JoinGroup or SyncGroup, the member cannot heartbeat: not its fault.
        return self.join_ticket is not None or self.sync_ticket is not None


@attrs.define(eq=False)
class GroupData:
    """One consumer group: its state, its generation and its members."""

    group_id: str
    state: GroupState = EMPTY
    generation_id: int = 0
    protocol_type: str | None = None  # set by the first member, shared by all
    protocol_name: str | None = None  # the assignor chosen for the current generation
    leader_id: str = ""
    members: dict[str, MemberData] = attrs.field(factory=dict)  # join order
    static_members: dict[str, str] = attrs.field(factory=dict)  # instance id -> member id
    # Dynamic members told MEMBER_ID_REQUIRED, not yet back: member id -> deadline.
    pending_members: dict[str, int] = attrs.field(factory=dict)
    rebalance_started_ms: int = 0
    rebalance_timeout_ms: int = 0
    join_deadline_ms: int = 0  # a rebalance ends at the latest then
    in_initial_delay: bool = False  # a new group waiting for more members to arrive
    pending_sync: set[str] = attrs.field(factory=set)  # members yet to send SyncGroup
    sync_deadline_ms: int = 0  # ... by then, or they are removed

    def forget_member(self, member_id: str) -> MemberData:
        """Take a member out of every record of the group, choosing a new leader if needed.

        Only bookkeeping: the caller answers the member's held requests and fires the event.

        Returns:
            The removed member.
        Raises:
            KeyError: ``member_id`` is not a member.
        """
        member = self.members.pop(member_id)
        instance_id = member.instance_id
        if instance_id is not None and self.static_members.get(instance_id) == member_id:
            del self.static_members[instance_id]
        self.pending_sync.discard(member_id)
        if self.leader_id == member_id:
            self.leader_id = next(iter(self.members), "")
        return member


def validate_member(group: GroupData, member_id: str, instance_id: str | None) -> ErrorKind:
    """Is ``member_id`` a current member (and the current holder of ``instance_id``)?

    Returns:
        NONE; UNKNOWN_MEMBER_ID for a member (or instance) the group does not know;
        FENCED_INSTANCE_ID when the instance id now belongs to a newer member id.
    """
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
    """Can a member with these protocols be in the group?

    Args:
        exclude: a member id not to count (the member itself, when it re-joins).
    Returns:
        For a group with no (other) members: whether the offer is non-empty. Otherwise:
        same protocol type, and at least one assignor every other member supports.
    """
    others = [m for m in group.members.values() if m.member_id != exclude]
    if not others:
        return bool(protocol_type) and bool(protocols)
    if protocol_type != group.protocol_type:
        return False
    common = set.intersection(*({name for name, _ in m.protocols} for m in others))
    return any(name in common for name, _ in protocols)


def select_protocol(group: GroupData) -> str:
    """Kafka's vote: each member picks its favourite among the names all members support.

    Most votes wins; a tie goes to the name the first member lists first.
    """
    members = list(group.members.values())
    common = set.intersection(*({name for name, _ in m.protocols} for m in members))
    votes = Counter(next(name for name, _ in m.protocols if name in common) for m in members)
    order = [name for name, _ in members[0].protocols if name in common]
    return max(order, key=lambda name: (votes[name], -order.index(name)))


def max_rebalance_timeout(group: GroupData) -> int:
    """A rebalance may last as long as the most patient member allows (0 with no members)."""
    return max((m.rebalance_timeout_ms for m in group.members.values()), default=0)


def join_response(group: GroupData, member: MemberData) -> JoinResponse:
    """A successful JoinGroup answer for ``member`` in the group's current generation.

    Only the leader's answer lists the members with their metadata (for the chosen assignor):
    the leader is the one that computes the assignment.
    """
    is_leader = member.member_id == group.leader_id
    members = tuple(
        JoinMember(m.member_id, m.instance_id, m.metadata_for(group.protocol_name))
        for m in group.members.values()) if is_leader else ()
    return JoinResponse(error=ErrorKind.NONE, member_id=member.member_id,
                        generation_id=group.generation_id,
                        protocol_type=group.protocol_type, protocol_name=group.protocol_name,
                        leader_id=group.leader_id, members=members)


def sync_response(group: GroupData, member: MemberData) -> SyncResponse:
    """A successful SyncGroup answer: ``member``'s assignment from the leader."""
    return SyncResponse(error=ErrorKind.NONE, protocol_type=group.protocol_type,
                        protocol_name=group.protocol_name, assignment=member.assignment)
