"""The ``consumer`` group protocol: subscription/assignment bytes and the range/roundrobin assignors.

In Kafka's classic group protocol the broker never decides who reads which partition. Members
send opaque *metadata* in JoinGroup; the broker hands every member's metadata to one member,
the leader; the leader computes an assignment and sends it back in SyncGroup; the broker
relays each member its part. For ``protocol_type = "consumer"`` those opaque bytes have a
standard layout (``ConsumerProtocolSubscription`` / ``ConsumerProtocolAssignment``): an int16 version, then that version's struct in the classic
(non-flexible) encoding. Speaking exactly that layout is what lets our consumer share a group
with kcat, kafka-python or Java consumers, whichever of them becomes leader.

The assignors are pure functions over member subscriptions and partition counts, written to
match Java's ``RangeAssignor`` and ``RoundRobinAssignor`` so a mixed group computes the same
assignment whoever leads:

* range: per topic, the subscribed members sorted by member id each get a contiguous range;
  the first ``partitions % members`` members get one extra.
* roundrobin: all (topic, partition) pairs sorted, dealt out one at a time to the sorted
  members, skipping members not subscribed to that topic.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Mapping, Sequence

import attrs

from dualmq.pull.records import TopicPartition
from wire.errors import RemoteProtocolError
from wire.kafka import codec
from wire.kafka.messages import ConsumerProtocolAssignment, ConsumerProtocolSubscription
from wire.kafka.primitives import Reader

__all__ = [
    "ASSIGNORS",
    "Subscription",
    "assign_range",
    "assign_roundrobin",
    "decode_assignment",
    "decode_subscription",
    "encode_assignment",
    "encode_subscription",
]

_VERSION = struct.Struct(">h")
# The highest versions our descriptors know; newer peers' extra trailing fields are ignored.
_MAX_SUBSCRIPTION_VERSION = 3
_MAX_ASSIGNMENT_VERSION = 3


@attrs.frozen
class Subscription:
    """One member's decoded JoinGroup metadata."""

    topics: tuple[str, ...]
    user_data: bytes | None = None
    owned_partitions: tuple[TopicPartition, ...] = ()


def _group(partitions: Iterable[TopicPartition]) -> list[dict]:
    """``[(t, p), ...]`` -> the wire's ``[{"topic": t, "partitions": [p, ...]}, ...]`` (sorted)."""
    by_topic: dict[str, list[int]] = {}
    for topic, partition in partitions:
        by_topic.setdefault(topic, []).append(partition)
    return [{"topic": t, "partitions": sorted(ps)} for t, ps in sorted(by_topic.items())]


def encode_subscription(topics: Iterable[str], *, version: int = 0, user_data: bytes | None = b"",
                        owned_partitions: Iterable[TopicPartition] = ()) -> bytes:
    """JoinGroup metadata for a consumer subscribed to ``topics``.

    Args:
        topics: the subscribed topics (written sorted, as Java does).
        version: 0 (kafka-python, aiokafka) or 1 (adds owned partitions, librdkafka 2.0).
        user_data: assignor-specific bytes; kafka-python writes ``b""``, Java writes null.
        owned_partitions: v1+: the partitions this member holds now.

    Returns:
        The bytes: int16 version, then the struct in classic encoding.
    """
    values = {"topics": sorted(set(topics)), "user_data": user_data}
    if version >= 1:
        values["owned_partitions"] = _group(owned_partitions)
    return _VERSION.pack(version) + codec.encode(ConsumerProtocolSubscription, version, values)


def decode_subscription(data: bytes) -> Subscription:
    """Parse a member's JoinGroup metadata, whatever version it wrote.

    Raises:
        RemoteProtocolError: the bytes are not a consumer subscription.
    """
    version, body = _split_version(data, "subscription")
    value = codec.decode(ConsumerProtocolSubscription, min(version, _MAX_SUBSCRIPTION_VERSION), Reader(body))
    owned = tuple((tp["topic"], p) for tp in value["owned_partitions"] for p in tp["partitions"])
    return Subscription(tuple(value["topics"]), value["user_data"], owned)


def encode_assignment(partitions: Iterable[TopicPartition], *, user_data: bytes | None = b"") -> bytes:
    """SyncGroup assignment bytes (version 0, understood by every client) for one member."""
    values = {"assigned_partitions": _group(partitions), "user_data": user_data}
    return _VERSION.pack(0) + codec.encode(ConsumerProtocolAssignment, 0, values)


def decode_assignment(data: bytes) -> list[TopicPartition]:
    """Parse SyncGroup assignment bytes; empty bytes mean "no partitions" (a member the leader left out).

    Raises:
        RemoteProtocolError: the bytes are not a consumer assignment.
    """
    if not data:
        return []
    version, body = _split_version(data, "assignment")
    value = codec.decode(ConsumerProtocolAssignment, min(version, _MAX_ASSIGNMENT_VERSION), Reader(body))
    return [(tp["topic"], p) for tp in value["assigned_partitions"] for p in tp["partitions"]]


def _split_version(data: bytes, what: str) -> tuple[int, bytes]:
    if len(data) < 2:
        raise RemoteProtocolError(f"consumer protocol {what} of {len(data)} bytes has no version")
    version = _VERSION.unpack_from(data)[0]
    if version < 0:
        raise RemoteProtocolError(f"consumer protocol {what} has negative version {version}")
    return version, bytes(data[2:])


# --- assignors ------------------------------------------------------------------------------------

Assignment = dict[str, list[TopicPartition]]


def assign_range(subscriptions: Mapping[str, Sequence[str]], partitions: Mapping[str, int]) -> Assignment:
    """Java's RangeAssignor.

    Args:
        subscriptions: member id -> subscribed topics.
        partitions: topic -> partition count (topics missing here are skipped: they do not
            exist, or the leader's metadata does not know them yet).

    Returns:
        member id -> assigned (topic, partition) pairs; every member appears, maybe empty.
    """
    result: Assignment = {member: [] for member in subscriptions}
    topics = sorted({t for ts in subscriptions.values() for t in ts})
    for topic in topics:
        count = partitions.get(topic)
        if not count:
            continue
        members = sorted(m for m, ts in subscriptions.items() if topic in ts)
        per_member, extra = divmod(count, len(members))
        for index, member in enumerate(members):
            start = per_member * index + min(index, extra)
            length = per_member + (1 if index < extra else 0)
            result[member].extend((topic, p) for p in range(start, start + length))
    return result


def assign_roundrobin(subscriptions: Mapping[str, Sequence[str]], partitions: Mapping[str, int]) -> Assignment:
    """Java's RoundRobinAssignor (same arguments and result as ``assign_range``)."""
    result: Assignment = {member: [] for member in subscriptions}
    members = sorted(subscriptions)
    if not members:
        return result
    subscribed = {m: set(ts) for m, ts in subscriptions.items()}
    topics = sorted({t for ts in subscriptions.values() for t in ts})
    cursor = 0
    for topic in topics:
        for partition in range(partitions.get(topic, 0)):
            # Walk the circle to the next member subscribed to this topic; at least one is.
            while topic not in subscribed[members[cursor % len(members)]]:
                cursor += 1
            result[members[cursor % len(members)]].append((topic, partition))
            cursor += 1
    return result


# Assignor name (as sent in JoinGroup) -> function. The first entry of a consumer's list is its
# preference; the broker picks the name most members prefer among those all support.
ASSIGNORS = {"range": assign_range, "roundrobin": assign_roundrobin}
