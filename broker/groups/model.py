"""The values the group coordinator hands out: states, answers, tickets, descriptions.

What lives here: ``GroupState`` (spelled as Kafka's DescribeGroups spells it, with the short
aliases ``EMPTY`` ... ``DEAD`` the state machine reads best with), the frozen answers
``JoinResponse`` / ``SyncResponse`` / ``LeaveResult`` / ``GroupDescription`` / ``GroupListing``,
the two *tickets* (``JoinTicket``, ``SyncTicket``) through which late answers are delivered,
and ``AnsweredTickets``, where tickets get their answers and which remembers what to report.

What does not: any decision. The rules are in ``broker.groups.coordinator`` and
``broker.groups.transitions``; this module only shapes what goes out so that a front-end can
read it without importing the state machine. Outcome names (``ErrorKind``) are shared with
offsets and producers and live in ``broker.outcome``.

Why tickets: in Kafka's classic group protocol, JoinGroup and SyncGroup are answered *late*.
A join waits until every member has re-joined (or the rebalance timeout ran out); a follower's
sync waits for the leader's. The core has no tasks and no clock, so it cannot "wait". Instead
a call returns a ticket that is either already answered (``ticket.done``) or pending; a later
call — another member's join, the leader's sync, or ``GroupCoordinator.tick(now_ms)`` — fills
in ``ticket.response`` and reports the ticket as completed. The front-end parks the request on
a ``trio.Event`` until then.
"""

from __future__ import annotations

import enum
import itertools
from typing import Generic, TypeVar

import attrs

from broker.outcome import ErrorKind

__all__ = [
    "GroupState",
    "EMPTY",
    "PREPARING",
    "COMPLETING",
    "STABLE",
    "DEAD",
    "JoinMember",
    "JoinResponse",
    "SyncResponse",
    "JoinTicket",
    "SyncTicket",
    "Ticket",
    "AnsweredTickets",
    "MemberLeave",
    "LeaveResult",
    "MemberDescription",
    "GroupDescription",
    "GroupListing",
]


class GroupState(enum.Enum):
    """Classic group states; ``.value`` is the name DescribeGroups / ListGroups use."""

    EMPTY = "Empty"
    PREPARING_REBALANCE = "PreparingRebalance"
    COMPLETING_REBALANCE = "CompletingRebalance"
    STABLE = "Stable"
    DEAD = "Dead"


# Short names, so that a table of states reads as a table.
EMPTY = GroupState.EMPTY
PREPARING = GroupState.PREPARING_REBALANCE
COMPLETING = GroupState.COMPLETING_REBALANCE
STABLE = GroupState.STABLE
DEAD = GroupState.DEAD


@attrs.frozen
class JoinMember:
    """One member as the leader sees it in its JoinGroup response."""

    member_id: str
    instance_id: str | None
    metadata: bytes  # the member's bytes for the *chosen* protocol, opaque to us


@attrs.frozen(kw_only=True)
class JoinResponse:
    """Everything a JoinGroup response carries, minus wire details.

    On an error, ``member_id`` is the id the client should use next: the freshly issued id for
    MEMBER_ID_REQUIRED, the caller's id otherwise (Kafka echoes it), and ``generation_id`` is -1.
    """

    error: ErrorKind
    member_id: str
    generation_id: int = -1
    protocol_type: str | None = None
    protocol_name: str | None = None
    leader_id: str = ""
    # Non-empty only for the leader: every member with its metadata, in join order.
    members: tuple[JoinMember, ...] = ()

    @classmethod
    def failed(cls, error: ErrorKind, member_id: str) -> JoinResponse:
        return cls(error=error, member_id=member_id)


@attrs.frozen(kw_only=True)
class SyncResponse:
    error: ErrorKind
    protocol_type: str | None = None
    protocol_name: str | None = None
    assignment: bytes = b""  # this member's bytes from the leader; b"" if the leader gave none

    @classmethod
    def failed(cls, error: ErrorKind) -> SyncResponse:
        return cls(error=error)


