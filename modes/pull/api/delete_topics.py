"""DeleteTopics: admin deletion of topics and their data.

Each named topic is removed from the registry and its partition directories deleted; fetches
long-polling on it wake up and answer. Every group's committed offsets for it are dropped
(fsynced before we answer) and its partitions' producer state forgotten, so a topic created
again under the name starts afresh — as in Kafka. Unknown name: UNKNOWN_TOPIC_OR_PARTITION; unknown id
(v6): UNKNOWN_TOPIC_ID.

Version notes: served from v1 (throttle time); v4 flexible; v5 per-topic error_message; v6
replaces ``topic_names`` with ``topics`` entries naming a topic by name *or* by id.
"""

from __future__ import annotations

import uuid


from broker.errors import BrokerError
from broker.security.authorizer import Operation, ResourceType
from modes.pull.context import RequestContext
from modes.pull.errors import error_code_for
from modes.pull.registry import api
from wire.kafka.errors import ErrorCode
from wire.kafka.messages.admin import DELETE_TOPICS

ZERO_UUID = uuid.UUID(int=0)


@api(DELETE_TOPICS)
async def handle_delete_topics(ctx: RequestContext, request: dict) -> dict:
    registry = ctx.broker.topics
    if ctx.version >= 6:
        wanted = [(t["name"], t["topic_id"]) for t in request["topics"]]
    else:
        wanted = [(name, ZERO_UUID) for name in request["topic_names"]]
    coord = ctx.broker.coord
    deleted = False
    responses = []
    for name, topic_id in wanted:
        result = {"name": name, "topic_id": topic_id, "error_code": ErrorCode.NONE, "error_message": None}
        responses.append(result)
        if ctx.broker.cluster is not None:
            # Deleting here alone would leave the topic in etcd and on the other brokers.
            result["error_code"] = ErrorCode.INVALID_REQUEST
            result["error_message"] = "deleting topics is not served in cluster mode yet (docs/cluster.md)"
            continue
        if name is not None and not ctx.allowed(Operation.DELETE, ResourceType.TOPIC, name):
            result["error_code"] = ErrorCode.TOPIC_AUTHORIZATION_FAILED
            continue
        if name is None:
            topic = registry.by_id(topic_id.bytes) if topic_id != ZERO_UUID else None
            if topic is None:
                result["error_code"] = ErrorCode.UNKNOWN_TOPIC_ID
                continue
            name = result["name"] = topic.name
            if not ctx.allowed(Operation.DELETE, ResourceType.TOPIC, name):
                # By id: a principal that may not delete it does not learn its name either.
                result["name"] = None
                result["error_code"] = ErrorCode.TOPIC_AUTHORIZATION_FAILED
                continue
        else:
            topic = registry.get(name)
        if topic is not None:
            result["topic_id"] = uuid.UUID(bytes=bytes(topic.topic_id))
        try:
            registry.delete(name)
        except (BrokerError, OSError) as exc:
            result["error_code"] = error_code_for(exc)
            result["error_message"] = str(exc)
            continue
        coord.offsets.delete_topic(name)
        if topic is not None:
            coord.producers.forget_topic(topic.topic_id)
        deleted = True
    if deleted:
        await coord.flush_offsets()
    return {"throttle_time_ms": 0, "responses": responses}
