"""The pull-mode ``Producer``: batching, acks, compression, idempotence, retries.

    async with Producer("127.0.0.1:9092", compression="lz4") as producer:
        partition, offset = await producer.send("orders", b"...", key=b"customer-42")

What lives here: the public ``Producer`` and its sender task. Batching rules are in
``accumulator`` (pure), partition choice in ``partitioner``, connections in
``client``. Each record is encoded into its partition's open batch as it arrives
(``wire.kafka.records.append_record``); the header and CRC are added when the batch is sent
(``finish_batch``).

How a record travels: ``send`` picks a partition (murmur2 of the key, or the sticky partition
for null keys), appends the record to that partition's open batch, and waits on the batch's
``done`` event (one event per batch, shared by its records: a record's offset is the batch's
base offset plus its index). The sender task (one per producer, in the producer's nursery) wakes
when a batch fills, when the oldest open batch has lingered ``linger_ms``, or on ``flush``; it
sends the head batch of every ready partition led by a broker in one Produce request per broker,
with up to ``max_in_flight`` requests outstanding per broker.

Idempotence (Kafka's KIP-98, on by default since Kafka 3.0): the producer asks the broker for a
producer id (InitProducerId) and numbers each partition's records with a sequence. A batch is
retried with the *same* id and sequence, so a broker that already appended it (the first
response was lost, not the write) recognises the duplicate instead of appending it twice.
Without that, "retry on timeout" means "maybe duplicate". If the broker does not offer
InitProducerId we fall back to plain retries and say so in a warning.

Retries: a batch that fails with a retriable error (or a lost connection) goes back to the front
of its partition's queue after ``retry_backoff_ms``, until ``delivery_timeout_ms`` after its
creation; then its records fail with the last error. Non-retriable errors fail at once.
Retries are counted (``Producer.retries``), not logged one by one: a broker that is down for a
minute would otherwise fill the application's log with hundreds of lines. One
``produce_retried`` summary line (attempts since the last one, the last error) is logged at most
every ``RETRY_SUMMARY_SECONDS`` while retries happen, and once more when the producer closes.

Order on the wire. The broker accepts a partition's batches only in sequence order (anything
else is OUT_OF_ORDER_SEQUENCE_NUMBER), so with several requests in flight two things must hold:

* Requests to one broker reach the socket in the order the sender dispatched them. Each
  request runs in its own task, and trio does not start tasks in the order they were spawned
  (nor does a task that must wait for the connection to open keep its place against one that
  finds it open). So every request takes a ticket when it is dispatched (``_SendOrder``) and
  writes its bytes only on its turn; it then waits for its response concurrently with the
  others (``BrokerConnection.send`` / ``response``).
* After a failure, the partition's failed batches are re-sent one at a time, lowest sequence
  first, and no new batch of that partition is sent before they are through. Otherwise later
  batches, sent while an earlier one waits out its backoff, arrive after a gap and are
  refused with OUT_OF_ORDER_SEQUENCE_NUMBER (Kafka's Java producer has the same rule).
"""

from __future__ import annotations

import math
from time import time_ns as _time_ns
from collections.abc import Iterable, Sequence

from typing import Any

import trio

from dualmq.errors import ConnectionLost, DualmqError, KafkaError, Timeout
from dualmq.pull.accumulator import Delivery, ProducerBatch, RecordAccumulator
from dualmq.pull.client import KafkaClient, deadline
from dualmq.pull.partitioner import StickyPartitioner
from dualmq.pull.security import ClientSecurity
from dualmq.sdk_logging import get_logger
from wire.kafka import compression as codecs
from wire.kafka.errors import ErrorCode
from wire.kafka.records import finish_batch

__all__ = ["Producer"]

log = get_logger(__name__)

