"""Read-only views of consumer groups: what DescribeGroups and ListGroups show.

What lives here: ``describe_group`` and ``list_groups``, pure functions from the coordinator's
group records (``broker.groups.members.GroupData``) to the frozen values of
``broker.groups.model``. They never change a record; ``GroupCoordinator.describe`` and
``GroupCoordinator.list_groups`` hand them the records to read.

What does not: any request that changes a group or checks a member — JoinGroup, SyncGroup,
Heartbeat, LeaveGroup, the OffsetCommit membership check and DeleteGroups are all in
``broker.groups.coordinator``.

Kafka's classic group protocol, the part implemented here: a group's state is named as Kafka
names it (Empty, PreparingRebalance, CompletingRebalance, Stable, Dead); members' metadata,
assignment and the chosen assignor are shown only once the group is Stable, because before
that they belong to a generation still being formed. A group the broker does not know is
described as Dead with no members rather than refused.
"""

from __future__ import annotations

from collections.abc import Iterable

from broker.groups.members import GroupData
from broker.groups.model import DEAD, STABLE, GroupDescription, GroupListing, MemberDescription

__all__ = ["describe_group", "list_groups"]


def describe_group(group_id: str, group: GroupData | None) -> GroupDescription:
    """DescribeGroups for one group.

    Args:
        group_id: the id asked about.
        group: its record, or None if the broker knows no such group.
    Returns:
        The description; an unknown group is "Dead" with no members (as Kafka answers).
        ``dualmq groups describe`` decodes the assignment bytes itself.
    """
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


def list_groups(groups: Iterable[GroupData]) -> list[GroupListing]:
    """ListGroups: one listing per group record, in the order given (creation order)."""
    return [GroupListing(g.group_id, g.protocol_type or "", g.state) for g in groups]
