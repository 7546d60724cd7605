"""The consumer's fetch engine: partition positions, pipelined Fetch requests, offset resets.

What lives here: ``PartitionState`` (where a partition is read from), ``CompletedFetch`` (record
bytes received but not yet handed to the application) and ``Fetcher``, which runs one task per
broker. What does not: turning bytes into records for the application, seeking and committing
(the ``Consumer``), group membership (``group``).

Two positions per partition, and why:

* ``position`` — the next offset the *application* will see. Commits and ``position()`` use it.
* ``fetch_position`` — where the next Fetch starts. Right after a response arrives it moves to
  the end of the data received, so the next Fetch can already be on the wire while the
  application is still working through the previous one (pipelining). Fetching and
  processing then overlap instead of taking turns.

``epoch`` counts seeks (and pauses, resets, reassignments) on a partition. Every Fetch records the
epoch it was issued under; a response for an older epoch is dropped, because it was asked for
from a position the application has since abandoned.

Per broker, one Fetch is in flight at a time and covers every assigned partition that broker
leads. It long-polls: the broker holds it up to ``max_wait_ms`` when there is nothing new, so an
idle consumer costs two requests a second, not a busy loop. Fetches use their own connection
(purpose "fetch") so they never delay heartbeats or commits: a broker answers the requests of
one connection in order, so a heartbeat queued behind a long poll would wait for it.

Offset resets (``auto_offset_reset``): a partition without a position (nothing committed) or
whose fetch got OFFSET_OUT_OF_RANGE is looked up with ListOffsets: timestamp -2 = earliest,
-1 = latest. With "none" the error is kept and raised to the application instead.
"""

from __future__ import annotations

import collections
from collections.abc import Callable

import trio

from dualmq.errors import ConnectionLost, KafkaError, OffsetOutOfRange, Timeout, UnsupportedVersion
from dualmq.pull.client import KafkaClient, deadline
from dualmq.pull.records import TopicPartition
from dualmq.sdk_logging import get_logger
from wire.errors import RemoteProtocolError
from wire.kafka.errors import ErrorCode
from wire.kafka.batch import split_batches

__all__ = ["EARLIEST", "LATEST", "CompletedFetch", "Fetcher", "PartitionState", "list_offsets"]

log = get_logger(__name__)

FETCH, LIST_OFFSETS = 1, 2
EARLIEST, LATEST = -2, -1

# Errors after which partition leadership may have moved: refresh metadata, then fetch again.
_METADATA_ERRORS = frozenset({ErrorCode.NOT_LEADER_OR_FOLLOWER, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
                              ErrorCode.LEADER_NOT_AVAILABLE, ErrorCode.FENCED_LEADER_EPOCH,
                              ErrorCode.UNKNOWN_LEADER_EPOCH, ErrorCode.UNKNOWN_TOPIC_ID})


class PartitionState:
    """Everything the consumer tracks for one assigned partition."""

    __slots__ = ("epoch", "error", "fetch_position", "high_watermark", "in_flight", "log_start_offset",
                 "paused", "position", "reset_to")

    def __init__(self) -> None:
        self.position: int | None = None
        self.fetch_position: int | None = None
        self.epoch = 0
        self.paused = False
        self.in_flight = False
        # Pending reset: EARLIEST / LATEST / a timestamp, applied by the fetcher via ListOffsets.
        self.reset_to: int | None = None
        self.error: BaseException | None = None
        self.high_watermark = -1
        self.log_start_offset = -1

    def seek(self, offset: int) -> None:
        self.position = self.fetch_position = offset
        self.reset_to = None
        self.error = None
        self.epoch += 1

    def request_reset(self, timestamp: int) -> None:
        self.position = self.fetch_position = None
        self.reset_to = timestamp
        self.error = None
        self.epoch += 1

    @property
    def fetchable(self) -> bool:
        return not self.paused and not self.in_flight and self.fetch_position is not None and self.error is None


