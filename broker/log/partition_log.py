"""``PartitionLog``: one partition's retained, segmented, append-only log of record batches.

This is the storage behind Kafka's Produce and Fetch (GUIDE §2.7), in our own terms:

* **append** assigns offsets. A batch's ``baseOffset`` becomes the log end offset, the log end
  moves past its ``lastOffsetDelta``; the bytes are stored exactly as sent, only
  ``baseOffset``/``partitionLeaderEpoch`` (outside the CRC) are stamped.
* **read** serves whole batches from the one that *contains* the wanted offset (consumers skip
  the records before it themselves) and always returns at least one batch, however large —
  otherwise a consumer whose limit is smaller than a batch would stall forever (KIP-74).
* The **high watermark** equals the log end offset: with a single broker and no replication,
  a batch is "committed" as soon as it is appended. Durability is a separate axis, chosen by
  the ``fsync`` policy (``always`` / ``interval`` / ``never``) and tracked as ``flushed_offset``.
* **Segments** roll by size (``segment_bytes``) and age (``segment_ms``); **retention** deletes
  whole closed segments by age (``retention_ms``, judged by the newest timestamp inside) and by
  total size (``retention_bytes``). The log start offset is the first remaining segment's base.

No clock is read here: every time-dependent call takes ``now_ms`` from its caller. The only
async pieces are ``wait_for_data`` (long-polling fetches) and ``flush`` (fsync in a worker
thread so the event loop keeps serving).

Known simplification: recovery fully verifies only the newest segment holding data; Kafka also
keeps a recovery-point checkpoint so that after an unclean stop every segment written since the
last flush is verified. We rely on closed segments having been complete when rolled.
"""

from __future__ import annotations

import bisect
import os
from collections.abc import Iterator
from pathlib import Path

import attrs
import structlog
import trio

from broker.config import LogConfig
from broker.errors import OffsetOutOfRange
from broker.log.batch import BatchHeader, patched_prefix, validate
from broker.log.recovery import open_segments
from broker.log.segment import Segment

log = structlog.get_logger(__name__)

# Relative offsets in the index are int32: a segment may not span more offsets than that.
_MAX_RELATIVE_OFFSET = 2**31 - 1


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


