"""Everything the broker keeps under its data directory, opened and closed in one place.

``BrokerState.open(config, now_ms=…)`` is the one way a broker comes up: it checks the data
directory, takes its lock, and opens — in this order, each needing the one before —

* the **topics** and their partition logs (``topics.json``, ``<topic>-<n>/``; log recovery
  runs here: torn tails are cut, damage is logged);
* the **committed offsets** (``__consumer_offsets/``: snapshot + journal);
* the **group coordinator**, told which groups have commits so ListGroups knows them after a
  restart (group membership itself is not persisted, as in Kafka). In cluster mode the commits
  live in the replicated topic ``__consumer_offsets`` instead (docs/cluster.md#groups): the
  local store is opened but unused, and the coordinator starts with no groups;
* the **producer ids and idempotence tables** (``__producer_ids/``; each partition's table is
  rebuilt from its log's batch headers);
* the **pub/sub channels** of push mode (nothing on disk: Redis keeps none either).

Neither ``__consumer_offsets`` nor ``__producer_ids`` is a topic: ``topics.json`` never names
them, so the topic registry ignores them. ``close()`` flushes and closes it all and releases the
lock. Both front-ends receive the state they serve from here; neither opens files of its own.

Everything here is blocking (file reads, recovery, a few fsyncs): it runs once, at start-up
and at shutdown, before any connection is served or after the last one is gone.

The data directory lock: an exclusive ``flock`` on ``<data_dir>/.lock`` holding the owner's
pid. The kernel drops a flock when its process dies, so a crashed broker never leaves a stale
lock behind (unlike a lock *file* checked for existence); ``dualmq check`` takes the same lock
shared, so it never reads a directory a broker is repairing.
"""

from __future__ import annotations

import errno
import fcntl
import os
from pathlib import Path

import attrs

from broker.channels import PubSub
from broker.config import BrokerConfig
from broker.errors import DataDirError
from broker.groups import GroupCoordinator
from broker.log.check import LOCK_FILE
from broker.loggers import get_logger
from broker.offsets import OffsetStore
from broker.producers import ProducerIdManager, ProducerRegistry
from broker.topics import TopicRegistry

__all__ = ["BrokerState", "DataDirLock", "OFFSETS_DIR", "PRODUCER_IDS_DIR", "prepare_data_dir"]

log = get_logger(__name__)

OFFSETS_DIR = "__consumer_offsets"
PRODUCER_IDS_DIR = "__producer_ids"


class DataDirLock:
    """An exclusive ``flock`` on ``<data_dir>/.lock`` holding the owner's pid (see above)."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / LOCK_FILE
        self._fd: int | None = None

    def acquire(self) -> None:
        """Raises: DataDirError if another process holds the lock."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            owner = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise DataDirError(
                    f"data dir {self.path.parent} is in use by another broker (pid {owner}); "
                    "stop it or choose another --data-dir"
                ) from None
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing drops the flock
            self._fd = None


def prepare_data_dir(data_dir: Path) -> None:
    """Create the data dir if needed and prove it is writable.

    Raises:
        DataDirError: with a message saying what is wrong and where.
    """
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataDirError(f"cannot create data dir {data_dir}: {exc.strerror}") from None
    if not data_dir.is_dir():
        raise DataDirError(f"data dir {data_dir} exists but is not a directory")
    probe = data_dir / ".write-probe"
    try:
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise DataDirError(f"data dir {data_dir} is not writable: {exc.strerror}") from None


@attrs.define(eq=False)
class BrokerState:
    """All core state of one broker. Build it with :meth:`BrokerState.open`."""

    config: BrokerConfig
    topics: TopicRegistry
    offsets: OffsetStore
    groups: GroupCoordinator
    producers: ProducerRegistry
    pubsub: PubSub
    _lock: DataDirLock
    _closed: bool = False

    @classmethod
    def open(cls, config: BrokerConfig, *, now_ms: int) -> BrokerState:
        """Lock ``config.data_dir`` and open everything under it (see the module docstring).

        Args:
            config: the broker's configuration.
            now_ms: wall-clock time, for log recovery (segment ages).

        Raises:
            DataDirError: the data dir is missing and cannot be created, is not writable, is
                locked by another broker, or holds a damaged file (``DamagedFile``, naming it).
                Nothing stays open or locked then.
        """
        data_dir = Path(config.data_dir)
        prepare_data_dir(data_dir)
        lock = DataDirLock(data_dir)
        lock.acquire()
        topics: TopicRegistry | None = None
        offsets: OffsetStore | None = None
        try:
            topics = TopicRegistry.open(data_dir, config.log, now_ms=now_ms)
            offsets = OffsetStore.open(data_dir / OFFSETS_DIR)
            # In a cluster the groups' commits live in __consumer_offsets, not in this store
            # (docs/cluster.md#groups): its groups are learnt as their partitions load.
            groups = GroupCoordinator.from_config(
                config.kafka, existing_groups=() if config.cluster.enabled else offsets.groups())
            producers = ProducerRegistry(ProducerIdManager.open(data_dir / PRODUCER_IDS_DIR))
            producer_count = producers.rebuild_all(topics)
        except BaseException:
            # Close what was opened (their fsyncs included) before giving the directory back.
            try:
                if offsets is not None:
                    offsets.close()
                if topics is not None:
                    topics.close()
            finally:
                lock.release()
            raise
        log.info("broker_state_opened", data_dir=str(data_dir), topics=len(topics.topics()),
                 groups=len(offsets.groups()), producers=producer_count)
        return cls(config=config, topics=topics, offsets=offsets, groups=groups, producers=producers,
                   pubsub=PubSub(), lock=lock)

    def close(self) -> None:
        """Flush and close the offsets and every partition log, then release the data dir.

        Each step runs even if the one before failed (the lock is always released); the first
        error is raised at the end.

        Raises:
            OSError: the offsets' final flush failed. A partition log's failing final fsync is
                logged by the topic registry and does not stop the others.
        """
        if self._closed:
            return
        self._closed = True
        try:
            self.offsets.close()
        finally:
            try:
                self.topics.close()
            finally:
                self._lock.release()
