"""Metadata: brokers, topics, partitions and their leaders.

We are the only broker, the controller and the leader of every partition, with one constant
leader epoch (0): ``replica_nodes = isr_nodes = [our node id]``, no offline replicas. The host
and port are ``kafka.advertised`` or the address the client reached us on — never 0.0.0.0,
because clients reconnect to the advertised address of a partition's leader.

Topic selection: ``topics`` null means every topic (v1+); an empty list means none (v1+) but
*every* topic in v0, the one version difference to mind. A topic may be named by id in v12
(name null): unknown ids get UNKNOWN_TOPIC_ID. An unknown topic is created when the broker
allows it (``kafka.auto_create_topics``) and the request does too (``allow_auto_topic_creation``
v4+, implicitly true before); otherwise UNKNOWN_TOPIC_OR_PARTITION. Real Kafka answers
LEADER_NOT_AVAILABLE on the creating request; ours is ready at once, so we answer with the
topic. An illegal name gets INVALID_TOPIC_EXCEPTION.

Version notes: v1 controller_id, is_internal, rack; v2 cluster_id; v3 throttle time; v4
allow_auto_topic_creation; v5 offline_replicas; v7 leader_epoch; v8 authorized operations (we
leave them at "not requested"); v9 flexible; v10 topic ids (stable: created once, persisted by
the topic registry); v12 lookup by id.

In a cluster (docs/cluster.md#membership-the-controller-and-leadership) the answer is this broker's view of etcd:
every live broker, the elected controller, and per partition the leader, replicas, ISR and
leader epoch the controller wrote. A partition whose leader is not alive has leader -1 and
LEADER_NOT_AVAILABLE (its replicas that are not alive are ``offline_replicas``). Auto-creation
goes through the controller: the controller itself creates the topic at once; another broker
files a request in etcd and waits a moment for the controller to act - if it has not yet, the
topic is answered LEADER_NOT_AVAILABLE, as Kafka answers while a topic is being created, and
the client asks again.
"""

from __future__ import annotations

import uuid


from broker.cluster.model import ClusterView, TopicAssignment
from broker.cluster.offsets_topic import OFFSETS_TOPIC
from broker.errors import BrokerError
from broker.loggers import get_logger
from broker.topics import Topic, validate_topic_name
from broker.security.authorizer import Operation, ResourceType
from modes.pull.context import LEADER_EPOCH, RequestContext
from modes.pull.errors import error_code_for
from modes.pull.registry import api
from wire.kafka.errors import ErrorCode
from wire.kafka.messages.metadata import METADATA

log = get_logger(__name__)

ZERO_UUID = uuid.UUID(int=0)


def topic_uuid(topic: Topic) -> uuid.UUID:
    return uuid.UUID(bytes=bytes(topic.topic_id))


@api(METADATA)
async def handle_metadata(ctx: RequestContext, request: dict) -> dict:
    broker, version = ctx.broker, ctx.version
    if broker.cluster is not None:
        return await _cluster_metadata(ctx, request)
    node_id = broker.node_id
    host, port = broker.advertised_address(ctx.local)
    requested = request["topics"]
    if requested is None or (version == 0 and not requested):
        # "All topics" means all the principal may describe: the others are not even named.
        topics = [_describe(t, node_id) for t in broker.topics.topics()
                  if ctx.allowed(Operation.DESCRIBE, ResourceType.TOPIC, t.name)]
    else:
        allow = broker.config.kafka.auto_create_topics and (version < 4 or request["allow_auto_topic_creation"])
        topics = [_lookup(ctx, entry, allow, node_id) for entry in requested]
    return {
        "brokers": [{"node_id": node_id, "host": host, "port": port, "rack": None}],
        "cluster_id": broker.config.kafka.cluster_id,
        "controller_id": node_id,
        "topics": topics,
    }


def _denied_by_id(topic_id: uuid.UUID) -> dict:
    """A topic named by id that the principal may not describe: Kafka answers with the id (ids
    are not secret) and neither the name nor the partitions."""
    return {"error_code": ErrorCode.TOPIC_AUTHORIZATION_FAILED, "name": None, "topic_id": topic_id}


def _lookup(ctx: RequestContext, entry: dict, allow_create: bool, node_id: int) -> dict:
    registry = ctx.broker.topics
    name = entry["name"]
    if name is None:  # v12: by topic id
        topic_id = entry["topic_id"]
        topic = registry.by_id(topic_id.bytes) if topic_id != ZERO_UUID else None
        if topic is None:
            return {"error_code": ErrorCode.UNKNOWN_TOPIC_ID, "name": None, "topic_id": topic_id}
        if not ctx.allowed(Operation.DESCRIBE, ResourceType.TOPIC, topic.name):
            return _denied_by_id(topic_id)
        return _describe(topic, node_id)
    if not ctx.allowed(Operation.DESCRIBE, ResourceType.TOPIC, name):
        return {"error_code": ErrorCode.TOPIC_AUTHORIZATION_FAILED, "name": name}
    topic = registry.get(name)
    if topic is not None:
        return _describe(topic, node_id)
    try:
        validate_topic_name(name)
        if not allow_create:
            return {"error_code": ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, "name": name}
        # Auto-creation needs Create on the cluster or on the topic, as in Kafka.
        if not (ctx.allowed_on_cluster(Operation.CREATE)
                or ctx.allowed(Operation.CREATE, ResourceType.TOPIC, name)):
            return {"error_code": ErrorCode.TOPIC_AUTHORIZATION_FAILED, "name": name}
        topic = ctx.broker.auto_create(name)
    except BrokerError as exc:
        return {"error_code": error_code_for(exc), "name": name}
    log.info("topic_auto_created", topic=name, partitions=len(topic.partitions))
    return _describe(topic, node_id)


