"""Replication in a cluster: followers fetch from leaders, leaders keep the high watermark and ISR.

Kafka's design, on Kafka's own protocol (docs/cluster.md#replication):

* **Followers fetch.** For every broker that leads a partition this broker replicates, one
  fetcher task (in this runtime's nursery, under the daemon's) keeps a connection to it and
  sends Fetch v12 with ``replica_id`` = our node id and, per partition, ``fetch_offset`` = our
  log end. The answer's batches are appended verbatim at the leader's offsets
  (``PartitionLog.append_replica``) and its ``high_watermark`` becomes ours (capped at our log
  end). A failed connection or request is retried with a growing pause (``BACKOFF_*``); every
  wait has a deadline.
* **Leaders track followers.** The Fetch handler reports each replica fetch here
  (:meth:`Replication.follower_fetched`): the fetch offset is the follower's acknowledgement of
  everything below it (``broker.cluster.replication``). After every follower fetch and every
  append the leader moves the high watermark to the lowest log end over the ISR; consumers
  read only below it, ``acks=all`` producers wait for it.
* **ISR.** A task checks every led partition each half ``replica.lag.time.max.ms`` (and at once
  when a follower may rejoin): members not caught up for longer than that leave, caught-up
  followers rejoin. The new ISR is written to ``/dualmq/topics/<name>`` with a txn on the
  key's mod revision, after checking that this broker still leads the partition in the same
  leader epoch - a stale leader cannot overwrite the ISR - and retried when another leader
  wrote the same topic key in between.

Everything runs in the broker's one trio thread, between awaits, like the rest of its state.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import attrs
import trio

from broker.cluster.model import BrokerInfo, ClusterView, PartitionState, TopicAssignment, topic_key
from broker.cluster.replication import LeaderPartition, expand, shrink
from broker.config import ClusterConfig
from broker.errors import BrokerError
from broker.loggers import get_logger
from broker.log.partition_log import PartitionLog
from broker.producers import ProducerRegistry
from broker.topics import TopicRegistry
from modes.cluster.etcd import Compare, EtcdClient, EtcdError, put_op
from modes.cluster.peer import KafkaPeer, PeerClosed
from wire.errors import RemoteProtocolError
from wire.kafka.batch import InvalidBatch, parse_header, split_batches
from wire.kafka.errors import ErrorCode
from wire.kafka.messages.produce_fetch import FETCH, OFFSET_FOR_LEADER_EPOCH

log = get_logger(__name__)

FETCH_VERSION = 12
OFFSET_FOR_LEADER_EPOCH_VERSION = 3  # the first with replica_id
# A follower's fetch waits this long on the leader for new data (Kafka's replica.fetch.wait.max.ms).
FETCH_MAX_WAIT_MS = 500
FETCH_MAX_BYTES = 8 * 1024 * 1024        # Kafka's replica.fetch.response.max.bytes is 10 MiB
PARTITION_MAX_BYTES = 1024 * 1024        # Kafka's replica.fetch.max.bytes
CONNECT_TIMEOUT_S = 5.0
# A fetch answers within FETCH_MAX_WAIT_MS; this much more is allowed for the transfer.
REQUEST_SLACK_S = 10.0
BACKOFF_MIN_S = 0.1
BACKOFF_MAX_S = 2.0
ISR_WRITE_ATTEMPTS = 5

Key = tuple[str, int]


class Membership(Protocol):
    """What replication needs of ``ClusterNode`` (a protocol: no import cycle)."""

    config: ClusterConfig
    etcd: EtcdClient
    topics: TopicRegistry
    now_ms: Callable[[], int]
    producers: ProducerRegistry | None

    @property
    def view(self) -> ClusterView: ...

    @property
    def node_id(self) -> int: ...

    def applied_write(self, key: bytes, value: bytes, create_revision: int) -> None: ...

    def leads(self, topic: str, partition: int) -> bool: ...


@attrs.define(eq=False)
class Replication:
    """This broker's share of replication: the partitions it leads and those it follows."""

    node: Membership
    # The partitions this broker leads, with what it knows of their followers.
    leading: dict[Key, LeaderPartition] = attrs.field(factory=dict)
    _isr_wake: trio.Event = attrs.field(factory=trio.Event)
    _view_changed: trio.Event = attrs.field(factory=trio.Event)
    _fetchers: dict[int, trio.CancelScope] = attrs.field(factory=dict)
    # The last error each followed partition's fetch got: logged when it changes, not per fetch.
    _fetch_errors: dict[Key, int] = attrs.field(factory=dict)
    # Followed partitions whose log was checked against the leader's (OffsetForLeaderEpoch,
    # truncated where they diverge), with the leader epoch of that check: only those are fetched.
    _validated: dict[Key, int] = attrs.field(factory=dict)

    @property
    def node_id(self) -> int:
        return self.node.node_id

    # --- what the Kafka handlers call ---------------------------------------------------

    def partition(self, topic: str, index: int) -> PartitionState | None:
        assignment = self.node.view.topics.get(topic)
        if assignment is None or not 0 <= index < len(assignment.partitions):
            return None
        return assignment.partitions[index]

    def too_few_in_sync(self, topic: str, index: int, min_insync: int) -> bool:
        """Whether an ``acks=all`` write must be refused (NOT_ENOUGH_REPLICAS)."""
        state = self.partition(topic, index)
        return state is not None and len(state.isr) < min_insync

    def follower_fetched(self, topic: str, index: int, replica: int, fetch_offset: int, log_: PartitionLog) -> bool:
        """Record a replica fetch of a partition we lead; False if ``replica`` is none of its
        followers (or we do not lead it), and the fetch must be refused."""
        leading = self.leading.get((topic, index))
        state = self.partition(topic, index)
        if leading is None or state is None or replica not in state.replicas or replica == self.node_id \
                or not self.node.leads(topic, index):
            return False
        leading.record_fetch(replica, fetch_offset, log_.log_end_offset, self.node.now_ms())
        self._advance(leading, state, log_)
        if replica not in state.isr and leading.may_rejoin(replica, state.isr, log_.high_watermark):
            self._isr_wake.set()
        return True

    def appended(self, topic: str, index: int, log_: PartitionLog) -> None:
        """The leader appended: with an ISR of one, the high watermark follows the log end."""
        leading = self.leading.get((topic, index))
        state = self.partition(topic, index)
        if leading is not None and state is not None and self.node.leads(topic, index):
            self._advance(leading, state, log_)

    def _advance(self, leading: LeaderPartition, state: PartitionState, log_: PartitionLog) -> None:
        log_.advance_high_watermark(leading.high_watermark(state.isr, log_.log_end_offset))

    # --- following etcd -----------------------------------------------------------------

    def adopt(self, topic: TopicAssignment) -> None:
        """A topic was written in etcd: hand its logs' high watermarks to replication, start
        or stop leading its partitions, and let the fetchers look again."""
        local = self.node.topics.get(topic.name)
        if local is None or local.topic_id != topic.topic_id:
            return
        now = self.node.now_ms()
        for index, state in enumerate(topic.partitions):
            log_ = local.partitions[index]
            # From the checkpoint, not the log end: a tail this broker wrote (or copied) that was
            # never committed must not be served as committed after a restart. No checkpoint
            # (or a damaged one): the log start; the ISR's fetches move it up from there.
            if not log_.tracks_high_watermark:
                log_.track_high_watermark(log_.checkpointed_high_watermark or 0)
                log.info("high_watermark_started", topic=topic.name, partition=index,
                         high_watermark=log_.high_watermark, checkpoint=log_.checkpointed_high_watermark,
                         log_end_offset=log_.log_end_offset)
            key = (topic.name, index)
            if state.leader == self.node_id:
                leading = self.leading.get(key)
                if leading is None:
                    leading = self.leading[key] = LeaderPartition.begin(self.node_id, state.replicas, now)
                    self._validated.pop(key, None)
                    # Verbatim copies did not go through the idempotence table: rebuilt from the log.
                    if self.node.producers is not None:
                        self.node.producers.rebuild_partition(local, index)
                    log.info("partition_leading", topic=topic.name, partition=index, replicas=list(state.replicas),
                             isr=list(state.isr), high_watermark=log_.high_watermark)
                self._advance(leading, state, log_)
            else:
                self.leading.pop(key, None)
        self.view_changed()

    def view_changed(self) -> None:
        self._view_changed.set()
        self._view_changed = trio.Event()

    # --- the tasks ----------------------------------------------------------------------

    async def run(self) -> None:
        """The fetchers and the ISR check, until cancelled."""
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._maintain_isr)
            nursery.start_soon(self._supervise_fetchers, nursery)
            nursery.start_soon(self._checkpoint_high_watermarks)

    async def _checkpoint_high_watermarks(self) -> None:
        """Write every tracked high watermark that changed to its partition's checkpoint file,
        every ``high_watermark_checkpoint_interval_ms``. The write (two fsyncs) is done on the
        event loop: it is a few bytes per changed partition every few seconds."""
        interval_s = self.node.config.high_watermark_checkpoint_interval_ms / 1000
        while True:
            await trio.sleep(interval_s)
            self.checkpoint_high_watermarks()

    def checkpoint_high_watermarks(self) -> int:
        """One round of :meth:`_checkpoint_high_watermarks`; returns how many files were written."""
        written = 0
        for name in list(self.node.view.topics):
            local = self.node.topics.get(name)
            if local is None:
                continue
            for log_ in local.partitions:
                try:
                    written += log_.checkpoint_high_watermark()
                except OSError as exc:
                    log_.record_io_error("high watermark checkpoint", exc, self.node.now_ms())
        return written

    def _followed(self, leader: int) -> list[tuple[str, int, PartitionLog]]:
        """The partitions ``leader`` leads that this broker replicates, with our logs of them."""
        out = []
        for name, assignment in self.node.view.topics.items():
            local = self.node.topics.get(name)
            if local is None or local.topic_id != assignment.topic_id:
                continue
            for index, state in enumerate(assignment.partitions):
                if state.leader == leader and leader != self.node_id and self.node_id in state.replicas:
                    out.append((name, index, local.partitions[index]))
        return out

    def _followed_leaders(self) -> set[int]:
        view = self.node.view
        leaders = set()
        for assignment in view.topics.values():
            for state in assignment.partitions:
                if state.leader != self.node_id and state.leader in view.brokers and self.node_id in state.replicas:
                    leaders.add(state.leader)
        return leaders

    async def _supervise_fetchers(self, nursery: trio.Nursery) -> None:
        """One fetcher per leader we follow; started and cancelled as the view changes."""
        while True:
            changed = self._view_changed
            wanted = self._followed_leaders()
            for leader in wanted - self._fetchers.keys():
                scope = self._fetchers[leader] = trio.CancelScope()
                nursery.start_soon(self._fetch_from, leader, scope)
            for leader in self._fetchers.keys() - wanted:
                self._fetchers.pop(leader).cancel()
            await changed.wait()

    async def _fetch_from(self, leader: int, scope: trio.CancelScope) -> None:
        """Fetch from ``leader`` for ever: connect, fetch, append; on failure pause and retry
        (the pause doubles with each failure in a row, up to ``BACKOFF_MAX_S``)."""
        failures = [0]
        with scope:
            while True:
                info = self.node.view.brokers.get(leader)
                if info is not None:
                    try:
                        await self._fetch_session(leader, info, failures)
                    except (OSError, trio.TooSlowError, trio.BrokenResourceError, PeerClosed,
                            RemoteProtocolError) as exc:
                        failures[0] += 1
                        if failures[0] == 1 or failures[0] % 50 == 0:
                            log.warning("replica_fetch_failed", leader=leader, failures=failures[0],
                                        error=str(exc) or type(exc).__name__)
                await trio.sleep(min(BACKOFF_MAX_S, BACKOFF_MIN_S * 2 ** min(failures[0], 5)))

    async def _fetch_session(self, leader: int, info: BrokerInfo, failures: list[int]) -> None:
        """One connection to ``leader``, fetching until it fails or nothing is left to follow."""
        with trio.fail_after(CONNECT_TIMEOUT_S):
            stream = await trio.open_tcp_stream(info.host, info.kafka_port)
        async with stream:
            peer = KafkaPeer(stream, max_response_bytes=FETCH_MAX_BYTES + PARTITION_MAX_BYTES + 65536)
            log.info("replica_fetcher_connected", leader=leader, address=f"{info.host}:{info.kafka_port}")
            while True:
                followed = self._followed(leader)
                if not followed:
                    return
                unchecked = [f for f in followed if self._validated.get(f[:2]) != self._epoch(*f[:2])]
                if unchecked:
                    await self._truncate_diverged(peer, leader, unchecked)
                    failures[0] = 0
                followed = [f for f in followed if self._validated.get(f[:2]) == self._epoch(*f[:2])]
                if not followed:
                    await trio.sleep(BACKOFF_MIN_S)  # the leader could not answer yet: ask again
                    continue
                response = await peer.call(FETCH, FETCH_VERSION, self._fetch_request(followed),
                                           timeout=FETCH_MAX_WAIT_MS / 1000 + REQUEST_SLACK_S)
                failures[0] = 0
                if not self._apply_fetch(leader, followed, response):
                    await trio.sleep(BACKOFF_MIN_S)  # partition errors: do not spin on them

    def _epoch(self, topic: str, index: int) -> int:
        state = self.partition(topic, index)
        return -1 if state is None else state.leader_epoch

    async def _truncate_diverged(self, peer: KafkaPeer, leader: int,
                                 unchecked: list[tuple[str, int, PartitionLog]]) -> None:
        """Before fetching from a leader in a new epoch: ask it where our latest epoch ends in
        its log (OffsetForLeaderEpoch) and cut our log there - the tail a former leader (we,
        perhaps) wrote that the new leader never had. Kafka's follower does the same (KIP-101,
        KIP-279). The idempotent producers' table is rebuilt from what is left."""
        topics: dict[str, list[dict]] = {}
        asked: dict[Key, int] = {}
        for name, index, log_ in unchecked:
            epoch = self._epoch(name, index)
            if log_.latest_epoch < 0:  # an empty log cannot have diverged
                self._validated[(name, index)] = epoch
                continue
            asked[(name, index)] = epoch
            topics.setdefault(name, []).append({"partition": index, "current_leader_epoch": epoch,
                                                "leader_epoch": log_.latest_epoch})
        if not topics:
            return
        response = await peer.call(OFFSET_FOR_LEADER_EPOCH, OFFSET_FOR_LEADER_EPOCH_VERSION, {
            "replica_id": self.node_id, "topics": [{"topic": n, "partitions": p} for n, p in topics.items()]},
            timeout=REQUEST_SLACK_S)
        logs = {(name, index): log_ for name, index, log_ in unchecked}
        for topic in response["topics"]:
            for part in topic["partitions"]:
                key = (topic["topic"], part["partition"])
                log_ = logs.get(key)
                if log_ is None or key not in asked:
                    continue
                if part["error_code"] != ErrorCode.NONE:
                    log.info("replica_epoch_check_refused", leader=leader, topic=key[0], partition=key[1],
                             error=_code_name(part["error_code"]))
                    continue
                if not self._truncate(leader, key, log_, part["leader_epoch"], part["end_offset"]):
                    continue
                if asked[key] == self._epoch(*key):
                    self._validated[key] = asked[key]

    def _truncate(self, leader: int, key: Key, log_: PartitionLog, leader_epoch: int, end_offset: int) -> bool:
        """Cut ``log_`` where the leader says our latest epoch ends; False if that failed."""
        if leader_epoch < 0:
            # The leader holds no epoch as old as ours: Kafka's fallback is the high watermark.
            target = log_.high_watermark
        else:
            # The leader's answer, and no further than where *our* records of that epoch end
            # (when it answered an older epoch than we asked).
            target = min(end_offset, log_.end_offset_for_epoch(leader_epoch)[1])
        target = max(target, log_.log_start_offset)
        if target >= log_.log_end_offset:
            return True
        previous = log_.log_end_offset
        try:
            log_.truncate_to(target)
        except (BrokerError, OSError) as exc:
            if isinstance(exc, OSError):
                log_.record_io_error("truncate", exc, self.node.now_ms())
            log.error("replica_truncate_failed", leader=leader, topic=key[0], partition=key[1], error=str(exc))
            return False
        log.warning("replica_truncated", leader=leader, topic=key[0], partition=key[1], offset=target,
                    previous_log_end_offset=previous, leader_epoch=leader_epoch)
        if self.node.producers is not None and (local := self.node.topics.get(key[0])) is not None:
            self.node.producers.rebuild_partition(local, key[1])
        return True

    def _fetch_request(self, followed: list[tuple[str, int, PartitionLog]]) -> dict:
        topics: dict[str, list[dict]] = {}
        for name, index, log_ in followed:
            state = self.partition(name, index)
            topics.setdefault(name, []).append({
                "partition": index, "fetch_offset": log_.log_end_offset, "partition_max_bytes": PARTITION_MAX_BYTES,
                # The leader refuses a fetch from another epoch than its own (FENCED_LEADER_EPOCH
                # / UNKNOWN_LEADER_EPOCH): nothing is copied across a change of leader unchecked.
                "current_leader_epoch": state.leader_epoch if state is not None else -1,
                "log_start_offset": log_.log_start_offset, "last_fetched_epoch": -1})
        return {"replica_id": self.node_id, "max_wait_ms": FETCH_MAX_WAIT_MS, "min_bytes": 1,
                "max_bytes": FETCH_MAX_BYTES, "isolation_level": 0, "session_id": 0, "session_epoch": -1,
                "forgotten_topics_data": [], "rack_id": "",
                "topics": [{"topic": name, "partitions": parts} for name, parts in topics.items()]}

    def _apply_fetch(self, leader: int, followed: list[tuple[str, int, PartitionLog]], response: dict) -> bool:
        """Append what the leader sent; returns False when some partition had an error."""
        logs = {(name, index): log_ for name, index, log_ in followed}
        clean = response.get("error_code", 0) == ErrorCode.NONE
        now = self.node.now_ms()
        for topic in response["responses"]:
            for part in topic["partitions"]:
                log_ = logs.get((topic["topic"], part["partition_index"]))
                if log_ is None:
                    continue
                code = part["error_code"]
                key = (topic["topic"], part["partition_index"])
                if self._fetch_errors.get(key, ErrorCode.NONE) != code:
                    self._fetch_errors[key] = code
                    log.warning("replica_fetch_refused" if code else "replica_fetch_resumed", leader=leader,
                                topic=key[0], partition=key[1], error=_code_name(code),
                                log_end_offset=log_.log_end_offset)
                if code != ErrorCode.NONE:
                    clean = False
                    if code == ErrorCode.OFFSET_OUT_OF_RANGE:
                        self._validated.pop(key, None)  # ahead of the leader: check where we diverge
                    continue
                if part["records"] and not self._append(leader, topic["topic"], part["partition_index"], log_,
                                                        part["records"], now):
                    clean = False
                log_.advance_high_watermark(part["high_watermark"])
        return clean

    def _append(self, leader: int, topic: str, index: int, log_: PartitionLog, records, now: int) -> bool:
        try:
            for batch in split_batches(records):  # a truncated last batch is dropped, as clients do
                header = parse_header(batch)
                if header.base_offset + header.last_offset_delta < log_.log_end_offset:
                    continue  # held already
                log_.append_replica(batch, now)
        except (InvalidBatch, BrokerError, OSError, ValueError) as exc:
            # ValueError: a batch of an older epoch than our log's latest (we have not
            # truncated against this leader yet): check again where we diverge.
            self._validated.pop((topic, index), None)
            log.error("replica_append_failed", leader=leader, topic=topic, partition=index, error=str(exc),
                      log_end_offset=log_.log_end_offset)
            return False
        return True

    async def _maintain_isr(self) -> None:
        """Shrink and expand the ISR of the partitions we lead, every half lag time or when woken."""
        lag_ms = self.node.config.replica_lag_time_max_ms
        while True:
            with trio.move_on_after(lag_ms / 2000):
                await self._isr_wake.wait()
            self._isr_wake = trio.Event()
            now = self.node.now_ms()
            for key, leading in list(self.leading.items()):
                state = self.partition(*key)
                local = self.node.topics.get(key[0])
                if state is None or not self.node.leads(*key) or local is None:
                    continue
                log_ = local.partitions[key[1]]
                lagging = leading.lagging(state.isr, now, lag_ms)
                isr = shrink(state.isr, lagging)
                for replica in state.replicas:
                    if replica not in lagging and leading.may_rejoin(replica, isr, log_.high_watermark) \
                            and now - leading.followers[replica].caught_up_ms <= lag_ms:
                        isr = expand(isr, replica, state.replicas)
                if isr != state.isr:
                    await self._write_isr(key, state, isr)
                    if key in self.leading and (state := self.partition(*key)) is not None:
                        self._advance(self.leading[key], state, log_)

    async def _write_isr(self, key: Key, state: PartitionState, isr: tuple[int, ...]) -> None:
        """Write a partition's new ISR, fenced on our leadership and epoch and the key's revision."""
        name, index = key
        etcd_key = topic_key(name)
        for _ in range(ISR_WRITE_ATTEMPTS):
            try:
                kvs, _ = await self.node.etcd.range(etcd_key)
                if not kvs:
                    return
                current = TopicAssignment.from_json(kvs[0].value)
                updated = current.with_isr(index, isr, leader=self.node_id, leader_epoch=state.leader_epoch)
                if updated is None:
                    log.warning("isr_change_abandoned", topic=name, partition=index,
                                reason="no longer the leader in this epoch")
                    return
                value = updated.to_json()
                done = await self.node.etcd.txn([Compare(etcd_key, "MOD", kvs[0].mod_revision)],
                                                [put_op(etcd_key, value)])
            except (EtcdError, BrokerError) as exc:
                log.warning("isr_change_failed", topic=name, partition=index, error=str(exc))
                return
            if done.succeeded:
                self.node.applied_write(etcd_key, value, kvs[0].create_revision)
                log.info("isr_shrunk" if len(isr) < len(state.isr) else "isr_expanded", topic=name,
                         partition=index, old_isr=list(state.isr), isr=list(isr))
                return
        log.warning("isr_change_failed", topic=name, partition=index, error="the topic key kept changing")


def _code_name(code: int) -> str:
    try:
        return ErrorCode(code).name
    except ValueError:
        return str(code)
