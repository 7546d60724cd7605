"""``PartitionLog``: one partition's retained, segmented, append-only log of record batches.

This is the storage behind Kafka's Produce and Fetch, in our own terms:

* **append** assigns offsets. A batch's ``baseOffset`` becomes the log end offset, the log end
  moves past its ``lastOffsetDelta``; the bytes are stored exactly as sent, only
  ``baseOffset``/``partitionLeaderEpoch`` (outside the CRC) are stamped. The epoch is the
  leader's (``leader_epoch``, 0 on a single broker); the **leader-epoch cache** (``epochs.py``)
  records where each epoch starts and answers OffsetForLeaderEpoch
  (:meth:`PartitionLog.end_offset_for_epoch`).
* **truncate_to** cuts the log's tail (a follower whose log diverged from its new leader's):
  whole batches, durably, the epoch cache and high watermark following.
* **read** serves whole batches from the one that *contains* the wanted offset (consumers skip
  the records before it themselves) and always returns at least one batch, however large —
  otherwise a consumer whose limit is smaller than a batch would stall forever (KIP-74).
* The **high watermark** equals the log end offset on a single broker: with no replication,
  a batch is "committed" as soon as it is appended. In a cluster the replication runtime takes
  it over (:meth:`PartitionLog.track_high_watermark`) and moves it as the in-sync replicas
  catch up (docs/cluster.md); consumers then read only below it, followers up to the log end,
  and a follower's log takes the leader's batches verbatim at their offsets
  (:meth:`PartitionLog.append_replica`). Durability is a separate axis, chosen by the
  ``fsync`` policy (``always`` / ``interval`` / ``never``) and tracked as ``flushed_offset``.
* **Segments** roll by size (``segment_bytes``) and age (``segment_ms``); **retention** deletes
  whole closed segments by age (``retention_ms``, judged by the newest timestamp inside) and by
  total size (``retention_bytes``). The log start offset is the first remaining segment's base.

Every segment is verified at open, batch by batch (``verify.py``, ``recovery.py``): what is
served has been checked — offsets, lengths, CRC — and damage is cut off, logged, before anyone
reads. Only the active segment keeps its files open; sealed ones read through the broker's
shared, bounded cache of open files (``file_cache.py``), so a partition may retain any number
of segments under a small open-file limit.

I/O errors (disk full, a failing disk, no descriptor left) propagate as ``OSError`` naming the
file; they are counted per partition and for the broker (``storage.py``) and logged
rate-limited. Methods that take ``now_ms`` (``append``, ``roll_if_aged``,
``apply_retention``) record their errors themselves; for the others (``read``, ``flush``…)
the caller, which owns the clock, calls :meth:`PartitionLog.record_io_error`.

No clock is read here (every time-dependent call takes ``now_ms`` from its caller), nothing
here awaits and no thread ever touches a log. The two things a front-end waits for are offered
the way the group coordinator offers its answers, as tickets it awaits on its own terms
(``tickets.py``):

* **new data** (long-polling fetches): :meth:`PartitionLog.watch` registers a
  :class:`DataTicket`; the append that moves the high watermark past its offset (or the
  close of the log) marks it ``done`` and calls the ticket's ``wake`` — a plain function the
  front-end supplied (pull mode passes a trio ``Event.set``). The log never waits itself.
* **an fsync** off the event loop: :meth:`PartitionLog.begin_flush` returns a
  :class:`FlushJob` — duplicated descriptors and the offset they will cover — whose
  :meth:`FlushJob.fsync` touches no log state, so the front-end may run it in a worker thread;
  back in the log's thread it calls :meth:`PartitionLog.finish_flush` to move
  ``flushed_offset``. ``flush_sync`` does all three at once, blocking (close, tests, benches).
"""

from __future__ import annotations

import bisect
import struct
from collections.abc import Callable, Iterator
from pathlib import Path

import attrs

from broker.config import LogConfig
from broker.errors import OffsetOutOfRange, ReplicaOffsetMismatch
from broker.log.epochs import LeaderEpochCache
from broker.log.hw_checkpoint import read_high_watermark, write_high_watermark
from broker.log.recovery import recover_partition
from broker.log.segment import Segment
from broker.log.storage import LogStorage
from broker.log.tickets import DataTicket, FlushJob
from wire.kafka.batch import LOG_OVERHEAD, BatchHeader, patched_prefix
from wire.kafka.batch import validate as validate_batch
from broker.loggers import get_logger

