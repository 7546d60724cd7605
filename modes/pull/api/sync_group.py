"""SyncGroup: the second half of a rebalance — assignments go out.

The leader sends every member's assignment bytes; followers send an empty list and are held
until the leader's SyncGroup arrives (or a new rebalance starts: REBALANCE_IN_PROGRESS). Each
member gets its own bytes; a member the leader left out gets empty bytes ("no partitions").
The bytes are opaque to us: assignors run in the clients (for consumers the bytes are a
ConsumerProtocolAssignment: which partitions of which topics, plus user data).

A follower that sends assignments: Kafka ignores them (only the leader's count) and answers
normally — so do we, on purpose: refusing would break clients that always send their view,
and ignoring cannot hurt anyone else. Entries naming member ids not in the group are ignored
too. Errors: UNKNOWN_MEMBER_ID (not a member / group Empty or unknown), ILLEGAL_GENERATION
(wrong generation), REBALANCE_IN_PROGRESS (the group is collecting joins), FENCED_INSTANCE_ID,
INVALID_GROUP_ID.

The wait is bounded by the group's rebalance timeout (members that never sync are removed
then, and the held followers answered); see ``join_group`` for the second bound.

Version notes: v1 throttle time; v3 group_instance_id; v4 flexible. v5's protocol_type /
protocol_name are not served.
"""

from __future__ import annotations

from broker.groups import SyncResponse
from broker.outcome import ErrorKind
from broker.security.authorizer import Operation, ResourceType
from modes.pull.context import RequestContext
from modes.pull.coordination import MAX_GROUP_WAIT_SECONDS, monotonic_ms
from modes.pull.errors import code_for_kind
from modes.pull.registry import api
from wire.kafka.messages.groups import SYNC_GROUP


@api(SYNC_GROUP, may_block=True)
async def handle_sync_group(ctx: RequestContext, request: dict) -> dict:
    runtime = ctx.broker.coord.groups
    if not ctx.allowed(Operation.READ, ResourceType.GROUP, request["group_id"]):
        return {"throttle_time_ms": 0, "error_code": code_for_kind(ErrorKind.GROUP_AUTHORIZATION_FAILED),
                "assignment": b""}
    if (not_here := ctx.broker.group_error(request["group_id"])) is not ErrorKind.NONE:
        return {"throttle_time_ms": 0, "error_code": code_for_kind(not_here), "assignment": b""}
    ticket = runtime.coordinator.sync(
        request["group_id"],
        member_id=request["member_id"],
        generation_id=request["generation_id"],
        instance_id=request["group_instance_id"],
        assignments=[(a["member_id"], bytes(a["assignment"])) for a in request["assignments"]],
        now_ms=monotonic_ms(),
    )
    # The coordinator's sync deadline (the rebalance timeout) answers us first.
    if await runtime.wait(ticket, int(MAX_GROUP_WAIT_SECONDS * 1000)):
        response = ticket.response
    else:
        response = SyncResponse.failed(ErrorKind.REBALANCE_IN_PROGRESS)
    runtime.tick()
    return {"throttle_time_ms": 0, "error_code": code_for_kind(response.error),
            "assignment": response.assignment}
