"""Where a new topic's partitions go: Kafka's round-robin replica assignment (racks ignored).

Kafka spreads a topic's partitions over the brokers so that leadership (each partition's first
replica) is spread evenly, and each partition's followers are shifted so that the replicas of
one broker's partitions do not all land on the same other broker:

* the brokers are taken in id order; partition ``p``'s first replica is the broker at
  ``(p + start) mod n``;
* its other replicas follow the first at a distance of ``1 + (shift + j) mod (n - 1)``
  (``j`` = 0, 1, ...), and ``shift`` grows by one each time ``p`` passes a multiple of ``n``.

Kafka draws ``start`` and ``shift`` at random per topic, so that topics created one after the
other do not all start on the same broker; here the caller draws them (the core has no
randomness of its own: tests pass fixed values).
"""

from __future__ import annotations

from collections.abc import Sequence

from broker.cluster.model import InvalidReplicationFactor


def assign_replicas(brokers: Sequence[int], partitions: int, replication_factor: int, *,
                    start: int, shift: int) -> list[list[int]]:
    """The replica list of each partition, first replica = preferred leader.

    Args:
        brokers: the live broker ids (any order; taken sorted).
        partitions: how many partitions (>= 1).
        replication_factor: replicas per partition (>= 1, at most ``len(brokers)``).
        start, shift: Kafka's two random offsets (any non-negative ints).

    Returns:
        ``partitions`` lists of ``replication_factor`` distinct broker ids.

    Raises:
        InvalidReplicationFactor: below 1, or more replicas than live brokers.
    """
    ordered = sorted(brokers)
    count = len(ordered)
    if replication_factor < 1:
        raise InvalidReplicationFactor(f"replication factor {replication_factor}: it must be at least 1")
    if replication_factor > count:
        raise InvalidReplicationFactor(f"replication factor {replication_factor} is larger than the "
                                       f"{count} live broker(s) {ordered}")
    start %= count
    result = []
    for partition in range(partitions):
        if partition > 0 and partition % count == 0:
            shift += 1
        first = (partition + start) % count
        replicas = [ordered[first]]
        for j in range(replication_factor - 1):
            distance = 1 + (shift + j) % (count - 1)
            replicas.append(ordered[(first + distance) % count])
        result.append(replicas)
    return result
