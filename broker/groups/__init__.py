"""The classic consumer-group coordinator, as a pure state machine (no I/O, no clock).

What lives here, one concept a module:

- ``coordinator.py``  ``GroupCoordinator``: the requests that change a group or check a member
  (JoinGroup, SyncGroup, Heartbeat, LeaveGroup, DeleteGroups, the OffsetCommit check) and the
  deadlines (``tick``).
- ``joining.py``      the steps of a JoinGroup: new, pending, known and static members.
- ``transitions.py``  the states a group goes through, the events that move it, and the one
  transition table (state x event -> next state, action).
- ``members.py``      the group and member records; member validation; protocol choice.
- ``views.py``        read-only DescribeGroups / ListGroups over the records.
- ``model.py``        the values handed out: states, answers, tickets, descriptions.

What does not: committed offsets (``broker.offsets``), the outcome names shared with offsets
and producers (``broker.outcome.ErrorKind``), and anything of the wire: the pull front-end
(``modes/pull``) turns requests into these calls and the answers into Kafka responses.

This package implements the broker side of Kafka's *classic* group protocol (the one before
KIP-848): the broker only keeps membership and generations and relays bytes; members' opaque
metadata goes to the leader, and the leader's assignment goes back to each member — the
assignors run in the clients.

How a front-end drives it (single trio thread; every method is synchronous and quick):

1. JoinGroup → ``ticket = coordinator.join(...)``; SyncGroup → ``ticket = coordinator.sync(...)``.
   If ``ticket.done``, answer with ``ticket.response`` now. Otherwise park the request on a
   ``trio.Event`` kept in a dict ``{ticket: event}`` and await it (no deadline needed: the
   rebalance and sync timeouts bound the wait).
2. After *every* call that may change state (join, sync, heartbeat, leave, validate_commit,
   delete_group) and on a periodic timer (every ~100 ms, or sleep until
   ``next_deadline_ms()``), call ``for t in coordinator.tick(now_ms): events.pop(t).set()``
   (use ``pop(t, None)`` if connections may go away). ``tick`` returns each *pending* ticket
   exactly once, after it got its ``response``; a ticket already done when returned to you is
   never reported. The waiting handler then answers with ``ticket.response``.
3. Heartbeat, LeaveGroup, DescribeGroups, ListGroups, DeleteGroups and the OffsetCommit check
   answer immediately with values.
4. ``now_ms`` is the front-end's monotonic clock in milliseconds (``trio.current_time()*1000``);
   it must never go backwards.
"""

from broker.groups.coordinator import HEARTBEAT_REPLY, GroupCoordinator
from broker.groups.model import (
    GroupDescription,
    GroupListing,
    GroupState,
    JoinMember,
    JoinResponse,
    JoinTicket,
    LeaveResult,
    MemberDescription,
    MemberLeave,
    SyncResponse,
    SyncTicket,
    Ticket,
)
from broker.groups.transitions import TRANSITIONS, Event, IllegalGroupTransition

__all__ = [
    "GroupCoordinator",
    "HEARTBEAT_REPLY",
    "TRANSITIONS",
    "Event",
    "IllegalGroupTransition",
    "GroupState",
    "JoinMember",
    "JoinResponse",
    "JoinTicket",
    "SyncResponse",
    "SyncTicket",
    "Ticket",
    "MemberLeave",
    "LeaveResult",
    "MemberDescription",
    "GroupDescription",
    "GroupListing",
]
