"""ListGroups: every group the coordinator knows, with its protocol type.

Groups known only by their committed offsets (after a restart) are listed as Empty, as in
Kafka. v4's ``states_filter`` keeps the groups whose state is named (case-insensitively, as
Kafka compares them); an empty filter keeps all.

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
    groups = [{"group_id": g.group_id, "protocol_type": g.protocol_type, "group_state": g.state.value}
              for g in ctx.broker.coord.groups.coordinator.list_groups()
              if (not wanted or g.state.value.lower() in wanted)
              # Kafka lists every group to Describe on the cluster, else those the
              # principal may describe.
              and (everything or ctx.allowed(Operation.DESCRIBE, ResourceType.GROUP, g.group_id))]
    return {"throttle_time_ms": 0, "error_code": ErrorCode.NONE, "groups": groups}
