"""FindCoordinator: which broker coordinates this group? On a single broker, always us.

A single broker is every group's coordinator: the answer carries the same node id, host and
port as Metadata's only broker. In a cluster it is the leader of the group's
``__consumer_offsets`` partition (docs/cluster.md#groups), COORDINATOR_NOT_AVAILABLE while that
partition has no live leader or the topic is still being created. librdkafka opens a separate
connection to that address for its group traffic, so heartbeats never queue behind a
long-polling Fetch.

``key_type`` (v1+): 0 = group → answered. Anything else → INVALID_REQUEST, which is what
Kafka answers for a key type it does not serve (``KafkaApis``): 1 (transaction) needs a
transaction coordinator, and we have none — a retriable COORDINATOR_NOT_AVAILABLE would make a
transactional producer retry forever, INVALID_REQUEST tells it at once. An empty group id is
INVALID_GROUP_ID. Errors carry ``node_id`` -1, empty host, port -1, as Kafka's do.

Advertising v0 matters beyond groups: librdkafka 2.0.2 enables its "LZ4" feature only when
FindCoordinator v0 is in range.

Version notes: v1 key_type, error_message, throttle time; v3 flexible. v4+ (batched keys) is
not served.
"""

from __future__ import annotations

from broker.security.authorizer import Operation, ResourceType
from modes.pull.context import RequestContext
from modes.pull.errors import code_for_kind
from modes.pull.registry import api
from wire.kafka.errors import ErrorCode
from wire.kafka.messages.groups import FIND_COORDINATOR

GROUP_KEY_TYPE = 0


@api(FIND_COORDINATOR)
async def handle_find_coordinator(ctx: RequestContext, request: dict) -> dict:
    error, message = ErrorCode.NONE, None
    if request["key_type"] != GROUP_KEY_TYPE:
        error, message = ErrorCode.INVALID_REQUEST, f"key_type {request['key_type']} is not supported"
    elif not request["key"]:
        error, message = ErrorCode.INVALID_GROUP_ID, "group id is empty"
    elif not ctx.allowed(Operation.DESCRIBE, ResourceType.GROUP, request["key"]):
        error, message = ErrorCode.GROUP_AUTHORIZATION_FAILED, "Group authorization failed."
    if error != ErrorCode.NONE:
        return {"throttle_time_ms": 0, "error_code": error, "error_message": message,
                "node_id": -1, "host": "", "port": -1}
    group_offsets = ctx.broker.group_offsets
    if group_offsets is not None:
        # In a cluster a group's coordinator is the leader of its __consumer_offsets partition
        # (docs/cluster.md#groups); the first request creates that topic.
        error_kind, coordinator = group_offsets.find_coordinator(request["key"])
        if coordinator is None:
            return {"throttle_time_ms": 0, "error_code": code_for_kind(error_kind),
                    "error_message": "the group's __consumer_offsets partition has no live leader yet",
                    "node_id": -1, "host": "", "port": -1}
        return {"throttle_time_ms": 0, "error_code": ErrorCode.NONE, "error_message": None,
                "node_id": coordinator.node_id, "host": coordinator.host, "port": coordinator.kafka_port}
    host, port = ctx.broker.advertised_address(ctx.local)
    return {"throttle_time_ms": 0, "error_code": ErrorCode.NONE, "error_message": None,
            "node_id": ctx.broker.node_id, "host": host, "port": port}
