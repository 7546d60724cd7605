"""The group coordinator: every request that changes a consumer group or checks a member.

What lives here: ``GroupCoordinator``, which holds every group of the broker and answers
JoinGroup (checks, then ``broker.groups.joining``), SyncGroup, Heartbeat, LeaveGroup,
DeleteGroups and the membership check of OffsetCommit; applies deadlines (``tick``); and hands
DescribeGroups / ListGroups to the read-only views. ``HEARTBEAT_REPLY``: Heartbeat's answer by
state. Read ``broker.groups`` (the package docstring) for how a front-end drives it.

What does not: the steps of a join (``broker.groups.joining``), the state table and what each
move does (``broker.groups.transitions``), the records and the rules read off them
(``broker.groups.members``), the values handed out (``broker.groups.model``), describe/list
(``broker.groups.views``). Nor bytes, sockets, tasks, clocks or offsets: member metadata and
assignments are opaque ``bytes`` (assignors run in the clients), time arrives as ``now_ms``,
committed offsets live in ``broker.offsets``.

Kafka's classic group protocol, the request side, in our words:

* SyncGroup: followers are held until the leader's SyncGroup brings the assignments; then
  everyone gets their own bytes (a member the leader forgot gets ``b""``). Members must send
  SyncGroup within the rebalance timeout, or they are removed and a new rebalance starts
  (Kafka 3.2+'s "pending sync" rule; it also unsticks a group whose leader died mid-sync).
* Heartbeat: a member of the current generation hears whether to carry on (NONE) or re-join
  (REBALANCE_IN_PROGRESS); see ``HEARTBEAT_REPLY``.
* Sessions: any JoinGroup, SyncGroup, Heartbeat or accepted OffsetCommit renews a member's
  session. A member whose session runs out is removed — except while it is *waiting* for a
  JoinGroup or SyncGroup answer, because then the broker is the one making it wait.
* LeaveGroup removes members at once (a static member may be named by its instance id);
  DeleteGroups forgets an Empty group; an OffsetCommit is accepted from a member of the
  current generation, or with no generation at all from a consumer outside any rebalance.

Deliberate difference from Kafka: a non-existent group is created by the first JoinGroup (or
simple OffsetCommit), not by FindCoordinator.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

import attrs

from broker.groups.joining import JoinRequest, join_known_member, join_new_member
from broker.groups.members import GroupData, Protocols, sync_response, validate_member
from broker.groups.model import (
    COMPLETING,
    DEAD,
    EMPTY,
    PREPARING,
    STABLE,
    AnsweredTickets,
    GroupDescription,
    GroupListing,
    GroupState,
    JoinResponse,
    JoinTicket,
    LeaveResult,
    MemberLeave,
    SyncResponse,
    SyncTicket,
    Ticket,
)
from broker.groups.transitions import (
    ActionContext,
    Event,
    fire,
    remove_member,
    try_complete_join,
)
from broker.groups.views import describe_group, list_groups
from broker.loggers import get_logger
from broker.outcome import ErrorKind

if TYPE_CHECKING:
    from broker.config import KafkaConfig

__all__ = ["GroupCoordinator", "HEARTBEAT_REPLY"]

log = get_logger(__name__)

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
    """Every consumer group of the broker. See ``broker.groups`` for how to drive it.

    Build it with ``GroupCoordinator.from_config(broker_config.kafka, existing_groups=...)``;
    ``existing_groups`` (e.g. ``offset_store.groups()``) makes groups known only by their
    committed offsets show up as Empty after a restart, as in Kafka.
    """

    initial_rebalance_delay_ms: int = 3000
    min_session_timeout_ms: int = 6000
    max_session_timeout_ms: int = 1_800_000
    new_uuid: Callable[[], str] = _new_uuid  # injectable for deterministic tests
    _groups: dict[str, GroupData] = attrs.field(factory=dict, init=False)
    _answers: AnsweredTickets = attrs.field(factory=AnsweredTickets, init=False)

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
        request = JoinRequest(
            instance_id=instance_id, client_id=client_id, client_host=client_host,
            session_timeout_ms=session_timeout_ms, rebalance_timeout_ms=rebalance_timeout_ms,
            protocol_type=protocol_type,
            protocols=tuple((str(name), bytes(meta)) for name, meta in protocols),
            now_ms=now_ms, require_known_member=require_known_member)
        error = self._check_join(group_id, request)
        if error is not ErrorKind.NONE:
            return self._answers.answer_now(ticket, JoinResponse.failed(error, member_id))
        group = self._groups.get(group_id)
        if member_id == "":
            group = self._group(group_id, create=True)
            join_new_member(group, ticket, request, self._context, self.new_uuid)
        elif group is None:
            self._answers.answer(ticket, JoinResponse.failed(ErrorKind.UNKNOWN_MEMBER_ID,
                                                             member_id))
        else:
            join_known_member(group, ticket, request, self._context)
        return self._answers.hand_out(ticket)

    def _check_join(self, group_id: str, request: JoinRequest) -> ErrorKind:
        if not group_id:
            return ErrorKind.INVALID_GROUP_ID
        if not (self.min_session_timeout_ms <= request.session_timeout_ms
                <= self.max_session_timeout_ms):
            return ErrorKind.INVALID_SESSION_TIMEOUT
        if not request.protocols:
            return ErrorKind.INCONSISTENT_GROUP_PROTOCOL
        group = self._groups.get(group_id)
        if group is not None and group.state is DEAD:
            return ErrorKind.COORDINATOR_NOT_AVAILABLE
        return ErrorKind.NONE

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
            return self._answers.answer_now(ticket, SyncResponse.failed(error))
        member = group.members[member_id]
        member.session_deadline_ms = now_ms + member.session_timeout_ms
        group.pending_sync.discard(member_id)
        if group.state is STABLE:
            self._answers.answer(ticket, sync_response(group, member))
            return self._answers.hand_out(ticket)
        # CompletingRebalance: wait for the leader, or be the leader.
        if member.sync_ticket is not None:
            self._answers.answer(member.sync_ticket,
                                 SyncResponse.failed(ErrorKind.REBALANCE_IN_PROGRESS))
        member.sync_ticket = ticket
        if member_id == group.leader_id:
            given = dict(assignments)
            for other in group.members.values():
                other.assignment = given.get(other.member_id, b"")
            fire(group, Event.LEADER_SYNCED, now_ms, self._context)
        return self._answers.hand_out(ticket)

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
                    remove_member(group, current, now_ms, self._context, reason="left")
            elif member_id in group.pending_members:
                del group.pending_members[member_id]
                error = ErrorKind.NONE
                try_complete_join(group, now_ms, self._context)
            elif member_id in group.members:
                error = ErrorKind.NONE
                remove_member(group, member_id, now_ms, self._context, reason="left")
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
        fire(group, Event.GROUP_DELETED, now_ms, self._context)
        del self._groups[group_id]
        return ErrorKind.NONE

    def know_groups(self, group_ids: Iterable[str]) -> None:
        """Make groups known by their committed offsets alone (Empty, no members), as
        ``existing_groups`` does at start: a cluster broker that starts coordinating a
        ``__consumer_offsets`` partition learns its groups this way (docs/cluster.md#groups)."""
        for group_id in group_ids:
            self._group(group_id, create=True)

    def unload(self, group_ids: Iterable[str]) -> None:
        """Forget groups this broker no longer coordinates (its ``__consumer_offsets``
        partition moved away), members and all, as Kafka's coordinator does on resigning.

        Every JoinGroup / SyncGroup held for them is answered NOT_COORDINATOR (reported by the
        next ``tick``): the members find the new coordinator and join there.
        """
        for group_id in list(group_ids):
            group = self._groups.pop(group_id, None)
            if group is None:
                continue
            for member in group.members.values():
                if member.join_ticket is not None:
                    self._answers.answer(member.join_ticket,
                                         JoinResponse.failed(ErrorKind.NOT_COORDINATOR, member.member_id))
                    member.join_ticket = None
                if member.sync_ticket is not None:
                    self._answers.answer(member.sync_ticket, SyncResponse.failed(ErrorKind.NOT_COORDINATOR))
                    member.sync_ticket = None

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
                    remove_member(group, member.member_id, now_ms, self._context,
                                  reason="session_expired")
            if group.state is PREPARING:
                try_complete_join(group, now_ms, self._context)
            if (group.state in (COMPLETING, STABLE) and group.pending_sync
                    and now_ms >= group.sync_deadline_ms):
                for member_id in sorted(group.pending_sync):
                    if member_id in group.members:
                        remove_member(group, member_id, now_ms, self._context,
                                      reason="sync_timeout")
                group.pending_sync.clear()
        return self._answers.take_reported()

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

    # ------------------------------------------------------------------ helpers

    @property
    def _context(self) -> ActionContext:
        """What the transition table's actions may use of the coordinator."""
        return ActionContext(answers=self._answers,
                             initial_rebalance_delay_ms=self.initial_rebalance_delay_ms)

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
