"""Redis Cluster's hash slots, pure: which slot a shard channel is in, which broker owns it.

Redis Cluster cuts the key space into 16384 slots: a key's slot is CRC16 (the XMODEM
variant: polynomial 0x1021, initial value 0) of the key, modulo 16384. When the key holds a
``{`` followed later by a ``}`` with at least one byte between them, only those bytes (the
*hash tag*) are hashed, so ``{user1}.a`` and ``{user1}.b`` share a slot. Sharded pub/sub
(SPUBLISH, SSUBSCRIBE) treats a shard channel's name as such a key.

Who owns which slot is decided here from the live brokers alone, the same way on every broker
that has the same view: the ids sorted, each given one contiguous range of about 16384 / N
slots, in the order of the ids. The ranges are cut as ``redis-cli --cluster create`` cuts
them (three brokers: 0-5460, 5461-10922, 10923-16383), so the figures look familiar.

Not here: the view itself (``broker.cluster.model``), answering MOVED (``modes/push``).
"""

from __future__ import annotations

import attrs

__all__ = ["SLOTS", "SlotRange", "crc16", "key_slot", "owner", "split_slots"]

SLOTS = 16384


def _table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
        table.append(crc & 0xFFFF)
    return table


_CRC16_TABLE = _table()


def crc16(data: bytes) -> int:
    """CRC16-XMODEM, Redis Cluster's key hash (``crc16(b"123456789") == 0x31C3``)."""
    crc = 0
    table = _CRC16_TABLE
    for byte in data:
        crc = ((crc << 8) & 0xFFFF) ^ table[((crc >> 8) ^ byte) & 0xFF]
    return crc


def key_slot(key: bytes) -> int:
    """The hash slot of ``key``, hash tags honoured (Redis's ``keyHashSlot``)."""
    start = key.find(b"{")
    if start >= 0:
        end = key.find(b"}", start + 1)
        if end > start + 1:  # "{}" is no tag: the whole key is hashed
            key = key[start + 1:end]
    return crc16(key) % SLOTS


@attrs.frozen
class SlotRange:
    """Slots ``start`` to ``end`` (both included), owned by broker ``node_id``."""

    start: int
    end: int
    node_id: int


def split_slots(node_ids: list[int] | tuple[int, ...]) -> list[SlotRange]:
    """Every slot, split into one contiguous range per broker, in ascending id order.

    The same ids give the same ranges on every broker; no id, no range.
    """
    ids = sorted(set(node_ids))
    if not ids:
        return []
    per_node = SLOTS / len(ids)
    ranges = []
    first = 0
    cursor = 0.0
    for index, node_id in enumerate(ids):
        last = SLOTS - 1 if index == len(ids) - 1 else min(SLOTS - 1, round(cursor + per_node - 1))
        ranges.append(SlotRange(first, last, node_id))
        first = last + 1
        cursor += per_node
    return ranges


def owner(slot: int, ranges: list[SlotRange]) -> int | None:
    """The broker owning ``slot`` in ``ranges`` (None when there are none)."""
    for entry in ranges:
        if entry.start <= slot <= entry.end:
            return entry.node_id
    return None
