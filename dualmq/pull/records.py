"""The values the pull-mode SDK hands to applications: ``TopicPartition`` and ``ConsumerRecord``.

They live apart from the ``Consumer`` because more than the consumer speaks of them: the
dead-letter loop reads records, and the fetcher, group, admin and assignor code name
partitions. Nothing here does I/O.
"""

from __future__ import annotations

__all__ = ["ConsumerRecord", "TopicPartition"]

TopicPartition = tuple[str, int]
"""``(topic, partition)``: Kafka's unit of ordering, assignment and offsets."""


class ConsumerRecord:
    """One record as the application sees it (a plain slotted class: one is built per record)."""

    __slots__ = ("headers", "key", "offset", "partition", "timestamp", "topic", "value")

    def __init__(self, topic: str, partition: int, offset: int, timestamp: int, key: bytes | None,
                 value: bytes | None, headers: tuple[tuple[str, bytes | None], ...]) -> None:
        self.topic = topic
        self.partition = partition
        self.offset = offset
        self.timestamp = timestamp
        self.key = key
        self.value = value
        self.headers = headers

    def header(self, name: str) -> bytes | None:
        """The value of the last header called ``name`` (None if absent)."""
        for key, value in reversed(self.headers):
            if key == name:
                return value
        return None

    def __repr__(self) -> str:
        return (f"ConsumerRecord(topic={self.topic!r}, partition={self.partition}, offset={self.offset}, "
                f"key={self.key!r}, value={self.value!r:.60}, headers={self.headers!r})")
