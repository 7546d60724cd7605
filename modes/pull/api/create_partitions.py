"""CreatePartitions: admin growth of a topic's partition count.

Per topic: it must exist (UNKNOWN_TOPIC_OR_PARTITION), be named once in the request
(INVALID_REQUEST for duplicates, as Kafka), and ``count`` must be above the current count and
at most the broker's maximum (INVALID_PARTITIONS). Explicit ``assignments`` must give one entry
per new partition naming only this broker (INVALID_REPLICA_ASSIGNMENT): we are one broker with
no replicas. ``validate_only`` checks everything and changes nothing.

What growing means for users (Kafka's caveat, and the reason there is no shrinking): records
already written stay where they are, but a key may hash to a different partition from now on,
so per-key order holds only among records written after the change. Consumers see the new
partitions on their next metadata refresh.

Version notes: served from v0; v1 changes nothing on the wire; v2 flexible; v3 only adds a
throttling error code we never send.
"""

from __future__ import annotations

from broker.errors import BrokerError
from broker.security.authorizer import Operation, ResourceType
from modes.pull.context import RequestContext, now_ms
from modes.pull.errors import error_code_for
from modes.pull.registry import api
from wire.kafka.errors import ErrorCode
from wire.kafka.messages.admin import CREATE_PARTITIONS


@api(CREATE_PARTITIONS)
async def handle_create_partitions(ctx: RequestContext, request: dict) -> dict:
    names = [t["name"] for t in request["topics"]]
    results = []
    for wanted in request["topics"]:
        result = {"name": wanted["name"], "error_code": ErrorCode.NONE, "error_message": None}
        results.append(result)
        if names.count(wanted["name"]) > 1:
            result["error_code"] = ErrorCode.INVALID_REQUEST
            result["error_message"] = f"topic {wanted['name']!r} appears more than once in the request"
            continue
        if not ctx.allowed(Operation.ALTER, ResourceType.TOPIC, wanted["name"]):
            result["error_code"] = ErrorCode.TOPIC_AUTHORIZATION_FAILED
            result["error_message"] = "The topic authorization failed."
            continue
        if ctx.broker.cluster is not None:
            # Growing here alone would leave etcd and the other brokers with the old count.
            result["error_code"] = ErrorCode.INVALID_REQUEST
            result["error_message"] = "adding partitions is not served in cluster mode yet (docs/cluster.md)"
            continue
        _grow(ctx, wanted, request["validate_only"], result)
    return {"throttle_time_ms": 0, "results": results}


def _grow(ctx: RequestContext, wanted: dict, validate_only: bool, result: dict) -> None:
    registry = ctx.broker.topics
    name, count = wanted["name"], wanted["count"]
    topic = registry.get(name)
    assignments = wanted["assignments"]
    if topic is not None and assignments is not None:
        node_id = ctx.broker.node_id
        new = count - len(topic.partitions)
        if len(assignments) != new or any(a["broker_ids"] != [node_id] for a in assignments):
            result["error_code"] = ErrorCode.INVALID_REPLICA_ASSIGNMENT
            result["error_message"] = (f"give one assignment per new partition ({max(new, 0)}), "
                                       f"each naming exactly broker {node_id}")
            return
    try:
        registry.add_partitions(name, count, now_ms=now_ms(), validate_only=validate_only)
    except (BrokerError, OSError) as exc:
        result["error_code"] = error_code_for(exc)
        result["error_message"] = str(exc)
