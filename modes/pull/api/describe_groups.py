"""DescribeGroups: state, protocol and members of named groups.

From ``GroupCoordinator.describe``: state name as Kafka spells it (Empty, PreparingRebalance,
CompletingRebalance, Stable, Dead), protocol type, ``protocol_data`` = the chosen assignor
(only while Stable), and per member its id, instance id, client id and host, and — while
Stable — its metadata and assignment bytes (``dualmq groups describe`` decodes those). A
group we do not know is described as Dead with no members and error NONE (Kafka before v6).

Version notes: v1 throttle time; v3 authorized operations (not computed: "not requested");
v4 group_instance_id per member; v5 flexible.
"""

from __future__ import annotations

from broker.security.authorizer import Operation, ResourceType
from broker.outcome import ErrorKind
from modes.pull.context import RequestContext
from modes.pull.errors import code_for_kind
from modes.pull.registry import api
from wire.kafka.errors import ErrorCode
from wire.kafka.messages.groups import DESCRIBE_GROUPS

NOT_REQUESTED = -2147483648


@api(DESCRIBE_GROUPS)
async def handle_describe_groups(ctx: RequestContext, request: dict) -> dict:
    coordinator = ctx.broker.coord.groups.coordinator
    groups = []
    for group_id in request["groups"]:
        if not ctx.allowed(Operation.DESCRIBE, ResourceType.GROUP, group_id):
            groups.append({"error_code": ErrorCode.GROUP_AUTHORIZATION_FAILED, "group_id": group_id,
                           "group_state": "", "protocol_type": "", "protocol_data": "", "members": [],
                           "authorized_operations": NOT_REQUESTED})
            continue
        if (not_here := ctx.broker.group_error(group_id)) is not ErrorKind.NONE:
            groups.append({"error_code": code_for_kind(not_here), "group_id": group_id, "group_state": "",
                           "protocol_type": "", "protocol_data": "", "members": [],
                           "authorized_operations": NOT_REQUESTED})
            continue
        d = coordinator.describe(group_id)
        groups.append({
            "error_code": ErrorCode.NONE if group_id else ErrorCode.INVALID_GROUP_ID,
            "group_id": group_id,
            "group_state": d.state_name,
            "protocol_type": d.protocol_type,
            "protocol_data": d.protocol_name,
            "members": [{"member_id": m.member_id, "group_instance_id": m.instance_id,
                         "client_id": m.client_id, "client_host": m.client_host,
                         "member_metadata": m.metadata, "member_assignment": m.assignment}
                        for m in d.members],
            "authorized_operations": NOT_REQUESTED,
        })
    return {"throttle_time_ms": 0, "groups": groups}