class CompletedFetch:
    """Record batches received for one partition, waiting for the application."""

    __slots__ = ("batches", "end_offset", "epoch", "node", "tp")

    def __init__(self, tp: TopicPartition, epoch: int, node: int, batches: list, end_offset: int) -> None:
        self.tp = tp
        self.epoch = epoch
        self.node = node
        self.batches = batches  # memoryviews, one batch each, decoded lazily by the consumer
        self.end_offset = end_offset  # the offset after the last batch


async def list_offsets(client: KafkaClient, queries: dict[TopicPartition, int]) -> dict[TopicPartition, tuple[int, int]]:
    """ListOffsets for many partitions (grouped by leader).

    Args:
        queries: (topic, partition) -> timestamp in ms, or EARLIEST (-2) / LATEST (-1).

    Returns:
        (topic, partition) -> ``(offset, timestamp)``; offset -1 when no record is that recent.

    Raises:
        KafkaError: a non-retriable error; ConnectionLost / Timeout.
    """
    results: dict[TopicPartition, tuple[int, int]] = {}
    pending = dict(queries)
    delay = 0.05
    with deadline(client.request_timeout, "ListOffsets"):
        while pending:
            by_node: dict[int, dict[str, list[dict]]] = {}
            for (topic, partition), timestamp in pending.items():
                leader = client.leader(topic, partition)
                if leader is None:
                    await client.topic(topic)
                    leader = client.leader(topic, partition)
                    if leader is None:
                        raise KafkaError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, f"{topic}[{partition}]")
                by_node.setdefault(leader, {}).setdefault(topic, []).append(
                    {"partition_index": partition, "current_leader_epoch": -1, "timestamp": timestamp})
            retry = False
            for node, topics in by_node.items():
                reply = await client.request(LIST_OFFSETS, {
                    "replica_id": -1, "isolation_level": 0,
                    "topics": [{"name": t, "partitions": ps} for t, ps in topics.items()]}, node=node)
                for topic in reply["topics"]:
                    for part in topic["partitions"]:
                        tp = (topic["name"], part["partition_index"])
                        code = part["error_code"]
                        if code == ErrorCode.NONE:
                            results[tp] = (part["offset"], part["timestamp"])
                            pending.pop(tp, None)
                        elif KafkaError(code).retriable:
                            retry = True
                        else:
                            raise KafkaError(code, f"ListOffsets {tp[0]}[{tp[1]}]")
            if retry:
                await client.refresh_metadata(sorted({tp[0] for tp in pending}))
                await trio.sleep(delay)
                delay = min(delay * 2, 1.0)
    return results


