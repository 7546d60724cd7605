"""CreateTopics: admin creation of topics with partitions and configs.

Per topic: a legal name (INVALID_TOPIC_EXCEPTION), not existing yet (TOPIC_ALREADY_EXISTS),
named once in the request (INVALID_REQUEST for duplicates, as Kafka), a partition count >= 1
(-1 = the broker default ``kafka.num_partitions``; else INVALID_PARTITIONS), a replication
factor of 1 or -1 (we are one broker; else INVALID_REPLICATION_FACTOR) or explicit
assignments that name only us (else INVALID_REPLICA_ASSIGNMENT). Configs: ``retention.ms``,
``retention.bytes``, ``segment.bytes``, ``segment.ms``, ``max.message.bytes`` and
``cleanup.policy=delete``; anything else, or a bad value, is INVALID_CONFIG with the reason in
``error_message``. ``validate_only`` checks everything and creates nothing.

In a cluster (docs/cluster.md#what-this-slice-does) only the controller creates topics, as in
Kafka: another broker answers NOT_CONTROLLER and the client (kafka-python's admin client does)
asks the controller named in Metadata. The controller assigns the partitions over the live
brokers (``broker.cluster.assign_replicas``) and writes the topic to etcd; a replication
factor above the live brokers' count is INVALID_REPLICATION_FACTOR, and so, until replication
lands, is any factor above 1. Explicit assignments are not served in a cluster yet.

Version notes: v2 throttle time (served from here); v4 -1 defaults for partitions and
replication factor; v5 flexible, and the response returns partitions, replication factor and
the effective configs; v7 returns the topic id.
"""

from __future__ import annotations

import uuid

from broker.config import topic_log_config
from broker.errors import BrokerError, ConfigError
from broker.topics import MAX_PARTITIONS, validate_topic_name
from broker.security.authorizer import Operation, ResourceType
from modes.pull.api.describe_configs import topic_configs
from modes.pull.context import RequestContext, now_ms
from modes.pull.errors import error_code_for
from modes.pull.registry import api
from wire.kafka.errors import ErrorCode
from wire.kafka.messages.admin import CREATE_TOPICS

FIRST_CONFIGS_IN_RESPONSE_VERSION = 5


@api(CREATE_TOPICS)
async def handle_create_topics(ctx: RequestContext, request: dict) -> dict:
    names = [t["name"] for t in request["topics"]]
    results = []
    on_cluster = ctx.allowed_on_cluster(Operation.CREATE)
    for wanted in request["topics"]:
        result = {"name": wanted["name"], "error_code": ErrorCode.NONE, "error_message": None,
                  "num_partitions": -1, "replication_factor": -1, "configs": None}
        results.append(result)
        if names.count(wanted["name"]) > 1:
            result["error_code"] = ErrorCode.INVALID_REQUEST
            result["error_message"] = f"topic {wanted['name']!r} appears more than once in the request"
            continue
        # Create on the cluster, or on the topic (a literal or prefixed ACL), as in Kafka.
        if not (on_cluster or ctx.allowed(Operation.CREATE, ResourceType.TOPIC, wanted["name"])):
            _fail(result, ErrorCode.TOPIC_AUTHORIZATION_FAILED, "Authorization failed.")
            continue
        await _create(ctx, wanted, request["validate_only"], result)
    return {"throttle_time_ms": 0, "topics": results}


def _fail(result: dict, code: ErrorCode, message: str) -> None:
    result["error_code"] = code
    result["error_message"] = message


async def _create(ctx: RequestContext, wanted: dict, validate_only: bool, result: dict) -> None:
    broker = ctx.broker
    name = wanted["name"]
    node_id = broker.node_id
    partitions = wanted["num_partitions"]
    assignments = wanted["assignments"]
    cluster = broker.cluster
    replication_factor = wanted["replication_factor"]
    if cluster is not None and not cluster.is_controller:
        return _fail(result, ErrorCode.NOT_CONTROLLER,
                     f"broker {node_id} is not the controller; the controller is {cluster.view.controller}")
    if cluster is not None and assignments:
        return _fail(result, ErrorCode.INVALID_REPLICA_ASSIGNMENT,
                     "explicit replica assignments are not served in cluster mode yet (docs/cluster.md)")
    if assignments:
        if partitions != -1 or wanted["replication_factor"] != -1:
            return _fail(result, ErrorCode.INVALID_REQUEST,
                         "give either assignments or num_partitions/replication_factor, not both")
        if sorted(a["partition_index"] for a in assignments) != list(range(len(assignments))) or any(
            a["broker_ids"] != [node_id] for a in assignments
        ):
            return _fail(result, ErrorCode.INVALID_REPLICA_ASSIGNMENT,
                         f"each partition 0..n-1 must be assigned to exactly broker {node_id}")
        partitions = len(assignments)
    else:
        if cluster is None and replication_factor not in (1, -1):
            return _fail(result, ErrorCode.INVALID_REPLICATION_FACTOR,
                         f"replication factor {wanted['replication_factor']}: this is a single broker, use 1")
        if partitions == -1:
            partitions = broker.config.kafka.num_partitions
        if not 1 <= partitions <= MAX_PARTITIONS:
            return _fail(result, ErrorCode.INVALID_PARTITIONS,
                         f"partition count {partitions} is outside [1, {MAX_PARTITIONS}]")
    overrides = {}
    for config in wanted["configs"]:
        if config["value"] is None:
            return _fail(result, ErrorCode.INVALID_CONFIG, f"config {config['name']} has a null value")
        overrides[config["name"]] = config["value"]
    try:
        validate_topic_name(name)
        exists = name in cluster.view.topics if cluster is not None else broker.topics.get(name) is not None
        if exists:
            return _fail(result, ErrorCode.TOPIC_ALREADY_EXISTS, f"topic {name!r} already exists")
        log_config = topic_log_config(broker.topics.config, overrides)
        if cluster is not None:
            factor = 1 if replication_factor == -1 else replication_factor
            assigned = await cluster.create_topic(name, partitions, factor, overrides, validate_only=validate_only)
            topic_id = uuid.UUID(int=0) if validate_only else uuid.UUID(bytes=assigned.topic_id)
        elif validate_only:
            topic_id = uuid.UUID(int=0)
        else:
            topic = broker.topics.create(name, partitions, overrides, now_ms=now_ms())
            topic_id = uuid.UUID(bytes=bytes(topic.topic_id))
    except ConfigError as exc:
        return _fail(result, ErrorCode.INVALID_CONFIG, str(exc))
    except (BrokerError, OSError) as exc:
        return _fail(result, error_code_for(exc), str(exc))
    result.update(num_partitions=partitions, replication_factor=1, topic_id=topic_id)
    if ctx.version >= FIRST_CONFIGS_IN_RESPONSE_VERSION:
        result["configs"] = [
            {"name": c["name"], "value": c["value"], "read_only": False,
             "config_source": c["config_source"], "is_sensitive": False}
            for c in topic_configs(broker.topics.config, log_config, overrides)
        ]
