"""The internal ``__consumer_offsets`` topic of a cluster, pure: a group's partition, the records.

Which partition holds a group, how a commit is written as a record, and the committed offsets
a partition's records add up to.

In cluster mode (docs/cluster.md#groups) committed offsets live in a replicated internal topic,
as in Kafka: a group belongs to partition ``abs(hashCode(group_id)) % partitions`` (Java's
``String.hashCode`` and Kafka's ``Utils.abs``, so a group lands on the partition number Kafka
would give it), and the leader of that partition is the group's coordinator. Every
OffsetCommit is one record in that partition; a broker that starts leading it reads the
partition from its start to rebuild the offsets (``PartitionOffsets``).

The records (our own encoding; a leading version byte on key and value, so a later format can
be told apart; integers big-endian, strings UTF-8 with a length prefix):

* key, version 1 (an offset commit)::

      u8 1 | u16 group length | group | u16 topic length | topic | i32 partition

* value, version 1::

      u8 1 | i64 offset | i32 leader epoch (-1: none) | i64 commit time (ms) |
      i32 metadata length (-1: null) | metadata

* a **null value** is a tombstone: the key's commit is deleted (DeleteGroups writes one per
  committed partition of the group).

A record this module cannot read (an unknown version, a length that overruns) raises
``OffsetRecordInvalid``; the loader logs it and goes on with the next record, so one bad
record costs its own commit, not the partition.

The I/O (appending, waiting for the high watermark, loading on becoming leader) is
``modes/cluster/offsets.py``.
"""

from __future__ import annotations

import struct

import attrs

from broker.errors import BrokerError
from broker.offsets import MAX_METADATA_BYTES, CommittedOffset

__all__ = [
    "OFFSETS_TOPIC", "Commit", "KEY_VERSION", "VALUE_VERSION", "OffsetRecordInvalid", "OffsetKey", "PartitionOffsets",
    "java_string_hashcode", "partition_for", "encode_key", "encode_value", "decode_key", "decode_value",
]

OFFSETS_TOPIC = "__consumer_offsets"
KEY_VERSION = 1
VALUE_VERSION = 1
# Kafka's group ids and topic names are protocol strings (int16 length): u16 holds them all.
MAX_STRING_BYTES = 0x7FFF

_KEY_HEAD = struct.Struct(">BH")
_U16 = struct.Struct(">H")
_I32 = struct.Struct(">i")
_VALUE = struct.Struct(">Bqiqi")

OffsetKey = tuple[str, str, int]  # (group, topic, partition)


class OffsetRecordInvalid(BrokerError):
    """A record of ``__consumer_offsets`` that is not what this module writes."""


def java_string_hashcode(text: str) -> int:
    """Java's ``String.hashCode``: ``s[0]*31^(n-1) + ... + s[n-1]`` over UTF-16 code units,
    in 32-bit two's complement."""
    data = text.encode("utf-16-be", "surrogatepass")
    h = 0
    for i in range(0, len(data), 2):
        h = (31 * h + ((data[i] << 8) | data[i + 1])) & 0xFFFFFFFF
    return h - (1 << 32) if h >= 1 << 31 else h


def partition_for(group_id: str, partitions: int) -> int:
    """The ``__consumer_offsets`` partition of a group: Kafka's
    ``Utils.abs(groupId.hashCode) % partitions`` (``Utils.abs`` maps Integer.MIN_VALUE to 0)."""
    if partitions < 1:
        raise ValueError(f"partitions = {partitions}: at least 1")
    h = java_string_hashcode(group_id)
    return (0 if h == -(1 << 31) else abs(h)) % partitions


def _string(text: str, what: str) -> bytes:
    data = text.encode("utf-8", "surrogatepass")
    if len(data) > MAX_STRING_BYTES:
        raise OffsetRecordInvalid(f"{what} is {len(data)} bytes, at most {MAX_STRING_BYTES}")
    return _U16.pack(len(data)) + data


def encode_key(group_id: str, topic: str, partition: int) -> bytes:
    return bytes([KEY_VERSION]) + _string(group_id, "group id") + _string(topic, "topic") + _I32.pack(partition)


def encode_value(committed: CommittedOffset) -> bytes:
    metadata = b"" if committed.metadata is None else committed.metadata.encode("utf-8", "surrogatepass")
    length = -1 if committed.metadata is None else len(metadata)
    return _VALUE.pack(VALUE_VERSION, committed.offset, committed.leader_epoch, committed.commit_timestamp_ms,
                       length) + metadata


