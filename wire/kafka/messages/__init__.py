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

Layout: one module per API family, each holding whole sections (note, request, response):

* ``produce_fetch``: Produce, Fetch, ListOffsets, InitProducerId, OffsetForLeaderEpoch (the data
  path);
* ``metadata``: Metadata, ApiVersions (discovery, sent by every client first);
* ``admin``: CreateTopics, DeleteTopics, DescribeConfigs, CreatePartitions (topic administration);
* ``groups``: FindCoordinator, JoinGroup, SyncGroup, Heartbeat, LeaveGroup, OffsetCommit,
  OffsetFetch, DescribeGroups, ListGroups, DeleteGroups (the classic consumer-group coordinator);
* ``consumer_protocol``: the consumer protocol bytes carried inside JoinGroup / SyncGroup.

This ``__init__`` re-exports every descriptor (so ``from wire.kafka.messages import FetchRequest``
works as before) and holds the tables by api key.
"""

from __future__ import annotations

from wire.kafka.messages.admin import (
    CreatePartitionsRequest,
    CreatePartitionsResponse,
    CreateTopicsRequest,
    CreateTopicsResponse,
    DeleteTopicsRequest,
    DeleteTopicsResponse,
    DescribeConfigsRequest,
    DescribeConfigsResponse,
)
from wire.kafka.messages.consumer_protocol import (
    ConsumerProtocolAssignment,
    ConsumerProtocolSubscription,
)
from wire.kafka.messages.groups import (
    DescribeGroupsRequest,
    DescribeGroupsResponse,
    DeleteGroupsRequest,
    DeleteGroupsResponse,
    FindCoordinatorRequest,
    FindCoordinatorResponse,
    HeartbeatRequest,
    HeartbeatResponse,
    JoinGroupRequest,
    JoinGroupResponse,
    LeaveGroupRequest,
    LeaveGroupResponse,
    ListGroupsRequest,
    ListGroupsResponse,
    OffsetCommitRequest,
    OffsetCommitResponse,
    OffsetFetchRequest,
    OffsetFetchResponse,
    SyncGroupRequest,
    SyncGroupResponse,
)
from wire.kafka.messages.metadata import (
    ApiVersionsRequest,
    ApiVersionsResponse,
    MetadataRequest,
    MetadataResponse,
)
from wire.kafka.messages.produce_fetch import (
    FetchRequest,
    FetchResponse,
    InitProducerIdRequest,
    InitProducerIdResponse,
    ListOffsetsRequest,
    ListOffsetsResponse,
    OffsetForLeaderEpochRequest,
    OffsetForLeaderEpochResponse,
    ProduceRequest,
    ProduceResponse,
)
from wire.kafka.schema import Message

__all__ = [
    "ApiVersionsRequest",
    "ApiVersionsResponse",
    "ConsumerProtocolAssignment",
    "ConsumerProtocolSubscription",
    "CreatePartitionsRequest",
    "CreatePartitionsResponse",
    "CreateTopicsRequest",
    "CreateTopicsResponse",
    "DeleteTopicsRequest",
    "DeleteTopicsResponse",
    "DescribeConfigsRequest",
    "DescribeConfigsResponse",
    "DescribeGroupsRequest",
    "DescribeGroupsResponse",
    "FetchRequest",
    "FetchResponse",
    "DeleteGroupsRequest",
    "DeleteGroupsResponse",
    "FindCoordinatorRequest",
    "FindCoordinatorResponse",
    "HeartbeatRequest",
    "HeartbeatResponse",
    "InitProducerIdRequest",
    "InitProducerIdResponse",
    "JoinGroupRequest",
    "JoinGroupResponse",
    "LeaveGroupRequest",
    "LeaveGroupResponse",
    "ListGroupsRequest",
    "ListGroupsResponse",
    "ListOffsetsRequest",
    "ListOffsetsResponse",
    "MetadataRequest",
    "MetadataResponse",
    "OffsetCommitRequest",
    "OffsetCommitResponse",
    "OffsetFetchRequest",
    "OffsetFetchResponse",
    "OffsetForLeaderEpochRequest",
    "OffsetForLeaderEpochResponse",
    "ProduceRequest",
    "ProduceResponse",
    "SyncGroupRequest",
    "SyncGroupResponse",
    "API_NAMES",
    "REQUESTS",
    "RESPONSES",
]

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
        DeleteGroupsRequest,
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
        DeleteGroupsResponse,
    )
}

# api_key -> "Produce", "Fetch", ... (Kafka's API names, for logs and error messages).
API_NAMES: dict[int, str] = {key: m.name.removesuffix("Request") for key, m in REQUESTS.items()}
