"""Our descriptors of the Kafka APIs the pull-mode broker serves, and of the consumer protocol bytes.

Each API is one section: a short note on what it does and what changed per version, then its
request and response ``Message``. The facts (field names, types, version ranges, nullability,
tags, defaults) are Kafka's, taken from its ``clients/src/main/resources/common/message/*.json``
schemas (apache/kafka trunk 1eb7644, October 2024: after 3.9, before Kafka 4.0 dropped the old
versions); ``tests/wire/kafka/test_messages.py`` checks them against those files whenever a copy
is at hand, so a typo here fails a test instead of a client.

Conventions:

* ``Message.valid`` is the range of versions **we serve** (GUIDE 3.4), not Kafka's whole range;
  the section title names both. ApiVersions is built from the registry of handlers, not from
  here, but a handler must never claim a version outside ``valid``.
* Field version ranges are Kafka's, unchanged, even where they reach beyond what we serve.
* Fields that exist only in versions we do not serve are left out; a "Left out" comment above
  each message lists them (dotted path inside the message, and their versions).
* Field names are ``schema.snake_case`` of Kafka's names. A JSON default of ``"null"`` is
  written as no default (None).
* The request and response headers belong to the framing layer (DESIGN 3: ``framing``), not here.
"""

from __future__ import annotations

from wire.kafka.schema import (
    BOOL,
    BYTES,
    INT8,
    INT16,
    INT32,
    INT64,
    RECORDS,
    STRING,
    UUID,
    Array,
    Field,
    Message,
    Struct,
)

# --- Produce (key 0; we serve v0-9; Kafka defines v0-11) ------------------------------------------
# A producer appends record batches to partitions. acks=0 means no response is sent at all.
# v3 brings RecordBatch v2 and transactional_id; v7 permits zstd batches; v8 adds per-record
# errors (record_errors, error_message) to the response; v9 is the first flexible version. We accept
# v0-2 only so that librdkafka 2.0.2's compression feature check passes (GUIDE 3.4); their
# old message formats get a per-partition UNSUPPORTED_VERSION. v10's current_leader/node_endpoints
# are tagged and sit beyond our range.

ProduceRequest = Message(
    "ProduceRequest", 0, "request", valid="0-9", flexible="9+",
    fields=(
        Field("transactional_id", STRING, versions="3+", nullable="3+"),
        Field("acks", INT16),
        Field("timeout_ms", INT32),
        Field("topic_data", type=Array(Struct("TopicProduceData", (
            Field("name", STRING),
            Field("partition_data", type=Array(Struct("PartitionProduceData", (
                Field("index", INT32),
                Field("records", RECORDS, nullable="0+"),
            )))),
        )))),
    ),
)

# Left out (only in versions we do not serve): responses.partition_responses.current_leader (10+),
#   node_endpoints (10+).
ProduceResponse = Message(
    "ProduceResponse", 0, "response", valid="0-9", flexible="9+",
    fields=(
        Field("responses", type=Array(Struct("TopicProduceResponse", (
            Field("name", STRING),
            Field("partition_responses", type=Array(Struct("PartitionProduceResponse", (
                Field("index", INT32),
                Field("error_code", INT16),
                Field("base_offset", INT64),
                Field("log_append_time_ms", INT64, versions="2+", default=-1),
                Field("log_start_offset", INT64, versions="5+", default=-1),
                Field("record_errors", versions="8+",
                      type=Array(Struct("BatchIndexAndErrorMessage", (
                    Field("batch_index", INT32, versions="8+"),
                    Field("batch_index_error_message", STRING, versions="8+", nullable="8+"),
                )))),
                Field("error_message", STRING, versions="8+", nullable="8+"),
            )))),
        )))),
        Field("throttle_time_ms", INT32, versions="1+", default=0),
    ),
)


# --- Fetch (key 1; we serve v4-12; Kafka defines v0-17) -------------------------------------------
# A consumer asks for record bytes from an offset on. v4 is the first version whose records are
# RecordBatch v2 (and adds isolation_level plus aborted_transactions); v5 log_start_offset; v7
# incremental fetch sessions (session_id / session_epoch, forgotten_topics_data); v9
# current_leader_epoch; v10 allows zstd; v12 is flexible and adds last_fetched_epoch plus the
# tagged diverging_epoch / current_leader / snapshot_id. v13+ name topics by id: we stop at 12.