class Fetcher:
    """Fetch tasks (one per broker) feeding a queue of ``CompletedFetch``.

    Args:
        client: the consumer's client.
        wake: called whenever new data (or an error) is ready for the application.
        auto_offset_reset: "earliest", "latest" or "none".
        max_wait_ms, min_bytes, max_bytes, max_partition_bytes: Fetch request parameters
            (Kafka's fetch.max.wait.ms, fetch.min.bytes, fetch.max.bytes,
            max.partition.fetch.bytes).
        isolation_level: 0 read_uncommitted, 1 read_committed.
        prefetch: completed fetches buffered per broker before its task waits: the bound on
            the consumer's memory (about prefetch x max_bytes per broker).
    """

    def __init__(self, client: KafkaClient, wake: Callable[[], None], *, auto_offset_reset: str = "latest",
                 max_wait_ms: int = 500, min_bytes: int = 1, max_bytes: int = 50 * 1024 * 1024,
                 max_partition_bytes: int = 1024 * 1024, isolation_level: int = 0, prefetch: int = 2) -> None:
        if auto_offset_reset not in ("earliest", "latest", "none"):
            raise ValueError(f"auto_offset_reset must be 'earliest', 'latest' or 'none', not {auto_offset_reset!r}")
        self.client = client
        self.wake = wake
        self.auto_offset_reset = auto_offset_reset
        self.max_wait_ms = max_wait_ms
        self.min_bytes = min_bytes
        self.max_bytes = max_bytes
        self.max_partition_bytes = max_partition_bytes
        self.isolation_level = isolation_level
        self.prefetch = prefetch
        self.states: dict[TopicPartition, PartitionState] = {}
        self.completed: collections.deque[CompletedFetch] = collections.deque()
        self._buffered: dict[int, int] = {}
        # Tasks waiting for "something changed" park here; ``poke`` wakes every one of them.
        # Not a shared ``trio.Event`` that waiters replace after waking: with two waiters (run
        # and a node loop) one could replace the event the other had just started waiting on,
        # and that waiter was never woken again — the consumer stalled for good.
        self._work = trio.lowlevel.ParkingLot()
        self._nodes: set[int] = set()
        self._nursery: trio.Nursery | None = None

    # --- control from the consumer -------------------------------------------------------------

    def assign(self, partitions: list[TopicPartition]) -> None:
        """Replace the assignment; partitions kept keep their state, new ones start unpositioned."""
        self.states = {tp: self.states.get(tp) or PartitionState() for tp in partitions}
        kept: collections.deque[CompletedFetch] = collections.deque()
        for completed in self.completed:
            if completed.tp in self.states:
                kept.append(completed)
            else:  # dropped unread: give its broker the prefetch slot back
                self._buffered[completed.node] -= 1
        self.completed = kept
        self.poke()

    def poke(self) -> None:
        """Wake the fetch tasks: positions, pauses or the assignment changed."""
        self._work.unpark_all()

    async def _wait_for_work(self) -> None:
        """Sleep until the next ``poke``.

        Callers check their condition and call this with no checkpoint in between, so a poke
        cannot slip through unseen (trio switches tasks only at checkpoints).
        """
        await self._work.park()

    def release(self, completed: CompletedFetch) -> None:
        """The consumer took ``completed`` off the queue: its broker may fetch more."""
        self._buffered[completed.node] -= 1
        self.poke()

    def default_reset(self) -> int | None:
        return {"earliest": EARLIEST, "latest": LATEST}.get(self.auto_offset_reset)

    # --- tasks -----------------------------------------------------------------------------------

    async def run(self) -> None:
        """Start and supervise per-broker fetch tasks until cancelled."""
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            while True:
                for tp in self.states:
                    leader = self.client.leader(*tp)
                    if leader is None:
                        nursery.start_soon(self._refresh_metadata)
                    elif leader not in self._nodes:
                        self._nodes.add(leader)
                        self._buffered.setdefault(leader, 0)
                        nursery.start_soon(self._node_loop, leader)
                await self._wait_for_work()

    async def _refresh_metadata(self) -> None:
        try:
            await self.client.refresh_metadata(sorted({tp[0] for tp in self.states}))
        except (ConnectionLost, Timeout) as exc:
            log.debug("metadata_refresh_failed", error=str(exc))
        await trio.sleep(0.1)
        self.poke()

    async def _node_loop(self, node: int) -> None:
        while True:
            mine = [(tp, s) for tp, s in self.states.items() if self.client.leader(*tp) == node]
            resets = {tp: s.reset_to for tp, s in mine if s.fetch_position is None and s.reset_to is not None
                      and not s.paused}
            if resets:
                await self._reset(resets)
                continue
            fetchable = [(tp, s) for tp, s in mine if s.fetchable]
            if not fetchable or self._buffered[node] >= self.prefetch:
                await self._wait_for_work()
                continue
            await self._fetch(node, fetchable)

    async def _reset(self, resets: dict[TopicPartition, int]) -> None:
        epochs = {tp: self.states[tp].epoch for tp in resets}
        try:
            found = await list_offsets(self.client, resets)
        except (ConnectionLost, Timeout, KafkaError) as exc:
            log.debug("offset_reset_failed", partitions=sorted(resets), error=str(exc))
            await trio.sleep(0.5)
            return
        for tp, (offset, _timestamp) in found.items():
            state = self.states.get(tp)
            if state is None or state.epoch != epochs[tp]:
                continue  # sought or unassigned meanwhile
            if offset < 0:  # a timestamp beyond the last record: read from the end
                offset = (await list_offsets(self.client, {tp: LATEST}))[tp][0]
            log.debug("offset_reset", topic=tp[0], partition=tp[1], offset=offset)
            state.seek(offset)
        self.wake()

    async def _fetch(self, node: int, fetchable: list[tuple[TopicPartition, PartitionState]]) -> None:
        topics: dict[str, list[dict]] = {}
        issued = {}
        for tp, state in fetchable:
            state.in_flight = True
            issued[tp] = (state.epoch, state.fetch_position)
            topics.setdefault(tp[0], []).append({
                "partition": tp[1], "current_leader_epoch": -1, "fetch_offset": state.fetch_position,
                "last_fetched_epoch": -1, "log_start_offset": -1, "partition_max_bytes": self.max_partition_bytes})
        request = {"replica_id": -1, "max_wait_ms": self.max_wait_ms, "min_bytes": self.min_bytes,
                   "max_bytes": self.max_bytes, "isolation_level": self.isolation_level,
                   "session_id": 0, "session_epoch": -1,  # no incremental fetch sessions: full fetches
                   "topics": [{"topic": t, "partitions": ps} for t, ps in topics.items()],
                   "forgotten_topics_data": [], "rack_id": ""}
        try:
            reply = await self.client.request(FETCH, request, node=node, purpose="fetch",
                                              timeout=self.client.request_timeout + self.max_wait_ms / 1000)
        except (ConnectionLost, Timeout, UnsupportedVersion) as exc:
            log.debug("fetch_failed", node=node, error=str(exc))
            await trio.sleep(0.2)
            if not isinstance(exc, UnsupportedVersion):
                await self._refresh_metadata()   # its broker may be dead, the partitions led elsewhere now
            return
        finally:
            for tp, _state in fetchable:
                state = self.states.get(tp)
                if state is not None:
                    state.in_flight = False
        if reply["error_code"] != ErrorCode.NONE:
            log.debug("fetch_failed", node=node, error=ErrorCode.lookup(reply["error_code"]))
            await trio.sleep(0.2)
            return
        refresh = False
        delivered = False
        for topic in reply["responses"]:
            for part in topic["partitions"]:
                tp = (topic["topic"], part["partition_index"])
                state = self.states.get(tp)
                if state is None or tp not in issued or issued[tp] != (state.epoch, state.fetch_position):
                    continue  # unassigned, sought or paused while the fetch was in flight
                code = part["error_code"]
                if code == ErrorCode.NONE:
                    state.high_watermark = part["high_watermark"]
                    state.log_start_offset = part["log_start_offset"]
                    delivered |= self._accept(node, tp, state, part["records"])
                elif code == ErrorCode.OFFSET_OUT_OF_RANGE:
                    self._out_of_range(tp, state)
                    delivered = True
                elif code in _METADATA_ERRORS:
                    refresh = True
                else:
                    state.error = KafkaError(code, f"Fetch {tp[0]}[{tp[1]}]")
                    delivered = True
        if delivered:
            self.wake()
        if refresh:
            await self._refresh_metadata()

    def _accept(self, node: int, tp: TopicPartition, state: PartitionState, records) -> bool:
        if not records:
            return False
        try:
            batches = split_batches(records)
        except RemoteProtocolError as exc:
            state.error = KafkaError(ErrorCode.CORRUPT_MESSAGE, f"{tp[0]}[{tp[1]}]: {exc}")
            return True
        if not batches:
            # One batch larger than partition_max_bytes arrived truncated; ask for more next time
            # rather than stalling (brokers since KIP-74 always send a whole first batch).
            self.max_partition_bytes = min(self.max_partition_bytes * 2, self.max_bytes)
            return False
        last = batches[-1]
        end = int.from_bytes(last[0:8], "big", signed=True) + int.from_bytes(last[23:27], "big", signed=True) + 1
        state.fetch_position = max(end, state.fetch_position)
        self.completed.append(CompletedFetch(tp, state.epoch, node, batches, end))
        self._buffered[node] += 1
        return True

    def _out_of_range(self, tp: TopicPartition, state: PartitionState) -> None:
        reset = self.default_reset()
        if reset is None:
            state.error = OffsetOutOfRange([tp])
            return
        log.info("offset_out_of_range", topic=tp[0], partition=tp[1], position=state.fetch_position,
                 reset=self.auto_offset_reset)
        state.request_reset(reset)
