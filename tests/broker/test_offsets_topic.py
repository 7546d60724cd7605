"""The pure part of the cluster's ``__consumer_offsets`` (broker/cluster/offsets_topic.py): a
group's partition as Kafka computes it, the record format and its refusals, and the offsets a
partition's records add up to; plus the coordinator's side of a partition moving away."""

from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from broker.cluster.model import ClusterDataInvalid, CreateRequest
from broker.cluster.offsets_topic import (
    OffsetRecordInvalid, PartitionOffsets, decode_key, decode_value, encode_key, encode_value, java_string_hashcode,
    partition_for,
)
from broker.config import KafkaConfig
from broker.groups import GroupCoordinator
from broker.offsets import CommittedOffset
from broker.outcome import ErrorKind


def test_java_string_hashcode_matches_java():
    # Values printed by Java's (OpenJDK 17) "...".hashCode().
    assert java_string_hashcode("") == 0
    assert java_string_hashcode("hello") == 99162322
    assert java_string_hashcode("console-consumer-12345") == 158455506
    assert java_string_hashcode("billing") == -109829509
    assert java_string_hashcode("Aa") == java_string_hashcode("BB") == 2112
    assert java_string_hashcode("€") == 8364                    # one UTF-16 unit
    assert java_string_hashcode("😀") == 1772899                 # a surrogate pair: two units
    assert java_string_hashcode("polygenelubricants") == -2**31  # Integer.MIN_VALUE


def test_partition_for_is_kafkas_utils_abs_modulo():
    assert partition_for("hello", 50) == 99162322 % 50
    assert partition_for("billing", 50) == 109829509 % 50 == 9
    # Utils.abs(Integer.MIN_VALUE) is 0, not a negative number.
    assert partition_for("polygenelubricants", 7) == 0
    with pytest.raises(ValueError):
        partition_for("g", 0)


@given(group=st.text(max_size=40), topic=st.text(max_size=40), partition=st.integers(-2**31, 2**31 - 1),
       offset=st.integers(-2**63, 2**63 - 1), epoch=st.integers(-2**31, 2**31 - 1),
       metadata=st.none() | st.text(max_size=100), timestamp=st.integers(-2**63, 2**63 - 1))
def test_records_round_trip(group, topic, partition, offset, epoch, metadata, timestamp):
    assert decode_key(encode_key(group, topic, partition)) == (group, topic, partition)
    committed = CommittedOffset(offset, epoch, metadata, timestamp)
    assert decode_value(encode_value(committed)) == committed


def test_tombstone_is_a_null_value():
    assert decode_value(None) is None


@pytest.mark.parametrize("key, message", [
    (None, "without a key"),
    (b"", "without a key"),
    (b"\x02" + encode_key("g", "t", 0)[1:], "key version 2"),
    (encode_key("g", "t", 0)[:-1], "expected"),
    (encode_key("g", "t", 0) + b"x", "expected"),
    (b"\x01\x00\x09g", "overruns"),
    (b"\x01\x00", "cut short"),
    (b"\x01\x00\x01\xff\x00\x00\x00\x00\x00\x00", "not UTF-8"),
])
def test_a_key_that_is_not_ours_is_refused_with_the_reason(key, message):
    with pytest.raises(OffsetRecordInvalid, match=message):
        decode_key(key)


def test_a_value_that_is_not_ours_is_refused_with_the_reason():
    good = encode_value(CommittedOffset(5, -1, "meta", 1000))
    for value, message in [
        (b"", "version none"),
        (b"\x07" + good[1:], "version 7"),
        (good[:10], "at least"),
        (good + b"x", "metadata length 4, 5 bytes follow"),
        (encode_value(CommittedOffset(5, -1, None, 1000)) + b"x", "metadata length -1"),
        (good[:-4] + b"\xff\xfe\xfd\xfc", "not UTF-8"),
    ]:
        with pytest.raises(OffsetRecordInvalid, match=message):
            decode_value(value)
    with pytest.raises(OffsetRecordInvalid, match="at most"):
        decode_value(encode_value(CommittedOffset(5, -1, "m" * 4097, 1000)))
    with pytest.raises(OffsetRecordInvalid, match="at most"):
        encode_key("g" * 40000, "t", 0)


def test_partition_offsets_keep_the_latest_record_per_key_whatever_the_order_applied():
    offsets = PartitionOffsets()
    first, second = CommittedOffset(10, -1, None, 1), CommittedOffset(20, -1, None, 2)
    offsets.apply(5, ("g", "t", 0), second)
    offsets.apply(4, ("g", "t", 0), first)  # an older record answered later changes nothing
    assert offsets.fetch("g", "t", 0) == second
    offsets.apply(6, ("g", "t", 1), first)
    offsets.apply(7, ("h", "t", 0), first)
    assert offsets.fetch_all("g") == {("t", 0): second, ("t", 1): first}
    assert offsets.groups() == ["g", "h"] and len(offsets) == 3
    offsets.apply(8, ("g", "t", 0), None)  # tombstone
    offsets.apply(3, ("g", "t", 0), first)  # older than the tombstone: stays deleted
    assert offsets.fetch("g", "t", 0) is None
    assert offsets.keys_of("g") == [("g", "t", 1)]
    offsets.apply(9, ("g", "t", 0), first)  # a commit after the tombstone counts again
    assert offsets.fetch("g", "t", 0) == first


def test_create_request_carries_overrides_and_reads_old_requests():
    request = CreateRequest("__consumer_offsets", 10, 3, {"retention.ms": "604800000"})
    assert CreateRequest.from_json(request.to_json()) == request
    old = CreateRequest("t", 1, 1)
    assert b"overrides" not in old.to_json() and CreateRequest.from_json(old.to_json()) == old
    with pytest.raises(ClusterDataInvalid, match="overrides"):
        CreateRequest.from_json(b'{"name": "t", "partitions": 1, "replication_factor": 1, "overrides": {"a": 1}}')


def test_unloading_a_group_answers_its_held_requests_not_coordinator():
    coordinator = GroupCoordinator.from_config(KafkaConfig(group_initial_rebalance_delay_ms=0))
    common = dict(instance_id=None, client_id="c", client_host="h", session_timeout_ms=10000,
                  rebalance_timeout_ms=10000, protocol_type="consumer", protocols=[("range", b"")],
                  require_known_member=False)
    first = coordinator.join("g", member_id="", now_ms=0, **common)
    coordinator.tick(0)
    assert first.done
    member = first.response.member_id
    # A second member makes a rebalance that holds both until the first rejoins.
    held = coordinator.join("g", member_id="", now_ms=1, **common)
    assert not held.done
    coordinator.know_groups(["other"])
    coordinator.unload(["g", "unknown"])
    assert coordinator.tick(2) == [held]
    assert held.response.error is ErrorKind.NOT_COORDINATOR
    assert [g.group_id for g in coordinator.list_groups()] == ["other"]
    assert coordinator.heartbeat("g", member_id=member, generation_id=1, instance_id=None,
                                 now_ms=3) is ErrorKind.UNKNOWN_MEMBER_ID