# Left out (only in versions we do not serve): replica_state (15+), topics.topic_id (13+),
#   topics.partitions.replica_directory_id (17+), forgotten_topics_data.topic_id (13+).
FetchRequest = Message(
    "FetchRequest", 1, "request", valid="4-12", flexible="12+",
    fields=(
        Field("cluster_id", STRING, versions="12+", nullable="12+", tag=0, tagged="12+"),
        Field("replica_id", INT32, versions="0-14", default=-1),
        Field("max_wait_ms", INT32),
        Field("min_bytes", INT32),
        Field("max_bytes", INT32, versions="3+", default=2147483647),
        Field("isolation_level", INT8, versions="4+", default=0),
        Field("session_id", INT32, versions="7+", default=0),
        Field("session_epoch", INT32, versions="7+", default=-1),
        Field("topics", type=Array(Struct("FetchTopic", (
            Field("topic", STRING, versions="0-12"),
            Field("partitions", type=Array(Struct("FetchPartition", (
                Field("partition", INT32),
                Field("current_leader_epoch", INT32, versions="9+", default=-1),
                Field("fetch_offset", INT64),
                Field("last_fetched_epoch", INT32, versions="12+", default=-1),
                Field("log_start_offset", INT64, versions="5+", default=-1),
                Field("partition_max_bytes", INT32),
            )))),
        )))),
        Field("forgotten_topics_data", versions="7+", type=Array(Struct("ForgottenTopic", (
            Field("topic", STRING, versions="7-12"),
            Field("partitions", Array(INT32), versions="7+"),
        )))),
        Field("rack_id", STRING, versions="11+", default=""),
    ),
)

# Left out (only in versions we do not serve): responses.topic_id (13+), node_endpoints (16+).
FetchResponse = Message(
    "FetchResponse", 1, "response", valid="4-12", flexible="12+",
    fields=(
        Field("throttle_time_ms", INT32, versions="1+"),
        Field("error_code", INT16, versions="7+"),
        Field("session_id", INT32, versions="7+", default=0),
        Field("responses", type=Array(Struct("FetchableTopicResponse", (
            Field("topic", STRING, versions="0-12"),
            Field("partitions", type=Array(Struct("PartitionData", (
                Field("partition_index", INT32),
                Field("error_code", INT16),
                Field("high_watermark", INT64),
                Field("last_stable_offset", INT64, versions="4+", default=-1),
                Field("log_start_offset", INT64, versions="5+", default=-1),
                Field("diverging_epoch", versions="12+", tag=0, tagged="12+",
                      type=Struct("EpochEndOffset", (
                    Field("epoch", INT32, versions="12+", default=-1),
                    Field("end_offset", INT64, versions="12+", default=-1),
                ))),
                Field("current_leader", versions="12+", tag=1, tagged="12+",
                      type=Struct("LeaderIdAndEpoch", (
                    Field("leader_id", INT32, versions="12+", default=-1),
                    Field("leader_epoch", INT32, versions="12+", default=-1),
                ))),
                Field("snapshot_id", versions="12+", tag=2, tagged="12+",
                      type=Struct("SnapshotId", (
                    Field("end_offset", INT64, default=-1),
                    Field("epoch", INT32, default=-1),
                ))),
                Field("aborted_transactions", versions="4+", nullable="4+",
                      type=Array(Struct("AbortedTransaction", (
                    Field("producer_id", INT64, versions="4+"),
                    Field("first_offset", INT64, versions="4+"),
                )))),
                Field("preferred_read_replica", INT32, versions="11+", default=-1),
                Field("records", RECORDS, nullable="0+"),
            )))),
        )))),
    ),
)


# --- ListOffsets (key 2; we serve v1-7; Kafka defines v0-10) --------------------------------------
# Turns a timestamp (or -1 latest / -2 earliest / -3 max timestamp) into an offset. v0 returned a
# list of offsets and is not served; v1 returns one offset plus its timestamp; v2 isolation_level
# and throttle time; v4 leader epochs; v6 flexible; v7 allows the max-timestamp query (-3).

