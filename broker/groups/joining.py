"""JoinGroup: how a join admits a new member, updates a known one, or replaces a static one.

What lives here: ``JoinRequest`` (one JoinGroup's fields) and the steps of a join once the
coordinator has checked the request and found (or created) the group: ``join_new_member``
(empty member id) and ``join_known_member`` (a member id the broker issued).

What does not: the checks every join gets first and the entry point
(``GroupCoordinator.join`` in ``broker.groups.coordinator``), what a rebalance does once a
join moved the group (``broker.groups.transitions``), the records (``broker.groups.members``).

Kafka's classic group protocol, the JoinGroup side, in our words:

* A member with an empty id joins afresh and gets a new id ``<client_id>-<uuid4>``; the first
  member sets the group's protocol type; the first member is also the leader until it goes.
* JoinGroup v4+ (``require_known_member``): a dynamic member joining with an empty id gets
  MEMBER_ID_REQUIRED and its fresh id; only its second join (with that id) makes it a member.
  Until then it is *pending*, and a rebalance waits for it too.
* A known member re-joins to take part in a rebalance, or with new metadata (which starts
  one). A re-join that changes nothing is answered with the current generation — unless it
  comes from the leader: a leader re-joins to ask for a new assignment.
* Static membership (``group.instance.id``): a member that comes back with a known instance id
  and no member id takes over the old member id's place. In a Stable group with unchanged
  metadata it gets the current generation back and no rebalance happens (so a restarting
  consumer keeps its partitions); the old member id is fenced (FENCED_INSTANCE_ID).

Deliberate difference from Kafka: a member re-joining with different protocols is checked
against the *other* members only (Kafka counts its old protocols too and may reject a lone
member that changes assignor).
"""

from __future__ import annotations

from collections.abc import Callable

import attrs

from broker.groups.members import (
    GroupData,
    MemberData,
    join_response,
    supports_protocols,
    validate_member,
)
from broker.groups.model import (COMPLETING, STABLE, AnsweredTickets, JoinResponse, JoinTicket,
                                 SyncResponse)
from broker.groups.transitions import ActionContext, Event, fire
from broker.loggers import get_logger
from broker.outcome import ErrorKind

__all__ = ["JoinRequest", "join_new_member", "join_known_member"]

log = get_logger(__name__)


@attrs.frozen(kw_only=True)
class JoinRequest:
    """One JoinGroup's fields (all but the group and member ids, which the ticket carries),
    bundled for the steps of ``GroupCoordinator.join``."""

    instance_id: str | None
    client_id: str
    client_host: str
    session_timeout_ms: int
    rebalance_timeout_ms: int
    protocol_type: str
    protocols: tuple[tuple[str, bytes], ...]
    now_ms: int
    require_known_member: bool


def join_new_member(group: GroupData, ticket: JoinTicket, request: JoinRequest,
                    ctx: ActionContext, new_uuid: Callable[[], str]) -> None:
    """A JoinGroup with an empty member id: a new member, a pending one, or a static member back.

    Args:
        new_uuid: the source of the unique part of new member ids.
    """
    if not supports_protocols(group, request.protocol_type, request.protocols, exclude=None):
        ctx.answers.answer(ticket, JoinResponse.failed(ErrorKind.INCONSISTENT_GROUP_PROTOCOL, ""))
        return
    instance_id = request.instance_id
    if instance_id is not None and instance_id in group.static_members:
        _replace_static_member(group, ticket, request, ctx, new_uuid)
        return
    # Kafka's id format: whoever the client says it is, plus a uuid to make it unique.
    new_id = f"{instance_id if instance_id is not None else request.client_id}-{new_uuid()}"
    if request.require_known_member and instance_id is None:
        # Remember the id so that the second join is recognised; a rebalance in progress
        # waits for it (Kafka's "pending members"), but not beyond its session timeout.
        group.pending_members[new_id] = request.now_ms + request.session_timeout_ms
        ctx.answers.answer(ticket, JoinResponse.failed(ErrorKind.MEMBER_ID_REQUIRED, new_id))
        return
    _add_member(group, ticket, new_id, request, ctx)