_ticket_numbers = itertools.count(1)
Answer = TypeVar("Answer", JoinResponse, SyncResponse)


@attrs.define(eq=False)
class _TicketFor(Generic[Answer]):
    """A request in flight whose answer is an ``Answer``. ``eq=False``: tickets compare (and
    hash) by identity, so the front-end can key a dict ``ticket -> trio.Event``."""

    group_id: str
    member_id: str
    response: Answer | None = None
    number: int = attrs.field(factory=lambda: next(_ticket_numbers))

    @property
    def done(self) -> bool:
        return self.response is not None


@attrs.define(eq=False)
class JoinTicket(_TicketFor[JoinResponse]):
    """A JoinGroup request in flight; ``member_id`` becomes the id the broker gave it."""


@attrs.define(eq=False)
class SyncTicket(_TicketFor[SyncResponse]):
    """A SyncGroup request in flight."""


Ticket = JoinTicket | SyncTicket


@attrs.define
class AnsweredTickets:
    """Where answers are given to tickets, and the record of which ones ``tick`` must report.

    A ticket answered before its caller ever saw it (answered within ``join`` / ``sync``
    itself) is not reported: the caller reads ``ticket.done`` and answers at once. A ticket
    handed out pending and answered later is reported exactly once, in the order answered.
    """

    # Insertion-ordered set: answered since the last ``take_reported`` (a dict, because a set
    # would report tickets in hash order).
    _answered: dict[Ticket, None] = attrs.field(factory=dict, init=False)

    def answer(self, ticket: Ticket, response: JoinResponse | SyncResponse) -> None:
        """Give ``ticket`` its response (a response of the ticket's own kind)."""
        ticket.response = response
        self._answered[ticket] = None

    def hand_out(self, ticket: Ticket) -> Ticket:
        """Return ``ticket`` to its caller; if it is answered already it is not reported later."""
        if ticket.done:
            self._answered.pop(ticket, None)
        return ticket

    def answer_now(self, ticket: Ticket, response: JoinResponse | SyncResponse) -> Ticket:
        """Answer and hand out at once: the request is answered without waiting."""
        self.answer(ticket, response)
        return self.hand_out(ticket)

    def take_reported(self) -> list[Ticket]:
        """The tickets handed out pending and answered since the previous call, each once."""
        reported = list(self._answered)
        self._answered.clear()
        return reported


@attrs.frozen
class MemberLeave:
    """One member named in a LeaveGroup request, and (in results) what happened to it."""

    member_id: str
    instance_id: str | None = None
    error: ErrorKind = ErrorKind.NONE


@attrs.frozen
class LeaveResult:
    """LeaveGroup's answer: a top-level error plus one entry per member (v3+ shape).

    For v0-2 (a single member) the front-end answers with ``members[0].error`` when the
    top-level error is NONE.
    """

    error: ErrorKind
    members: tuple[MemberLeave, ...] = ()


@attrs.frozen(kw_only=True)
class MemberDescription:
    member_id: str
    instance_id: str | None
    client_id: str
    client_host: str
    metadata: bytes  # for the chosen protocol; b"" unless the group is Stable (as Kafka)
    assignment: bytes  # b"" unless the group is Stable (as Kafka)


@attrs.frozen(kw_only=True)
class GroupDescription:
    """DescribeGroups for one group. A group we do not know is described as Dead, empty."""

    group_id: str
    state: GroupState
    protocol_type: str  # "" if none
    protocol_name: str  # the chosen assignor when Stable, else "" (Kafka's NoProtocol)
    members: tuple[MemberDescription, ...] = ()
    generation_id: int = 0
    leader_id: str = ""

    @property
    def state_name(self) -> str:
        return self.state.value


@attrs.frozen
class GroupListing:
    group_id: str
    protocol_type: str
    state: GroupState