PRODUCE, INIT_PRODUCER_ID = 0, 22
_ACKS = {"all": -1, -1: -1, 0: 0, 1: 1, "0": 0, "1": 1}
_CODECS = {name: number for number, name in codecs.CODEC_NAMES.items()}
_SEQUENCE_WRAP = 1 << 31  # Kafka sequences are int32 and wrap to 0 after MAX_VALUE
RETRY_SUMMARY_SECONDS = 10.0  # at most one "produce_retried" log line per this many seconds


class _SendOrder:
    """Tickets that put one broker's Produce requests on the wire in dispatch order."""

    __slots__ = ("issued", "lot", "serving")

    def __init__(self) -> None:
        self.issued = 0  # the next ticket to hand out
        self.serving = 0  # the ticket whose request may be written now
        self.lot = trio.lowlevel.ParkingLot()

    def ticket(self) -> int:
        ticket = self.issued
        self.issued += 1
        return ticket

    async def wait_turn(self, ticket: int) -> None:
        while self.serving != ticket:
            await self.lot.park()

    def next_turn(self) -> None:
        self.serving += 1
        self.lot.unpark_all()


class Producer:
    """A Kafka producer (async context manager).

    Args:
        bootstrap: "host:port[,...]" of any broker(s) of the cluster.
        acks: "all" (-1, the default: the write is acknowledged once durable on the leader, and
            on every in-sync replica in a real cluster), 1 (leader only) or 0 (no response at
            all: fastest, and offsets are unknown, reported as -1).
        compression: None/"none", "gzip", "snappy", "lz4" or "zstd" (per batch).
        linger_ms: how long an open batch waits for more records (Kafka's default: 5).
        batch_bytes: size at which a batch is sent without waiting (Kafka's batch.size).
        buffer_bytes: records waiting in memory before ``send``/``enqueue`` block (and
            ``send_nowait`` raises ``trio.WouldBlock``): the producer's back-pressure.
        max_in_flight: Produce requests outstanding per broker (5, as Kafka allows with
            idempotence while still keeping per-partition order).
        idempotence: None (default) = on when ``acks="all"`` and the broker supports it;
            True = required (ValueError unless acks="all"); False = off.
        delivery_timeout_ms: total time a record may take from ``send`` to acknowledgement,
            retries included (Kafka's default: 120000).
        retry_backoff_ms: pause before a failed batch is retried.
        request_timeout_ms: per-request response deadline.
        client_id: shown in broker logs.
        reconnect_backoff_ms, reconnect_backoff_max_ms: the first and the longest pause between
            attempts to connect to a broker that refused or dropped the connection (doubling
            in between, with jitter).
        security: TLS and SASL keyword arguments, named as kafka-python names them:
            ``security_protocol``, ``sasl_mechanism``, ``sasl_plain_username``,
            ``sasl_plain_password``, ``ssl_cafile``, ``ssl_certfile``, ``ssl_keyfile``,
            ``ssl_check_hostname`` (``dualmq.pull.security.ClientSecurity``).

    Attributes:
        retries: how many times a batch was sent again after a failure (all batches, since
            the producer opened).
    """

    def __init__(self, bootstrap: str | Iterable[str], *, acks: int | str = "all", compression: str | None = None,
                 linger_ms: float = 5, batch_bytes: int = 64 * 1024, buffer_bytes: int = 32 * 1024 * 1024,
                 max_in_flight: int = 5, idempotence: bool | None = None, delivery_timeout_ms: float = 120_000,
                 retry_backoff_ms: float = 100, request_timeout_ms: float = 30_000,
                 max_request_bytes: int = 1024 * 1024, client_id: str = "dualmq-producer",
                 reconnect_backoff_ms: float = 50, reconnect_backoff_max_ms: float = 1000,
                 **security: Any) -> None:
        if acks not in _ACKS:
            raise ValueError(f"acks must be 'all', -1, 0 or 1, not {acks!r}")
        self.acks = _ACKS[acks]
        name = "none" if compression is None else compression.lower()
        if name not in _CODECS:
            raise ValueError(f"compression must be one of {sorted(_CODECS)}, not {compression!r}")
        self.compression = _CODECS[name]
        if idempotence and self.acks != -1:
            raise ValueError("idempotence needs acks='all' (a retried batch must be known durable)")
        self._want_idempotence = idempotence
        self.max_in_flight = max_in_flight
        self.buffer_bytes = buffer_bytes
        self.max_request_bytes = max_request_bytes
        self.retry_backoff = retry_backoff_ms / 1000
        self.request_timeout = request_timeout_ms / 1000
        self._client = KafkaClient(bootstrap, client_id=client_id, request_timeout=self.request_timeout,
                                   reconnect_backoff=reconnect_backoff_ms / 1000,
                                   reconnect_backoff_max=reconnect_backoff_max_ms / 1000,
                                   security=ClientSecurity(**security))
        self._accumulator = RecordAccumulator(batch_bytes=batch_bytes, linger=linger_ms / 1000,
                                              delivery_timeout=delivery_timeout_ms / 1000,
                                              clock=trio.current_time, on_batch=self._batch_news)
        self._partitioner = StickyPartitioner()
        self._wakeup = trio.Event()
        self._wakeup_pending = False  # mirrors self._wakeup.is_set(), cheaper to read per record
        self._space = trio.Event()
        self._all_done = trio.Event()
        self._in_flight: dict[int, int] = {}
        self._send_orders: dict[int, _SendOrder] = {}
        # Per partition: batches in flight, and batches that failed and are not through yet.
        self._partition_in_flight: dict[tuple[str, int], int] = {}
        self._unresolved: dict[tuple[str, int], int] = {}
        self._retrying: list[ProducerBatch] = []
        self._sequences: dict[tuple[str, int], int] = {}
        self.producer_id = -1
        self.producer_epoch = -1
        self.retries = 0
        self._unreported_retries = 0
        self._last_retry_error = ""
        self._next_retry_summary = -math.inf
        self._nursery: trio.Nursery | None = None
        self._closed = False
        self._open = False  # entered and not closed: what the per-record path checks
        self._topics = self._client.topics  # the client's metadata cache (updated in place)

    @property
    def idempotent(self) -> bool:
        """Whether batches carry a producer id and sequences (known after entering)."""
        return self.producer_id >= 0

    # --- lifecycle ---------------------------------------------------------------------------

    async def __aenter__(self) -> Producer:
        await self._client.__aenter__()
        try:
            if self._want_idempotence is not False and self.acks == -1:
                await self._init_producer_id()
            self._nursery_manager = trio.open_nursery()
            self._nursery = await self._nursery_manager.__aenter__()
        except BaseException:
            await self._client.aclose()
            raise
        self._nursery.start_soon(self._sender)
        self._open = True
        return self

    async def __aexit__(self, exc_type, exc, tb) -> bool:
        try:
            if exc_type is None:
                await self.flush()
        finally:
            self._closed = True
            self._open = False
            self._summarise_retries()
            self._fail_everything(DualmqError("producer closed before the record was sent"))
            self._nursery.cancel_scope.cancel()
            try:
                await self._nursery_manager.__aexit__(None, None, None)
            finally:
                await self._client.aclose()
        return False

    async def _init_producer_id(self) -> None:
        if await self._client.version(INIT_PRODUCER_ID) is None:
            if self._want_idempotence:
                raise DualmqError("idempotence=True but the broker does not support InitProducerId")
            log.warning("idempotence_unavailable", reason="broker does not advertise InitProducerId",
                        consequence="retries may duplicate records")
            return
        delay = self.retry_backoff
        with deadline(self.request_timeout, "InitProducerId"):
            while True:
                reply = await self._client.request(INIT_PRODUCER_ID, {
                    "transactional_id": None, "transaction_timeout_ms": 60_000})
                code = reply["error_code"]
                if code == ErrorCode.NONE:
                    self.producer_id, self.producer_epoch = reply["producer_id"], reply["producer_epoch"]
                    return
                if not KafkaError(code).retriable:
                    raise KafkaError(code, "InitProducerId")
                await trio.sleep(delay)

    # --- the public API ------------------------------------------------------------------------

    async def send(self, topic: str, value: bytes | None, key: bytes | None = None,
                   headers: Sequence[tuple[str, bytes | None]] | None = None, partition: int | None = None,
                   *, timestamp_ms: int | None = None) -> tuple[int, int]:
        """Send one record and wait until the broker acknowledged it.

        Args:
            topic: the topic (created by the broker if it auto-creates topics).
            value: the payload (None = a tombstone).
            key: the key; records with equal keys go to the same partition.
            headers: ``[(name, value), ...]``.
            partition: force a partition instead of the partitioner's choice.
            timestamp_ms: the record's CreateTime (default: now).

        Returns:
            ``(partition, offset)``; offset -1 with ``acks=0``.

        Raises:
            KafkaError: the broker rejected the record (e.g. MESSAGE_TOO_LARGE) or a retriable
                error persisted past ``delivery_timeout_ms``.
            Timeout, ConnectionLost: the record could not be delivered in time.
        """
        try:
            delivery = self.send_nowait(topic, value, key, headers, partition, timestamp_ms=timestamp_ms)
        except trio.WouldBlock:
            delivery = await self._send_waiting(topic, value, key, headers, partition, timestamp_ms)
        return await delivery.wait()

    async def enqueue(self, topic: str, value: bytes | None, key: bytes | None = None,
                      headers: Sequence[tuple[str, bytes | None]] | None = None, partition: int | None = None,
                      *, timestamp_ms: int | None = None) -> Delivery:
        """Hand a record to the producer without waiting for its acknowledgement.

        Waits only while the buffer is full (``buffer_bytes``) or the topic's metadata is not
        known yet. Same arguments as ``send``.

        Returns:
            A ``Delivery``: ``await delivery.wait()`` gives ``(partition, offset)``.
        """
        # The fast path is written out here rather than in a helper coroutine: one coroutine
        # per record costs about as much as encoding the record.
        try:
            delivery = self.send_nowait(topic, value, key, headers, partition, timestamp_ms=timestamp_ms)
        except trio.WouldBlock:
            delivery = await self._send_waiting(topic, value, key, headers, partition, timestamp_ms)
        # A checkpoint (a schedule point, where cancellation is delivered too) only when the
        # sender has work waiting: a batch started or filled. That is at least once per batch,
        # so a send loop can be cancelled and never starves the sender; one per record would
        # cost more than the rest of this path.
        if self._wakeup_pending:
            await trio.lowlevel.checkpoint()
        return delivery

    async def _send_waiting(self, topic: str, value: bytes | None, key: bytes | None,
                            headers: Sequence[tuple[str, bytes | None]] | None, partition: int | None,
                            timestamp_ms: int | None) -> Delivery:
        """``send_nowait``, waiting for the topic's metadata or for buffer space as long as needed."""
        while True:
            if topic not in self._client.topics:
                await self._client.topic(topic, allow_auto_create=True)
            else:
                if self._space.is_set():
                    self._space = trio.Event()
                await self._space.wait()
            try:
                return self.send_nowait(topic, value, key, headers, partition, timestamp_ms=timestamp_ms)
            except trio.WouldBlock:
                continue

    def send_nowait(self, topic: str, value: bytes | None, key: bytes | None = None,
                    headers: Sequence[tuple[str, bytes | None]] | None = None, partition: int | None = None,
                    *, timestamp_ms: int | None = None) -> Delivery:
        """Like ``enqueue`` but never waits.

        Raises:
            trio.WouldBlock: the buffer is full or the topic's partitions are not known yet
                (``await enqueue`` handles both).
            KafkaError: ``partition`` does not exist.
            DualmqError: the producer is closed.
            LocalProtocolError: the key, value or headers cannot be encoded.

        This is the per-record path shared by ``send``, ``enqueue`` and ``send_nowait``, so it
        avoids what it can: the clock (``trio.current_time``) is read only when a batch is
        created, the partitioner is consulted only for keyed records or when the topic has no
        sticky partition yet, and the sender is woken only when a batch starts or fills. All
        records of a batch share its one ``done`` event; a ``Delivery`` is ``(batch, index)``.
        """
        if not self._open:
            raise DualmqError("producer is not open")
        info = self._topics.get(topic)
        accumulator = self._accumulator
        if info is None or accumulator.buffered_bytes >= self.buffer_bytes:
            raise trio.WouldBlock
        count = len(info.partitions)
        if partition is None:
            if key is None:
                partition = self._partitioner.sticky.get(topic)
                if partition is None or partition >= count:
                    partition = self._partitioner.partition(topic, None, count)
            else:
                partition = self._partitioner.partition(topic, key, count)
        elif not 0 <= partition < count:
            raise KafkaError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, f"{topic!r} has no partition {partition}")
        if timestamp_ms is None:
            timestamp_ms = _time_ns() // 1_000_000
        return accumulator.append(topic, partition, key, value, headers, timestamp_ms)

    def _batch_news(self, batch: ProducerBatch, full: bool) -> None:
        """The accumulator opened a batch (its linger timer starts) or filled one (work)."""
        self._wake()
        if full:
            info = self._topics.get(batch.topic)
            if info is not None:
                self._partitioner.batch_completed(batch.topic, batch.partition, len(info.partitions))

    def _wake(self) -> None:
        self._wakeup_pending = True
        self._wakeup.set()

    async def flush(self) -> None:
        """Send everything buffered now (ignoring linger) and wait until all of it is done.

        Failures are reported through each record's ``send``/``Delivery``, not here.
        """
        self._accumulator.expire_linger(trio.current_time(), flush=True)
        self._wake()
        while self._accumulator.incomplete:
            self._all_done = trio.Event()
            await self._all_done.wait()
            self._accumulator.expire_linger(trio.current_time(), flush=True)
            self._wake()
        await trio.lowlevel.checkpoint()

    async def partitions_for(self, topic: str) -> list[int]:
        """The partition ids of ``topic`` (auto-created if the broker allows)."""
        return sorted((await self._client.topic(topic, allow_auto_create=True)).partitions)

    # --- the sender task -----------------------------------------------------------------------

    async def _sender(self) -> None:
        accumulator = self._accumulator
        while True:
            # A fresh event *before* looking at the work: anything that arrives while we
            # dispatch sets this one, so no wake-up is lost.
            self._wakeup = trio.Event()
            self._wakeup_pending = False
            now = trio.current_time()
            accumulator.expire_linger(now)
            if self._retrying:
                for batch in [b for b in self._retrying if b.retry_at <= now]:
                    self._retrying.remove(batch)
                    accumulator.requeue(batch)
            await self._dispatch(now)
            deadlines = [d for d in (accumulator.next_linger_deadline(),
                                     min((b.retry_at for b in self._retrying), default=None)) if d is not None]
            with trio.move_on_at(min(deadlines) if deadlines else math.inf):
                await self._wakeup.wait()

    async def _dispatch(self, now: float) -> None:
        """Send the head batch of each ready partition, one request per leader with capacity."""
        per_node: dict[int, list[ProducerBatch]] = {}
        sizes: dict[int, int] = {}
        stale_metadata = False
        # The lowest sequence still waiting out its backoff, per partition.
        backing_off: dict[tuple[str, int], int] = {}
        for batch in self._retrying:
            tp = (batch.topic, batch.partition)
            backing_off[tp] = min(backing_off.get(tp, batch.base_sequence), batch.base_sequence)
        for tp, queue in list(self._accumulator.ready.items()):
            while queue and queue[0].deadline <= now:
                self._finish(queue.popleft(), Timeout(f"record not delivered to {tp} within the delivery timeout"))
            if not queue:
                del self._accumulator.ready[tp]
                continue
            if self._unresolved.get(tp):
                # Recovering from a failure: only a retry may go, alone, and only the lowest
                # sequence not yet through (see the module docstring).
                head = queue[0]
                if (head.attempts == 0 or self._partition_in_flight.get(tp)
                        or backing_off.get(tp, head.base_sequence) < head.base_sequence):
                    continue
            leader = self._client.leader(*tp)
            if leader is None:
                stale_metadata = True
                continue
            if self._in_flight.get(leader, 0) >= self.max_in_flight:
                continue
            if sizes.get(leader, 0) >= self.max_request_bytes:
                continue
            batch = queue.popleft()
            if not queue:
                del self._accumulator.ready[tp]
            self._encode(batch)
            per_node.setdefault(leader, []).append(batch)
            sizes[leader] = sizes.get(leader, 0) + len(batch.encoded)
            self._partition_in_flight[tp] = self._partition_in_flight.get(tp, 0) + 1
        for node, batches in per_node.items():
            self._in_flight[node] = self._in_flight.get(node, 0) + 1
            order = self._send_orders.get(node)
            if order is None:
                order = self._send_orders[node] = _SendOrder()
            self._nursery.start_soon(self._produce, node, batches, order.ticket())
        if stale_metadata:
            self._nursery.start_soon(self._refresh_metadata)
        await trio.lowlevel.checkpoint()

    def _encode(self, batch: ProducerBatch) -> None:
        if batch.encoded is not None:
            return  # a retry: same bytes, same sequence numbers
        if self.producer_id >= 0:
            tp = (batch.topic, batch.partition)
            batch.base_sequence = self._sequences.get(tp, 0)
            self._sequences[tp] = (batch.base_sequence + batch.count) % _SEQUENCE_WRAP
        batch.encoded = finish_batch(batch.body, batch.count, base_timestamp=batch.base_timestamp,
                                     max_timestamp=batch.max_timestamp, compression=self.compression,
                                     producer_id=self.producer_id, producer_epoch=self.producer_epoch,
                                     base_sequence=batch.base_sequence, partition_leader_epoch=-1)
        batch.body = None  # closed: ``encoded`` is what a retry re-sends

    async def _produce(self, node: int, batches: list[ProducerBatch], ticket: int) -> None:
        topics: dict[str, list[dict]] = {}
        for batch in batches:
            topics.setdefault(batch.topic, []).append({"index": batch.partition, "records": batch.encoded})
        request = {"transactional_id": None, "acks": self.acks, "timeout_ms": int(self.request_timeout * 1000),
                   "topic_data": [{"name": t, "partition_data": parts} for t, parts in topics.items()]}
        order = self._send_orders[node]
        try:
            await order.wait_turn(ticket)
            try:
                connection = await self._client.connection(node, "produce")
                pending = await connection.send(PRODUCE, request, expect_response=self.acks != 0)
            finally:
                order.next_turn()  # written (or failed): the next request may go
            reply = None if pending is None else await connection.response(pending, timeout=self.request_timeout)
        except (ConnectionLost, Timeout) as exc:
            for batch in batches:
                self._retry_or_fail(batch, exc)
        except BaseException:
            # Cancelled (the producer is closing): nobody will answer for these batches, and a
            # task awaiting one of them must not hang.
            for batch in batches:
                self._finish(batch, ConnectionLost("producer closed while the batch was in flight"))
            raise
        else:
            if reply is None:  # acks=0: no news is all the news we get
                for batch in batches:
                    self._finish(batch, None, -1)
            else:
                self._handle_reply(reply, batches)
        finally:
            self._in_flight[node] -= 1
            for batch in batches:
                self._partition_in_flight[(batch.topic, batch.partition)] -= 1
            self._wake()

    def _handle_reply(self, reply: dict, batches: list[ProducerBatch]) -> None:
        by_tp = {(b.topic, b.partition): b for b in batches}
        for topic in reply["responses"]:
            for part in topic["partition_responses"]:
                batch = by_tp.pop((topic["name"], part["index"]), None)
                if batch is None:
                    continue
                code = part["error_code"]
                if code in (ErrorCode.NONE, ErrorCode.DUPLICATE_SEQUENCE_NUMBER):
                    self._finish(batch, None, part["base_offset"])
                else:
                    self._retry_or_fail(batch, KafkaError(code, part.get("error_message") or ""))
        for batch in by_tp.values():  # a broker must answer every partition; treat silence as loss
            self._retry_or_fail(batch, ConnectionLost("partition missing from the Produce response"))

    def _retry_or_fail(self, batch: ProducerBatch, error: BaseException) -> None:
        retriable = isinstance(error, (ConnectionLost, Timeout)) or (
            isinstance(error, KafkaError) and (error.retriable or (
                # With idempotence a later batch is refused while an earlier one of the same
                # partition is being retried; it becomes acceptable once that one lands.
                self.producer_id >= 0 and error.code == ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER)))
        now = trio.current_time()
        if retriable and now + self.retry_backoff < batch.deadline and not self._closed:
            if batch.attempts == 0:
                tp = (batch.topic, batch.partition)
                self._unresolved[tp] = self._unresolved.get(tp, 0) + 1
            batch.attempts += 1
            batch.retry_at = now + self.retry_backoff
            self._retrying.append(batch)
            self._count_retry(error, now)
            # The leader may have moved: after a refused or lost connection too (its broker died
            # and another replica leads now, as the Java client assumes on a disconnect).
            if not isinstance(error, KafkaError) or error.code in (ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
                                                                    ErrorCode.NOT_LEADER_OR_FOLLOWER,
                                                                    ErrorCode.LEADER_NOT_AVAILABLE):
                self._nursery.start_soon(self._refresh_metadata)
            return
        self._finish(batch, error)

    def _count_retry(self, error: BaseException, now: float) -> None:
        self.retries += 1
        self._unreported_retries += 1
        self._last_retry_error = str(error)
        if now >= self._next_retry_summary:
            self._summarise_retries(now)

    def _summarise_retries(self, now: float | None = None) -> None:
        """Log the retries not reported yet, in one line (see the module docstring)."""
        if self._unreported_retries:
            log.info("produce_retried", attempts=self._unreported_retries, total=self.retries,
                     last_error=self._last_retry_error)
            self._unreported_retries = 0
        if now is not None:
            self._next_retry_summary = now + RETRY_SUMMARY_SECONDS

    def _finish(self, batch: ProducerBatch, error: BaseException | None, base_offset: int = -1) -> None:
        if batch.done.is_set():
            return
        if batch.attempts:
            self._unresolved[(batch.topic, batch.partition)] -= 1
        if error is None:
            batch.complete(base_offset)
        else:
            # The error reaches the application through the record's send()/Delivery.
            log.debug("produce_failed", topic=batch.topic, partition=batch.partition, records=len(batch),
                      error=str(error))
            batch.fail(error)
        self._accumulator.finished(batch)
        if self._accumulator.buffered_bytes < self.buffer_bytes:
            self._space.set()
        if not self._accumulator.incomplete:
            self._all_done.set()

    async def _refresh_metadata(self) -> None:
        try:
            # The batches waiting to be retried too: theirs are the leaders most likely to have moved.
            topics = {tp[0] for tp in self._accumulator.ready} | {batch.topic for batch in self._retrying}
            await self._client.refresh_metadata(sorted(topics))
        except (ConnectionLost, Timeout) as exc:
            log.debug("metadata_refresh_failed", error=str(exc))
        await trio.sleep(self.retry_backoff)
        self._wake()

    def _fail_everything(self, error: BaseException) -> None:
        accumulator = self._accumulator
        accumulator.expire_linger(0, flush=True)
        for queue in accumulator.ready.values():
            for batch in queue:
                self._finish(batch, error)
        accumulator.ready.clear()
        for batch in self._retrying:
            self._finish(batch, error)
        self._retrying.clear()
