"""Descriptors of the consumer protocol bytes: ConsumerProtocolSubscription and
ConsumerProtocolAssignment.

What lives here: the layout of the opaque bytes that consumers put in JoinGroup metadata and
SyncGroup assignments. The broker passes them through untouched; the consumer-side assignor
encodes and decodes them. They have their own module because they are not APIs: they have no api
key, are not in the package's tables, and carry their own version inside the bytes.

What does not: JoinGroup and SyncGroup themselves (``groups``). The conventions are in the package
``__init__``.
"""

from __future__ import annotations

from wire.kafka.schema import (
    BYTES,
    INT32,
    STRING,
    Array,
    Field,
    Message,
    Struct,
)

# --- Consumer protocol bytes (not an API; carried inside JoinGroup / SyncGroup) -------------------
# Not served: these are the opaque bytes consumers put in JoinGroup metadata and SyncGroup
# assignments. They are encoded as an int16 version followed by the struct of that
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