def _describe(topic: Topic, node_id: int) -> dict:
    return {
        "error_code": ErrorCode.NONE,
        "name": topic.name,
        "topic_id": topic_uuid(topic),
        "partitions": [
            {"error_code": ErrorCode.NONE, "partition_index": index, "leader_id": node_id,
             "leader_epoch": LEADER_EPOCH, "replica_nodes": [node_id], "isr_nodes": [node_id],
             "offline_replicas": []}
            for index in range(len(topic.partitions))
        ],
    }


# How long a broker that is not the controller waits for the controller to create a topic it
# asked for, before answering LEADER_NOT_AVAILABLE (the client retries).
AUTO_CREATE_WAIT_S = 2.0


async def _cluster_metadata(ctx: RequestContext, request: dict) -> dict:
    cluster = ctx.broker.cluster
    assert cluster is not None
    view = cluster.view
    requested = request["topics"]
    if requested is None or (ctx.version == 0 and not requested):
        topics = [_describe_assigned(t, view) for t in view.topics.values()
                  if ctx.allowed(Operation.DESCRIBE, ResourceType.TOPIC, t.name)]
    else:
        allow = ctx.broker.config.kafka.auto_create_topics and (ctx.version < 4 or request["allow_auto_topic_creation"])
        topics = [await _cluster_lookup(ctx, entry, allow) for entry in requested]
    brokers = [{"node_id": b.node_id, "host": b.host, "port": b.kafka_port, "rack": None}
               for _, b in sorted(view.brokers.items())]
    return {"brokers": brokers, "cluster_id": ctx.broker.config.kafka.cluster_id,
            "controller_id": view.controller, "topics": topics}


async def _cluster_lookup(ctx: RequestContext, entry: dict, allow_create: bool) -> dict:
    cluster = ctx.broker.cluster
    assert cluster is not None
    view = cluster.view
    name = entry["name"]
    if name is None:  # v12: by topic id
        wanted = entry["topic_id"].bytes
        found = next((t for t in view.topics.values() if t.topic_id == wanted), None)
        if found is None:
            return {"error_code": ErrorCode.UNKNOWN_TOPIC_ID, "name": None, "topic_id": entry["topic_id"]}
        if not ctx.allowed(Operation.DESCRIBE, ResourceType.TOPIC, found.name):
            return _denied_by_id(entry["topic_id"])
        return _describe_assigned(found, view)
    if not ctx.allowed(Operation.DESCRIBE, ResourceType.TOPIC, name):
        return {"error_code": ErrorCode.TOPIC_AUTHORIZATION_FAILED, "name": name}
    if name in view.topics:
        return _describe_assigned(view.topics[name], view)
    try:
        validate_topic_name(name)
        # __consumer_offsets is created by the first FindCoordinator, with its own settings.
        if not allow_create or name == OFFSETS_TOPIC:
            return {"error_code": ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, "name": name}
        if not (ctx.allowed_on_cluster(Operation.CREATE) or ctx.allowed(Operation.CREATE, ResourceType.TOPIC, name)):
            return {"error_code": ErrorCode.TOPIC_AUTHORIZATION_FAILED, "name": name}
        partitions = ctx.broker.config.kafka.num_partitions
        if cluster.is_controller:
            await cluster.create_topic(name, partitions, 1, {})
            log.info("topic_auto_created", topic=name, partitions=partitions)
        else:
            await cluster.request_topic(name, partitions)
            await cluster.wait_for(lambda: name in cluster.view.topics, AUTO_CREATE_WAIT_S)
    except BrokerError as exc:
        return {"error_code": error_code_for(exc), "name": name}
    if name not in cluster.view.topics:
        return {"error_code": ErrorCode.LEADER_NOT_AVAILABLE, "name": name}
    return _describe_assigned(cluster.view.topics[name], cluster.view)


def _describe_assigned(topic: TopicAssignment, view: ClusterView) -> dict:
    partitions = []
    for index, state in enumerate(topic.partitions):
        alive = state.leader in view.brokers
        partitions.append({
            "error_code": ErrorCode.NONE if alive else ErrorCode.LEADER_NOT_AVAILABLE,
            "partition_index": index, "leader_id": state.leader if alive else -1,
            "leader_epoch": state.leader_epoch, "replica_nodes": list(state.replicas),
            "isr_nodes": list(state.isr),
            "offline_replicas": [r for r in state.replicas if r not in view.brokers]})
    return {"error_code": ErrorCode.NONE, "name": topic.name, "topic_id": uuid.UUID(bytes=topic.topic_id),
            "is_internal": topic.name == OFFSETS_TOPIC, "partitions": partitions}
