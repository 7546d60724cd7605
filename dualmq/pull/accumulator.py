"""The producer's record accumulator: records grouped into per-partition batches, no I/O.

Why batch at all: one Produce request per record would cost a round trip and a 61-byte batch
header each. Kafka's producer instead appends records to an open batch per partition and sends
a batch when it is *full* (``batch_bytes``, Kafka's batch.size) or *old enough* (``linger_ms``:
a few milliseconds of waiting buy much fuller batches under load). This module holds exactly
those rules, driven by explicit ``now`` values so tests need no clock and no broker; the
``Producer`` (``producer``) owns the clock and the network.

Batch lifecycle: open (accepting records) -> ready (closed, waiting to be sent; in order per
partition) -> in flight -> done (``base_offset`` or ``error`` set, ``done`` event fired), possibly
back to ready for a retry. A ready batch keeps its bytes so a retry re-sends the same bytes with
the same idempotence sequence numbers (``encoded`` is cached for that).

Records are encoded as they arrive (``wire.kafka.records.append_record``) into the open batch's
``body``; closing a batch costs only its 61-byte header and CRC (``finish_batch``). That makes
a batch's size exact rather than estimated, and keeps per-record work to one encode and a few
counters: no per-record tuple, list entry or event. Every record of a batch shares the batch's
one ``done`` event; a ``Delivery`` is just ``(batch, index)``.
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Sequence

import trio

from dualmq.pull.records import TopicPartition
from wire.kafka.records import append_record

__all__ = ["Delivery", "ProducerBatch", "RecordAccumulator", "record_size"]

# Per-record framing overhead inside a batch (length, attributes, timestamp/offset deltas, key and
# value lengths, header count: varints of 1-5 bytes each), for ``record_size``'s estimate.
RECORD_OVERHEAD = 10
BATCH_OVERHEAD = 61

Headers = Sequence[tuple[str, bytes | None]] | None


def record_size(key: bytes | None, value: bytes | None, headers: Headers) -> int:
    """Estimated bytes one record adds to an uncompressed batch (the accumulator counts exactly)."""
    size = RECORD_OVERHEAD + (len(key) if key is not None else 0) + (len(value) if value is not None else 0)
    if headers:
        for name, header_value in headers:
            size += 2 + len(name) + (len(header_value) if header_value is not None else 0)
    return size


class ProducerBatch:
    """Records for one partition that travel (and succeed or fail) together.

    ``body`` holds the encoded records (offset deltas 0..count-1, timestamp deltas relative to
    ``base_timestamp``, the first record's) while the batch is open; ``size`` is the batch's
    exact uncompressed size, header included.
    """

    __slots__ = ("_size", "attempts", "base_offset", "base_sequence", "base_timestamp", "body", "count",
                 "created", "deadline", "done", "encoded", "error", "max_timestamp", "partition", "reserved",
                 "retry_at", "topic")

    def __init__(self, topic: str, partition: int, created: float, deadline: float, base_timestamp: int = 0) -> None:
        self.topic = topic
        self.partition = partition
        self.body = bytearray()
        self.count = 0
        self.base_timestamp = base_timestamp
        self.max_timestamp = base_timestamp
        self._size = BATCH_OVERHEAD  # kept up to date when the batch closes (``body`` goes later)
        self.reserved = 0  # the bytes of the producer's buffer this batch holds
        self.created = created
        self.deadline = deadline  # created + delivery timeout: fail rather than retry after this
        self.attempts = 0
        self.retry_at = 0.0
        self.base_sequence = -1
        self.encoded: bytes | None = None
        self.base_offset = -1
        self.error: BaseException | None = None
        self.done = trio.Event()

    def __len__(self) -> int:
        return self.count

    @property
    def size(self) -> int:
        """The batch's exact uncompressed size in bytes, header included."""
        return self._size if self.body is None else BATCH_OVERHEAD + len(self.body)

    def close(self) -> None:
        """No more records: fix ``size`` (the body is handed to the encoder later)."""
        self._size = BATCH_OVERHEAD + len(self.body)

    def complete(self, base_offset: int) -> None:
        self.base_offset = base_offset
        self.body = self.encoded = None  # free the payloads; the offsets are all callers need now
        self.done.set()

    def fail(self, error: BaseException) -> None:
        self.error = error
        self.body = self.encoded = None
        self.done.set()


class Delivery:
    """The future outcome of one record handed to the producer.

    ``await delivery.wait()`` returns ``(partition, offset)`` once the broker acknowledged it
    (offset -1 with ``acks=0``: the broker does not say), or raises the error that made the
    producer give up on it.
    """

    __slots__ = ("_batch", "_index")

    def __init__(self, batch: ProducerBatch, index: int) -> None:
        self._batch = batch
        self._index = index

    @property
    def topic(self) -> str:
        return self._batch.topic

    @property
    def partition(self) -> int:
        return self._batch.partition

    def done(self) -> bool:
        """Whether the outcome is known (acknowledged or failed)."""
        return self._batch.done.is_set()

    def result(self) -> tuple[int, int]:
        """``(partition, offset)`` of a finished delivery.

        Raises:
            the delivery error; RuntimeError if not finished yet.
        """
        batch = self._batch
        if not batch.done.is_set():
            raise RuntimeError("delivery not finished yet: await wait()")
        if batch.error is not None:
            raise batch.error
        if batch.base_offset < 0:
            return batch.partition, -1
        return batch.partition, batch.base_offset + self._index

    async def wait(self) -> tuple[int, int]:
        """Wait for the acknowledgement; returns ``(partition, offset)``.

        Raises:
            KafkaError, Timeout, ConnectionLost: the record was not delivered.
        """
        await self._batch.done.wait()
        return self.result()


def _ignore(batch: ProducerBatch, full: bool) -> None:
    pass


class RecordAccumulator:
    """Open and ready batches per partition.

    Args:
        batch_bytes: a batch is closed once its size reaches this (a single record larger than
            that still gets a batch of its own).
        linger: seconds an open batch may wait for more records before it is ready anyway.
        delivery_timeout: seconds from a batch's creation after which it fails instead of
            being retried.
        clock: gives ``now`` when ``append`` is not passed one; it is read only when a batch is
            created (the producer passes ``trio.current_time``; tests pass ``now``).
        on_batch: called as ``on_batch(batch, full)`` when a batch opens (``full`` False) and
            when one closes because it is full (True): the moments a sender has news. Never
            per record.

    Buffer accounting is per batch, as Kafka's producer does it (``buffer.memory`` is handed
    out in ``batch.size`` pieces): an open batch holds ``batch_bytes`` of ``buffered_bytes``
    (more if its one record is larger), a closed one its exact size, until it is done. So the
    per-record path counts nothing but the record itself.
    """

    def __init__(self, *, batch_bytes: int, linger: float, delivery_timeout: float,
                 clock: Callable[[], float] | None = None,
                 on_batch: Callable[[ProducerBatch, bool], None] = _ignore) -> None:
        self.batch_bytes = batch_bytes
        self.body_bytes = batch_bytes - BATCH_OVERHEAD  # what the records of a full batch take
        self.linger = linger
        self.delivery_timeout = delivery_timeout
        self.clock = clock
        self.on_batch = on_batch
        self.open: dict[TopicPartition, ProducerBatch] = {}
        # Closed batches per partition, oldest first: partition order is record order.
        self.ready: dict[TopicPartition, collections.deque[ProducerBatch]] = {}
        self.buffered_bytes = 0
        self.incomplete = 0  # batches created and not yet done

    def append(self, topic: str, partition: int, key: bytes | None, value: bytes | None, headers: Headers,
               timestamp: int, now: float | None = None) -> Delivery:
        """Add one record (encoding it into the partition's open batch).

        Args:
            now: the time, needed only if a batch must be created (default: ``clock()``).

        Returns:
            The record's ``Delivery``.

        Raises:
            LocalProtocolError: the record cannot be encoded (nothing was added).
        """
        tp = (topic, partition)
        batch = self.open.get(tp)
        if batch is not None:
            # The common case: encode straight into the open batch, and undo it in the rare
            # case it overflows (the record then starts a new batch with new deltas).
            body = batch.body
            index = batch.count
            mark = len(body)
            append_record(body, index, timestamp - batch.base_timestamp, key, value, headers)
            size = len(body)
            if size <= self.body_bytes:
                batch.count = index + 1
                if timestamp > batch.max_timestamp:
                    batch.max_timestamp = timestamp
                if size == self.body_bytes:  # exactly full: this record is its last
                    self._close(tp, batch)
                    self.on_batch(batch, True)
                return Delivery(batch, index)
            del body[mark:]
            self._close(tp, batch)
            self.on_batch(batch, True)
        if now is None:
            now = self.clock()
        batch = ProducerBatch(topic, partition, now, now + self.delivery_timeout, timestamp)
        append_record(batch.body, 0, 0, key, value, headers)  # before registering: it may raise
        batch.count = 1
        self.incomplete += 1
        self.open[tp] = batch
        batch.reserved = max(self.batch_bytes, batch.size)
        self.buffered_bytes += batch.reserved
        self.on_batch(batch, False)
        if batch.size >= self.batch_bytes:
            self._close(tp, batch)
            self.on_batch(batch, True)
        return Delivery(batch, 0)

    def _close(self, tp: TopicPartition, batch: ProducerBatch) -> None:
        del self.open[tp]
        batch.close()
        # Give back what the batch reserved but does not need.
        self.buffered_bytes -= batch.reserved - batch.size
        batch.reserved = batch.size
        self.ready.setdefault(tp, collections.deque()).append(batch)
    def expire_linger(self, now: float, *, flush: bool = False) -> bool:
        """Close every open batch older than ``linger`` (every one if ``flush``).

        Returns:
            Whether any batch became ready.
        """
        closed = False
        for tp, batch in list(self.open.items()):
            if flush or now - batch.created >= self.linger:
                self._close(tp, batch)
                closed = True
        return closed

    def next_linger_deadline(self) -> float | None:
        """When the oldest open batch becomes ready by lingering (None: no open batch)."""
        if not self.open:
            return None
        return min(batch.created for batch in self.open.values()) + self.linger

    def requeue(self, batch: ProducerBatch) -> None:
        """Put a failed batch back at the *front* of its partition's queue, for a retry.

        Retried batches keep their sequence numbers, so among requeued ones the lowest
        sequence goes first: that is the order the broker will accept them in.
        """
        queue = self.ready.setdefault((batch.topic, batch.partition), collections.deque())
        queue.appendleft(batch)
        if len(queue) > 1 and batch.base_sequence >= 0:
            retried = sorted((b for b in queue if b.base_sequence >= 0), key=lambda b: b.base_sequence)
            fresh = [b for b in queue if b.base_sequence < 0]
            queue.clear()
            queue.extend(retried)
            queue.extend(fresh)

    def finished(self, batch: ProducerBatch) -> None:
        """Account for a batch that is done (acknowledged or failed)."""
        self.incomplete -= 1
        self.buffered_bytes -= batch.reserved
        batch.reserved = 0
