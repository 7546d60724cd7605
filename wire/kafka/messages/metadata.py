"""Descriptors of the discovery APIs: Metadata and ApiVersions.

What lives here: the two requests every client sends before anything else, whatever its role.
ApiVersions asks which versions of which APIs this broker speaks; Metadata asks for the brokers,
topics, partitions and their leaders. They are grouped because producers, consumers and admin
tools all depend on them, so they belong to none of the other families.

What does not: the data path (``produce_fetch``), groups (``groups``), topic administration
(``admin``). The conventions and the tables by api key are in the package ``__init__``.
"""

from __future__ import annotations

from wire.kafka.schema import (
    BOOL,
    INT16,
    INT32,
    INT64,
    STRING,
    UUID,
    Api,
    Array,
    Field,
    Struct,
)

# --- Metadata (Kafka defines v0-12) ---------------------------------------------------------------
# Brokers, topics and partition leaders. In v0 an empty topic list means "all topics"; from v1 on
# "all topics" is a null list and an empty one means none. v4 adds allow_auto_topic_creation; v8
# authorized-operations flags; v9 flexible; v10 topic ids (zero uuid when unused). Note the
# request's topic name is nullable from v10 (lookup by id, v12).

METADATA = Api(
    "Metadata", key=3, versions="0-12", flexible="9+",
    request=(
        Field("topics", nullable="1+", type=Array(Struct("MetadataRequestTopic", (
            Field("topic_id", UUID, versions="10+"),
            Field("name", STRING, nullable="10+"),
        )))),
        Field("allow_auto_topic_creation", BOOL, versions="4+", default=True),
        Field("include_cluster_authorized_operations", BOOL, versions="8-10"),
        Field("include_topic_authorized_operations", BOOL, versions="8+"),
    ),
    response=(
        Field("throttle_time_ms", INT32, versions="3+"),
        Field("brokers", type=Array(Struct("MetadataResponseBroker", (
            Field("node_id", INT32),
            Field("host", STRING),
            Field("port", INT32),
            Field("rack", STRING, versions="1+", nullable="1+"),
        )))),
        Field("cluster_id", STRING, versions="2+", nullable="2+"),
        Field("controller_id", INT32, versions="1+", default=-1),
        Field("topics", type=Array(Struct("MetadataResponseTopic", (
            Field("error_code", INT16),
            Field("name", STRING, nullable="12+"),
            Field("topic_id", UUID, versions="10+"),
            Field("is_internal", BOOL, versions="1+", default=False),
            Field("partitions", type=Array(Struct("MetadataResponsePartition", (
                Field("error_code", INT16),
                Field("partition_index", INT32),
                Field("leader_id", INT32),
                Field("leader_epoch", INT32, versions="7+", default=-1),
                Field("replica_nodes", Array(INT32)),
                Field("isr_nodes", Array(INT32)),
                Field("offline_replicas", Array(INT32), versions="5+"),
            )))),
            Field("topic_authorized_operations", INT32, versions="8+", default=-2147483648),
        )))),
        Field("cluster_authorized_operations", INT32, versions="8-10", default=-2147483648),
    ),
)


# --- ApiVersions (Kafka defines v0-4) -------------------------------------------------------------
# The first request a client sends. v3 (flexible) carries the client software name and version. An
# unknown request version must still be answered with UNSUPPORTED_VERSION in a v0 body (response
# header v0) so the client can retry. The response's supported/finalized features and
# zk_migration_ready are tagged fields that we may leave empty.

API_VERSIONS = Api(
    "ApiVersions", key=18, versions="0-4", flexible="3+",
    request=(
        Field("client_software_name", STRING, versions="3+"),
        Field("client_software_version", STRING, versions="3+"),
    ),
    response=(
        Field("error_code", INT16),
        Field("api_keys", type=Array(Struct("ApiVersion", (
            Field("api_key", INT16),
            Field("min_version", INT16),
            Field("max_version", INT16),
        )))),
        Field("throttle_time_ms", INT32, versions="1+"),
        Field("supported_features", versions="3+", tag=0, tagged="3+",
              type=Array(Struct("SupportedFeatureKey", (
            Field("name", STRING, versions="3+"),
            Field("min_version", INT16, versions="3+"),
            Field("max_version", INT16, versions="3+"),
        )))),
        Field("finalized_features_epoch", INT64, versions="3+", tag=1, tagged="3+", default=-1),
        Field("finalized_features", versions="3+", tag=2, tagged="3+",
              type=Array(Struct("FinalizedFeatureKey", (
            Field("name", STRING, versions="3+"),
            Field("max_version_level", INT16, versions="3+"),
            Field("min_version_level", INT16, versions="3+"),
        )))),
        Field("zk_migration_ready", BOOL, versions="3+", tag=3, tagged="3+", default=False),
    ),
)
