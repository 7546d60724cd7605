"""Descriptors of the data-path APIs: Produce, Fetch, ListOffsets, InitProducerId and
OffsetForLeaderEpoch.

What lives here: the requests that move records or place a client in a partition log. A producer
gets its id and epoch (InitProducerId) and appends record batches (Produce); a consumer turns a
timestamp into a starting offset (ListOffsets), reads record bytes (Fetch) and checks for log
truncation after a leader change (OffsetForLeaderEpoch). They are grouped because all of them
work on partitions and their logs rather than on groups or topic configuration.

What does not: group coordination and committed offsets (``groups``), discovery (``metadata``),
topic administration (``admin``). The conventions every descriptor follows, and the tables by
api key, are in the package ``__init__``.
"""

from __future__ import annotations

from wire.kafka.schema import (
    INT8,
    INT16,
    INT32,
    INT64,
    RECORDS,
    STRING,
    Api,
    Array,
    Field,
    Struct,
)

# --- Produce (Kafka defines v0-11) ----------------------------------------------------------------
# A producer appends record batches to partitions. acks=0 means no response is sent at all.
# v3 brings RecordBatch v2 and transactional_id; v7 permits zstd batches; v8 adds per-record
# errors (record_errors, error_message) to the response; v9 is the first flexible version. We accept
# v0-2 only because librdkafka 2.0.2 compresses only when a broker's Produce range starts at 0;
# their old message formats get a per-partition UNSUPPORTED_VERSION. v10's
# current_leader/node_endpoints are tagged and sit beyond our range.

PRODUCE = Api(
    "Produce", key=0, versions="0-9", flexible="9+",
    request=(
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
    # Left out (only in versions we do not serve): responses.partition_responses.current_leader (10+),
    #   node_endpoints (10+).
    response=(
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


# --- Fetch (Kafka defines v0-17) ------------------------------------------------------------------
# A consumer asks for record bytes from an offset on. v4 is the first version whose records are
# RecordBatch v2 (and adds isolation_level plus aborted_transactions); v5 log_start_offset; v7
# incremental fetch sessions (session_id / session_epoch, forgotten_topics_data); v9
# current_leader_epoch; v10 allows zstd; v12 is flexible and adds last_fetched_epoch plus the
# tagged diverging_epoch / current_leader / snapshot_id. v13+ name topics by id: we stop at 12.

FETCH = Api(
    "Fetch", key=1, versions="4-12", flexible="12+",
    # Left out (only in versions we do not serve): replica_state (15+), topics.topic_id (13+),
    #   topics.partitions.replica_directory_id (17+), forgotten_topics_data.topic_id (13+).
    request=(
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
    # Left out (only in versions we do not serve): responses.topic_id (13+), node_endpoints (16+).
    response=(
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


# --- ListOffsets (Kafka defines v0-10) ------------------------------------------------------------
# Turns a timestamp (or -1 latest / -2 earliest / -3 max timestamp) into an offset. v0 returned a
# list of offsets and is not served; v1 returns one offset plus its timestamp; v2 isolation_level
# and throttle time; v4 leader epochs; v6 flexible; v7 allows the max-timestamp query (-3).

LIST_OFFSETS = Api(
    "ListOffsets", key=2, versions="1-7", flexible="6+",
    # Left out (only in versions we do not serve): topics.partitions.max_num_offsets (0),
    #   timeout_ms (10+).
    request=(
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
    # Left out (only in versions we do not serve): topics.partitions.old_style_offsets (0).
    response=(
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


# --- InitProducerId (Kafka defines v0-5) ----------------------------------------------------------
# Hands an idempotent (transactional_id null) or transactional producer its producer id and epoch.
# v2 flexible; v3 lets a producer offer its current id/epoch to bump after a fencing error; v4 only
# adds the PRODUCER_FENCED error code.

INIT_PRODUCER_ID = Api(
    "InitProducerId", key=22, versions="0-4", flexible="2+",
    request=(
        Field("transactional_id", STRING, nullable="0+"),
        Field("transaction_timeout_ms", INT32),
        Field("producer_id", INT64, versions="3+", default=-1),
        Field("producer_epoch", INT16, versions="3+", default=-1),
    ),
    response=(
        Field("throttle_time_ms", INT32),
        Field("error_code", INT16),
        Field("producer_id", INT64, default=-1),
        Field("producer_epoch", INT16),
    ),
)


# --- OffsetForLeaderEpoch (Kafka defines v0-4) ----------------------------------------------------
# Given a leader epoch a client saw, returns where that epoch ended, so the client can detect log
# truncation. Served from v2 (current_leader_epoch for fencing); v3 replica_id (-2 = debug
# consumer, -1 = ordinary consumer); v4 flexible.

OFFSET_FOR_LEADER_EPOCH = Api(
    "OffsetForLeaderEpoch", key=23, versions="2-4", flexible="4+",
    request=(
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
    response=(
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
