"""Descriptors of the classic consumer-group APIs (not KIP-848).

What lives here: finding the coordinator (FindCoordinator); the rebalance protocol (JoinGroup,
SyncGroup, Heartbeat, LeaveGroup); committed offsets (OffsetCommit, OffsetFetch); and the admin
views of groups (DescribeGroups, ListGroups, DeleteGroups). They are grouped because every one of them names a
group id and is answered by the group coordinator.

What does not: the protocol bytes consumers carry inside JoinGroup and SyncGroup
(``consumer_protocol``). The conventions and the tables by api key are in the package
``__init__``.
"""

from __future__ import annotations

from wire.kafka.schema import (
    BOOL,
    BYTES,
    INT8,
    INT16,
    INT32,
    INT64,
    STRING,
    Api,
    Array,
    Field,
    Struct,
)

# --- OffsetCommit (Kafka defines v0-9) ------------------------------------------------------------
# A group member stores consumed offsets. Served from v2 (retention_time_ms, removed again in v5);
# v6 per-partition committed_leader_epoch; v7 group_instance_id (static membership); v8 flexible.
# generation_id_or_member_epoch -1 / empty member_id commits outside a group (simple consumer).

OFFSET_COMMIT = Api(
    "OffsetCommit", key=8, versions="2-8", flexible="8+",
    # Left out (only in versions we do not serve): topics.partitions.commit_timestamp (1).
    request=(
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
    response=(
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


# --- OffsetFetch (Kafka defines v0-9) -------------------------------------------------------------
# Reads a group's committed offsets. v2+ accepts a null topic list (= every committed partition)
# and adds a top-level error code; v3 throttle time; v5 committed_leader_epoch; v6 flexible; v7
# require_stable. v8+ batch several groups into a different layout, so we stop at 7.

OFFSET_FETCH = Api(
    "OffsetFetch", key=9, versions="1-7", flexible="6+",
    # Left out (only in versions we do not serve): groups (8+).
    request=(
        Field("group_id", STRING, versions="0-7"),
        Field("topics", versions="0-7", nullable="2-7",
              type=Array(Struct("OffsetFetchRequestTopic", (
            Field("name", STRING, versions="0-7"),
            Field("partition_indexes", Array(INT32), versions="0-7"),
        )))),
        Field("require_stable", BOOL, versions="7+", default=False),
    ),
    # Left out (only in versions we do not serve): groups (8+).
    response=(
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


# --- FindCoordinator (Kafka defines v0-6) ---------------------------------------------------------
# Which broker coordinates a group (key_type 0) or a transactional id (key_type 1)? We are the
# coordinator of everything. v1 adds key_type and error_message; v3 flexible. v4+ batch keys
# (coordinator_keys / coordinators), which we do not serve.

FIND_COORDINATOR = Api(
    "FindCoordinator", key=10, versions="0-3", flexible="3+",
    # Left out (only in versions we do not serve): coordinator_keys (4+).
    request=(
        Field("key", STRING, versions="0-3"),
        Field("key_type", INT8, versions="1+", default=0),
    ),
    # Left out (only in versions we do not serve): coordinators (4+).
    response=(
        Field("throttle_time_ms", INT32, versions="1+"),
        Field("error_code", INT16, versions="0-3"),
        Field("error_message", STRING, versions="1-3", nullable="1-3"),
        Field("node_id", INT32, versions="0-3"),
        Field("host", STRING, versions="0-3"),
        Field("port", INT32, versions="0-3"),
    ),
)


# --- JoinGroup (Kafka defines v0-9) ---------------------------------------------------------------
# First step of a classic rebalance: members send their protocol metadata
# (ConsumerProtocolSubscription bytes for consumers); the leader gets every member's metadata back.
# v1 rebalance_timeout_ms; v4 makes a member without id rejoin with the id the broker hands it
# (MEMBER_ID_REQUIRED); v5 group_instance_id; v6 flexible; v7 the response echoes protocol_type.

JOIN_GROUP = Api(
    "JoinGroup", key=11, versions="0-7", flexible="6+",
    # Left out (only in versions we do not serve): reason (8+).
    request=(
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
    # Left out (only in versions we do not serve): skip_assignment (9+).
    response=(
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


# --- Heartbeat (Kafka defines v0-4) ---------------------------------------------------------------
# Keeps a member alive between rebalances; REBALANCE_IN_PROGRESS tells it to rejoin.
# v3 group_instance_id; v4 flexible.

HEARTBEAT = Api(
    "Heartbeat", key=12, versions="0-4", flexible="4+",
    request=(
        Field("group_id", STRING),
        Field("generation_id", INT32),
        Field("member_id", STRING),
        Field("group_instance_id", STRING, versions="3+", nullable="3+"),
    ),
    response=(
        Field("throttle_time_ms", INT32, versions="1+"),
        Field("error_code", INT16),
    ),
)


# --- LeaveGroup (Kafka defines v0-5) --------------------------------------------------------------
# A member leaves so the group rebalances without waiting for its session timeout. v0-2 name one
# member_id; v3 switches to a batch of members (with group_instance_id) and per-member results;
# v4 flexible. v5 adds only a reason string.

LEAVE_GROUP = Api(
    "LeaveGroup", key=13, versions="0-4", flexible="4+",
    # Left out (only in versions we do not serve): members.reason (5+).
    request=(
        Field("group_id", STRING),
        Field("member_id", STRING, versions="0-2"),
        Field("members", versions="3+", type=Array(Struct("MemberIdentity", (
            Field("member_id", STRING, versions="3+"),
            Field("group_instance_id", STRING, versions="3+", nullable="3+"),
        )))),
    ),
    response=(
        Field("throttle_time_ms", INT32, versions="1+"),
        Field("error_code", INT16),
        Field("members", versions="3+", type=Array(Struct("MemberResponse", (
            Field("member_id", STRING, versions="3+"),
            Field("group_instance_id", STRING, versions="3+", nullable="3+"),
            Field("error_code", INT16, versions="3+"),
        )))),
    ),
)


# --- SyncGroup (Kafka defines v0-5) ---------------------------------------------------------------
# Second step of a rebalance: the leader sends every member's assignment (ConsumerProtocolAssignment
# bytes for consumers); every member gets its own back. v3 group_instance_id; v4 flexible. v5's
# protocol type/name checks are not served.

SYNC_GROUP = Api(
    "SyncGroup", key=14, versions="0-4", flexible="4+",
    # Left out (only in versions we do not serve): protocol_type (5+), protocol_name (5+).
    request=(
        Field("group_id", STRING),
        Field("generation_id", INT32),
        Field("member_id", STRING),
        Field("group_instance_id", STRING, versions="3+", nullable="3+"),
        Field("assignments", type=Array(Struct("SyncGroupRequestAssignment", (
            Field("member_id", STRING),
            Field("assignment", BYTES),
        )))),
    ),
    # Left out (only in versions we do not serve): protocol_type (5+), protocol_name (5+).
    response=(
        Field("throttle_time_ms", INT32, versions="1+"),
        Field("error_code", INT16),
        Field("assignment", BYTES),
    ),
)


# --- DescribeGroups (Kafka defines v0-5) ----------------------------------------------------------
# Admin view of groups: state, protocol, members with their metadata and assignment bytes.
# v3 authorized operations; v4 group_instance_id per member; v5 flexible.

DESCRIBE_GROUPS = Api(
    "DescribeGroups", key=15, versions="0-5", flexible="5+",
    request=(
        Field("groups", Array(STRING)),
        Field("include_authorized_operations", BOOL, versions="3+"),
    ),
    response=(
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


# --- ListGroups (Kafka defines v0-5) --------------------------------------------------------------
# Admin list of every group with its protocol type. v3 flexible; v4 adds a state filter in the
# request and group_state in the response. v5's type filter is not served.

LIST_GROUPS = Api(
    "ListGroups", key=16, versions="0-4", flexible="3+",
    # Left out (only in versions we do not serve): types_filter (5+).
    request=(
        Field("states_filter", Array(STRING), versions="4+"),
    ),
    # Left out (only in versions we do not serve): groups.group_type (5+).
    response=(
        Field("throttle_time_ms", INT32, versions="1+"),
        Field("error_code", INT16),
        Field("groups", type=Array(Struct("ListedGroup", (
            Field("group_id", STRING),
            Field("protocol_type", STRING),
            Field("group_state", STRING, versions="4+"),
        )))),
    ),
)


# --- DeleteGroups (Kafka defines v0-2) ------------------------------------------------------------
# Admin removal of groups without members, and of their committed offsets. v2 flexible.

DELETE_GROUPS = Api(
    "DeleteGroups", key=42, versions="0-2", flexible="2+",
    request=(
        Field("groups_names", Array(STRING)),
    ),
    response=(
        Field("throttle_time_ms", INT32),
        Field("results", type=Array(Struct("DeletableGroupResult", (
            Field("group_id", STRING),
            Field("error_code", INT16),
        )))),
    ),
)
