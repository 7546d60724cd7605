"""Descriptors of the topic-administration APIs: CreateTopics, DeleteTopics, DescribeConfigs,
CreatePartitions.

What lives here: what an admin client sends to create, delete, inspect or grow topics. They are
grouped because none of them is needed to produce or consume a record: they change or describe
the set of topics and their configuration, and only admin tools (and tests that set up topics)
send them.

What does not: the data path (``produce_fetch``), discovery (``metadata``), groups (``groups``).
The conventions and the tables by api key are in the package ``__init__``.
"""

from __future__ import annotations

from wire.kafka.schema import (
    BOOL,
    INT8,
    INT16,
    INT32,
    STRING,
    UUID,
    Api,
    Array,
    Field,
    Struct,
)

# --- CreateTopics (Kafka defines v0-7) ------------------------------------------------------------
# Admin creation of topics, with explicit assignments or partition count/replication factor
# (-1 = broker default from v4). Served from v2 (throttle time); v5 flexible, and the response can
# return the resulting configs; v7 returns the new topic id.

CREATE_TOPICS = Api(
    "CreateTopics", key=19, versions="2-7", flexible="5+",
    request=(
        Field("topics", type=Array(Struct("CreatableTopic", (
            Field("name", STRING),
            Field("num_partitions", INT32),
            Field("replication_factor", INT16),
            Field("assignments", type=Array(Struct("CreatableReplicaAssignment", (
                Field("partition_index", INT32),
                Field("broker_ids", Array(INT32)),
            )))),
            Field("configs", type=Array(Struct("CreatableTopicConfig", (
                Field("name", STRING),
                Field("value", STRING, nullable="0+"),
            )))),
        )))),
        Field("timeout_ms", INT32, default=60000),
        Field("validate_only", BOOL, versions="1+", default=False),
    ),
    response=(
        Field("throttle_time_ms", INT32, versions="2+"),
        Field("topics", type=Array(Struct("CreatableTopicResult", (
            Field("name", STRING),
            Field("topic_id", UUID, versions="7+"),
            Field("error_code", INT16),
            Field("error_message", STRING, versions="1+", nullable="0+"),
            Field("topic_config_error_code", INT16, versions="5+", tag=0, tagged="5+"),
            Field("num_partitions", INT32, versions="5+", default=-1),
            Field("replication_factor", INT16, versions="5+", default=-1),
            Field("configs", versions="5+", nullable="5+",
                  type=Array(Struct("CreatableTopicConfigs", (
                Field("name", STRING, versions="5+"),
                Field("value", STRING, versions="5+", nullable="5+"),
                Field("read_only", BOOL, versions="5+"),
                Field("config_source", INT8, versions="5+", default=-1),
                Field("is_sensitive", BOOL, versions="5+"),
            )))),
        )))),
    ),
)


# --- DeleteTopics (Kafka defines v0-6) ------------------------------------------------------------
# Admin deletion of topics. v4 flexible; v5 per-topic error_message; v6 adds a topics list that may
# name a topic by id (name nullable) next to the older topic_names list.

DELETE_TOPICS = Api(
    "DeleteTopics", key=20, versions="1-6", flexible="4+",
    request=(
        Field("topics", versions="6+", type=Array(Struct("DeleteTopicState", (
            Field("name", STRING, versions="6+", nullable="6+"),
            Field("topic_id", UUID, versions="6+"),
        )))),
        Field("topic_names", Array(STRING), versions="0-5"),
        Field("timeout_ms", INT32),
    ),
    response=(
        Field("throttle_time_ms", INT32, versions="1+"),
        Field("responses", type=Array(Struct("DeletableTopicResult", (
            Field("name", STRING, nullable="6+"),
            Field("topic_id", UUID, versions="6+"),
            Field("error_code", INT16),
            Field("error_message", STRING, versions="5+", nullable="5+"),
        )))),
    ),
)


# --- DescribeConfigs (Kafka defines v0-4) ---------------------------------------------------------
# Admin read of topic (resource_type 2) or broker (4) configs. Served from v1, which adds synonyms
# and config_source (v0's is_default is gone); v3 documentation and config_type; v4 flexible.

DESCRIBE_CONFIGS = Api(
    "DescribeConfigs", key=32, versions="1-4", flexible="4+",
    request=(
        Field("resources", type=Array(Struct("DescribeConfigsResource", (
            Field("resource_type", INT8),
            Field("resource_name", STRING),
            Field("configuration_keys", Array(STRING), nullable="0+"),
        )))),
        Field("include_synonyms", BOOL, versions="1+", default=False),
        Field("include_documentation", BOOL, versions="3+", default=False),
    ),
    # Left out (only in versions we do not serve): results.configs.is_default (0).
    response=(
        Field("throttle_time_ms", INT32),
        Field("results", type=Array(Struct("DescribeConfigsResult", (
            Field("error_code", INT16),
            Field("error_message", STRING, nullable="0+"),
            Field("resource_type", INT8),
            Field("resource_name", STRING),
            Field("configs", type=Array(Struct("DescribeConfigsResourceResult", (
                Field("name", STRING),
                Field("value", STRING, nullable="0+"),
                Field("read_only", BOOL),
                Field("config_source", INT8, versions="1+", default=-1),
                Field("is_sensitive", BOOL),
                Field("synonyms", versions="1+", type=Array(Struct("DescribeConfigsSynonym", (
                    Field("name", STRING, versions="1+"),
                    Field("value", STRING, versions="1+", nullable="0+"),
                    Field("source", INT8, versions="1+"),
                )))),
                Field("config_type", INT8, versions="3+", default=0),
                Field("documentation", STRING, versions="3+", nullable="0+"),
            )))),
        )))),
    ),
)


# --- CreatePartitions (Kafka defines v0-3) --------------------------------------------------------
# Admin increase of a topic's partition count, with optional explicit replica assignments.
# v2 flexible; v3 only adds a throttling error code.

CREATE_PARTITIONS = Api(
    "CreatePartitions", key=37, versions="0-3", flexible="2+",
    request=(
        Field("topics", type=Array(Struct("CreatePartitionsTopic", (
            Field("name", STRING),
            Field("count", INT32),
            Field("assignments", nullable="0+", type=Array(Struct("CreatePartitionsAssignment", (
                Field("broker_ids", Array(INT32)),
            )))),
        )))),
        Field("timeout_ms", INT32),
        Field("validate_only", BOOL),
    ),
    response=(
        Field("throttle_time_ms", INT32),
        Field("results", type=Array(Struct("CreatePartitionsTopicResult", (
            Field("name", STRING),
            Field("error_code", INT16),
            Field("error_message", STRING, nullable="0+"),
        )))),
    ),
)
