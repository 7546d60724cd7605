"""The group requests that are answered at once: Heartbeat, LeaveGroup, the OffsetCommit
membership check, DescribeGroups, ListGroups and DeleteGroups.

What lives here: ``ImmediateRequests``, a mixin of ``broker.groups.GroupCoordinator`` (read that
module's docstring for the rules and for how a front-end drives the coordinator). What does
not: JoinGroup and SyncGroup (their answers may be delayed, so they live next to the state
machine's actions) and the state data (``broker.group_state``).

Split out of ``broker.groups`` only to keep files near one concept and under ~600 lines; the
methods use the coordinator's private helpers (``_groups``, ``_fire``, ``_remove_member``).
"""

from __future__ import annotations

from collections.abc import Iterable

from broker.outcome import ErrorKind
from broker.group_model import (
    GroupDescription,
    GroupListing,
    LeaveResult,
    MemberDescription,
    MemberLeave,
)
from broker.group_state import (
    COMPLETING,
    DEAD,
    EMPTY,
    HEARTBEAT_REPLY,
    STABLE,
    Event,
    validate_member,
)

__all__ = ["ImmediateRequests"]


class ImmediateRequests:
    """Mixin: requests whose answer is a value, never a ticket."""

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
        """May this OffsetCommit store offsets? (GUIDE §4.2, Kafka's ``validateOffsetCommit``.)

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

    # ------------------------------------------------------------------ describe, list, delete

    def describe(self, group_id: str) -> GroupDescription:
        """DescribeGroups for one group; unknown groups are "Dead" with no members (as Kafka).

        Members' metadata and assignment are shown only when the group is Stable, like
        Kafka; ``dualmq groups describe`` decodes the assignment bytes itself.
        """
        group = self._groups.get(group_id)
        if group is None:
            return GroupDescription(group_id=group_id, state=DEAD, protocol_type="",
                                    protocol_name="")
        stable = group.state is STABLE
        members = tuple(
            MemberDescription(
                member_id=m.member_id, instance_id=m.instance_id, client_id=m.client_id,
                client_host=m.client_host,
                metadata=m.metadata_for(group.protocol_name) if stable else b"",
                assignment=m.assignment if stable else b"")
            for m in group.members.values())
        return GroupDescription(
            group_id=group_id, state=group.state, protocol_type=group.protocol_type or "",
            protocol_name=(group.protocol_name or "") if stable else "", members=members,
            generation_id=group.generation_id, leader_id=group.leader_id)

    def list_groups(self) -> list[GroupListing]:
        """ListGroups: every known group, in creation order."""
        return [GroupListing(g.group_id, g.protocol_type or "", g.state)
                for g in self._groups.values()]

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
