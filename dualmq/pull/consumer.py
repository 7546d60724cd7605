"""The pull-mode ``Consumer``: records by iteration, positions, seeks, commits, group rebalances.

    async with Consumer("127.0.0.1:9092", group_id="billing", topics=["orders"],
                        auto_offset_reset="earliest") as consumer:
        async for record in consumer:
            handle(record.value)

Two ways to get partitions, as in Kafka:

* ``topics=[...]`` with a ``group_id``: group membership. The group's members share the
  partitions (``group``); the assignment can change at any time (rebalance), and the
  ``on_assigned`` / ``on_revoked`` callbacks bracket each change.
* ``assign([(topic, partition), ...])``: manual assignment, no membership. With a ``group_id``
  the committed offsets are still read and written (Kafka's "simple consumer" commits).

Delivery guarantee, spelled out: positions advance as records are *returned*; a commit stores
positions. Auto-commit (the default with a group) commits, every ``auto_commit_interval_ms``,
only at the moment the application asks for the next record — i.e. after it finished with the
previous ones — and on close and before a rebalance. So a crash re-delivers at most the records
since the last commit: at-least-once. Committing before processing would give at-most-once.

Rebalances happen inside iteration (like the Java client's ``poll``): when the heartbeat task
learns the group is rebalancing, the next ``__anext__`` commits, calls ``on_revoked``, rejoins,
calls ``on_assigned``, and continues. The fetch engine is in ``fetcher``.

A broker that goes away (crash, restart) is not an error at first, as with Kafka's clients:
every background task keeps retrying, the client paces the reconnection attempts
(``reconnect_backoff_ms`` doubling up to ``reconnect_backoff_max_ms``), the group is rejoined
and fetching resumes from the consumer's positions, so no record is skipped. Only when no broker
has been reachable for ``request_timeout_ms`` does iteration raise ``ConnectionLost``.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Awaitable, Callable, Iterable

from typing import Any

import trio

from dualmq.errors import CommitFailed, ConnectionLost, DualmqError, KafkaError, OffsetOutOfRange, Timeout
from dualmq.pull import dead_letters
from dualmq.pull.client import KafkaClient, deadline
from dualmq.pull.fetcher import EARLIEST, LATEST, CompletedFetch, Fetcher, PartitionState, list_offsets
from dualmq.pull.group import GroupMember, commit_offsets, fetch_committed
from dualmq.pull.records import ConsumerRecord, TopicPartition
from dualmq.pull.security import ClientSecurity
from dualmq.sdk_logging import get_logger
from wire.kafka.batch import parse_header
from wire.kafka.records import decode_records

__all__ = ["Consumer"]

log = get_logger(__name__)

RebalanceCallback = Callable[[list[TopicPartition]], Awaitable[None] | None]


class Consumer:
    """A Kafka consumer (async context manager and async iterator of ``ConsumerRecord``).

    Args:
        bootstrap: "host:port[,...]".
        group_id: the consumer group (needed for ``topics`` and for commits).
        topics: subscribe through group membership (needs ``group_id``).
        auto_offset_reset: where to start without a committed offset, or after
            OFFSET_OUT_OF_RANGE: "earliest", "latest" (Kafka's default) or "none" (raise
            ``OffsetOutOfRange``).
        enable_auto_commit: commit positions periodically (default: on with a group).
        auto_commit_interval_ms: the period.
        assignors: group assignors by preference: "range", "roundrobin".
        on_assigned, on_revoked: rebalance callbacks (sync or async), given the partitions.
        session_timeout_ms, heartbeat_interval_ms, rebalance_timeout_ms: group timing.
        metadata_max_age_ms: how often a group's leader checks whether subscribed topics
            gained partitions, and rebalances if so (Kafka's default: 5 minutes).
        max_wait_ms, min_bytes, max_bytes, max_partition_bytes: Fetch parameters.
        check_crcs: verify each batch's CRC-32C (Kafka's default: on).
        request_timeout_ms: per-request deadline, and how long the broker may stay unreachable
            before iteration raises ``ConnectionLost`` (until then the consumer reconnects).
        reconnect_backoff_ms, reconnect_backoff_max_ms: the first and the longest pause between
            attempts to reconnect to a broker (doubling in between, with jitter; Kafka's
            reconnect.backoff.ms and reconnect.backoff.max.ms).
        client_id: shown in broker logs and group descriptions.
        security: TLS and SASL keyword arguments, named as kafka-python names them:
            ``security_protocol``, ``sasl_mechanism``, ``sasl_plain_username``,
            ``sasl_plain_password``, ``ssl_cafile``, ``ssl_certfile``, ``ssl_keyfile``,
            ``ssl_check_hostname`` (``dualmq.pull.security.ClientSecurity``).
    """

    def __init__(self, bootstrap: str | Iterable[str], *, group_id: str | None = None,
                 topics: Iterable[str] | None = None, auto_offset_reset: str = "latest",
                 enable_auto_commit: bool | None = None, auto_commit_interval_ms: float = 5000,
                 assignors: Iterable[str] = ("range", "roundrobin"),
                 on_assigned: RebalanceCallback | None = None, on_revoked: RebalanceCallback | None = None,
                 session_timeout_ms: int = 45_000, heartbeat_interval_ms: int = 3000,
                 rebalance_timeout_ms: int = 60_000, max_wait_ms: int = 500, min_bytes: int = 1,
                 max_bytes: int = 50 * 1024 * 1024, max_partition_bytes: int = 1024 * 1024,
                 check_crcs: bool = True, request_timeout_ms: float = 30_000,
                 metadata_max_age_ms: float = 300_000, client_id: str = "dualmq-consumer",
                 reconnect_backoff_ms: float = 50, reconnect_backoff_max_ms: float = 1000,
                 **security: Any) -> None:
        topics = list(topics) if topics is not None else None
        if topics is not None and group_id is None:
            raise ValueError("subscribing to topics needs a group_id (or use assign())")
        self.bootstrap = bootstrap
        self.group_id = group_id
        self.check_crcs = check_crcs
        self.auto_commit = group_id is not None if enable_auto_commit is None else enable_auto_commit
        if self.auto_commit and group_id is None:
            raise ValueError("auto-commit needs a group_id")
        self.auto_commit_interval = auto_commit_interval_ms / 1000
        self.on_assigned = on_assigned
        self.on_revoked = on_revoked
        self._client = KafkaClient(bootstrap, client_id=client_id, request_timeout=request_timeout_ms / 1000,
                                   reconnect_backoff=reconnect_backoff_ms / 1000,
                                   reconnect_backoff_max=reconnect_backoff_max_ms / 1000,
                                   security=ClientSecurity(**security))
        self._data_ready = trio.Event()
        # Woken on every change that may make the consumer ready (see ``wait_ready``).
        self._progress = trio.lowlevel.ParkingLot()
        self._client.on_reachability_change = self._wake
        self._fetcher = Fetcher(self._client, self._wake, auto_offset_reset=auto_offset_reset,
                                max_wait_ms=max_wait_ms, min_bytes=min_bytes, max_bytes=max_bytes,
                                max_partition_bytes=max_partition_bytes)
        self._member = None
        if topics is not None:
            self._member = GroupMember(self._client, group_id, topics, assignors=assignors,
                                       session_timeout=session_timeout_ms / 1000,
                                       rebalance_timeout=rebalance_timeout_ms / 1000,
                                       heartbeat_interval=heartbeat_interval_ms / 1000,
                                       metadata_max_age=metadata_max_age_ms / 1000)
        # The record list being handed out, and where we are in it.
        self._records: list[ConsumerRecord] = []
        self._index = 0
        self._current_state: PartitionState | None = None
        self._current_fetch: CompletedFetch | None = None
        self._current_epoch = -1
        self._batches: list = []
        self._next_auto_commit = 0.0
        self._committed_positions: dict[TopicPartition, int] = {}
        self._nursery: trio.Nursery | None = None
        self._stack: contextlib.AsyncExitStack | None = None

    # --- lifecycle -------------------------------------------------------------------------------

    async def __aenter__(self) -> Consumer:
        self._stack = contextlib.AsyncExitStack()
        try:
            await self._stack.enter_async_context(self._client)
            self._nursery = await self._stack.enter_async_context(trio.open_nursery())
        except BaseException:
            await self._stack.aclose()
            raise
        self._nursery.start_soon(self._fetcher.run)
        if self._member is not None:
            self._nursery.start_soon(self._member.heartbeat_loop, self._wake)
            self._nursery.start_soon(self._member.metadata_loop, self._wake)
        self._next_auto_commit = trio.current_time() + self.auto_commit_interval
        if self._fetcher.states:  # assign() was called before entering
            partitions = self.assignment()
            self._nursery_start_metadata(partitions)
            self._nursery.start_soon(self._initialize_positions, partitions)
        return self

    async def __aexit__(self, exc_type, exc, tb) -> bool:
        try:
            # A final commit and LeaveGroup, unless the broker is unreachable right now: the
            # group then drops us when our session times out, as it would after a crash.
            reachable = self._client.unreachable_since is None
            with trio.CancelScope(shield=True), trio.move_on_after(self._client.request_timeout):
                if self.auto_commit and exc_type is None and reachable:
                    await self._commit_quietly()
                if self._member is not None and reachable:
                    await self._member.leave()
        finally:
            self._nursery.cancel_scope.cancel()
            await self._stack.aclose()
        return False

    def _wake(self) -> None:
        self._data_ready.set()
        self._progress.unpark_all()

    @property
    def ready(self) -> bool:
        """Whether the consumer has its partitions and knows where to read each of them.

        True once the group is joined (or ``assign`` was called) and every assigned partition
        has a position (its committed offset, or the reset policy's answer). A consumer of a
        group with more members than partitions is ready with no partition at all.
        """
        if self._member is not None and (self._member.needs_rejoin or self._member.generation < 0):
            return False
        return all(s.position is not None or s.error is not None for s in self._fetcher.states.values())

    async def wait_ready(self) -> None:
        """Wait until ``ready``.

        With ``topics`` (a group), joining happens inside iteration, so another task must be
        iterating meanwhile (the command-line consumer starts its idle timer this way: the ~3 s
        a group join may take are not "idle").
        """
        while not self.ready:
            await self._progress.park()

    # --- assignment ----------------------------------------------------------------------------------

    def assign(self, partitions: Iterable[TopicPartition]) -> None:
        """Read exactly these partitions (manual assignment; not with ``topics``).

        Positions start from the committed offset (with a ``group_id``) or per
        ``auto_offset_reset``; call ``seek`` to choose.
        """
        if self._member is not None:
            raise DualmqError("assign() is for consumers without a topic subscription")
        partitions = [(str(t), int(p)) for t, p in partitions]
        self._set_assignment(partitions)
        if self._nursery is not None:
            self._nursery.start_soon(self._initialize_positions, partitions)

    def assignment(self) -> list[TopicPartition]:
        """The partitions currently assigned to this consumer."""
        return sorted(self._fetcher.states)

    def _set_assignment(self, partitions: list[TopicPartition]) -> None:
        self._sync_position()
        self._fetcher.assign(partitions)
        # The records fetched but not returned yet are dropped below (``_drop_current``). A
        # partition we keep must then be fetched again from where the application got to, not
        # from where the fetcher had got to, or those records would be skipped.
        for state in self._fetcher.states.values():
            if state.position is not None and state.fetch_position != state.position:
                state.seek(state.position)
        self._drop_current()
        self._nursery_start_metadata(partitions)

    def _nursery_start_metadata(self, partitions: list[TopicPartition]) -> None:
        if self._nursery is not None:
            self._nursery.start_soon(self._load_topics, sorted({t for t, _ in partitions}))

    async def _load_topics(self, topics: list[str]) -> None:
        for topic in topics:
            try:
                await self._client.topic(topic)
            except (KafkaError, Timeout, ConnectionLost) as exc:
                log.warning("topic_metadata_unavailable", topic=topic, error=str(exc))
        self._fetcher.poke()

    async def _initialize_positions(self, partitions: list[TopicPartition]) -> None:
        """Positions for newly assigned partitions: the committed offset, else the reset policy."""
        committed: dict[TopicPartition, int | None] = {}
        if self.group_id is not None:
            while True:
                try:
                    committed = await fetch_committed(self._client, self.group_id, partitions)
                    break
                except (ConnectionLost, Timeout) as exc:
                    if isinstance(exc, Timeout) and self._client.unreachable_since is None:
                        raise  # the broker answers, but not this: not an outage to wait out
                    # The broker is away: try again (the client paces the reconnects; iteration
                    # raises once the outage outlasts the budget).
                    log.debug("committed_offsets_unavailable", group=self.group_id, error=str(exc))
                    await trio.sleep(self._client.reconnect_backoff)
        reset = self._fetcher.default_reset()
        for tp in partitions:
            state = self._fetcher.states.get(tp)
            if state is None or state.position is not None or state.reset_to is not None:
                continue  # unassigned again, or the application already sought
            offset = committed.get(tp)
            if offset is not None:
                state.seek(offset)
                self._committed_positions[tp] = offset
            elif reset is not None:
                state.request_reset(reset)
            else:
                state.error = OffsetOutOfRange([tp])
        self._fetcher.poke()
        self._wake()

    # --- positions -------------------------------------------------------------------------------------

    def _state(self, tp: TopicPartition) -> PartitionState:
        try:
            return self._fetcher.states[tp]
        except KeyError:
            raise DualmqError(f"{tp} is not assigned to this consumer") from None

    def seek(self, tp: TopicPartition, offset: int) -> None:
        """Make ``offset`` the next record returned for partition ``tp``."""
        self._state(tp).seek(offset)
        self._drop_current(tp)
        self._fetcher.poke()
        self._progress.unpark_all()  # a position() or wait_ready() waiting for it

    def seek_to_beginning(self, *partitions: TopicPartition) -> None:
        """Read the given partitions (default: all assigned) from their log start."""
        for tp in partitions or self.assignment():
            self._state(tp).request_reset(EARLIEST)
            self._drop_current(tp)
        self._fetcher.poke()

    def seek_to_end(self, *partitions: TopicPartition) -> None:
        """Skip to the end: only records produced from now on are returned."""
        for tp in partitions or self.assignment():
            self._state(tp).request_reset(LATEST)
            self._drop_current(tp)
        self._fetcher.poke()

    async def seek_to_timestamp(self, timestamp_ms: int, *partitions: TopicPartition) -> None:
        """Seek each partition to its first record with timestamp >= ``timestamp_ms`` (ListOffsets).

        Partitions with no such record move to their end.
        """
        partitions = partitions or tuple(self.assignment())
        found = await list_offsets(self._client, {tp: timestamp_ms for tp in partitions})
        missing = [tp for tp, (offset, _) in found.items() if offset < 0]
        if missing:
            found.update(await list_offsets(self._client, {tp: LATEST for tp in missing}))
        for tp in partitions:
            self.seek(tp, found[tp][0])

    async def position(self, tp: TopicPartition) -> int:
        """The offset of the next record to be returned for ``tp`` (waits for a pending reset)."""
        state = self._state(tp)
        self._sync_position()
        with deadline(self._client.request_timeout, f"finding the position of {tp}"):
            while state.position is None:
                if state.error is not None:
                    raise state.error
                await self._progress.park()  # the fetcher wakes us when a reset is done
        return state.position

    def pause(self, *partitions: TopicPartition) -> None:
        """Stop returning (and fetching) records of these partitions until ``resume``."""
        self._sync_position()
        for tp in partitions:
            state = self._state(tp)
            state.paused = True
            if state.position is not None:
                state.seek(state.position)  # drop fetched data; resume refetches from position
            self._drop_current(tp)
        self._fetcher.poke()

    def resume(self, *partitions: TopicPartition) -> None:
        """Undo ``pause``."""
        for tp in partitions:
            self._state(tp).paused = False
        self._fetcher.poke()

    def paused(self) -> list[TopicPartition]:
        return sorted(tp for tp, s in self._fetcher.states.items() if s.paused)

    def high_watermark(self, tp: TopicPartition) -> int:
        """The partition's end offset as of the last fetch (-1 before any)."""
        return self._state(tp).high_watermark

    # --- commits ------------------------------------------------------------------------------------------

    def _positions(self) -> dict[TopicPartition, int]:
        self._sync_position()
        return {tp: s.position for tp, s in self._fetcher.states.items() if s.position is not None}

    async def commit(self, offsets: dict[TopicPartition, int] | None = None) -> None:
        """Commit offsets (default: the current positions) and wait for the broker.

        Args:
            offsets: (topic, partition) -> next offset to read (last processed + 1).

        Raises:
            CommitFailed: the group rebalanced meanwhile; KafkaError, Timeout.
        """
        if self.group_id is None:
            raise DualmqError("commit needs a group_id")
        offsets = self._positions() if offsets is None else dict(offsets)
        member = self._member
        await commit_offsets(self._client, self.group_id, offsets,
                             generation=member.generation if member else -1,
                             member_id=member.member_id if member else "", member=member)
        self._committed_positions.update(offsets)

    def commit_nowait(self, offsets: dict[TopicPartition, int] | None = None) -> None:
        """Start a commit in the background; failures are logged, not raised."""
        offsets = self._positions() if offsets is None else dict(offsets)
        self._nursery.start_soon(self._commit_quietly, offsets)

    async def _commit_quietly(self, offsets: dict[TopicPartition, int] | None = None) -> None:
        offsets = self._positions() if offsets is None else offsets
        changed = {tp: o for tp, o in offsets.items() if self._committed_positions.get(tp) != o}
        if not changed:
            return
        try:
            await self.commit(changed)
        except (CommitFailed, KafkaError, Timeout, ConnectionLost) as exc:
            log.warning("commit_failed", group=self.group_id, error=str(exc))

    async def committed(self, *partitions: TopicPartition) -> dict[TopicPartition, int | None]:
        """The group's committed offsets for ``partitions`` (default: the assignment)."""
        if self.group_id is None:
            raise DualmqError("committed offsets need a group_id")
        return await fetch_committed(self._client, self.group_id, partitions or self.assignment())

    # --- iteration -------------------------------------------------------------------------------------

    def __aiter__(self) -> Consumer:
        return self

    async def __anext__(self) -> ConsumerRecord:
        # Hot path: one list index and one attribute store per record (a try costs nothing
        # until it raises, in CPython 3.11+). The scheduler is visited once per batch (in
        # _next_chunk), not per record, and the partition's position is written then too
        # (``_sync_position``), not per record.
        index = self._index
        try:
            record = self._records[index]
        except IndexError:
            pass  # the wait happens below, outside the handler: an error raised while waiting
            # (ConnectionLost...) must not read "during handling of IndexError" in a traceback
        else:
            self._index = index + 1
            return record
        await self._next_chunk()
        index = self._index
        self._index = index + 1
        return self._records[index]

    async def getmany(self, max_records: int = 10_000) -> list[ConsumerRecord]:
        """Up to ``max_records`` records at once (waits for at least one): cheaper per record."""
        if self._index >= len(self._records):
            await self._next_chunk()
        start = self._index
        chunk = self._records[start:start + max_records]
        self._index = start + len(chunk)
        self._current_state.position = chunk[-1].offset + 1
        return chunk

    def _sync_position(self) -> None:
        """Write the current partition's position: the offset after the last record returned.

        ``__anext__`` only moves ``self._index``; everything that reads a position (commits,
        ``position()``, ``pause()``, decoding the next batch) calls this first. A partition
        sought or reset since its records were fetched (epoch changed) keeps its new position.
        """
        index = self._index
        if index and self._current_state.epoch == self._current_epoch:
            self._current_state.position = self._records[index - 1].offset + 1

    async def _next_chunk(self) -> None:
        """Make ``self._records`` a non-empty list of the next records, waiting as needed."""
        await trio.lowlevel.checkpoint()
        self._sync_position()
        client = self._client
        while True:
            client.check_reachable()
            if self._member is not None and self._member.needs_rejoin:
                await self._rebalance()
            if self.auto_commit and trio.current_time() >= self._next_auto_commit:
                self._next_auto_commit = trio.current_time() + self.auto_commit_interval
                self.commit_nowait()
            for tp, state in self._fetcher.states.items():
                if state.error is not None and not state.paused:
                    error, state.error = state.error, None
                    raise error
            if self._batches:
                if self._decode_next_batch():
                    return
                continue
            if self._current_fetch is not None:
                # Everything in it was returned: the position may move past trailing control
                # records or compacted gaps.
                finished, self._current_fetch = self._current_fetch, None
                state = self._fetcher.states.get(finished.tp)
                if state is not None and state.epoch == finished.epoch and state.position is not None:
                    state.position = max(state.position, finished.end_offset)
            completed = self._fetcher.completed
            if completed:
                fetch = completed.popleft()
                self._fetcher.release(fetch)
                state = self._fetcher.states.get(fetch.tp)
                if state is None or state.epoch != fetch.epoch or state.paused:
                    continue
                self._current_fetch = fetch
                self._current_state = state
                self._current_epoch = fetch.epoch
                self._batches = list(reversed(fetch.batches))
                continue
            self._data_ready = trio.Event()
            wake_at = min(self._next_auto_commit if self.auto_commit else math.inf,
                          client.outage_deadline or math.inf)
            with trio.move_on_at(wake_at):
                await self._data_ready.wait()

    def _decode_next_batch(self) -> bool:
        batch = self._batches.pop()
        state = self._current_state
        header = parse_header(batch)
        position = state.position
        if header.is_control or header.last_offset < position:
            return False
        topic, partition = self._current_fetch.tp
        # One object per record, built by the decoder in the same pass (no tuple in between).
        records = decode_records(batch, check_crc=self.check_crcs, min_offset=position,
                                 record_type=ConsumerRecord, topic=topic, partition=partition)
        if not records:
            return False
        self._records = records
        self._index = 0
        return True

    def _drop_current(self, tp: TopicPartition | None = None) -> None:
        """Forget buffered records (of ``tp``, or all): after a seek they are the wrong ones."""
        if self._current_fetch is None or (tp is not None and self._current_fetch.tp != tp):
            return
        self._current_fetch = None
        self._batches = []
        self._records = []
        self._index = 0

    async def consume(self, handler, *, retries: int = 3, backoff=0.1, dead_letter_topic: str | None = None,
                      **options):
        """Process every record with retries and a dead-letter topic: see ``dead_letters.consume``."""
        return await dead_letters.consume(self, handler, retries=retries, backoff=backoff,
                             dead_letter_topic=dead_letter_topic, **options)

    # --- rebalance -----------------------------------------------------------------------------------

    async def _rebalance(self) -> None:
        member = self._member
        old = self.assignment()
        if old:
            if self.auto_commit:
                await self._commit_quietly()
            await _call(self.on_revoked, old)
        new = await member.join()
        self._set_assignment(new)
        await self._load_topics(sorted({t for t, _ in new}))
        await self._initialize_positions(new)
        await _call(self.on_assigned, new)


async def _call(callback: RebalanceCallback | None, partitions: list[TopicPartition]) -> None:
    if callback is None:
        return
    result = callback(list(partitions))
    if result is not None and hasattr(result, "__await__"):
        await result