log = get_logger(__name__)

# Relative offsets in the index are int32: a segment may not span more offsets than that.
_MAX_RELATIVE_OFFSET = 2**31 - 1
# A batch's first two fields: baseOffset (int64) and batchLength (int32).
_OFFSET_AND_LENGTH = struct.Struct(">qi")


@attrs.frozen(kw_only=True)
class LogStatistics:
    """A snapshot of one partition log, for stats, INFO/CLI output and tests."""

    log_start_offset: int
    high_watermark: int
    flushed_offset: int
    size_bytes: int
    unflushed_bytes: int
    segment_count: int
    active_segment_base_offset: int
    fsync: str
    # I/O errors this partition's log has met (disk full, read errors…) since it was opened.
    io_errors: int
    # Batches appended and reads served (fetches, one per partition read) since it was opened.
    appends: int = 0
    reads: int = 0


# Left in a partition directory by a close that flushed everything (Kafka has one such file per
# log directory, ``.kafka_cleanshutdown``). It lets the next open skip fsyncing every segment.
CLEAN_SHUTDOWN_MARKER = ".clean-shutdown"


def _take_clean_shutdown_marker(directory: Path) -> bool:
    """Remove the marker; return whether it was there."""
    try:
        (directory / CLEAN_SHUTDOWN_MARKER).unlink()
    except FileNotFoundError:
        return False
    return True


def _leave_clean_shutdown_marker(directory: Path) -> None:
    # Not fsynced, and losing it is harmless: the marker only matters after a *process* crash
    # (whose page cache survives, so its unlink and creation are seen by the next process); if a
    # power loss drops it, the next start merely fsyncs every segment again.
    try:
        (directory / CLEAN_SHUTDOWN_MARKER).touch()
    except OSError:
        pass  # the directory was removed (topic deleted) or is read-only: the next start fsyncs


