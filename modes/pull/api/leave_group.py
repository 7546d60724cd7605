"""LeaveGroup: members leave, the rest rebalance without waiting for a timeout.

``GroupCoordinator.leave`` removes each named member (v3+ may name several, and static members
by instance id) and starts a rebalance for the others. Per-member errors: UNKNOWN_MEMBER_ID,
FENCED_INSTANCE_ID. An unknown group answers NONE with every member UNKNOWN_MEMBER_ID.

Version notes: v0-2 name one ``member_id`` and have only a top-level error, which is the
member's own error when the request as a whole succeeded (Kafka's down-conversion); v1
throttle time; v3 ``members[]`` with per-member results; v4 flexible.
"""

from __future__ import annotations

from broker.outcome import ErrorKind
from broker.security.authorizer import Operation, ResourceType
from modes.pull.context import RequestContext
from modes.pull.coordination import monotonic_ms
from modes.pull.errors import code_for_kind
from modes.pull.registry import api
from wire.kafka.messages.groups import LEAVE_GROUP

FIRST_BATCH_VERSION = 3


@api(LEAVE_GROUP)
async def handle_leave_group(ctx: RequestContext, request: dict) -> dict:
    runtime = ctx.broker.coord.groups
    if not ctx.allowed(Operation.READ, ResourceType.GROUP, request["group_id"]):
        return {"throttle_time_ms": 0, "error_code": code_for_kind(ErrorKind.GROUP_AUTHORIZATION_FAILED),
                "members": []}
    if (not_here := ctx.broker.group_error(request["group_id"])) is not ErrorKind.NONE:
        return {"throttle_time_ms": 0, "error_code": code_for_kind(not_here), "members": []}
    if ctx.version >= FIRST_BATCH_VERSION:
        members = [(m["member_id"], m["group_instance_id"]) for m in request["members"]]
    else:
        members = [(request["member_id"], None)]
    result = runtime.coordinator.leave(request["group_id"], members, now_ms=monotonic_ms())
    runtime.tick()
    error = result.error
    if ctx.version < FIRST_BATCH_VERSION and error is ErrorKind.NONE and result.members:
        error = result.members[0].error
    return {
        "throttle_time_ms": 0,
        "error_code": code_for_kind(error),
        "members": [{"member_id": m.member_id, "group_instance_id": m.instance_id,
                     "error_code": code_for_kind(m.error)} for m in result.members],
    }
