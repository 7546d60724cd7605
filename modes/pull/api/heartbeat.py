"""Heartbeat: a member says it is alive; the answer says whether to re-join.

Answered at once by ``GroupCoordinator.heartbeat`` (Kafka's rules): NONE while the
group is Stable or CompletingRebalance; REBALANCE_IN_PROGRESS while it collects joins (the
member must re-join); UNKNOWN_MEMBER_ID for a member the group does not know (never joined,
expired, or the group is Empty / unknown); ILLEGAL_GENERATION for a stale generation;
FENCED_INSTANCE_ID for a replaced static member; INVALID_GROUP_ID for "". A heartbeat from an
unknown member changes nothing — no group is created, no other member is touched.

Version notes: v1 throttle time; v3 group_instance_id; v4 flexible.
"""

from __future__ import annotations

from broker.outcome import ErrorKind
from broker.security.authorizer import Operation, ResourceType
from modes.pull.context import RequestContext
from modes.pull.coordination import monotonic_ms
from modes.pull.errors import code_for_kind
from modes.pull.registry import api
from wire.kafka.messages.groups import HEARTBEAT


@api(HEARTBEAT)
async def handle_heartbeat(ctx: RequestContext, request: dict) -> dict:
    if not ctx.allowed(Operation.READ, ResourceType.GROUP, request["group_id"]):
        return {"throttle_time_ms": 0, "error_code": code_for_kind(ErrorKind.GROUP_AUTHORIZATION_FAILED)}
    if (not_here := ctx.broker.group_error(request["group_id"])) is not ErrorKind.NONE:
        return {"throttle_time_ms": 0, "error_code": code_for_kind(not_here)}
    runtime = ctx.broker.coord.groups
    error = runtime.coordinator.heartbeat(
        request["group_id"], member_id=request["member_id"], generation_id=request["generation_id"],
        instance_id=request["group_instance_id"], now_ms=monotonic_ms())
    runtime.tick()
    return {"throttle_time_ms": 0, "error_code": code_for_kind(error)}