# Left out (only in versions we do not serve): topics.partitions.max_num_offsets (0),
#   timeout_ms (10+).
ListOffsetsRequest = Message(
    "ListOffsetsRequest", 2, "request", valid="1-7", flexible="6+",
    fields=(
        Field("replica_id", INT32),
        Field("isolation_level", INT8, versions="2+"),
        Field("topics", type=Array(Struct("ListOffsetsTopic", (
            Field("name", STRING),
            Field("partitions", type=Array(Struct("ListOffsetsPartition", (
                Field("partition_index", INT32),
                Field("current_leader_epoch", INT32, versions="4+", default=-1),
                Field("timestamp", INT64),
            )))),
        )))),
    ),
)

# Left out (only in versions we do not serve): topics.partitions.old_style_offsets (0).
ListOffsetsResponse = Message(
    "ListOffsetsResponse", 2, "response", valid="1-7", flexible="6+",
    fields=(
        Field("throttle_time_ms", INT32, versions="2+"),
        Field("topics", type=Array(Struct("ListOffsetsTopicResponse", (
            Field("name", STRING),
            Field("partitions", type=Array(Struct("ListOffsetsPartitionResponse", (
                Field("partition_index", INT32),
                Field("error_code", INT16),
                Field("timestamp", INT64, versions="1+", default=-1),
                Field("offset", INT64, versions="1+", default=-1),
                Field("leader_epoch", INT32, versions="4+", default=-1),
            )))),
        )))),
    ),
)


# --- Metadata (key 3; we serve v0-12; Kafka defines v0-12) ----------------------------------------
# Brokers, topics and partition leaders. In v0 an empty topic list means "all topics"; from v1 on
# "all topics" is a null list and an empty one means none. v4 adds allow_auto_topic_creation; v8
# authorized-operations flags; v9 flexible; v10 topic ids (zero uuid when unused). Note the
# request's topic name is nullable from v10 (lookup by id, v12).

MetadataRequest = Message(
    "MetadataRequest", 3, "request", valid="0-12", flexible="9+",
    fields=(
        Field("topics", nullable="1+", type=Array(Struct("MetadataRequestTopic", (
            Field("topic_id", UUID, versions="10+"),
            Field("name", STRING, nullable="10+"),
        )))),
        Field("allow_auto_topic_creation", BOOL, versions="4+", default=True),
        Field("include_cluster_authorized_operations", BOOL, versions="8-10"),
        Field("include_topic_authorized_operations", BOOL, versions="8+"),
    ),
)

