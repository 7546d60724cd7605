"""Group coordination in a cluster: committed offsets in the replicated ``__consumer_offsets``.

Kafka's design (docs/cluster.md#groups); the pure parts (partition of a group, record
encoding, the offsets a partition's records add up to) are ``broker/cluster/offsets_topic.py``.

* **The topic.** ``__consumer_offsets`` is created by the controller the first time a
  FindCoordinator needs it (:meth:`ClusterOffsets.find_coordinator`): ``[cluster]
  offsets_topic_num_partitions`` partitions, replication factor ``min(offsets_topic_replication_factor,
  live brokers)``, ``retention.ms`` from ``offsets_retention_minutes``. It replicates like any
  topic (``modes/cluster/replication.py``).
* **The coordinator** of a group is the leader of its partition. Group requests reaching
  another broker answer NOT_COORDINATOR (:meth:`ClusterOffsets.group_error`).
* **Commits** (:meth:`ClusterOffsets.commit`) are one record batch appended to the group's
  partition, answered once the high watermark passed it (every in-sync replica holds it, as
  a Produce with ``acks=all``), within ``offsets_commit_timeout_ms``; only then does this
  broker's memory change. Errors are Kafka's (``GroupMetadataManager``): no leadership any
  more or a disk error is NOT_COORDINATOR, too few in sync or a timeout COORDINATOR_NOT_AVAILABLE.
* **Loading.** Whenever this broker starts leading an offsets partition (topic creation, a
  restart, a leadership change in the etcd view, a new leader epoch) it reads the partition
  from its log start to its log end in a task and rebuilds the offsets; until done its groups
  answer COORDINATOR_LOAD_IN_PROGRESS. When it stops leading one, the offsets and the groups'
  membership go (members rejoin at the new coordinator: membership is not persisted).

Everything runs in the broker's one trio thread, between awaits.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import attrs
import trio

from broker.cluster.offsets_topic import (
    OFFSETS_TOPIC, Commit, OffsetRecordInvalid, PartitionOffsets, decode_key, decode_value, encode_key, encode_value,
    partition_for,
)
from broker.errors import BrokerError
from broker.groups import GroupCoordinator
from broker.loggers import get_logger
from broker.log.partition_log import PartitionLog
from broker.offsets import MAX_METADATA_BYTES, CommittedOffset
from broker.outcome import ErrorKind
from modes.cluster.etcd import EtcdError
from modes.pull.log_runtime import flush_log, wait_for_commit
from wire.kafka.batch import InvalidBatch, parse_header, split_batches
from wire.kafka.records import build_batch, decode_batch

if TYPE_CHECKING:
    from broker.cluster.model import BrokerInfo
    from modes.cluster.node import ClusterNode

log = get_logger(__name__)

# Read this much of the log per step while loading; the event loop runs between steps.
LOAD_CHUNK_BYTES = 1024 * 1024
# The view is re-checked at least this often (a partition whose local log was not open yet).
RECHECK_S = 1.0


@attrs.define(eq=False)
class _Led:
    """An offsets partition this broker leads, in one leader epoch."""

    epoch: int
    offsets: PartitionOffsets = attrs.field(factory=PartitionOffsets)
    loaded: bool = False


@attrs.define(eq=False)
class ClusterOffsets:
    """This broker's share of group coordination in a cluster."""

    node: ClusterNode
    groups: GroupCoordinator
    # Wake the requests the coordinator answered (JoinGroup / SyncGroup of unloaded groups).
    wake: Callable[[], None]
    fsync_always: bool = False
    _led: dict[int, _Led] = attrs.field(factory=dict)
    _nursery: trio.Nursery | None = None
    _creating: bool = False

    # --- which broker coordinates a group -----------------------------------------------

    def _assignment(self):
        return self.node.view.topics.get(OFFSETS_TOPIC)

    def partition_of(self, group_id: str) -> int | None:
        """The group's ``__consumer_offsets`` partition, None while the topic does not exist.
        The topic's own partition count decides (the config only sets it at creation)."""
        assignment = self._assignment()
        return None if assignment is None else partition_for(group_id, len(assignment.partitions))

    def find_coordinator(self, group_id: str) -> tuple[ErrorKind, BrokerInfo | None]:
        """FindCoordinator: the live leader of the group's partition, or COORDINATOR_NOT_AVAILABLE
        (no topic yet: its creation is started; or the partition has no live leader)."""
        index = self.partition_of(group_id)
        if index is None:
            self._create_topic()
            return ErrorKind.COORDINATOR_NOT_AVAILABLE, None
        leader = self._assignment().partitions[index].leader
        info = self.node.view.brokers.get(leader)
        if info is None:
            return ErrorKind.COORDINATOR_NOT_AVAILABLE, None
        return ErrorKind.NONE, info

    def group_error(self, group_id: str) -> ErrorKind:
        """Whether this broker serves the group's requests now: NONE, NOT_COORDINATOR
        (another broker leads its partition, or there is no topic yet) or
        COORDINATOR_LOAD_IN_PROGRESS (still reading the partition)."""
        index = self.partition_of(group_id)
        led = None if index is None else self._led.get(index)
        # A broker whose lease may have lapsed leads nothing (docs/cluster.md#failover).
        if led is None or not self.node.serving:
            return ErrorKind.NOT_COORDINATOR
        return ErrorKind.NONE if led.loaded else ErrorKind.COORDINATOR_LOAD_IN_PROGRESS

    def coordinates(self, group_id: str) -> bool:
        return self.group_error(group_id) is ErrorKind.NONE

    def loading(self) -> bool:
        return any(not led.loaded for led in self._led.values())

    # --- reading ------------------------------------------------------------------------

    def _offsets(self, group_id: str) -> PartitionOffsets:
        index = self.partition_of(group_id)
        led = None if index is None else self._led.get(index)
        return led.offsets if led is not None else PartitionOffsets()

    def fetch(self, group_id: str, topic: str, partition: int) -> CommittedOffset | None:
        return self._offsets(group_id).fetch(group_id, topic, partition)

    def fetch_all(self, group_id: str) -> dict[tuple[str, int], CommittedOffset]:
        return self._offsets(group_id).fetch_all(group_id)

    # --- writing ------------------------------------------------------------------------

    async def commit(self, group_id: str, commits: list[Commit], now_ms: int) -> dict[tuple[str, int], ErrorKind]:
        """Append the commits as records of the group's partition and wait until every in-sync
        replica holds them; then they are what OffsetFetch answers.

        Returns:
            Per (topic, partition): NONE, OFFSET_METADATA_TOO_LARGE (that one is not written), or
            the error of the whole write (NOT_COORDINATOR, COORDINATOR_LOAD_IN_PROGRESS,
            COORDINATOR_NOT_AVAILABLE).
        """
        results: dict[tuple[str, int], ErrorKind] = {}
        records = []
        for c in commits:
            if c.metadata is not None and len(c.metadata.encode()) > MAX_METADATA_BYTES:
                results[(c.topic, c.partition)] = ErrorKind.OFFSET_METADATA_TOO_LARGE
                continue
            value = CommittedOffset(c.offset, c.leader_epoch, c.metadata, now_ms)
            records.append((encode_key(group_id, c.topic, c.partition), encode_value(value)))
            results[(c.topic, c.partition)] = ErrorKind.NONE
        if records:
            error = await self._write(group_id, records, now_ms)
            for key, kind in results.items():
                if kind is ErrorKind.NONE:
                    results[key] = error
        return results

    async def delete_group(self, group_id: str, now_ms: int) -> ErrorKind:
        """A tombstone for every committed partition of the group (DeleteGroups), committed
        like a commit; NONE when the group had none."""
        keys = self._offsets(group_id).keys_of(group_id)
        if not keys:
            return self.group_error(group_id)
        return await self._write(group_id, [(encode_key(*key), None) for key in keys], now_ms)

    async def _write(self, group_id: str, records: list[tuple[bytes, bytes | None]], now_ms: int) -> ErrorKind:
        error = self.group_error(group_id)
        if error is not ErrorKind.NONE:
            return error
        index = self.partition_of(group_id)
        assert index is not None
        led = self._led[index]
        log_ = self._log(index)
        if log_ is None:
            return ErrorKind.NOT_COORDINATOR
        replication = self.node.replication
        topic = self.node.topics.get(OFFSETS_TOPIC)
        if topic is not None and replication.too_few_in_sync(OFFSETS_TOPIC, index, topic.config.min_insync_replicas):
            return ErrorKind.COORDINATOR_NOT_AVAILABLE
        batch = build_batch([(key, value, None) for key, value in records], base_timestamp=now_ms)
        try:
            base = log_.append(batch, now_ms, leader_epoch=led.epoch)
        except (BrokerError, OSError, ValueError) as exc:  # ValueError: an epoch below the log's
            log.error("offsets_commit_append_failed", partition=index, error=str(exc))
            return ErrorKind.NOT_COORDINATOR
        replication.appended(OFFSETS_TOPIC, index, log_)
        last = base + len(records) - 1
        if self.fsync_always:
            try:
                await flush_log(log_)
            except OSError as exc:
                log_.record_io_error("fsync", exc, now_ms)
                return ErrorKind.NOT_COORDINATOR
        deadline = trio.current_time() + self.node.config.offsets_commit_timeout_ms / 1000

        def leading() -> bool:
            return self._led.get(index) is led and self.node.leads(OFFSETS_TOPIC, index)

        await wait_for_commit(log_, last, deadline, leading)
        if not leading():
            # Leadership moved while we waited: the record may reach the new leader or be
            # truncated away; either way this broker answers for the group no more.
            return ErrorKind.NOT_COORDINATOR
        if log_.high_watermark <= last:
            return ErrorKind.COORDINATOR_NOT_AVAILABLE  # timed out (Kafka's mapping of it)
        for offset, (key, value) in enumerate(records, start=base):
            led.offsets.apply(offset, decode_key(key), decode_value(value))
        return ErrorKind.NONE

    # --- creating the topic -------------------------------------------------------------

    def _create_topic(self) -> None:
        """Have the controller create ``__consumer_offsets`` (once at a time, in the background)."""
        if self._creating or self._nursery is None:
            return
        self._creating = True
        self._nursery.start_soon(self._create_topic_task)

    async def _create_topic_task(self) -> None:
        config = self.node.config
        replication_factor = max(1, min(config.offsets_topic_replication_factor, len(self.node.view.brokers)))
        retention = config.offsets_retention_minutes
        overrides = {"retention.ms": str(-1 if retention == -1 else retention * 60_000)}
        try:
            if self.node.is_controller:
                await self.node.create_topic(OFFSETS_TOPIC, config.offsets_topic_num_partitions,
                                             replication_factor, overrides)
            else:
                await self.node.request_topic(OFFSETS_TOPIC, config.offsets_topic_num_partitions,
                                              replication_factor, overrides)
            log.info("offsets_topic_requested", partitions=config.offsets_topic_num_partitions,
                     replication_factor=replication_factor, controller=self.node.is_controller)
        except (BrokerError, EtcdError) as exc:  # it exists already, or the controller moved: asked again
            log.info("offsets_topic_not_created", error=str(exc))
        finally:
            self._creating = False

    # --- following leadership -----------------------------------------------------------

    async def run(self) -> None:
        """For ever: load the offsets partitions this broker starts leading, drop the ones it
        stops leading (after every change of the etcd view, and every ``RECHECK_S``)."""
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            while True:
                self._reconcile(nursery)
                await self.node.wait_for(self._out_of_date, RECHECK_S)

    def _log(self, index: int) -> PartitionLog | None:
        assignment = self._assignment()
        local = self.node.topics.get(OFFSETS_TOPIC)
        if assignment is None or local is None or local.topic_id != assignment.topic_id:
            return None
        return local.partitions[index] if index < len(local.partitions) else None

    def _wanted(self) -> dict[int, int]:
        """The offsets partitions this broker leads and whose logs are open here, with epochs."""
        assignment = self._assignment()
        if assignment is None:
            return {}
        return {index: state.leader_epoch for index, state in enumerate(assignment.partitions)
                if state.leader == self.node.node_id and self._log(index) is not None}

    def _out_of_date(self) -> bool:
        return self._wanted() != {index: led.epoch for index, led in self._led.items()}

    def _reconcile(self, nursery: trio.Nursery) -> None:
        wanted = self._wanted()
        for index, led in list(self._led.items()):
            if wanted.get(index) != led.epoch:
                del self._led[index]
                self._unload(index, led)
        for index, epoch in wanted.items():
            if index not in self._led:
                led = self._led[index] = _Led(epoch)
                nursery.start_soon(self._load, index, led)

    def _unload(self, index: int, led: _Led) -> None:
        dropped = [g.group_id for g in self.groups.list_groups() if self.partition_of(g.group_id) == index]
        self.groups.unload(dropped)
        self.wake()
        log.info("offsets_partition_unloaded", partition=index, epoch=led.epoch, groups=len(dropped))

    async def _load(self, index: int, led: _Led) -> None:
        """Read the partition from its start to its log end into ``led``; then serve it."""
        started = time.monotonic()
        records = skipped = 0
        log_ = self._log(index)
        if log_ is None:
            return
        end = log_.log_end_offset
        offset = log_.log_start_offset
        while offset < end:
            await trio.sleep(0)
            if self._led.get(index) is not led:
                return  # leadership moved on meanwhile
            try:
                data = log_.read(max(offset, log_.log_start_offset), LOAD_CHUNK_BYTES, to_log_end=True)
            except (BrokerError, OSError) as exc:
                log.error("offsets_load_failed", partition=index, offset=offset, error=str(exc))
                await trio.sleep(RECHECK_S)
                continue
            if not data:
                break
            for batch in split_batches(data):
                try:
                    decoded = decode_batch(batch)
                except InvalidBatch as exc:
                    log.error("offsets_batch_skipped", partition=index, offset=offset, error=str(exc))
                    decoded = []
                for record in decoded:
                    offset = max(offset, record.offset + 1)
                    if record.offset >= end:
                        continue
                    try:
                        led.offsets.apply(record.offset, decode_key(record.key), decode_value(record.value))
                        records += 1
                    except OffsetRecordInvalid as exc:
                        skipped += 1
                        log.error("offsets_record_skipped", partition=index, offset=record.offset, error=str(exc))
                offset = max(offset, parse_header(batch).next_offset)
        if self._led.get(index) is not led:
            return
        led.loaded = True
        self.groups.know_groups(led.offsets.groups())
        log.info("offsets_partition_loaded", partition=index, epoch=led.epoch, records=records, skipped=skipped,
                 committed=len(led.offsets), groups=len(led.offsets.groups()),
                 ms=round((time.monotonic() - started) * 1000, 1))
