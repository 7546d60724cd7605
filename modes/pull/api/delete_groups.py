"""DeleteGroups: admin removal of consumer groups and their committed offsets.

Per group, from ``GroupCoordinator.delete_group``: only a group with no members (Empty) can
go, else NON_EMPTY_GROUP — stop its consumers first, as Kafka asks; a group we do not know is
GROUP_ID_NOT_FOUND; an empty name is INVALID_GROUP_ID. A deleted group's committed offsets
are dropped and the drop is fsynced before we answer, so a consumer that later joins a group
of that name starts from ``auto_offset_reset``, and a restart does not bring them back. In a
cluster (docs/cluster.md#groups) only the group's coordinator deletes it (elsewhere
NOT_COORDINATOR), writing a tombstone per committed partition to ``__consumer_offsets`` and
answering once every in-sync replica holds them.

Version notes: served from v0 (Kafka deprecates it, but kafka-python's admin still asks for it
when the broker allows); v1 changes nothing on the wire; v2 flexible.
"""

from __future__ import annotations


from broker.outcome import ErrorKind
from broker.security.authorizer import Operation, ResourceType
from modes.pull.context import RequestContext, now_ms
from modes.pull.coordination import monotonic_ms
from modes.pull.errors import code_for_kind
from modes.pull.registry import api
from wire.kafka.messages.groups import DELETE_GROUPS


@api(DELETE_GROUPS)
async def handle_delete_groups(ctx: RequestContext, request: dict) -> dict:
    coord = ctx.broker.coord
    runtime = coord.groups
    results = []
    deleted = False
    for group_id in request["groups_names"]:
        if not group_id:
            error = ErrorKind.INVALID_GROUP_ID
        elif not ctx.allowed(Operation.DELETE, ResourceType.GROUP, group_id):
            error = ErrorKind.GROUP_AUTHORIZATION_FAILED
        elif (error := ctx.broker.group_error(group_id)) is ErrorKind.NONE:
            error = runtime.coordinator.delete_group(group_id, now_ms=monotonic_ms())
        if error is ErrorKind.NONE and ctx.broker.group_offsets is not None:
            # A tombstone per committed partition, answered once every in-sync replica has them.
            error = await ctx.broker.group_offsets.delete_group(group_id, now_ms())
        elif error is ErrorKind.NONE:
            coord.offsets.delete_group(group_id)
            deleted = True
        results.append({"group_id": group_id, "error_code": code_for_kind(error)})
    runtime.tick()
    if deleted:
        await coord.flush_offsets()
    return {"throttle_time_ms": 0, "results": results}
