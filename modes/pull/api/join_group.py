"""JoinGroup: the first half of a classic rebalance (rules: ``broker.groups``).

We hand the request to ``GroupCoordinator.join``. Its ticket is either answered at once (an
error, MEMBER_ID_REQUIRED, a follower re-joining a Stable group unchanged) or later: the
request then waits (``may_block``: responses already computed on this connection go out
first) until the rebalance completes — every member re-joined, or the rebalance timeout ran
out — and the coordinator runtime wakes it. The rebalance timeout bounds that wait; a second
bound in ``coordination.GroupRuntime.wait`` answers REBALANCE_IN_PROGRESS (re-join) should it
ever run out first.

Rules that show on the wire: ``session_timeout_ms`` outside the configured
``[group_min_session_timeout_ms, group_max_session_timeout_ms]`` (Kafka: 6 s .. 30 min) is
INVALID_SESSION_TIMEOUT; an empty group id INVALID_GROUP_ID; no protocols, a protocol type
other than the group's, or no assignor common to every member INCONSISTENT_GROUP_PROTOCOL;
an unknown member id UNKNOWN_MEMBER_ID; a stale static-member id FENCED_INSTANCE_ID. The
rebalance timeout is not range-checked, as in Kafka (a negative one ends the rebalance at
once; a huge one only holds this group).

Only the leader's response lists the members (with their metadata for the chosen protocol);
followers get an empty list. Member ids are ``<client_id>-<uuid4>``.

Version notes: v0 has no rebalance timeout — the session timeout is used, as Kafka does;
v1 rebalance_timeout_ms; v2 throttle time; v4 a first join with an empty member id gets
MEMBER_ID_REQUIRED and a fresh id to join again with; v5 group_instance_id (static
membership); v6 flexible; v7 protocol_type in the response, protocol_name nullable.
"""

from __future__ import annotations

from broker.groups import JoinResponse
from broker.outcome import ErrorKind
from broker.security.authorizer import Operation, ResourceType
from modes.pull.context import RequestContext
from modes.pull.coordination import monotonic_ms
from modes.pull.errors import code_for_kind
from modes.pull.registry import api
from wire.kafka.messages.groups import JOIN_GROUP

FIRST_MEMBER_ID_REQUIRED_VERSION = 4
FIRST_NULLABLE_PROTOCOL_VERSION = 7


@api(JOIN_GROUP, may_block=True)
async def handle_join_group(ctx: RequestContext, request: dict) -> dict:
    runtime = ctx.broker.coord.groups
    if not ctx.allowed(Operation.READ, ResourceType.GROUP, request["group_id"]):
        return encode_join(JoinResponse.failed(ErrorKind.GROUP_AUTHORIZATION_FAILED, request["member_id"]),
                           ctx.version)
    if (not_here := ctx.broker.group_error(request["group_id"])) is not ErrorKind.NONE:
        return encode_join(JoinResponse.failed(not_here, request["member_id"]), ctx.version)
    session_timeout = request["session_timeout_ms"]
    rebalance_timeout = request["rebalance_timeout_ms"] if ctx.version >= 1 else session_timeout
    ticket = runtime.coordinator.join(
        request["group_id"],
        member_id=request["member_id"],
        instance_id=request["group_instance_id"],
        client_id=ctx.header.client_id or "",
        client_host=ctx.client_host,
        session_timeout_ms=session_timeout,
        rebalance_timeout_ms=rebalance_timeout,
        protocol_type=request["protocol_type"],
        protocols=[(p["name"], bytes(p["metadata"])) for p in request["protocols"]],
        now_ms=monotonic_ms(),
        require_known_member=ctx.version >= FIRST_MEMBER_ID_REQUIRED_VERSION,
    )
    if not await runtime.wait(ticket, max(rebalance_timeout, session_timeout)):
        response = JoinResponse.failed(ErrorKind.REBALANCE_IN_PROGRESS, request["member_id"])
    else:
        response = ticket.response
    runtime.tick()
    return encode_join(response, ctx.version)


def encode_join(response: JoinResponse, version: int) -> dict:
    nullable = version >= FIRST_NULLABLE_PROTOCOL_VERSION
    protocol_name = response.protocol_name
    if protocol_name is None and not nullable:
        protocol_name = ""
    return {
        "throttle_time_ms": 0,
        "error_code": code_for_kind(response.error),
        "generation_id": response.generation_id,
        "protocol_type": response.protocol_type,
        "protocol_name": protocol_name,
        "leader": response.leader_id,
        "member_id": response.member_id,
        "members": [{"member_id": m.member_id, "group_instance_id": m.instance_id,
                     "metadata": m.metadata} for m in response.members],
    }
