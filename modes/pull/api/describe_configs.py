"""DescribeConfigs: the effective configuration of topics (and of the broker).

For a topic (resource_type 2) we list every setting a topic may override, with its effective
value and where it comes from (``config_source``): DYNAMIC_TOPIC_CONFIG (1) when the topic
overrides it, else STATIC_BROKER_CONFIG (4) when the broker's config file changed Kafka's
default, else DEFAULT_CONFIG (5) — the same three sources a Kafka admin tool shows.
``configuration_keys`` (null = all) filters the list. Unknown topic:
UNKNOWN_TOPIC_OR_PARTITION. For the broker (resource_type 4, name = our node id or empty) we
list the few broker settings clients commonly ask about. Other resource types:
INVALID_REQUEST. ``include_synonyms`` gets an empty synonym list (allowed).

Version notes: served from v1 (config_source and synonyms; v0's is_default is gone); v3 adds
``config_type`` and documentation (sent when ``include_documentation``); v4 flexible.
"""

from __future__ import annotations

from broker.config import LogConfig
from broker.security.authorizer import Operation, ResourceType
from modes.pull.context import RequestContext
from modes.pull.registry import api
from wire.kafka.errors import ErrorCode
from wire.kafka.messages.admin import DESCRIBE_CONFIGS

TOPIC = 2
BROKER = 4

# Kafka's ConfigSource and ConfigType numbers (DescribeConfigsResponse.json).
DYNAMIC_TOPIC_CONFIG = 1
STATIC_BROKER_CONFIG = 4
DEFAULT_CONFIG = 5
TYPE_BOOLEAN, TYPE_STRING, TYPE_INT, TYPE_LONG, TYPE_LIST = 1, 2, 3, 5, 7

# Kafka name -> (LogConfig attribute or None for a constant, type, documentation)
TOPIC_SETTINGS: dict[str, tuple[str | None, int, str]] = {
    "cleanup.policy": (None, TYPE_LIST, "What happens to old segments: only 'delete' is supported."),
    "retention.ms": ("retention_ms", TYPE_LONG, "Delete closed segments older than this (-1: never)."),
    "retention.bytes": ("retention_bytes", TYPE_LONG, "Delete oldest segments while the partition is larger (-1: no limit)."),
    "segment.bytes": ("segment_bytes", TYPE_INT, "Roll a new segment file at this size."),
    "segment.ms": ("segment_ms", TYPE_LONG, "Roll a new segment file after this age."),
    "max.message.bytes": ("max_message_bytes", TYPE_INT, "Largest record batch a producer may append."),
    "min.insync.replicas": ("min_insync_replicas", TYPE_INT,
                            "Fewest in-sync replicas an acks=all write needs (cluster mode)."),
}


def topic_configs(base: LogConfig, effective: LogConfig, overrides: dict[str, str]) -> list[dict]:
    """Every topic-level setting: name, effective value, source, type, documentation."""
    defaults = LogConfig()
    out = []
    for name, (attribute, config_type, doc) in TOPIC_SETTINGS.items():
        if attribute is None:
            value, default, broker_value = "delete", "delete", "delete"
        else:
            value = str(getattr(effective, attribute))
            default = str(getattr(defaults, attribute))
            broker_value = str(getattr(base, attribute))
        if name in overrides:
            source = DYNAMIC_TOPIC_CONFIG
        elif broker_value != default:
            source = STATIC_BROKER_CONFIG
        else:
            source = DEFAULT_CONFIG
        out.append({"name": name, "value": value, "config_source": source,
                    "config_type": config_type, "documentation": doc})
    return out


def broker_configs(ctx: RequestContext) -> list[dict]:
    kafka, log_config = ctx.broker.config.kafka, ctx.broker.config.log
    values = [
        ("broker.id", str(kafka.node_id), TYPE_INT),
        ("num.partitions", str(kafka.num_partitions), TYPE_INT),
        ("auto.create.topics.enable", str(kafka.auto_create_topics).lower(), TYPE_BOOLEAN),
        ("message.max.bytes", str(log_config.max_message_bytes), TYPE_INT),
        ("log.segment.bytes", str(log_config.segment_bytes), TYPE_INT),
        ("log.retention.ms", str(log_config.retention_ms), TYPE_LONG),
        ("log.retention.bytes", str(log_config.retention_bytes), TYPE_LONG),
        ("socket.request.max.bytes", str(kafka.max_request_bytes), TYPE_INT),
    ]
    return [{"name": n, "value": v, "config_source": STATIC_BROKER_CONFIG, "config_type": t,
             "documentation": None} for n, v, t in values]


@api(DESCRIBE_CONFIGS)
async def handle_describe_configs(ctx: RequestContext, request: dict) -> dict:
    results = []
    for resource in request["resources"]:
        kind, name = resource["resource_type"], resource["resource_name"]
        result = {"error_code": ErrorCode.NONE, "error_message": None, "resource_type": kind,
                  "resource_name": name, "configs": []}
        results.append(result)
        if kind == TOPIC and not ctx.allowed(Operation.DESCRIBE_CONFIGS, ResourceType.TOPIC, name):
            result["error_code"] = ErrorCode.TOPIC_AUTHORIZATION_FAILED
            result["error_message"] = "Authorization failed."
            continue
        if kind == BROKER and not ctx.allowed_on_cluster(Operation.DESCRIBE_CONFIGS):
            result["error_code"] = ErrorCode.CLUSTER_AUTHORIZATION_FAILED
            result["error_message"] = "Authorization failed."
            continue
        if kind == TOPIC:
            topic = ctx.broker.topics.get(name)
            if topic is None:
                result["error_code"] = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
                result["error_message"] = f"topic {name!r} does not exist"
                continue
            configs = topic_configs(ctx.broker.topics.config, topic.config, topic.overrides)
        elif kind == BROKER and name in ("", str(ctx.broker.node_id)):
            configs = broker_configs(ctx)
        else:
            result["error_code"] = ErrorCode.INVALID_REQUEST
            result["error_message"] = f"resource type {kind} named {name!r} is not described by this broker"
            continue
        keys = resource["configuration_keys"]
        result["configs"] = [
            {"name": c["name"], "value": c["value"], "read_only": False,
             "config_source": c["config_source"], "is_sensitive": False, "synonyms": [],
             "config_type": c["config_type"],
             "documentation": c["documentation"] if request["include_documentation"] else None}
            for c in configs
            if keys is None or c["name"] in keys
        ]
    return {"throttle_time_ms": 0, "results": results}