def _read_string(data: bytes, position: int, what: str) -> tuple[str, int]:
    if position + _U16.size > len(data):
        raise OffsetRecordInvalid(f"offsets record key: {what} length cut short")
    (length,) = _U16.unpack_from(data, position)
    start, end = position + _U16.size, position + _U16.size + length
    if end > len(data):
        raise OffsetRecordInvalid(f"offsets record key: {what} of {length} bytes overruns the key")
    try:
        return data[start:end].decode("utf-8"), end
    except UnicodeDecodeError:
        raise OffsetRecordInvalid(f"offsets record key: {what} is not UTF-8") from None


def decode_key(data: bytes | None) -> OffsetKey:
    """Raises: OffsetRecordInvalid."""
    if not data:
        raise OffsetRecordInvalid("offsets record without a key")
    if data[0] != KEY_VERSION:
        raise OffsetRecordInvalid(f"offsets record key version {data[0]}, this broker reads {KEY_VERSION}")
    group, position = _read_string(data, 1, "group id")
    topic, position = _read_string(data, position, "topic")
    if position + _I32.size != len(data):
        raise OffsetRecordInvalid(f"offsets record key is {len(data)} bytes, expected {position + _I32.size}")
    return group, topic, _I32.unpack_from(data, position)[0]


def decode_value(data: bytes | None) -> CommittedOffset | None:
    """The commit a value holds; None for a tombstone (null value).

    Raises: OffsetRecordInvalid.
    """
    if data is None:
        return None
    if not data or data[0] != VALUE_VERSION:
        version = data[0] if data else "none"
        raise OffsetRecordInvalid(f"offsets record value version {version}, this broker reads {VALUE_VERSION}")
    if len(data) < _VALUE.size:
        raise OffsetRecordInvalid(f"offsets record value is {len(data)} bytes, at least {_VALUE.size}")
    _, offset, epoch, timestamp, length = _VALUE.unpack_from(data, 0)
    rest = data[_VALUE.size:]
    if (length == -1 and rest) or (length != -1 and length != len(rest)) or length < -1:
        raise OffsetRecordInvalid(f"offsets record value: metadata length {length}, {len(rest)} bytes follow")
    if length > MAX_METADATA_BYTES:
        raise OffsetRecordInvalid(f"offsets record value: metadata of {length} bytes, at most {MAX_METADATA_BYTES}")
    try:
        metadata = None if length == -1 else rest.decode("utf-8")
    except UnicodeDecodeError:
        raise OffsetRecordInvalid("offsets record value: metadata is not UTF-8") from None
    return CommittedOffset(offset=offset, leader_epoch=epoch, metadata=metadata, commit_timestamp_ms=timestamp)


@attrs.frozen
class Commit:
    """One partition's commit in an OffsetCommit (the group is the request's)."""

    topic: str
    partition: int
    offset: int
    leader_epoch: int
    metadata: str | None


@attrs.define(eq=False)
class PartitionOffsets:
    """The committed offsets held by one ``__consumer_offsets`` partition, as its records say.

    Records are applied with their log offset; a record older than the one already applied
    for its key changes nothing, so two commits of one key answered out of order (both waited
    for the high watermark) still leave the later one.
    """

    _offsets: dict[OffsetKey, tuple[CommittedOffset, int]] = attrs.field(factory=dict)
    # The log offset of the last tombstone per key: a commit below it is dead.
    _deleted: dict[OffsetKey, int] = attrs.field(factory=dict)

    def apply(self, log_offset: int, key: OffsetKey, committed: CommittedOffset | None) -> None:
        held = self._offsets.get(key)
        if (held is not None and held[1] > log_offset) or self._deleted.get(key, -1) > log_offset:
            return
        if committed is None:
            self._offsets.pop(key, None)
            self._deleted[key] = log_offset
        else:
            self._offsets[key] = (committed, log_offset)
            self._deleted.pop(key, None)

    def fetch(self, group_id: str, topic: str, partition: int) -> CommittedOffset | None:
        held = self._offsets.get((group_id, topic, partition))
        return None if held is None else held[0]

    def fetch_all(self, group_id: str) -> dict[tuple[str, int], CommittedOffset]:
        return {(t, p): held[0] for (g, t, p), held in self._offsets.items() if g == group_id}

    def keys_of(self, group_id: str) -> list[OffsetKey]:
        return [key for key in self._offsets if key[0] == group_id]

    def groups(self) -> list[str]:
        return sorted({g for g, _, _ in self._offsets})

    def __len__(self) -> int:
        return len(self._offsets)
