"""The group coordinator: every request that changes a consumer group or checks a member.

What lives here: ``GroupCoordinator``, which holds every group of the broker and answers
JoinGroup, SyncGroup, Heartbeat, LeaveGroup, DeleteGroups and the membership check of
OffsetCommit, applies deadlines (``tick``), and hands DescribeGroups / ListGroups to the
read-only views; ``HEARTBEAT_REPLY``, Heartbeat's answer by state. Read ``broker.groups``
(the package docstring) for how a front-end drives it.

What does not: the state table and what each move does (``broker.groups.transitions``), the
records and the rules read off them (``broker.groups.members``), the values handed out
(``broker.groups.model``), describe/list (``broker.groups.views``). Nor bytes, sockets,
tasks, clocks or offsets: member metadata and assignments are opaque ``bytes`` (assignors run
in the clients), time arrives as ``now_ms``, committed offsets live in ``broker.offsets``.

Kafka's classic group protocol, the request side, in our words:

* JoinGroup: a member with an empty id joins afresh and gets a new id; a known member re-joins
  (to take part in a rebalance, or with new metadata). JoinGroup v4+
  (``require_known_member=True``): a dynamic member joining with an empty id gets
  MEMBER_ID_REQUIRED and a fresh id ``<client_id>-<uuid4>``; only its second join (with that
  id) makes it a member. Until then it is *pending*, and a rebalance waits for it too.
* SyncGroup: followers are held until the leader's SyncGroup brings the assignments; then
  everyone gets their own bytes (a member the leader forgot gets ``b""``). Members must send
  SyncGroup within the rebalance timeout, or they are removed and a new rebalance starts
  (Kafka 3.2+'s "pending sync" rule; it also unsticks a group whose leader died mid-sync).
* Sessions: any JoinGroup, SyncGroup, Heartbeat or accepted OffsetCommit renews a member's
  session. A member whose session runs out is removed — except while it is *waiting* for a
  JoinGroup or SyncGroup answer, because then the broker is the one making it wait.
* Static membership (``group.instance.id``): a member that comes back with a known instance id
  and no member id takes over the old member id's place. In a Stable group with unchanged
  metadata it gets the current generation back and no rebalance happens (so a restarting
  consumer keeps its partitions); the old member id is fenced (FENCED_INSTANCE_ID).

Deliberate differences from Kafka: a member re-joining with different protocols is checked
against the *other* members only (Kafka counts its old protocols too and may reject a lone
member that changes assignor); a non-existent group is created by the first JoinGroup, not by
FindCoordinator.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

import attrs
import structlog

from broker.groups.members import (
    GroupData,
    MemberData,
    Protocols,
    max_rebalance_timeout,
    select_protocol,
    supports_protocols,
    validate_member,
)
from broker.groups.model import (
    COMPLETING,
    DEAD,
    EMPTY,
    PREPARING,
    STABLE,
    GroupDescription,
    GroupListing,
    GroupState,
    JoinMember,
    JoinResponse,
    JoinTicket,
    LeaveResult,
    MemberLeave,
    SyncResponse,
    SyncTicket,
    Ticket,
)
from broker.groups.transitions import TRANSITIONS, Event, IllegalGroupTransition
from broker.groups.views import describe_group, list_groups
from broker.outcome import ErrorKind

if TYPE_CHECKING:
    from broker.config import KafkaConfig

__all__ = ["GroupCoordinator", "HEARTBEAT_REPLY"]

log = structlog.get_logger("dualmq.groups")

# Heartbeat's answer for a known member of the current generation, by the group's state.
HEARTBEAT_REPLY: dict[GroupState, ErrorKind] = {
    EMPTY: ErrorKind.UNKNOWN_MEMBER_ID,
    PREPARING: ErrorKind.REBALANCE_IN_PROGRESS,  # "stop fetching and re-join"
    COMPLETING: ErrorKind.NONE,
    STABLE: ErrorKind.NONE,
    DEAD: ErrorKind.COORDINATOR_NOT_AVAILABLE,
}

def _new_uuid() -> str:
    return str(uuid.uuid4())


@attrs.define
class GroupCoordinator:
    """Every consumer group of the broker. See the module docstring for how to drive it.

    Build it with ``GroupCoordinator.from_config(broker_config.kafka, existing_groups=...)``;
    ``existing_groups`` (e.g. ``offset_store.groups()``) makes groups known only by their
    committed offsets show up as Empty after a restart, as in Kafka.
    """

    initial_rebalance_delay_ms: int = 3000
    min_session_timeout_ms: int = 6000
    max_session_timeout_ms: int = 1_800_000
    new_uuid: Callable[[], str] = _new_uuid  # injectable for deterministic tests
    _groups: dict[str, GroupData] = attrs.field(factory=dict, init=False)
    # Tickets that were handed out pending and have completed since the last tick().
    _completed: dict[Ticket, None] = attrs.field(factory=dict, init=False)

    @classmethod
    def from_config(cls, kafka_config: KafkaConfig,
                    existing_groups: Iterable[str] = ()) -> GroupCoordinator:
        """Build from the ``[kafka]`` section's ``group_*`` settings."""
        coordinator = cls(
            initial_rebalance_delay_ms=kafka_config.group_initial_rebalance_delay_ms,
            min_session_timeout_ms=kafka_config.group_min_session_timeout_ms,
            max_session_timeout_ms=kafka_config.group_max_session_timeout_ms,
        )
        for group_id in existing_groups:
            coordinator._group(group_id, create=True)
        return coordinator

    # ------------------------------------------------------------------ JoinGroup

    def join(self, group_id: str, *, member_id: str, instance_id: str | None, client_id: str,
             client_host: str = "", session_timeout_ms: int, rebalance_timeout_ms: int,
             protocol_type: str, protocols: Protocols, now_ms: int,
             require_known_member: bool = False) -> JoinTicket:
        """A JoinGroup request.

        Args:
            member_id: "" on a first join, else the id the broker issued.
            instance_id: ``group.instance.id`` for static membership (v5+), else None.
            rebalance_timeout_ms: JoinGroup v0 has none; pass ``session_timeout_ms`` (as Kafka).
            protocols: ``(assignor name, opaque metadata)`` in the member's preference order.
            require_known_member: True for JoinGroup v4+: answer a dynamic first join with
                MEMBER_ID_REQUIRED and a fresh id (the client joins again with it).
        Returns:
            A ticket; done now, or completed later (reported by ``tick``).
        """
        ticket = JoinTicket(group_id=group_id, member_id=member_id)
        protocols = tuple((str(name), bytes(meta)) for name, meta in protocols)
        error = self._check_join(group_id, member_id, session_timeout_ms, protocols)
        if error is not ErrorKind.NONE:
            return self._answer_now(ticket, JoinResponse.failed(error, member_id))
        group = self._groups.get(group_id)
        if member_id == "":
            group = self._group(group_id, create=True)
            self._join_unknown_member(group, ticket, instance_id, client_id, client_host,
                                      session_timeout_ms, rebalance_timeout_ms, protocol_type,
                                      protocols, now_ms, require_known_member)
        elif group is None:
            self._finish(ticket, JoinResponse.failed(ErrorKind.UNKNOWN_MEMBER_ID, member_id))
        else:
            self._join_known_member(group, ticket, instance_id, client_id, client_host,
                                    session_timeout_ms, rebalance_timeout_ms, protocol_type,
                                    protocols, now_ms)
        return self._hand_out(ticket)

    def _check_join(self, group_id: str, member_id: str, session_timeout_ms: int,
                    protocols: Protocols) -> ErrorKind:
        if not group_id:
            return ErrorKind.INVALID_GROUP_ID
        if not self.min_session_timeout_ms <= session_timeout_ms <= self.max_session_timeout_ms:
            return ErrorKind.INVALID_SESSION_TIMEOUT
        if not protocols:
            return ErrorKind.INCONSISTENT_GROUP_PROTOCOL
        group = self._groups.get(group_id)
        if group is not None and group.state is DEAD:
            return ErrorKind.COORDINATOR_NOT_AVAILABLE
        return ErrorKind.NONE

    def _join_unknown_member(self, group: GroupData, ticket: JoinTicket, instance_id, client_id,
                             client_host, session_timeout_ms, rebalance_timeout_ms,
                             protocol_type, protocols, now_ms, require_known_member) -> None:
        if not supports_protocols(group, protocol_type, protocols, exclude=None):
            self._finish(ticket, JoinResponse.failed(ErrorKind.INCONSISTENT_GROUP_PROTOCOL, ""))
            return
        if instance_id is not None and instance_id in group.static_members:
            self._replace_static_member(group, ticket, instance_id, client_id, client_host,
                                        session_timeout_ms, rebalance_timeout_ms, protocols,
                                        now_ms)
            return
        # Kafka's id format: whoever the client says it is, plus a uuid to make it unique.
        new_id = f"{instance_id if instance_id is not None else client_id}-{self.new_uuid()}"
        if require_known_member and instance_id is None:
            # Remember the id so that the second join is recognised; a rebalance in progress
            # waits for it (Kafka's "pending members"), but not beyond its session timeout.
            group.pending_members[new_id] = now_ms + session_timeout_ms
            self._finish(ticket, JoinResponse.failed(ErrorKind.MEMBER_ID_REQUIRED, new_id))
            return
        self._add_member(group, ticket, new_id, instance_id, client_id, client_host,
                         session_timeout_ms, rebalance_timeout_ms, protocol_type, protocols,
                         now_ms)

    def _join_known_member(self, group: GroupData, ticket: JoinTicket, instance_id, client_id,
                           client_host, session_timeout_ms, rebalance_timeout_ms,
                           protocol_type, protocols, now_ms) -> None:
        member_id = ticket.member_id
        if member_id in group.pending_members and instance_id is None:
            # The second half of the MEMBER_ID_REQUIRED round trip.
            if not supports_protocols(group, protocol_type, protocols, exclude=None):
                self._finish(ticket, JoinResponse.failed(ErrorKind.INCONSISTENT_GROUP_PROTOCOL,
                                                         member_id))
                return
            del group.pending_members[member_id]
            self._add_member(group, ticket, member_id, None, client_id, client_host,
                             session_timeout_ms, rebalance_timeout_ms, protocol_type,
                             protocols, now_ms)
            return
        error = validate_member(group, member_id, instance_id)
        if error is not ErrorKind.NONE:
            self._finish(ticket, JoinResponse.failed(error, member_id))
            return
        if not supports_protocols(group, protocol_type, protocols, exclude=member_id):
            self._finish(ticket, JoinResponse.failed(ErrorKind.INCONSISTENT_GROUP_PROTOCOL,
                                                     member_id))
            return
        member = group.members[member_id]
        changed = member.protocols != protocols
        member.client_id, member.client_host = client_id, client_host
        member.session_timeout_ms = session_timeout_ms
        member.rebalance_timeout_ms = rebalance_timeout_ms
        member.session_deadline_ms = now_ms + session_timeout_ms
        if group.state is COMPLETING and not changed:
            # A retried join of the generation just formed: answer it again, no rebalance.
            self._finish(ticket, self._join_response(group, member))
            return
        if group.state is STABLE and not changed and member_id != group.leader_id:
            # A follower re-joining with nothing new just gets the current generation back.
            # (A leader re-join always rebalances: that is how a leader asks for a new
            # assignment, e.g. when its topics' partition counts changed.)
            self._finish(ticket, self._join_response(group, member))
            return
        member.protocols = protocols
        self._set_join_ticket(member, ticket)
        self._fire(group, Event.MEMBER_CHANGED if changed or group.state is STABLE
                   else Event.MEMBER_REJOINED, now_ms)

    def _add_member(self, group: GroupData, ticket: JoinTicket, member_id, instance_id, client_id,
                    client_host, session_timeout_ms, rebalance_timeout_ms, protocol_type,
                    protocols, now_ms) -> None:
        if not group.members:
            group.protocol_type = protocol_type
        member = MemberData(member_id=member_id, instance_id=instance_id, client_id=client_id,
                         client_host=client_host, session_timeout_ms=session_timeout_ms,
                         rebalance_timeout_ms=rebalance_timeout_ms, protocols=protocols,
                         session_deadline_ms=now_ms + session_timeout_ms)
        group.members[member_id] = member
        if instance_id is not None:
            group.static_members[instance_id] = member_id
        if not group.leader_id:
            group.leader_id = member_id
        ticket.member_id = member_id
        self._set_join_ticket(member, ticket)
        log.debug("group_member_added", group_id=group.group_id, member_id=member_id)
        self._fire(group, Event.MEMBER_ADDED, now_ms)

    def _replace_static_member(self, group: GroupData, ticket: JoinTicket, instance_id, client_id,
                               client_host, session_timeout_ms, rebalance_timeout_ms,
                               protocols, now_ms) -> None:
        old_id = group.static_members[instance_id]
        old = group.members.pop(old_id)
        new_id = f"{instance_id}-{self.new_uuid()}"
        # The old incarnation's requests still in flight are fenced, not silently dropped.
        if old.join_ticket is not None:
            self._finish(old.join_ticket, JoinResponse.failed(ErrorKind.FENCED_INSTANCE_ID, old_id))
        if old.sync_ticket is not None:
            self._finish(old.sync_ticket, SyncResponse.failed(ErrorKind.FENCED_INSTANCE_ID))
        changed = old.protocols != protocols
        member = attrs.evolve(old, member_id=new_id, client_id=client_id, client_host=client_host,
                              session_timeout_ms=session_timeout_ms,
                              rebalance_timeout_ms=rebalance_timeout_ms, protocols=protocols,
                              session_deadline_ms=now_ms + session_timeout_ms,
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
            self._finish(ticket, JoinResponse(
                error=ErrorKind.NONE, member_id=new_id, generation_id=group.generation_id,
                protocol_type=group.protocol_type, protocol_name=group.protocol_name,
                leader_id=old_leader))
            self._fire(group, Event.STATIC_MEMBER_REPLACED, now_ms)
            return
        self._set_join_ticket(member, ticket)
        self._fire(group, Event.MEMBER_CHANGED if changed else Event.STATIC_MEMBER_REPLACED,
                   now_ms)

    # ------------------------------------------------------------------ SyncGroup

    def sync(self, group_id: str, *, member_id: str, generation_id: int,
             instance_id: str | None = None, assignments: Iterable[tuple[str, bytes]] = (),
             protocol_type: str | None = None, protocol_name: str | None = None,
             now_ms: int) -> SyncTicket:
        """A SyncGroup request.

        Args:
            assignments: the leader's ``(member id, assignment bytes)``; followers send none.
                Only the leader's are used (Kafka ignores a follower's, and entries for
                member ids not in the group).
            protocol_type, protocol_name: SyncGroup v5+ fields; None when absent.
        Returns:
            A ticket; a follower's waits for the leader's SyncGroup (or a rebalance).
        """
        ticket = SyncTicket(group_id=group_id, member_id=member_id)
        group = self._groups.get(group_id)
        error = self._validate_generation_request(group, group_id, member_id, instance_id,
                                                  generation_id)
        if error is ErrorKind.NONE and (
                (protocol_type is not None and protocol_type != group.protocol_type)
                or (protocol_name is not None and protocol_name != group.protocol_name)):
            error = ErrorKind.INCONSISTENT_GROUP_PROTOCOL
        if error is ErrorKind.NONE and group.state is EMPTY:
            error = ErrorKind.UNKNOWN_MEMBER_ID
        if error is ErrorKind.NONE and group.state is PREPARING:
            error = ErrorKind.REBALANCE_IN_PROGRESS
        if error is not ErrorKind.NONE:
            return self._answer_now(ticket, SyncResponse.failed(error))
        member = group.members[member_id]
        member.session_deadline_ms = now_ms + member.session_timeout_ms
        group.pending_sync.discard(member_id)
        if group.state is STABLE:
            self._finish(ticket, self._sync_response(group, member))
            return self._hand_out(ticket)
        # CompletingRebalance: wait for the leader, or be the leader.
        if member.sync_ticket is not None:
            self._finish(member.sync_ticket, SyncResponse.failed(ErrorKind.REBALANCE_IN_PROGRESS))
        member.sync_ticket = ticket
        if member_id == group.leader_id:
            given = dict(assignments)
            for other in group.members.values():
                other.assignment = given.get(other.member_id, b"")
            self._fire(group, Event.LEADER_SYNCED, now_ms)
        return self._hand_out(ticket)

    # ------------------------------------------------------------------ Heartbeat, LeaveGroup

    def heartbeat(self, group_id: str, *, member_id: str, generation_id: int,
                  instance_id: str | None = None, now_ms: int) -> ErrorKind:
        """A Heartbeat request; renews the member's session. Returns the answer."""
        group = self._groups.get(group_id)
        error = self._validate_generation_request(group, group_id, member_id, instance_id,
                                                  generation_id)
        if error is not ErrorKind.NONE:
            return error
        member = group.members[member_id]
        member.session_deadline_ms = now_ms + member.session_timeout_ms
        return HEARTBEAT_REPLY[group.state]

    def leave(self, group_id: str, members: Iterable[tuple[str, str | None]], *,
              now_ms: int) -> LeaveResult:
        """A LeaveGroup request: ``members`` are ``(member_id, instance_id)`` pairs.

        v0-2 name one member and no instance id. v3+ may name several; a static member may be
        named by instance id with member id "" (as the admin client does). Per-member errors:
        UNKNOWN_MEMBER_ID, or FENCED_INSTANCE_ID when the member id is not the instance's
        current one. An unknown group answers NONE with every member UNKNOWN_MEMBER_ID.
        """
        members = list(members)
        if not group_id:
            return LeaveResult(ErrorKind.INVALID_GROUP_ID)
        group = self._groups.get(group_id)
        if group is None:
            return LeaveResult(ErrorKind.NONE, tuple(
                MemberLeave(m, i, ErrorKind.UNKNOWN_MEMBER_ID) for m, i in members))
        if group.state is DEAD:
            return LeaveResult(ErrorKind.COORDINATOR_NOT_AVAILABLE)
        results = []
        for member_id, instance_id in members:
            if instance_id is not None:
                current = group.static_members.get(instance_id)
                if current is None:
                    error = ErrorKind.UNKNOWN_MEMBER_ID
                elif member_id and member_id != current:
                    error = ErrorKind.FENCED_INSTANCE_ID
                else:
                    error = ErrorKind.NONE
                    self._remove_member(group, current, now_ms, reason="left")
            elif member_id in group.pending_members:
                del group.pending_members[member_id]
                error = ErrorKind.NONE
                self._try_complete_join(group, now_ms)
            elif member_id in group.members:
                error = ErrorKind.NONE
                self._remove_member(group, member_id, now_ms, reason="left")
            else:
                error = ErrorKind.UNKNOWN_MEMBER_ID
            results.append(MemberLeave(member_id, instance_id, error))
        return LeaveResult(ErrorKind.NONE, tuple(results))

    # ------------------------------------------------------------------ OffsetCommit check

    def validate_commit(self, group_id: str, *, member_id: str, generation_id: int,
                        instance_id: str | None = None, now_ms: int) -> ErrorKind:
        """May this OffsetCommit store offsets? (Kafka's ``validateOffsetCommit``.)

        ``generation_id < 0`` on an Empty or unknown group is a "simple" commit from a consumer
        that assigns partitions itself: accepted, and it creates the (Empty) group. Otherwise
        the member must be known and of the current generation, and the group must not be
        CompletingRebalance (REBALANCE_IN_PROGRESS: commit again after SyncGroup). A commit
        with a generation to an unknown group is ILLEGAL_GENERATION (Kafka, OffsetCommit <= v8;
        v9+ would say GROUP_ID_NOT_FOUND). An accepted member commit renews its session.
        """
        group = self._groups.get(group_id)
        if group is None:
            if generation_id < 0:
                self._group(group_id, create=True)
                return ErrorKind.NONE
            return ErrorKind.ILLEGAL_GENERATION
        if group.state is DEAD:
            return ErrorKind.COORDINATOR_NOT_AVAILABLE
        if generation_id < 0 and group.state is EMPTY:
            return ErrorKind.NONE
        if generation_id >= 0 or member_id or instance_id is not None:
            error = validate_member(group, member_id, instance_id)
            if error is not ErrorKind.NONE:
                return error
            if generation_id != group.generation_id:
                return ErrorKind.ILLEGAL_GENERATION
        else:
            # No member, no generation, but the group has members: not a simple consumer.
            return ErrorKind.UNKNOWN_MEMBER_ID
        if group.state is COMPLETING:
            return ErrorKind.REBALANCE_IN_PROGRESS
        member = group.members[member_id]
        member.session_deadline_ms = now_ms + member.session_timeout_ms
        return ErrorKind.NONE

    # ------------------------------------------------------------------ DeleteGroups, views

    def delete_group(self, group_id: str, *, now_ms: int) -> ErrorKind:
        """DeleteGroups for one group: only an Empty group can go. The caller then deletes
        the group's committed offsets (``OffsetStore.delete_group``)."""
        group = self._groups.get(group_id)
        if group is None:
            return ErrorKind.GROUP_ID_NOT_FOUND
        if group.state is not EMPTY:
            return ErrorKind.NON_EMPTY_GROUP
        self._fire(group, Event.GROUP_DELETED, now_ms)
        del self._groups[group_id]
        return ErrorKind.NONE

    def describe(self, group_id: str) -> GroupDescription:
        """DescribeGroups for one group; see ``broker.groups.views.describe_group``."""
        return describe_group(group_id, self._groups.get(group_id))

    def list_groups(self) -> list[GroupListing]:
        """ListGroups: every known group, in creation order."""
        return list_groups(self._groups.values())

    # ------------------------------------------------------------------ time

    def tick(self, now_ms: int) -> list[Ticket]:
        """Apply every deadline that has passed and report completed tickets.

        Deadlines: pending (MEMBER_ID_REQUIRED) members and member sessions expire; a
        rebalance ends at its deadline (or the initial delay's); members that did not
        SyncGroup in time are removed. Returns the tickets that were handed out pending and
        have completed since the previous ``tick`` (by this call or by any other), each once.
        """
        for group in list(self._groups.values()):
            for member_id, deadline in list(group.pending_members.items()):
                if now_ms >= deadline:
                    del group.pending_members[member_id]
            for member in list(group.members.values()):
                # Re-check membership: an earlier removal may have ended a rebalance that
                # dropped this member already.
                if (member.member_id in group.members and not member.kept_alive
                        and now_ms >= member.session_deadline_ms):
                    self._remove_member(group, member.member_id, now_ms,
                                        reason="session_expired")
            if group.state is PREPARING:
                self._try_complete_join(group, now_ms)
            if (group.state in (COMPLETING, STABLE) and group.pending_sync
                    and now_ms >= group.sync_deadline_ms):
                for member_id in sorted(group.pending_sync):
                    if member_id in group.members:
                        self._remove_member(group, member_id, now_ms, reason="sync_timeout")
                group.pending_sync.clear()
        completed = list(self._completed)
        self._completed.clear()
        return completed

    def next_deadline_ms(self) -> int | None:
        """The earliest time at which ``tick`` would change something, or None."""
        deadlines: list[int] = []
        for group in self._groups.values():
            deadlines.extend(group.pending_members.values())
            deadlines.extend(m.session_deadline_ms for m in group.members.values()
                             if not m.kept_alive)
            if group.state is PREPARING:
                deadlines.append(group.join_deadline_ms)
            if group.pending_sync:
                deadlines.append(group.sync_deadline_ms)
        return min(deadlines, default=None)

    # ------------------------------------------------------------------ the state machine

    def _fire(self, group: GroupData, event: Event, now_ms: int) -> None:
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
        getattr(self, f"_act_{action}")(group, now_ms)

    def _act_nothing(self, group: GroupData, now_ms: int) -> None:
        pass

    def _act_start_initial_rebalance(self, group: GroupData, now_ms: int) -> None:
        group.rebalance_started_ms = now_ms
        group.rebalance_timeout_ms = max_rebalance_timeout(group)
        group.in_initial_delay = True
        group.join_deadline_ms = now_ms + min(self.initial_rebalance_delay_ms,
                                              group.rebalance_timeout_ms)
        self._try_complete_join(group, now_ms)

    def _act_extend_initial_delay(self, group: GroupData, now_ms: int) -> None:
        if group.in_initial_delay:
            # Someone else arrived during the delay: give the next one the same chance, but
            # never beyond the rebalance timeout.
            group.rebalance_timeout_ms = max(group.rebalance_timeout_ms,
                                             max_rebalance_timeout(group))
            group.join_deadline_ms = min(now_ms + self.initial_rebalance_delay_ms,
                                         group.rebalance_started_ms + group.rebalance_timeout_ms)
        self._try_complete_join(group, now_ms)

    def _act_start_rebalance(self, group: GroupData, now_ms: int) -> None:
        # SyncGroups held for the generation that just ended will never get assignments.
        for member in group.members.values():
            if member.sync_ticket is not None:
                self._finish(member.sync_ticket,
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
        self._try_complete_join(group, now_ms)

    def _act_try_complete_join(self, group: GroupData, now_ms: int) -> None:
        self._try_complete_join(group, now_ms)

    def _try_complete_join(self, group: GroupData, now_ms: int) -> None:
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
                self._drop_member(group, member.member_id, reason="rebalance_timeout")
        self._fire(group, Event.ALL_JOINED if group.members else Event.ALL_LEFT, now_ms)

    def _act_complete_join(self, group: GroupData, now_ms: int) -> None:
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
            self._finish(ticket, self._join_response(group, member))
        log.info("group_generation_started", group_id=group.group_id,
                 generation_id=group.generation_id, protocol_name=group.protocol_name,
                 leader_id=group.leader_id, members=len(group.members))

    def _act_become_empty(self, group: GroupData, now_ms: int) -> None:
        group.generation_id += 1
        group.protocol_name = None
        group.leader_id = ""
        group.in_initial_delay = False
        log.info("group_emptied", group_id=group.group_id, generation_id=group.generation_id)

    def _act_distribute_assignments(self, group: GroupData, now_ms: int) -> None:
        for member in group.members.values():
            if member.sync_ticket is not None:
                ticket, member.sync_ticket = member.sync_ticket, None
                self._finish(ticket, self._sync_response(group, member))
                member.session_deadline_ms = now_ms + member.session_timeout_ms
        log.info("group_stabilized", group_id=group.group_id, generation_id=group.generation_id)

    # ------------------------------------------------------------------ helpers

    def _group(self, group_id: str, *, create: bool) -> GroupData:
        group = self._groups.get(group_id)
        if group is None and create:
            group = self._groups[group_id] = GroupData(group_id=group_id)
        return group

    def _validate_generation_request(self, group: GroupData | None, group_id: str, member_id: str,
                                     instance_id: str | None, generation_id: int) -> ErrorKind:
        """The checks SyncGroup and Heartbeat share, in Kafka's order."""
        if not group_id:
            return ErrorKind.INVALID_GROUP_ID
        if group is None:
            return ErrorKind.UNKNOWN_MEMBER_ID
        if group.state is DEAD:
            return ErrorKind.COORDINATOR_NOT_AVAILABLE
        error = validate_member(group, member_id, instance_id)
        if error is not ErrorKind.NONE:
            return error
        if generation_id != group.generation_id:
            return ErrorKind.ILLEGAL_GENERATION
        return ErrorKind.NONE

    def _join_response(self, group: GroupData, member: MemberData) -> JoinResponse:
        is_leader = member.member_id == group.leader_id
        members = tuple(
            JoinMember(m.member_id, m.instance_id, m.metadata_for(group.protocol_name))
            for m in group.members.values()) if is_leader else ()
        return JoinResponse(error=ErrorKind.NONE, member_id=member.member_id,
                            generation_id=group.generation_id,
                            protocol_type=group.protocol_type, protocol_name=group.protocol_name,
                            leader_id=group.leader_id, members=members)

    @staticmethod
    def _sync_response(group: GroupData, member: MemberData) -> SyncResponse:
        return SyncResponse(error=ErrorKind.NONE, protocol_type=group.protocol_type,
                            protocol_name=group.protocol_name, assignment=member.assignment)

    def _set_join_ticket(self, member: MemberData, ticket: JoinTicket) -> None:
        if member.join_ticket is not None and member.join_ticket is not ticket:
            # A second JoinGroup while the first is held (a client that reconnected):
            # the older one is answered so nothing waits forever.
            self._finish(member.join_ticket,
                         JoinResponse.failed(ErrorKind.REBALANCE_IN_PROGRESS, member.member_id))
        member.join_ticket = ticket

    def _drop_member(self, group: GroupData, member_id: str, *, reason: str) -> None:
        """Take a member out without firing an event (the caller fires one)."""
        member = group.forget_member(member_id)
        if member.join_ticket is not None:
            self._finish(member.join_ticket,
                         JoinResponse.failed(ErrorKind.UNKNOWN_MEMBER_ID, member_id))
        if member.sync_ticket is not None:
            self._finish(member.sync_ticket, SyncResponse.failed(ErrorKind.UNKNOWN_MEMBER_ID))
        log.info("group_member_removed", group_id=group.group_id, member_id=member_id,
                 reason=reason)

    def _remove_member(self, group: GroupData, member_id: str, now_ms: int, *, reason: str) -> None:
        self._drop_member(group, member_id, reason=reason)
        self._fire(group, Event.MEMBER_REMOVED, now_ms)

    def _finish(self, ticket: Ticket, response) -> None:
        ticket.response = response
        self._completed[ticket] = None

    def _answer_now(self, ticket, response):
        self._finish(ticket, response)
        return self._hand_out(ticket)

    def _hand_out(self, ticket):
        # A ticket answered before the caller ever saw it is not reported by tick().
        if ticket.done:
            self._completed.pop(ticket, None)
        return ticket
