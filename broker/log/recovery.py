"""Opening a partition directory after a clean stop or a crash: verify, cut, re-index.

A crash can leave the newest data half-written: a batch cut anywhere, bytes that never reached
the disk (zeros or garbage where a batch should be), an index that is shorter or longer than its
``.log``. Kafka's answer, which we follow, is to trust nothing at the end of the log:

* The last segment that holds data is verified batch by batch — the length fits in the file,
  magic is 2, the leader epoch is the 0 we always stamp, the CRC-32C matches, and each batch
  starts at exactly the offset where the previous one ended (offsets are dense). At the first
  batch that fails, the file is cut there and one ``segment_tail_truncated`` line says what
  was dropped. Everything before that point is kept untouched.
* Older (closed) segments were complete when they were rolled, so they get a cheap check: the
  index files must be well-formed and the batches after the last index entry must run exactly
  to the end of the file. If that fails the segment is verified fully, like the last one.
  (Damage *inside* an older segment is not looked for — Kafka bounds this with a recovery-point
  checkpoint; we don't, see the module notes in ``partition_log.py``.)
* Segments must chain: each starts where the previous ended. After a gap (an older segment was
  cut) everything later is unreachable and is deleted (``segments_dropped_after_gap``).
* Empty trailing segments (created by a roll whose data never arrived) are dropped, except one
  that starts exactly at the log end, which simply becomes the active segment again.
* Indexes are a cache: whenever the in-memory index rebuilt from the ``.log`` differs from the
  file, the file is rewritten (``index_rebuilt``).
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

import crc32c
import structlog

from broker.log.batch import (
    BATCH_LENGTH,
    CRC_START,
    CURRENT_MAGIC,
    HEADER_SIZE,
    HEADER_STRUCT,
    LEADER_EPOCH,
    LOG_OVERHEAD,
    MAGIC,
    BatchHeader,
)
from broker.log.segment import OFFSET_ENTRY, TIME_ENTRY, Segment, parse_segment_name

log = structlog.get_logger(__name__)

_INT32 = struct.Struct(">i")
# Verification reads this much per syscall; a batch larger than that gets its own read.
VERIFY_CHUNK = 4 * 1024 * 1024


class _Verified:
    """What a walk over a range of a segment found (a tiny mutable record)."""

    __slots__ = ("end", "next_offset", "reason", "batches")

    def __init__(self, end: int, next_offset: int) -> None:
        self.end = end
        self.next_offset = next_offset
        self.reason: str | None = None
        self.batches = 0


def _walk_verified(segment: Segment, start: int, expected_offset: int, file_size: int,
                   *, index_interval_bytes: int | None) -> _Verified:
    """Verify batches from ``start`` to ``file_size``; stop at the first bad one.

    With ``index_interval_bytes`` set, each good batch is also fed to the segment's in-memory
    indexes (a rebuild); otherwise only its max timestamp is noted.
    """
    result = _Verified(start, expected_offset)
    fd = segment.log_fd
    buffer = b""
    buffer_start = start
    position = start
    while position < file_size:
        remaining = file_size - position
        if remaining < HEADER_SIZE:
            result.reason = f"torn batch: only {remaining} bytes at the end of the file"
            break
        inner = position - buffer_start
        if len(buffer) - inner < HEADER_SIZE:
            buffer = os.pread(fd, min(VERIFY_CHUNK, remaining), position)
            buffer_start, inner = position, 0
        if buffer[inner + MAGIC] != CURRENT_MAGIC:
            result.reason = f"magic byte is {buffer[inner + MAGIC]}, expected {CURRENT_MAGIC}"
            break
        header = BatchHeader._make(HEADER_STRUCT.unpack_from(buffer, inner))
        size = header.batch_length + LOG_OVERHEAD
        if size < HEADER_SIZE:
            result.reason = f"batchLength {header.batch_length} is too small for a v2 batch"
            break
        if size > remaining:
            # Checked before reading the batch: a garbage length must not size an allocation.
            result.reason = f"batch of {size} bytes runs past the end of the file ({remaining} bytes left)"
            break
        if header.partition_leader_epoch != LEADER_EPOCH:
            result.reason = f"partitionLeaderEpoch is {header.partition_leader_epoch}, we always write {LEADER_EPOCH}"
            break
        if header.base_offset != expected_offset:
            result.reason = f"offsets not dense: batch has baseOffset {header.base_offset}, expected {expected_offset}"
            break
        if header.last_offset_delta < 0:
            result.reason = f"negative lastOffsetDelta {header.last_offset_delta}"
            break
        if len(buffer) - inner < size:
            buffer = os.pread(fd, max(min(VERIFY_CHUNK, remaining), size), position)
            buffer_start, inner = position, 0
        if crc32c.crc32c(memoryview(buffer)[inner + CRC_START : inner + size]) != header.crc:
            result.reason = "CRC-32C mismatch"
            break
        if index_interval_bytes is not None:
            segment.note_batch(position, header.base_offset, header, index_interval_bytes)
        elif header.max_timestamp > segment.max_timestamp:
            segment.max_timestamp = header.max_timestamp
            segment.offset_of_max_timestamp = header.base_offset
        if result.batches == 0 and position == 0:
            segment.rolling_timestamp = header.max_timestamp if header.max_timestamp >= 0 else None
        result.batches += 1
        position += size
        expected_offset = header.next_offset
        result.end = position
        result.next_offset = expected_offset
    return result


def _count_batches(fd: int, start: int, end: int) -> int:
    """How many batches (a torn last one included) a dropped range held, by their lengths."""
    count = 0
    position = start
    while position < end:
        count += 1
        if end - position < LOG_OVERHEAD:
            break
        (length,) = _INT32.unpack_from(os.pread(fd, LOG_OVERHEAD, position), BATCH_LENGTH)
        if length + LOG_OVERHEAD < HEADER_SIZE:
            break
        position += length + LOG_OVERHEAD
    return count


def _reset_in_memory(segment: Segment) -> None:
    segment.size = 0
    segment.next_offset = segment.base_offset
    segment.index_offsets.clear()
    segment.index_positions.clear()
    segment.time_stamps.clear()
    segment.time_offsets.clear()
    segment.bytes_since_index = 0
    segment.max_timestamp = -1
    segment.offset_of_max_timestamp = -1
    segment.rolling_timestamp = None


def verify_segment(segment: Segment, index_interval_bytes: int, *, now_ms: int) -> None:
    """Verify a whole segment, cut a bad tail, rebuild its indexes (see module docstring)."""
    _reset_in_memory(segment)
    file_size = os.fstat(segment.log_fd).st_size
    result = _walk_verified(segment, 0, segment.base_offset, file_size, index_interval_bytes=index_interval_bytes)
    if result.end < file_size:
        dropped = _count_batches(segment.log_fd, result.end, file_size)
        os.ftruncate(segment.log_fd, result.end)
        log.warning(
            "segment_tail_truncated",
            file=str(segment.log_path),
            position=result.end,
            bytes_dropped=file_size - result.end,
            batches_dropped=dropped,
            batches_kept=result.batches,
            reason=result.reason,
        )
    segment.size = result.end
    segment.flushed_size = result.end
    segment.next_offset = result.next_offset
    segment.last_modified_ms = now_ms
    if segment.rolling_timestamp is None and segment.size > 0:
        segment.rolling_timestamp = now_ms
    _sync_index_files(segment)


def _sync_index_files(segment: Segment) -> None:
    """Rewrite the index files if they differ from the in-memory indexes."""
    offsets, times = segment.encoded_indexes()
    for fd, path, wanted in ((segment.index_fd, segment.index_path, offsets),
                             (segment.time_fd, segment.time_index_path, times)):
        size = os.fstat(fd).st_size
        if size == len(wanted) and os.pread(fd, size, 0) == wanted:
            continue
        os.ftruncate(fd, 0)
        if wanted:
            os.write(fd, wanted)  # O_APPEND: lands at 0 after the truncate
        log.info("index_rebuilt", file=str(path), entries=len(wanted) // (OFFSET_ENTRY.size if fd == segment.index_fd else TIME_ENTRY.size))


def _load_closed(segment: Segment, index_interval_bytes: int, *, now_ms: int) -> bool:
    """The cheap check for an older segment. Returns False when a full verify is needed."""
    file_size = os.fstat(segment.log_fd).st_size
    raw_index = os.pread(segment.index_fd, os.fstat(segment.index_fd).st_size, 0)
    raw_time = os.pread(segment.time_fd, os.fstat(segment.time_fd).st_size, 0)
    if len(raw_index) % OFFSET_ENTRY.size or len(raw_time) % TIME_ENTRY.size:
        return False
    _reset_in_memory(segment)
    base = segment.base_offset
    last_offset, last_position = base, 0
    for relative, position in OFFSET_ENTRY.iter_unpack(raw_index):
        offset = base + relative
        # Strictly increasing, inside the file, never at 0 (position 0 is never indexed).
        if offset <= last_offset or position <= last_position or position >= file_size:
            return False
        segment.index_offsets.append(offset)
        segment.index_positions.append(position)
        last_offset, last_position = offset, position
    last_stamp = -1
    for stamp, relative in TIME_ENTRY.iter_unpack(raw_time):
        if stamp <= last_stamp or relative < 0 or base + relative > last_offset:
            return False
        segment.time_stamps.append(stamp)
        segment.time_offsets.append(base + relative)
        last_stamp = stamp
    if segment.time_stamps:
        segment.max_timestamp = segment.time_stamps[-1]
        segment.offset_of_max_timestamp = segment.time_offsets[-1]
    # From the last indexed batch to the end of the file every batch must be good; this also
    # checks that the last index entry really points at a batch with the offset it claims.
    tail = _walk_verified(segment, last_position, last_offset, file_size, index_interval_bytes=None)
    if tail.reason is not None or tail.end != file_size or tail.batches == 0:
        return False
    segment.size = file_size
    segment.flushed_size = file_size
    segment.next_offset = tail.next_offset
    segment.bytes_since_index = file_size - last_position
    segment.last_modified_ms = now_ms
    return True


def open_segments(directory: Path, index_interval_bytes: int, *, now_ms: int) -> list[Segment]:
    """Open every segment of a partition directory, repairing as the module docstring says.

    Returns:
        The segments in offset order; never empty (a fresh directory gets one at offset 0).
    """
    directory.mkdir(parents=True, exist_ok=True)
    bases = sorted(b for b in (parse_segment_name(p) for p in directory.glob("*.log")) if b is not None)
    known = set(bases)
    for stray in list(directory.glob("*.index")) + list(directory.glob("*.timeindex")):
        # An index whose .log is gone: left over from a deletion interrupted by a crash.
        if not stray.stem.isdigit() or int(stray.stem) not in known:
            stray.unlink()
    if not bases:
        return [Segment.open_files(directory, 0, now_ms=now_ms)]
    segments = [Segment.open_files(directory, b, now_ms=now_ms) for b in bases]
    raw_sizes = [os.fstat(s.log_fd).st_size for s in segments]
    last = max((i for i, size in enumerate(raw_sizes) if size > 0), default=0)

    for i in range(last):
        if not _load_closed(segments[i], index_interval_bytes, now_ms=now_ms):
            verify_segment(segments[i], index_interval_bytes, now_ms=now_ms)
    # Chain check over the older segments; a gap makes everything after it unreachable.
    for i in range(last):
        if segments[i].next_offset != segments[i + 1].base_offset or segments[i].is_empty:
            dropped = segments[i + 1 :]
            log.warning(
                "segments_dropped_after_gap",
                directory=str(directory),
                log_end_offset=segments[i].next_offset,
                next_segment_base_offset=segments[i + 1].base_offset,
                segments_dropped=len(dropped),
                bytes_dropped=sum(raw_sizes[i + 1 :]),
            )
            for segment in dropped:
                segment.delete()
            segments = segments[: i + 1]
            raw_sizes = raw_sizes[: i + 1]
            last = i
            break
    verify_segment(segments[last], index_interval_bytes, now_ms=now_ms)

    # Trailing segments past the last one with data are all empty (by construction of
    # ``last``). Keep at most one, and only if it starts exactly at the log end.
    tail = segments[last]
    kept = segments[: last + 1]
    for j, segment in enumerate(segments[last + 1 :], start=last + 1):
        if j == last + 1 and not tail.is_empty and segment.base_offset == tail.next_offset:
            verify_segment(segment, index_interval_bytes, now_ms=now_ms)
            kept.append(segment)
        else:
            log.info("empty_segment_dropped", file=str(segment.log_path))
            segment.delete()
    return kept