MetadataResponse = Message(
    "MetadataResponse", 3, "response", valid="0-12", flexible="9+",
    fields=(
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


# --- OffsetCommit (key 8; we serve v2-8; Kafka defines v0-9) --------------------------------------
# A group member stores consumed offsets. Served from v2 (retention_time_ms, removed again in v5);
# v6 per-partition committed_leader_epoch; v7 group_instance_id (static membership); v8 flexible.
# generation_id_or_member_epoch -1 / empty member_id commits outside a group (simple consumer).

# Left out (only in versions we do not serve): topics.partitions.commit_timestamp (1).
OffsetCommitRequest = Message(
    "OffsetCommitRequest", 8, "request", valid="2-8", flexible="8+",
    fields=(
        Field("group_id", STRING),
        Field("generation_id_or_member_epoch", INT32, versions="1+", default=-1),
        Field("member_id", STRING, versions="1+"),
        Field("group_instance_id", STRING, versions="7+", nullable="7+"),
        Field("retention_time_ms", INT64, versions="2-4", default=-1),
        Field("topics", type=Array(Struct("OffsetCommitRequestTopic", (
            Field("name", STRING),
            Field("partitions", type=Array(Struct("OffsetCommitRequestPartition", (
                Field("partition_index", INT32),
                Field("committed_offset", INT64),
                Field("committed_leader_epoch", INT32, versions="6+", default=-1),
                Field("committed_metadata", STRING, nullable="0+"),
            )))),
        )))),
    ),
)

OffsetCommitResponse = Message(
    "OffsetCommitResponse", 8, "response", valid="2-8", flexible="8+",
    fields=(
        Field("throttle_time_ms", INT32, versions="3+"),
        Field("topics", type=Array(Struct("OffsetCommitResponseTopic", (
            Field("name", STRING),
            Field("partitions", type=Array(Struct("OffsetCommitResponsePartition", (
                Field("partition_index", INT32),
                Field("error_code", INT16),
            )))),
        )))),
    ),
)


# --- OffsetFetch (key 9; we serve v1-7; Kafka defines v0-9) ---------------------------------------
# Reads a group's committed offsets. v2+ accepts a null topic list (= every committed partition)
# and adds a top-level error code; v3 throttle time; v5 committed_leader_epoch; v6 flexible; v7
# require_stable. v8+ batch several groups into a different layout, so we stop at 7.

# Left out (only in versions we do not serve): groups (8+).
OffsetFetchRequest = Message(
    "OffsetFetchRequest", 9, "request", valid="1-7", flexible="6+",
    fields=(
        Field("group_id", STRING, versions="0-7"),
        Field("topics", versions="0-7", nullable="2-7",
              type=Array(Struct("OffsetFetchRequestTopic", (
            Field("name", STRING, versions="0-7"),
            Field("partition_indexes", Array(INT32), versions="0-7"),
        )))),
        Field("require_stable", BOOL, versions="7+", default=False),
    ),
)

# Left out (only in versions we do not serve): groups (8+).
OffsetFetchResponse = Message(
    "OffsetFetchResponse", 9, "response", valid="1-7", flexible="6+",
    fields=(
        Field("throttle_time_ms", INT32, versions="3+"),
        Field("topics", versions="0-7", type=Array(Struct("OffsetFetchResponseTopic", (
            Field("name", STRING, versions="0-7"),
            Field("partitions", versions="0-7", type=Array(Struct("OffsetFetchResponsePartition", (
                Field("partition_index", INT32, versions="0-7"),
                Field("committed_offset", INT64, versions="0-7"),
                Field("committed_leader_epoch", INT32, versions="5-7", default=-1),
                Field("metadata", STRING, versions="0-7", nullable="0-7"),
                Field("error_code", INT16, versions="0-7"),
            )))),
        )))),
        Field("error_code", INT16, versions="2-7", default=0),
    ),
)


# --- FindCoordinator (key 10; we serve v0-3; Kafka defines v0-6) ----------------------------------
# Which broker coordinates a group (key_type 0) or a transactional id (key_type 1)? We are the
# coordinator of everything. v1 adds key_type and error_message; v3 flexible. v4+ batch keys
# (coordinator_keys / coordinators), which we do not serve.

# Left out (only in versions we do not serve): coordinator_keys (4+).
FindCoordinatorRequest = Message(
    "FindCoordinatorRequest", 10, "request", valid="0-3", flexible="3+",
    fields=(
        Field("key", STRING, versions="0-3"),
        Field("key_type", INT8, versions="1+", default=0),
    ),
)

# Left out (only in versions we do not serve): coordinators (4+).
FindCoordinatorResponse = Message(
    "FindCoordinatorResponse", 10, "response", valid="0-3", flexible="3+",
    fields=(
        Field("throttle_time_ms", INT32, versions="1+"),
        Field("error_code", INT16, versions="0-3"),
        Field("error_message", STRING, versions="1-3", nullable="1-3"),
        Field("node_id", INT32, versions="0-3"),
        Field("host", STRING, versions="0-3"),
        Field("port", INT32, versions="0-3"),
    ),
)


# --- JoinGroup (key 11; we serve v0-7; Kafka defines v0-9) ----------------------------------------
# First step of a classic rebalance: members send their protocol metadata
# (ConsumerProtocolSubscription bytes for consumers); the leader gets every member's metadata back.
# v1 rebalance_timeout_ms; v4 makes a member without id rejoin with the id the broker hands it
# (MEMBER_ID_REQUIRED); v5 group_instance_id; v6 flexible; v7 the response echoes protocol_type.

# Left out (only in versions we do not serve): reason (8+).
JoinGroupRequest = Message(
    "JoinGroupRequest", 11, "request", valid="0-7", flexible="6+",
    fields=(
        Field("group_id", STRING),
        Field("session_timeout_ms", INT32),
        Field("rebalance_timeout_ms", INT32, versions="1+", default=-1),
        Field("member_id", STRING),
        Field("group_instance_id", STRING, versions="5+", nullable="5+"),
        Field("protocol_type", STRING),
        Field("protocols", type=Array(Struct("JoinGroupRequestProtocol", (
            Field("name", STRING),
            Field("metadata", BYTES),
        )))),
    ),
)

# Left out (only in versions we do not serve): skip_assignment (9+).
JoinGroupResponse = Message(
    "JoinGroupResponse", 11, "response", valid="0-7", flexible="6+",
    fields=(
        Field("throttle_time_ms", INT32, versions="2+"),
        Field("error_code", INT16),
        Field("generation_id", INT32, default=-1),
        Field("protocol_type", STRING, versions="7+", nullable="7+"),
        Field("protocol_name", STRING, nullable="7+"),
        Field("leader", STRING),
        Field("member_id", STRING),
        Field("members", type=Array(Struct("JoinGroupResponseMember", (
            Field("member_id", STRING),
            Field("group_instance_id", STRING, versions="5+", nullable="5+"),
            Field("metadata", BYTES),
        )))),
    ),
)


# --- Heartbeat (key 12; we serve v0-4; Kafka defines v0-4) ----------------------------------------
# Keeps a member alive between rebalances; REBALANCE_IN_PROGRESS tells it to rejoin.
# v3 group_instance_id; v4 flexible.

HeartbeatRequest = Message(
    "HeartbeatRequest", 12, "request", valid="0-4", flexible="4+",
    fields=(
        Field("group_id", STRING),
        Field("generation_id", INT32),
        Field("member_id", STRING),
        Field("group_instance_id", STRING, versions="3+", nullable="3+"),
    ),
)

HeartbeatResponse = Message(
    "HeartbeatResponse", 12, "response", valid="0-4", flexible="4+",
    fields=(
        Field("throttle_time_ms", INT32, versions="1+"),
        Field("error_code", INT16),
    ),
)


# --- LeaveGroup (key 13; we serve v0-4; Kafka defines v0-5) ---------------------------------------
# A member leaves so the group rebalances without waiting for its session timeout. v0-2 name one
# member_id; v3 switches to a batch of members (with group_instance_id) and per-member results;
# v4 flexible. v5 adds only a reason string.

# Left out (only in versions we do not serve): members.reason (5+).
LeaveGroupRequest = Message(
    "LeaveGroupRequest", 13, "request", valid="0-4", flexible="4+",
    fields=(
        Field("group_id", STRING),
        Field("member_id", STRING, versions="0-2"),
        Field("members", versions="3+", type=Array(Struct("MemberIdentity", (
            Field("member_id", STRING, versions="3+"),
            Field("group_instance_id", STRING, versions="3+", nullable="3+"),
        )))),
    ),
)

LeaveGroupResponse = Message(
    "LeaveGroupResponse", 13, "response", valid="0-4", flexible="4+",
    fields=(
        Field("throttle_time_ms", INT32, versions="1+"),
        Field("error_code", INT16),
        Field("members", versions="3+", type=Array(Struct("MemberResponse", (
            Field("member_id", STRING, versions="3+"),
            Field("group_instance_id", STRING, versions="3+", nullable="3+"),
            Field("error_code", INT16, versions="3+"),
        )))),
    ),
)


# --- SyncGroup (key 14; we serve v0-4; Kafka defines v0-5) ----------------------------------------
# Second step of a rebalance: the leader sends every member's assignment (ConsumerProtocolAssignment
# bytes for consumers); every member gets its own back. v3 group_instance_id; v4 flexible. v5's
# protocol type/name checks are not served.

# Left out (only in versions we do not serve): protocol_type (5+), protocol_name (5+).
SyncGroupRequest = Message(
    "SyncGroupRequest", 14, "request", valid="0-4", flexible="4+",
    fields=(
        Field("group_id", STRING),
        Field("generation_id", INT32),
        Field("member_id", STRING),
        Field("group_instance_id", STRING, versions="3+", nullable="3+"),
        Field("assignments", type=Array(Struct("SyncGroupRequestAssignment", (
            Field("member_id", STRING),
            Field("assignment", BYTES),
        )))),
    ),
)

# Left out (only in versions we do not serve): protocol_type (5+), protocol_name (5+).
SyncGroupResponse = Message(
    "SyncGroupResponse", 14, "response", valid="0-4", flexible="4+",
    fields=(
        Field("throttle_time_ms", INT32, versions="1+"),
        Field("error_code", INT16),
        Field("assignment", BYTES),
    ),
)


# --- DescribeGroups (key 15; we serve v0-5; Kafka defines v0-5) -----------------------------------
# Admin view of groups: state, protocol, members with their metadata and assignment bytes.
# v3 authorized operations; v4 group_instance_id per member; v5 flexible.

DescribeGroupsRequest = Message(
    "DescribeGroupsRequest", 15, "request", valid="0-5", flexible="5+",
    fields=(
        Field("groups", Array(STRING)),
        Field("include_authorized_operations", BOOL, versions="3+"),
    ),
)

DescribeGroupsResponse = Message(
    "DescribeGroupsResponse", 15, "response", valid="0-5", flexible="5+",
    fields=(
        Field("throttle_time_ms", INT32, versions="1+"),
        Field("groups", type=Array(Struct("DescribedGroup", (
            Field("error_code", INT16),
            Field("group_id", STRING),
            Field("group_state", STRING),
            Field("protocol_type", STRING),
            Field("protocol_data", STRING),
            Field("members", type=Array(Struct("DescribedGroupMember", (
                Field("member_id", STRING),
                Field("group_instance_id", STRING, versions="4+", nullable="4+"),
                Field("client_id", STRING),
                Field("client_host", STRING),
                Field("member_metadata", BYTES),
                Field("member_assignment", BYTES),
            )))),
            Field("authorized_operations", INT32, versions="3+", default=-2147483648),
        )))),
    ),
)


# --- ListGroups (key 16; we serve v0-4; Kafka defines v0-5) ---------------------------------------
# Admin list of every group with its protocol type. v3 flexible; v4 adds a state filter in the
# request and group_state in the response. v5's type filter is not served.

# Left out (only in versions we do not serve): types_filter (5+).
ListGroupsRequest = Message(
    "ListGroupsRequest", 16, "request", valid="0-4", flexible="3+",
    fields=(
        Field("states_filter", Array(STRING), versions="4+"),
    ),
)

# Left out (only in versions we do not serve): groups.group_type (5+).
ListGroupsResponse = Message(
    "ListGroupsResponse", 16, "response", valid="0-4", flexible="3+",
    fields=(
        Field("throttle_time_ms", INT32, versions="1+"),
        Field("error_code", INT16),
        Field("groups", type=Array(Struct("ListedGroup", (
            Field("group_id", STRING),
            Field("protocol_type", STRING),
            Field("group_state", STRING, versions="4+"),
        )))),
    ),
)


# --- ApiVersions (key 18; we serve v0-4; Kafka defines v0-4) --------------------------------------
# The first request a client sends. v3 (flexible) carries the client software name and version. An
# unknown request version must still be answered with UNSUPPORTED_VERSION in a v0 body (response
# header v0) so the client can retry. The response's supported/finalized features and
# zk_migration_ready are tagged fields that we may leave empty.

ApiVersionsRequest = Message(
    "ApiVersionsRequest", 18, "request", valid="0-4", flexible="3+",
    fields=(
        Field("client_software_name", STRING, versions="3+"),
        Field("client_software_version", STRING, versions="3+"),
    ),
)

ApiVersionsResponse = Message(
    "ApiVersionsResponse", 18, "response", valid="0-4", flexible="3+",
    fields=(
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


# --- CreateTopics (key 19; we serve v2-7; Kafka defines v0-7) -------------------------------------
# Admin creation of topics, with explicit assignments or partition count/replication factor
# (-1 = broker default from v4). Served from v2 (throttle time); v5 flexible, and the response can
# return the resulting configs; v7 returns the new topic id.

CreateTopicsRequest = Message(
    "CreateTopicsRequest", 19, "request", valid="2-7", flexible="5+",
    fields=(
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
)

CreateTopicsResponse = Message(
    "CreateTopicsResponse", 19, "response", valid="2-7", flexible="5+",
    fields=(
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


# --- DeleteTopics (key 20; we serve v1-6; Kafka defines v0-6) -------------------------------------
# Admin deletion of topics. v4 flexible; v5 per-topic error_message; v6 adds a topics list that may
# name a topic by id (name nullable) next to the older topic_names list.

DeleteTopicsRequest = Message(
    "DeleteTopicsRequest", 20, "request", valid="1-6", flexible="4+",
    fields=(
        Field("topics", versions="6+", type=Array(Struct("DeleteTopicState", (
            Field("name", STRING, versions="6+", nullable="6+"),
            Field("topic_id", UUID, versions="6+"),
        )))),
        Field("topic_names", Array(STRING), versions="0-5"),
        Field("timeout_ms", INT32),
    ),
)

DeleteTopicsResponse = Message(
    "DeleteTopicsResponse", 20, "response", valid="1-6", flexible="4+",
    fields=(
        Field("throttle_time_ms", INT32, versions="1+"),
        Field("responses", type=Array(Struct("DeletableTopicResult", (
            Field("name", STRING, nullable="6+"),
            Field("topic_id", UUID, versions="6+"),
            Field("error_code", INT16),
            Field("error_message", STRING, versions="5+", nullable="5+"),
        )))),
    ),
)


# --- InitProducerId (key 22; we serve v0-4; Kafka defines v0-5) -----------------------------------
# Hands an idempotent (transactional_id null) or transactional producer its producer id and epoch.
# v2 flexible; v3 lets a producer offer its current id/epoch to bump after a fencing error; v4 only
# adds the PRODUCER_FENCED error code.

InitProducerIdRequest = Message(
    "InitProducerIdRequest", 22, "request", valid="0-4", flexible="2+",
    fields=(
        Field("transactional_id", STRING, nullable="0+"),
        Field("transaction_timeout_ms", INT32),
        Field("producer_id", INT64, versions="3+", default=-1),
        Field("producer_epoch", INT16, versions="3+", default=-1),
    ),
)

InitProducerIdResponse = Message(
    "InitProducerIdResponse", 22, "response", valid="0-4", flexible="2+",
    fields=(
        Field("throttle_time_ms", INT32),
        Field("error_code", INT16),
        Field("producer_id", INT64, default=-1),
        Field("producer_epoch", INT16),
    ),
)


# --- OffsetForLeaderEpoch (key 23; we serve v2-4; Kafka defines v0-4) -----------------------------
# Given a leader epoch a client saw, returns where that epoch ended, so the client can detect log
# truncation. Served from v2 (current_leader_epoch for fencing); v3 replica_id (-2 = debug
# consumer, -1 = ordinary consumer); v4 flexible.

OffsetForLeaderEpochRequest = Message(
    "OffsetForLeaderEpochRequest", 23, "request", valid="2-4", flexible="4+",
    fields=(
        Field("replica_id", INT32, versions="3+", default=-2),
        Field("topics", type=Array(Struct("OffsetForLeaderTopic", (
            Field("topic", STRING),
            Field("partitions", type=Array(Struct("OffsetForLeaderPartition", (
                Field("partition", INT32),
                Field("current_leader_epoch", INT32, versions="2+", default=-1),
                Field("leader_epoch", INT32),
            )))),
        )))),
    ),
)

OffsetForLeaderEpochResponse = Message(
    "OffsetForLeaderEpochResponse", 23, "response", valid="2-4", flexible="4+",
    fields=(
        Field("throttle_time_ms", INT32, versions="2+"),
        Field("topics", type=Array(Struct("OffsetForLeaderTopicResult", (
            Field("topic", STRING),
            Field("partitions", type=Array(Struct("EpochEndOffset", (
                Field("error_code", INT16),
                Field("partition", INT32),
                Field("leader_epoch", INT32, versions="1+", default=-1),
                Field("end_offset", INT64, default=-1),
            )))),
        )))),
    ),
)


# --- DescribeConfigs (key 32; we serve v1-4; Kafka defines v0-4) ----------------------------------
# Admin read of topic (resource_type 2) or broker (4) configs. Served from v1, which adds synonyms
# and config_source (v0's is_default is gone); v3 documentation and config_type; v4 flexible.

DescribeConfigsRequest = Message(
    "DescribeConfigsRequest", 32, "request", valid="1-4", flexible="4+",
    fields=(
        Field("resources", type=Array(Struct("DescribeConfigsResource", (
            Field("resource_type", INT8),
            Field("resource_name", STRING),
            Field("configuration_keys", Array(STRING), nullable="0+"),
        )))),
        Field("include_synonyms", BOOL, versions="1+", default=False),
        Field("include_documentation", BOOL, versions="3+", default=False),
    ),
)

# Left out (only in versions we do not serve): results.configs.is_default (0).
DescribeConfigsResponse = Message(
    "DescribeConfigsResponse", 32, "response", valid="1-4", flexible="4+",
    fields=(
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


# --- CreatePartitions (key 37; we serve v0-3; Kafka defines v0-3) ---------------------------------
# Admin increase of a topic's partition count, with optional explicit replica assignments.
# v2 flexible; v3 only adds a throttling error code.

CreatePartitionsRequest = Message(
    "CreatePartitionsRequest", 37, "request", valid="0-3", flexible="2+",
    fields=(
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
)

CreatePartitionsResponse = Message(
    "CreatePartitionsResponse", 37, "response", valid="0-3", flexible="2+",
    fields=(
        Field("throttle_time_ms", INT32),
        Field("results", type=Array(Struct("CreatePartitionsTopicResult", (
            Field("name", STRING),
            Field("error_code", INT16),
            Field("error_message", STRING, nullable="0+"),
        )))),
    ),
)


# --- Consumer protocol bytes (not an API; carried inside JoinGroup / SyncGroup) -------------------
# Not served: these are the opaque bytes consumers put in JoinGroup metadata and SyncGroup
# assignments (GUIDE 4.3). They are encoded as an int16 version followed by the struct of that
# version, always in the classic (non-flexible) encoding; readers decode what they know and ignore
# trailing bytes from newer versions. Subscription v1 adds owned_partitions, v2 generation_id,
# v3 rack_id; Assignment versions 1-3 are identical to v0.

ConsumerProtocolSubscription = Message(
    "ConsumerProtocolSubscription", -1, "data", valid="0-3", flexible="none",
    fields=(
        Field("topics", Array(STRING)),
        Field("user_data", BYTES, nullable="0+"),
        Field("owned_partitions", versions="1+", type=Array(Struct("TopicPartition", (
            Field("topic", STRING, versions="1+"),
            Field("partitions", Array(INT32), versions="1+"),
        )))),
        Field("generation_id", INT32, versions="2+", default=-1),
        Field("rack_id", STRING, versions="3+", nullable="3+"),
    ),
)


ConsumerProtocolAssignment = Message(
    "ConsumerProtocolAssignment", -1, "data", valid="0-3", flexible="none",
    fields=(
        Field("assigned_partitions", type=Array(Struct("TopicPartition", (
            Field("topic", STRING),
            Field("partitions", Array(INT32)),
        )))),
        Field("user_data", BYTES, nullable="0+"),
    ),
)

# --- Tables ----------------------------------------------------------------------------------------

REQUESTS: dict[int, Message] = {
    m.api_key: m
    for m in (
        ProduceRequest,
        FetchRequest,
        ListOffsetsRequest,
        MetadataRequest,
        OffsetCommitRequest,
        OffsetFetchRequest,
        FindCoordinatorRequest,
        JoinGroupRequest,
        HeartbeatRequest,
        LeaveGroupRequest,
        SyncGroupRequest,
        DescribeGroupsRequest,
        ListGroupsRequest,
        ApiVersionsRequest,
        CreateTopicsRequest,
        DeleteTopicsRequest,
        InitProducerIdRequest,
        OffsetForLeaderEpochRequest,
        DescribeConfigsRequest,
        CreatePartitionsRequest,
    )
}

RESPONSES: dict[int, Message] = {
    m.api_key: m
    for m in (
        ProduceResponse,
        FetchResponse,
        ListOffsetsResponse,
        MetadataResponse,
        OffsetCommitResponse,
        OffsetFetchResponse,
        FindCoordinatorResponse,
        JoinGroupResponse,
        HeartbeatResponse,
        LeaveGroupResponse,
        SyncGroupResponse,
        DescribeGroupsResponse,
        ListGroupsResponse,
        ApiVersionsResponse,
        CreateTopicsResponse,
        DeleteTopicsResponse,
        InitProducerIdResponse,
        OffsetForLeaderEpochResponse,
        DescribeConfigsResponse,
        CreatePartitionsResponse,
    )
}

# api_key -> "Produce", "Fetch", ... (Kafka's API names, for logs and error messages).
API_NAMES: dict[int, str] = {key: m.name.removesuffix("Request") for key, m in REQUESTS.items()}
