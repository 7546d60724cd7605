"""ListGroups: every group the coordinator knows, with its protocol type.

Groups known only by their committed offsets (after a restart) are listed as Empty, as in
Kafka. v4's ``states_filter`` keeps the groups whose state is named (case-insensitively, as
Kafka compares them); an empty filter keeps all.

In a cluster each broker lists the groups it coordinates (docs/cluster.md#groups), and
answers COORDINATOR_LOAD_IN_PROGRESS while it reads a ``__consumer_offsets`` partition.

Version notes: v1 throttle time; v3 flexible; v4 states filter and group_state.
"""

from __future__ import annotations

from broker.security.authorizer import Operation, ResourceType
from modes.pull.context import RequestContext
from modes.pull.registry import api
from wire.kafka.errors import ErrorCode
from wire.kafka.messages.groups import LIST_GROUPS


@api(LIST_GROUPS)
async def handle_list_groups(ctx: RequestContext, request: dict) -> dict:
    wanted = {s.lower() for s in request["states_filter"]}
    everything = ctx.allowed_on_cluster(Operation.DESCRIBE)
    group_offsets = ctx.broker.group_offsets
    if group_offsets is not None and group_offsets.loading():
        # Kafka's answer while a coordinator reads a __consumer_offsets partition.
        return {"throttle_time_ms": 0, "error_code": ErrorCode.COORDINATOR_LOAD_IN_PROGRESS, "groups": []}
    groups = [{"group_id": g.group_id, "protocol_type": g.protocol_type, "group_state": g.state.value}
              for g in ctx.broker.coord.groups.coordinator.list_groups()
              if (not wanted or g.state.value.lower() in wanted)
              # In a cluster each broker lists the groups it coordinates (docs/cluster.md#groups).
              and (group_offsets is None or group_offsets.coordinates(g.group_id))
              # Kafka lists every group to Describe on the cluster, else those the
              # principal may describe.
              and (everything or ctx.allowed(Operation.DESCRIBE, ResourceType.GROUP, g.group_id))]
    return {"throttle_time_ms": 0, "error_code": ErrorCode.NONE, "groups": groups}