def join_known_member(group: GroupData, ticket: JoinTicket, request: JoinRequest,
                      ctx: ActionContext) -> None:
    """A JoinGroup with a member id: the second half of MEMBER_ID_REQUIRED, or a re-join."""
    member_id = ticket.member_id
    if member_id in group.pending_members and request.instance_id is None:
        # The second half of the MEMBER_ID_REQUIRED round trip.
        if not supports_protocols(group, request.protocol_type, request.protocols,
                                  exclude=None):
            ctx.answers.answer(ticket, JoinResponse.failed(
                ErrorKind.INCONSISTENT_GROUP_PROTOCOL, member_id))
            return
        del group.pending_members[member_id]
        _add_member(group, ticket, member_id, request, ctx)
        return
    error = validate_member(group, member_id, request.instance_id)
    if error is ErrorKind.NONE and not supports_protocols(
            group, request.protocol_type, request.protocols, exclude=member_id):
        error = ErrorKind.INCONSISTENT_GROUP_PROTOCOL
    if error is not ErrorKind.NONE:
        ctx.answers.answer(ticket, JoinResponse.failed(error, member_id))
        return
    member = group.members[member_id]
    changed = member.protocols != request.protocols
    member.client_id, member.client_host = request.client_id, request.client_host
    member.session_timeout_ms = request.session_timeout_ms
    member.rebalance_timeout_ms = request.rebalance_timeout_ms
    member.session_deadline_ms = request.now_ms + request.session_timeout_ms
    if group.state is COMPLETING and not changed:
        # A retried join of the generation just formed: answer it again, no rebalance.
        ctx.answers.answer(ticket, join_response(group, member))
        return
    if group.state is STABLE and not changed and member_id != group.leader_id:
        # A follower re-joining with nothing new just gets the current generation back.
        # (A leader re-join always rebalances: that is how a leader asks for a new
        # assignment, e.g. when its topics' partition counts changed.)
        ctx.answers.answer(ticket, join_response(group, member))
        return
    member.protocols = request.protocols
    _hold_join(member, ticket, ctx.answers)
    fire(group, Event.MEMBER_CHANGED if changed or group.state is STABLE
         else Event.MEMBER_REJOINED, request.now_ms, ctx)


def _add_member(group: GroupData, ticket: JoinTicket, member_id: str, request: JoinRequest,
                ctx: ActionContext) -> None:
    if not group.members:
        group.protocol_type = request.protocol_type
    member = MemberData(
        member_id=member_id, instance_id=request.instance_id, client_id=request.client_id,
        client_host=request.client_host, session_timeout_ms=request.session_timeout_ms,
        rebalance_timeout_ms=request.rebalance_timeout_ms, protocols=request.protocols,
        session_deadline_ms=request.now_ms + request.session_timeout_ms)
    group.members[member_id] = member
    if request.instance_id is not None:
        group.static_members[request.instance_id] = member_id
    if not group.leader_id:
        group.leader_id = member_id
    ticket.member_id = member_id
    _hold_join(member, ticket, ctx.answers)
    log.debug("group_member_added", group_id=group.group_id, member_id=member_id)
    fire(group, Event.MEMBER_ADDED, request.now_ms, ctx)


def _replace_static_member(group: GroupData, ticket: JoinTicket, request: JoinRequest,
                           ctx: ActionContext, new_uuid: Callable[[], str]) -> None:
    instance_id = request.instance_id
    old_id = group.static_members[instance_id]
    old = group.members.pop(old_id)
    new_id = f"{instance_id}-{new_uuid()}"
    # The old incarnation's requests still in flight are fenced, not silently dropped.
    if old.join_ticket is not None:
        ctx.answers.answer(old.join_ticket,
                           JoinResponse.failed(ErrorKind.FENCED_INSTANCE_ID, old_id))
    if old.sync_ticket is not None:
        ctx.answers.answer(old.sync_ticket, SyncResponse.failed(ErrorKind.FENCED_INSTANCE_ID))
    changed = old.protocols != request.protocols
    member = attrs.evolve(
        old, member_id=new_id, client_id=request.client_id, client_host=request.client_host,
        session_timeout_ms=request.session_timeout_ms,
        rebalance_timeout_ms=request.rebalance_timeout_ms, protocols=request.protocols,
        session_deadline_ms=request.now_ms + request.session_timeout_ms,
        join_ticket=None, sync_ticket=None)
    group.members[new_id] = member
    group.static_members[instance_id] = new_id
    old_leader = group.leader_id
    if old_leader == old_id:
        group.leader_id = new_id
    if old_id in group.pending_sync:
        group.pending_sync.discard(old_id)
        group.pending_sync.add(new_id)
    ticket.member_id = new_id
    log.info("group_static_member_replaced", group_id=group.group_id,
             instance_id=instance_id, old_member_id=old_id, member_id=new_id)
    if group.state is STABLE and not changed:
        # Answer with the *old* leader id so that a returning leader does not think it
        # must compute an assignment a Stable group would never distribute (Kafka does
        # the same); its SyncGroup then simply returns its current assignment.
        ctx.answers.answer(ticket, JoinResponse(
            error=ErrorKind.NONE, member_id=new_id, generation_id=group.generation_id,
            protocol_type=group.protocol_type, protocol_name=group.protocol_name,
            leader_id=old_leader))
        fire(group, Event.STATIC_MEMBER_REPLACED, request.now_ms, ctx)
        return
    _hold_join(member, ticket, ctx.answers)
    fire(group, Event.MEMBER_CHANGED if changed else Event.STATIC_MEMBER_REPLACED,
         request.now_ms, ctx)


def _hold_join(member: MemberData, ticket: JoinTicket, answers: AnsweredTickets) -> None:
    """Keep ``ticket`` as the member's JoinGroup waiting for the rebalance to end."""
    if member.join_ticket is not None and member.join_ticket is not ticket:
        # A second JoinGroup while the first is held (a client that reconnected):
        # the older one is answered so nothing waits forever.
        answers.answer(member.join_ticket,
                       JoinResponse.failed(ErrorKind.REBALANCE_IN_PROGRESS, member.member_id))
    member.join_ticket = ticket