def _fsync_all(fds: list[int]) -> None:
    for fd in fds:
        os.fsync(fd)


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
    # Created lazily by the first waiter, set and dropped by the next append: an append with
    # nobody waiting costs nothing.
    _data_event: trio.Event | None = None
    _closed: bool = False

    # -- lifecycle ---------------------------------------------------------------------------

    @classmethod
    def open(cls, directory: Path, config: LogConfig, *, now_ms: int) -> PartitionLog:
        """Open (creating if needed) the log in ``directory``, running crash recovery.

        Raises:
            OSError: the directory cannot be created or read.
        """
        directory = Path(directory)
        segments = open_segments(directory, config.index_interval_bytes, now_ms=now_ms)
        hw = segments[-1].next_offset
        self = cls(
            directory=directory,
            config=config,
            segments=segments,
            bases=[s.base_offset for s in segments],
            size_bytes=sum(s.size for s in segments),
            flushed_offset=hw,
        )
        # What recovery left on disk is now the durable state: make it so, cheaply (fsync of
        # clean files is nearly free), so that ``flushed_offset = high_watermark`` is true.
        self.flush_sync(force=True)
        for segment in segments[:-1]:
            segment.seal()  # only the active segment writes its index files
        log.debug("partition_log_opened", directory=str(directory), log_start_offset=self.log_start_offset,
                  high_watermark=hw, segments=len(segments))
        return self

    def close(self) -> None:
        """Flush (whatever the fsync policy: a clean stop loses nothing) and close every file."""
        if self._closed:
            return
        self.flush_sync()
        for segment in self._segments:
            segment.close()
        self._closed = True
        # Wake long-polling fetches so they notice instead of sleeping until their deadline.
        if self._data_event is not None:
            self._data_event.set()
            self._data_event = None

    # -- properties --------------------------------------------------------------------------

    @property
    def log_start_offset(self) -> int:
        return self._segments[0].base_offset

    @property
    def high_watermark(self) -> int:
        """The log end offset: the offset the next appended record will get."""
        return self._segments[-1].next_offset

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
        return self._flushed_offset < self.high_watermark

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
        )

    # -- append ------------------------------------------------------------------------------

    def append(self, batch: bytes | bytearray | memoryview, now_ms: int) -> int:
        """Append one RecordBatch v2, assigning its offsets.

        With ``fsync = "always"`` the caller must ``await flush()`` before acknowledging.

        Args:
            batch: exactly one batch, as the producer sent it.
            now_ms: broker time, for segment age.

        Returns:
            The base offset assigned to the batch.

        Raises:
            CorruptBatch: the batch is malformed (the log is unchanged).
            BatchTooLarge: larger than ``max_message_bytes`` (the log is unchanged).
            OSError: the write failed (the partial write is cut off; the log is unchanged).
        """
        header = validate(batch, self.config.max_message_bytes)
        size = header.batch_length + 12
        active = self._segments[-1]
        offset = active.next_offset
        if not active.is_empty and (
            active.size + size > self.config.segment_bytes
            or self._aged(active, now_ms)
            or offset + header.last_offset_delta - active.base_offset > _MAX_RELATIVE_OFFSET
        ):
            active = self._roll(now_ms, reason="size" if active.size + size > self.config.segment_bytes else "age")
        view = memoryview(batch)
        active.append([patched_prefix(view, offset), view[16:]], header, offset,
                      self.config.index_interval_bytes, now_ms)
        self._size_bytes += size
        if self._data_event is not None:
            self._data_event.set()
            self._data_event = None
        return offset

    def _aged(self, segment: Segment, now_ms: int) -> bool:
        return segment.rolling_timestamp is not None and now_ms - segment.rolling_timestamp >= self.config.segment_ms

    def _roll(self, now_ms: int, *, reason: str) -> Segment:
        old = self._segments[-1]
        new = Segment.open_files(self.directory, old.next_offset, now_ms=now_ms)
        self._segments.append(new)
        self._bases.append(new.base_offset)
        old.seal()
        log.info("segment_rolled", directory=str(self.directory), base_offset=new.base_offset,
                 previous_size=old.size, reason=reason)
        return new

    def roll_if_aged(self, now_ms: int) -> bool:
        """Roll the active segment if it holds data and is older than ``segment_ms``.

        Returns:
            Whether a new segment was started.
        """
        active = self._segments[-1]
        if active.is_empty or not self._aged(active, now_ms):
            return False
        self._roll(now_ms, reason="age")
        return True

    # -- retention ---------------------------------------------------------------------------

    def apply_retention(self, now_ms: int) -> int:
        """Delete closed segments past ``retention_ms`` or beyond ``retention_bytes``.

        Oldest first, whole segments only, never the active one. A segment is old when its
        newest batch timestamp is more than ``retention_ms`` before ``now_ms`` (Kafka's
        rule). By size, the oldest segment goes while the total *without it* would still be
        at least ``retention_bytes`` (Kafka's rule: the log exceeds the limit by less than one
        segment, and never drops below it because of size retention).

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
            oldest.delete()
            deleted += 1
            log.info("segment_deleted", file=str(oldest.log_path), reason="time" if too_old else "size",
                     log_start_offset=self.log_start_offset)
        return deleted

    # -- reads -------------------------------------------------------------------------------

    def _check_range(self, offset: int) -> None:
        start, end = self.log_start_offset, self.high_watermark
        if offset < start or offset > end:
            raise OffsetOutOfRange(
                f"offset {offset} is out of range: log_start_offset is {start}, high_watermark is {end}"
            )

    def read(self, offset: int, max_bytes: int) -> bytes:
        """Whole batches starting with the one that contains ``offset``.

        Further batches are added while the total stays within ``max_bytes``; the first batch
        is returned even if it alone is larger. Reads continue across segment boundaries.

        Returns:
            The batches' bytes; ``b""`` when ``offset`` equals the high watermark.

        Raises:
            OffsetOutOfRange: ``offset`` below ``log_start_offset`` or above ``high_watermark``.
        """
        self._check_range(offset)
        if offset == self.high_watermark:
            return b""
        index = bisect.bisect_right(self._bases, offset) - 1
        segment = self._segments[index]
        position, _ = segment.locate(offset, self.config.index_interval_bytes)
        first = segment.read_from(position, max_bytes, at_least_one=True)
        total = len(first)
        if total >= max_bytes or position + total < segment.size or index + 1 == len(self._segments):
            return first
        parts = [first]
        for segment in self._segments[index + 1 :]:
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
        if offset == self.high_watermark:
            return
        index = bisect.bisect_right(self._bases, offset) - 1
        position, _ = self._segments[index].locate(offset, self.config.index_interval_bytes)
        for segment in self._segments[index:]:
            for _, header in segment.headers(position):
                yield header.base_offset, header
            position = 0

    async def wait_for_data(self, offset: int, deadline: float) -> bool:
        """Wait until data beyond ``offset`` exists (``high_watermark > offset``) or until
        ``trio.current_time()`` reaches ``deadline``.

        Sleeps on an event that the next append sets — no polling.

        Returns:
            Whether data is available.
        """
        await trio.lowlevel.checkpoint()
        with trio.move_on_at(deadline):
            while self.high_watermark <= offset and not self._closed:
                if self._data_event is None:
                    self._data_event = trio.Event()
                await self._data_event.wait()
        return self.high_watermark > offset

    # -- durability --------------------------------------------------------------------------

    def _unflushed(self, force: bool) -> list[tuple[Segment, int]]:
        return [(s, s.size) for s in self._segments if force or s.flushed_size < s.size]

    def _mark_flushed(self, targets: list[tuple[Segment, int]], offset: int) -> None:
        for segment, size in targets:
            segment.flushed_size = max(segment.flushed_size, size)
        self._flushed_offset = max(self._flushed_offset, offset)

    def flush_sync(self, *, force: bool = False) -> None:
        """fsync every segment with unflushed data (``force``: every segment), blocking."""
        targets = self._unflushed(force)
        offset = self.high_watermark
        _fsync_all([fd for segment, _ in targets for fd in segment.fds()])
        self._mark_flushed(targets, offset)

    async def flush(self) -> None:
        """fsync unflushed data in a worker thread; the event loop keeps running meanwhile.

        The descriptors are duplicated first so that retention deleting a segment during the
        fsync cannot close a descriptor the thread is using.
        """
        targets = self._unflushed(False)
        if not targets:
            await trio.lowlevel.checkpoint()
            return
        offset = self.high_watermark
        fds = [os.dup(fd) for segment, _ in targets for fd in segment.fds()]
        try:
            await trio.to_thread.run_sync(_fsync_all, fds)
        finally:
            for fd in fds:
                os.close(fd)
        self._mark_flushed(targets, offset)
