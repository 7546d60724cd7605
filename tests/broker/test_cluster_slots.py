"""Hash slots (broker/cluster/slots.py): CRC16 and key slots as Redis Cluster computes them,
and the split of the slots over the live brokers."""

from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from broker.cluster.slots import SLOTS, SlotRange, crc16, key_slot, owner, split_slots


def test_crc16_is_the_xmodem_variant_of_the_cluster_spec():
    # The Redis Cluster specification's check value for its CRC16.
    assert crc16(b"123456789") == 0x31C3
    assert crc16(b"") == 0


@pytest.mark.parametrize(("key", "slot"), [
    # Checked against redis-server 7.0.15 --cluster-enabled yes, CLUSTER KEYSLOT.
    (b"foo", 12182),
    (b"bar", 5061),
    (b"hello", 866),
    (b"", 0),
    # Hash tags, the cases the specification spells out: the first "{" and the first "}"
    # after it; an empty tag hashes the whole key.
    (b"{user1000}.following", 3443),
    (b"foo{}{bar}", 8363),
    (b"foo{{bar}}zap", 4015),
    (b"foo{bar}{zap}", 5061),
])
def test_key_slot_matches_redis(key, slot):
    assert key_slot(key) == slot


def test_keys_with_the_same_tag_share_a_slot():
    assert key_slot(b"{user1000}.following") == key_slot(b"{user1000}.followers") == key_slot(b"user1000")


def test_three_brokers_split_like_redis_cli_cluster_create():
    assert split_slots([3, 1, 2]) == [SlotRange(0, 5460, 1), SlotRange(5461, 10922, 2), SlotRange(10923, 16383, 3)]


def test_no_broker_no_range_and_one_broker_owns_everything():
    assert split_slots([]) == []
    assert owner(0, []) is None
    assert split_slots([7]) == [SlotRange(0, SLOTS - 1, 7)]


@given(st.sets(st.integers(0, 2**31 - 1), min_size=1, max_size=200))
def test_split_covers_every_slot_once_in_id_order(ids):
    ranges = split_slots(list(ids))
    assert [r.node_id for r in ranges] == sorted(ids)
    assert ranges[0].start == 0 and ranges[-1].end == SLOTS - 1
    for before, after in zip(ranges, ranges[1:]):
        assert after.start == before.end + 1
    sizes = [r.end - r.start + 1 for r in ranges]
    assert max(sizes) - min(sizes) <= 1
    assert owner(SLOTS - 1, ranges) == max(ids) and owner(0, ranges) == min(ids)