@attrs.define(eq=False)
class PartitionLog:
    """One partition's log. Build it with :meth:`PartitionLog.open`."""

    directory: Path
    config: LogConfig
    _segments: list[Segment]
    # Base offsets of ``_segments``, kept in step, for bisect.
    _bases: list[int]
    _size_bytes: int
    _flushed_offset: int
    # The broker's shared file cache and I/O error reporter.
    storage: LogStorage
    # Where each leader epoch starts in this log (persisted as ``leader-epoch-checkpoint``).
    _epochs: LeaderEpochCache
    _io_errors: int = 0
    # Batches appended and reads served since this log was opened (metrics: the append and
    # fetch rates). Plain integers, incremented on the append and read paths.
    _appends: int = 0
    _reads: int = 0
    # Tickets of long-polling fetches (see ``watch``): an append with nobody waiting costs one
    # truth test of this list.
    _watchers: list[DataTicket] = attrs.field(factory=list)
    # How many times ``truncate_to`` cut this log: a flush job made before a cut must not
    # mark as flushed what was written at the same positions after it.
    _truncations: int = 0
    _closed: bool = False
    # None: the high watermark is the log end (a single broker). Otherwise the offset below
    # which the in-sync replicas all hold the data, moved by the cluster's replication runtime.
    _high_watermark: int | None = None
    # The value last read from or written to ``high-watermark-checkpoint`` (None: no file, or
    # a damaged one). A tracked high watermark starts from it in a cluster; a checkpoint is
    # written only when the high watermark differs from it.
    _checkpointed: int | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    @classmethod
    def open(cls, directory: Path, config: LogConfig, *, now_ms: int, storage: LogStorage | None = None) -> PartitionLog:
        """Open (creating if needed) the log in ``directory``, running crash recovery.

        Args:
            directory: the partition directory.
            config: the topic's log settings.
            now_ms: broker time.
            storage: the broker's shared file cache and error reporter; a private one if None
                (a log opened on its own, as tests and benchmarks do).

        Raises:
            OSError: the directory cannot be created or read, or a repair failed.
        """
        directory = Path(directory)
        if storage is None:
            storage = LogStorage.from_config(config.max_open_segment_files)
        # After a clean shutdown everything was flushed; after a crash, recovery fsyncs every
        # .log it keeps. Either way what is on disk now is durable, so
        # ``flushed_offset = high_watermark`` is true from the start. The marker is removed
        # first: if this process crashes, the next start must not skip the fsyncs.
        clean = _take_clean_shutdown_marker(directory)
        segments, epoch_starts = recover_partition(directory, config.index_interval_bytes, now_ms=now_ms,
                                                   files=storage.files, fsync=not clean)
        epochs = LeaderEpochCache.load(directory, epoch_starts)
        segments[-1].activate()
        hw = segments[-1].next_offset
        self = cls(
            directory=directory,
            config=config,
            segments=segments,
            bases=[s.base_offset for s in segments],
            size_bytes=sum(s.size for s in segments),
            flushed_offset=hw,
            storage=storage,
            epochs=epochs,
            checkpointed=read_high_watermark(directory),
        )
        log.debug("partition_log_opened", directory=str(directory), log_start_offset=self.log_start_offset,
                  high_watermark=hw, segments=len(segments))
        return self

    def close(self) -> None:
        """Flush (whatever the fsync policy: a clean stop loses nothing) and close every file.

        Raises:
            OSError: the final fsync failed (the files are closed all the same).
        """
        if self._closed:
            return
        try:
            self.flush_sync()
        finally:
            for segment in self._segments:
                segment.close()
            self._closed = True
            # Wake long-polling fetches so they notice instead of sleeping until their deadline.
            self._complete_watchers()
        # Only reached when the flush succeeded: every byte is durable.
        _leave_clean_shutdown_marker(self.directory)
        # A clean stop records the high watermark it reached (Kafka does the same).
        try:
            self.checkpoint_high_watermark()
        except OSError as exc:  # a deleted topic's directory, a full disk: the periodic one stands
            log.warning("high_watermark_checkpoint_failed", directory=str(self.directory), error=str(exc))

    # -- properties --------------------------------------------------------------------------

    @property
    def log_start_offset(self) -> int:
        return self._segments[0].base_offset

    @property
    def log_end_offset(self) -> int:
        """The offset the next appended record will get."""
        return self._segments[-1].next_offset

    @property
    def high_watermark(self) -> int:
        """The offset below which records are committed and served to consumers: the log end
        offset, unless :meth:`track_high_watermark` handed it to the replication runtime."""
        if self._high_watermark is None:
            return self._segments[-1].next_offset
        return self._high_watermark

    @property
    def tracks_high_watermark(self) -> bool:
        return self._high_watermark is not None

    def track_high_watermark(self, start: int | None = None) -> None:
        """Stop equating the high watermark with the log end: from now on it moves only by
        :meth:`advance_high_watermark` (replication). It starts at ``start`` capped to
        [log start, log end]; None means the log end (everything on disk taken as committed —
        tests and tools; the cluster passes :attr:`checkpointed_high_watermark`). A log that
        already tracks it is left alone."""
        if self._high_watermark is None:
            end = self.log_end_offset
            self._high_watermark = end if start is None else max(self.log_start_offset, min(start, end))

    @property
    def checkpointed_high_watermark(self) -> int | None:
        """The high watermark in this partition's checkpoint file (read at open, or last
        written); None when there is none or it was damaged."""
        return self._checkpointed

    def checkpoint_high_watermark(self) -> bool:
        """Write the tracked high watermark to ``high-watermark-checkpoint`` if it changed
        since the last write (or read). Nothing for an untracked one (a single broker).

        Returns:
            Whether a file was written.
        Raises:
            OSError: the write failed (the old checkpoint stays; the next call tries again).
        """
        hw = self._high_watermark
        if hw is None or hw == self._checkpointed:
            return False
        write_high_watermark(self.directory, hw)
        self._checkpointed = hw
        return True

    def advance_high_watermark(self, offset: int) -> bool:
        """Move a tracked high watermark forward to ``offset`` (capped at the log end; an
        offset at or below the current one changes nothing) and wake the waits it satisfies.

        Returns:
            Whether it moved.
        """
        current = self._high_watermark
        if current is None:
            return False
        offset = min(offset, self.log_end_offset)
        if offset <= current:
            return False
        self._high_watermark = offset
        if self._watchers:
            self._complete_watchers()
        return True

    @property
    def size_bytes(self) -> int:
        return self._size_bytes

    @property
    def segment_count(self) -> int:
        return len(self._segments)

    @property
    def flushed_offset(self) -> int:
        """Every batch below this offset has been fsync'd."""
        return self._flushed_offset

    @property
    def has_unflushed(self) -> bool:
        return self._flushed_offset < self.log_end_offset

    def statistics(self) -> LogStatistics:
        return LogStatistics(
            log_start_offset=self.log_start_offset,
            high_watermark=self.high_watermark,
            flushed_offset=self._flushed_offset,
            size_bytes=self._size_bytes,
            unflushed_bytes=sum(s.size - s.flushed_size for s in self._segments),
            segment_count=len(self._segments),
            active_segment_base_offset=self._segments[-1].base_offset,
            fsync=self.config.fsync,
            io_errors=self._io_errors,
            appends=self._appends,
            reads=self._reads,
        )

    @property
    def io_errors(self) -> int:
        """How many I/O errors this log has met since it was opened."""
        return self._io_errors

    def record_io_error(self, operation: str, error: OSError, now_ms: int) -> None:
        """Count an I/O error of this log and log it, rate-limited broker-wide.

        For callers of the methods that take no ``now_ms`` (``read``, ``flush``…): they catch
        the ``OSError`` (which names the file) and report it here with their clock.

        Args:
            operation: what failed (``"read"``, ``"fsync"``…), for the log line.
            error: the exception.
            now_ms: the caller's clock, for the rate limit.
        """
        self._io_errors += 1
        self.storage.io_errors.record(operation, error, now_ms, path=self.directory)

    # -- append ------------------------------------------------------------------------------

    def validate(self, batch: bytes | bytearray | memoryview) -> BatchHeader:
        """Check that ``batch`` is one whole, intact RecordBatch v2 this log accepts.

        For callers that need the header before appending (Produce checks the producer's
        sequence first); they hand it to :meth:`append` so the batch is parsed once.

        Raises:
            CorruptBatch, UnsupportedBatchFormat: the batch is malformed.
            BatchTooLarge: larger than this log's ``max_message_bytes``.
        """
        return validate_batch(batch, self.config.max_message_bytes)

    def append(self, batch: bytes | bytearray | memoryview, now_ms: int, *,
               validated: BatchHeader | None = None, leader_epoch: int = 0) -> int:
        """Append one RecordBatch v2, assigning its offsets.

        With ``fsync = "always"`` the caller must flush (``begin_flush`` … ``finish_flush``, or
        ``flush_sync``) before acknowledging.

        Args:
            batch: exactly one batch, as the producer sent it.
            now_ms: broker time, for segment age.
            validated: what :meth:`validate` returned for these very bytes, if the caller
                called it already; the batch is validated here otherwise.
            leader_epoch: the epoch of the leader appending (stamped as
                ``partitionLeaderEpoch``); a new one is recorded in the epoch cache as
                starting at this batch.

        Returns:
            The base offset assigned to the batch.

        Raises:
            ValueError: ``leader_epoch`` is negative or below :attr:`latest_epoch` — a caller
                bug (a stale leader); the log is unchanged.
            CorruptBatch, UnsupportedBatchFormat: the batch is malformed (the log is unchanged).
            BatchTooLarge: larger than ``max_message_bytes`` (the log is unchanged).
            OSError: the write failed (the partial write is cut off; the log is unchanged).
        """
        self._epochs.check_epoch(leader_epoch)
        header = validated if validated is not None else validate_batch(batch, self.config.max_message_bytes)
        view = memoryview(batch)
        offset = self.log_end_offset
        self._write([patched_prefix(view, offset, leader_epoch), view[16:]], header, offset, now_ms, leader_epoch)
        return offset

    def append_replica(self, batch: bytes | bytearray | memoryview, now_ms: int) -> BatchHeader:
        """Append one batch copied from the partition's leader, byte for byte, at the offsets
        the leader gave it (a follower's log is the leader's, offset for offset).

        The leader's ``partitionLeaderEpoch`` is kept and recorded in the epoch cache as
        :meth:`append` records its own, so a follower's cache mirrors its leader's.

        Returns:
            The batch's header.

        Raises:
            ReplicaOffsetMismatch: the batch does not start at this log's end (a gap, or data
                this log holds already): the log is unchanged.
            ValueError: the batch's epoch is below :attr:`latest_epoch` (the follower did not
                truncate before fetching from a new leader): the log is unchanged.
            CorruptBatch, UnsupportedBatchFormat, BatchTooLarge: as :meth:`append`.
            OSError: as :meth:`append`.
        """
        header = validate_batch(batch, self.config.max_message_bytes)
        offset = self.log_end_offset
        if header.base_offset != offset:
            raise ReplicaOffsetMismatch(
                f"replicated batch at offset {header.base_offset}, but this log ends at {offset}")
        epoch = header.partition_leader_epoch
        self._epochs.check_epoch(epoch)
        self._write([batch], header, offset, now_ms, epoch)
        return header

    def _write(self, parts: list, header: BatchHeader, offset: int, now_ms: int, epoch: int) -> None:
        """Write one batch (``parts`` joined) at ``offset``, the log end, rolling first if due,
        and record ``epoch`` in the epoch cache if it is new."""
        size = header.batch_length + LOG_OVERHEAD
        active = self._segments[-1]
        try:
            if not active.is_empty and (
                active.size + size > self.config.segment_bytes
                or self._aged(active, now_ms)
                or offset + header.last_offset_delta - active.base_offset > _MAX_RELATIVE_OFFSET
            ):
                active = self._roll(now_ms, reason="size" if active.size + size > self.config.segment_bytes else "age")
            index_error = active.append(parts, header, offset, self.config.index_interval_bytes, now_ms)
        except OSError as exc:
            self.record_io_error("append", exc, now_ms)
            raise
        if index_error is not None:
            # The batch is stored; only its index entry is missing from the file (rebuilt at
            # the next start). Worth knowing — the disk is failing or full — not worth failing.
            self.record_io_error("index write", index_error, now_ms)
        self._size_bytes += size
        self._appends += 1
        if epoch != self._epochs.latest_epoch:
            try:
                self._epochs.assign(epoch, offset)
            except OSError as exc:
                # The batch is stored and the cache in memory is right; only the checkpoint
                # file lags, and the next open rebuilds it from the batches.
                self.record_io_error("leader epoch checkpoint", exc, now_ms)
        if self._watchers:
            self._complete_watchers()

    def _aged(self, segment: Segment, now_ms: int) -> bool:
        return segment.rolling_timestamp is not None and now_ms - segment.rolling_timestamp >= self.config.segment_ms

    def _roll(self, now_ms: int, *, reason: str) -> Segment:
        """Start a new active segment at the log end and seal the old one.

        Raises:
            OSError: the new segment's files could not be created; the old one stays active.
        """
        old = self._segments[-1]
        new = Segment.open_files(self.directory, old.next_offset, now_ms=now_ms, files=self.storage.files)
        self._segments.append(new)
        self._bases.append(new.base_offset)
        old.seal()
        log.info("segment_rolled", directory=str(self.directory), base_offset=new.base_offset,
                 previous_size=old.size, reason=reason)
        return new

    def roll_if_aged(self, now_ms: int) -> bool:
        """Roll the active segment if it holds data and is older than ``segment_ms``.

        An I/O error is recorded (not raised): maintenance goes on with the other partitions,
        and the roll is tried again on the next pass.

        Returns:
            Whether a new segment was started.
        """
        active = self._segments[-1]
        if active.is_empty or not self._aged(active, now_ms):
            return False
        try:
            self._roll(now_ms, reason="age")
        except OSError as exc:
            self.record_io_error("roll", exc, now_ms)
            return False
        return True

    # -- retention ---------------------------------------------------------------------------

    def apply_retention(self, now_ms: int) -> int:
        """Delete closed segments past ``retention_ms`` or beyond ``retention_bytes``.

        Oldest first, whole segments only, never the active one. A segment is old when its
        newest batch timestamp is more than ``retention_ms`` before ``now_ms`` (Kafka's
        rule). By size, the oldest segment goes while the total *without it* would still be
        at least ``retention_bytes`` (Kafka's rule: the log exceeds the limit by less than one
        segment, and never drops below it because of size retention).

        An I/O error while deleting a file is recorded, not raised.

        Returns:
            How many segments were deleted.
        """
        retention_ms = self.config.retention_ms
        retention_bytes = self.config.retention_bytes
        deleted = 0
        while len(self._segments) > 1:
            oldest = self._segments[0]
            too_old = retention_ms >= 0 and now_ms - oldest.largest_timestamp > retention_ms
            # Kafka's size rule: drop the oldest segment only if the log would still hold at
            # least retention_bytes without it — the log never shrinks below the limit.
            too_big = retention_bytes >= 0 and self._size_bytes - oldest.size >= retention_bytes
            if not (too_old or too_big):
                break
            self._segments.pop(0)
            self._bases.pop(0)
            self._size_bytes -= oldest.size
            deleted += 1
            try:
                oldest.delete()
            except OSError as exc:
                # The segment is gone from the log either way; a file left behind is found
                # again by the next start's recovery (and deleted by retention then).
                self.record_io_error("delete", exc, now_ms)
            log.info("segment_deleted", file=str(oldest.log_path), reason="time" if too_old else "size",
                     log_start_offset=self.log_start_offset)
        if deleted:
            try:
                self._epochs.truncate_from_start(self.log_start_offset, self.log_end_offset)
            except OSError as exc:
                # Memory is right; the file keeps entries below the log start, which the next
                # open sees disagree with the batches and rewrites.
                self.record_io_error("leader epoch checkpoint", exc, now_ms)
        return deleted

    # -- leader epochs and truncation ----------------------------------------------------------

    @property
    def latest_epoch(self) -> int:
        """The highest leader epoch of the batches in this log; -1 when it holds none."""
        return self._epochs.latest_epoch

    @property
    def epoch_entries(self) -> list[tuple[int, int]]:
        """``(epoch, start offset)`` of each leader epoch in the log, oldest first (a copy)."""
        return self._epochs.entries

    def end_offset_for_epoch(self, epoch: int) -> tuple[int, int]:
        """Kafka's OffsetForLeaderEpoch answered from this log.

        Returns:
            ``(e, end)``: ``e`` the largest epoch <= ``epoch`` this log holds, ``end`` the
            offset where its records end — the start of the next larger epoch, or the log end
            offset when ``e`` is the latest. ``(-1, -1)`` (UNDEFINED_EPOCH,
            UNDEFINED_EPOCH_OFFSET) when the log holds no epoch <= ``epoch``. (Kafka answers
            an epoch below every known one with that epoch and the first entry's start; we
            answer undefined, which makes a follower fall back to its high watermark.)
        """
        return self._epochs.end_offset_for(epoch, self.log_end_offset)

    def truncate_to(self, offset: int) -> None:
        """Remove every record at or above ``offset``; appends then continue at the new end.

        Batch granularity: the batch that *contains* ``offset`` goes whole, so the new log end
        is that batch's base offset (``offset`` itself when it is a batch boundary, as the
        answers of :meth:`end_offset_for_epoch` are). Segments after it are deleted, its own
        segment is cut (and becomes the active one), the high watermark and flushed offset
        come down to the new end if they were above, and epoch-cache entries starting at or
        past it are dropped.

        Durability: the cut file is fsynced *before* later segments are deleted, so a crash
        at any point leaves either the old log or a log whose later segments no longer chain
        to the cut one — which recovery drops — never the removed records served again.
        The epoch checkpoint is rewritten (atomically, fsynced) after; a crash before that is
        harmless too: the next open checks the checkpoint against the batches and rewrites it.

        Long-polling waiters (data tickets) are all woken: their offsets may now be past the
        log end (a follower's fetch, which must now get OFFSET_OUT_OF_RANGE rather than sleep
        until the data reappears), or their batch may be gone (an ``acks=all`` produce, which
        must not be confirmed by *other* records landing at the same offsets later). A woken
        waiter re-reads the log's state, as after any wake.

        Args:
            offset: the first offset to remove. At or above the log end: nothing happens.

        Raises:
            OffsetOutOfRange: ``offset`` below the log start offset (the log is unchanged;
                emptying a log entirely and restarting it elsewhere is another operation).
            OSError: a cut, fsync or deletion failed (``filename`` names the file); the caller
                reports it (:meth:`record_io_error`). The log may then be partly cut and must
                be closed and opened again: recovery makes one whole log of what the disk
                holds (never with removed records served again, see above).
        """
        start, end = self.log_start_offset, self.log_end_offset
        if offset < start:
            raise OffsetOutOfRange(f"cannot truncate to offset {offset}: below the log start offset {start}")
        if offset >= end:
            return
        index = bisect.bisect_right(self._bases, offset) - 1
        target = self._segments[index]
        position, header = target.locate(offset, self.config.index_interval_bytes)
        new_end = header.base_offset
        later = self._segments[index + 1:]
        if later:
            # The target becomes the active segment again and needs its own descriptors (the
            # later ones, the current active included, are closed when they are deleted).
            self.storage.files.discard(target)
            target.activate()
        target.truncate(position, self.config.index_interval_bytes)
        del self._segments[index + 1:]
        del self._bases[index + 1:]
        for segment in reversed(later):
            segment.delete()
        self._size_bytes = sum(s.size for s in self._segments)
        self._flushed_offset = min(self._flushed_offset, new_end)
        self._truncations += 1
        if self._high_watermark is not None:
            self._high_watermark = min(self._high_watermark, new_end)
        self._epochs.truncate_from_end(new_end)
        log.info("log_truncated", directory=str(self.directory), offset=offset, log_end_offset=new_end,
                 previous_log_end_offset=end, segments_deleted=len(later), latest_epoch=self.latest_epoch)
        watchers, self._watchers = self._watchers, []
        for ticket in watchers:
            ticket.done = True
            ticket.wake()

    # -- reads -------------------------------------------------------------------------------

    def _check_range(self, offset: int) -> None:
        start, end = self.log_start_offset, self.log_end_offset
        if offset < start or offset > end:
            raise OffsetOutOfRange(
                f"offset {offset} is out of range: log_start_offset is {start}, log_end_offset is {end}"
            )

    def read(self, offset: int, max_bytes: int, *, to_log_end: bool = False) -> bytes:
        """Whole batches starting with the one that contains ``offset``, below the high
        watermark (a consumer's read) or, with ``to_log_end``, below the log end (a follower's).

        Further batches are added while the total stays within ``max_bytes``; the first batch
        is returned even if it alone is larger. Reads continue across segment boundaries.

        Returns:
            The batches' bytes; ``b""`` when ``offset`` is at or past the limit.

        Raises:
            OffsetOutOfRange: ``offset`` below ``log_start_offset`` or above the log end offset.
            OSError: a read failed (``filename`` names the file); see ``record_io_error``.
        """
        self._check_range(offset)
        self._reads += 1
        end = self.log_end_offset
        limit = end if to_log_end else self.high_watermark
        if offset >= limit:
            return b""
        data = self._read(offset, max_bytes)
        # Replication keeps the high watermark on a batch boundary (every replica holds whole
        # batches), so cutting at the first batch that starts at or past it is exact.
        return data if limit == end else _cut_at(data, limit)

    def _read(self, offset: int, max_bytes: int) -> bytes:
        index = bisect.bisect_right(self._bases, offset) - 1
        segment = self._segments[index]
        position, _ = segment.locate(offset, self.config.index_interval_bytes)
        first = segment.read_from(position, max_bytes, at_least_one=True)
        total = len(first)
        if total >= max_bytes or position + total < segment.size or index + 1 == len(self._segments):
            return first
        parts = [first]
        # Indexes rather than a slice: a slice would copy the list of (possibly tens of
        # thousands of) segments on every read.
        for later in range(index + 1, len(self._segments)):
            segment = self._segments[later]
            more = segment.read_from(0, max_bytes - total, at_least_one=False)
            if not more:
                break
            parts.append(more)
            total += len(more)
            if len(more) < segment.size:
                break
        return b"".join(parts)

    def offset_for_timestamp(self, timestamp: int) -> tuple[int, int] | None:
        """The first batch whose ``maxTimestamp >= timestamp``, as (base offset, max timestamp).

        Kafka's ListOffsets answers with the first *record* at or after the timestamp; we work
        at batch granularity (records are never decoded), so the answer is that record's batch.
        A consumer seeking there skips the earlier records of the batch itself only if it
        filters by time — in practice a few extra records may be delivered, never fewer.

        Returns:
            ``(base_offset, max_timestamp)`` or None when no batch is that recent.
        """
        for segment in self._segments:
            found = segment.first_at_or_after_timestamp(timestamp)
            if found is not None:
                return found.base_offset, found.max_timestamp
        return None

    def batches(self, from_offset: int | None = None) -> Iterator[tuple[int, BatchHeader]]:
        """Yield ``(base_offset, header)`` for every batch from the one containing
        ``from_offset`` (default: the log start) to the end — e.g. to rebuild producer state.

        Raises:
            OffsetOutOfRange: ``from_offset`` outside the log.
        """
        offset = self.log_start_offset if from_offset is None else from_offset
        self._check_range(offset)
        if offset == self.log_end_offset:
            return
        index = bisect.bisect_right(self._bases, offset) - 1
        position, _ = self._segments[index].locate(offset, self.config.index_interval_bytes)
        segments = self._segments
        while index < len(segments):
            for _, header in segments[index].headers(position):
                yield header.base_offset, header
            position = 0
            index += 1

    # -- waiting for data --------------------------------------------------------------------

    def watch(self, offset: int, wake: Callable[[], None], *, log_end: bool = False) -> DataTicket:
        """Register a wait for data past ``offset`` (a long-polling fetch, or a produce with
        ``acks=all`` waiting for its batch to be committed).

        Args:
            offset: the ticket completes once ``high_watermark > offset`` (with ``log_end``:
                once the log end offset is, which is what a follower waits for).
            wake: called (once, with no arguments) by the append that completes the ticket,
                or by :meth:`close`. It must be quick and must not raise.

        Returns:
            The ticket; already ``done`` (and ``wake`` not called) if data past ``offset``
            exists now or the log is closed. The caller must :meth:`unwatch` it when it
            stops waiting, done or not.
        """
        ticket = DataTicket(offset, wake, log_end=log_end)
        if self._reached(ticket) or self._closed:
            ticket.done = True
        else:
            self._watchers.append(ticket)
        return ticket

    def unwatch(self, ticket: DataTicket) -> None:
        """Forget ``ticket`` (its waiter gave up, or was woken); harmless if it is gone already."""
        try:
            self._watchers.remove(ticket)
        except ValueError:
            pass

    def _complete_watchers(self) -> None:
        """Complete and wake every ticket the log's state now satisfies."""
        waiting = []
        for ticket in self._watchers:
            if self._reached(ticket) or self._closed:
                ticket.done = True
                ticket.wake()
            else:
                waiting.append(ticket)
        self._watchers = waiting

    def _reached(self, ticket: DataTicket) -> bool:
        return (self.log_end_offset if ticket.log_end else self.high_watermark) > ticket.offset

    # -- durability --------------------------------------------------------------------------

    def _unflushed(self) -> list[tuple[Segment, int]]:
        """The segments with unflushed data, and their sizes now.

        They always form a suffix of the segment list (a flush covers all of them, appends go
        to the newest segment), so the walk goes backwards and stops at the first segment with
        data that is fully flushed: with tens of thousands of segments, an fsync=always append
        does not scan them all. Empty segments hold nothing to flush and are stepped over.
        """
        targets = []
        for segment in reversed(self._segments):
            if segment.flushed_size < segment.size:
                targets.append((segment, segment.size))
            elif segment.size:
                break
        targets.reverse()
        return targets

    def _mark_flushed(self, targets: list[tuple[Segment, int]], offset: int) -> None:
        for segment, size in targets:
            segment.flushed_size = max(segment.flushed_size, size)
        self._flushed_offset = max(self._flushed_offset, offset)

    def flush_sync(self) -> None:
        """fsync every segment with unflushed data, blocking.

        Raises:
            OSError: an fsync failed (``filename`` names the file); nothing is marked flushed.
        """
        targets = self._unflushed()
        offset = self.log_end_offset
        for segment, _ in targets:
            segment.fsync()
        self._mark_flushed(targets, offset)

    def begin_flush(self) -> FlushJob | None:
        """Prepare an fsync of the unflushed data that another thread may run.

        The caller runs ``job.fsync()`` (in a worker thread, say), then ``job.close()``, and —
        only if the fsync succeeded — :meth:`finish_flush` back in the log's thread. Several
        jobs may be out at once (two producers with ``fsync = "always"``): each covers what
        was unflushed when it was made.

        Returns:
            The job, or None when there is nothing to flush.

        Raises:
            OSError: a descriptor could not be duplicated (``filename`` names the file).
        """
        targets = self._unflushed()
        if not targets:
            return None
        job = FlushJob(targets, self.log_end_offset, [], truncations=self._truncations)
        try:
            for segment, _ in targets:
                job.descriptors.extend((fd, segment.log_path) for fd in segment.duplicate_descriptors())
        except OSError:
            job.close()
            raise
        return job

    def finish_flush(self, job: FlushJob) -> None:
        """Record that ``job`` fsynced successfully: its data counts as flushed now - unless
        the log was truncated since the job was made (a follower cutting its divergent tail
        while the fsync ran): what it fsynced may be gone, and new data written at the same
        positions is not flushed; the next flush covers it."""
        if job.truncations == self._truncations:
            self._mark_flushed(job.targets, job.offset)


def _cut_at(data: bytes, offset: int) -> bytes:
    """The leading whole batches of ``data`` that start below ``offset``."""
    position = 0
    total = len(data)
    while position + LOG_OVERHEAD <= total:
        base, length = _OFFSET_AND_LENGTH.unpack_from(data, position)
        if base >= offset:
            break
        position += LOG_OVERHEAD + length
    return data if position >= total else data[:position]
