"""One log segment: a ``.log`` file of whole batches plus its two sparse indexes.

A partition's log is split into segments so old data can be deleted a whole file at a time
(retention never rewrites a file). As in Kafka, a segment is named after the first offset it
holds, zero-padded to 20 digits, and comes as three files::

    00000000000000001000.log        batches, byte for byte as produced (baseOffset patched)
    00000000000000001000.index      sparse: (offset - base) int32, file position int32
    00000000000000001000.timeindex  sparse: max timestamp so far int64, (offset - base) int32

An index entry is written only every ``index_interval_bytes`` of batches, so the index stays
small enough to live in memory; a lookup jumps to the nearest entry at or before the wanted
offset and walks batch headers from there. Entries point at batch starts (batches are the
unit; records are never looked at).

The ``.log`` file is written with ``os.writev`` on an unbuffered descriptor and read with
``os.pread``: there is no user-space buffer, so a read always sees every completed append.
Indexes are a cache of what the ``.log`` says — recovery rebuilds them whenever they do not
check out — so they are never the source of truth.

What does not live here: deciding when to roll or delete (``partition_log.py``), verifying
and repairing files after a crash (``recovery.py``).
"""

from __future__ import annotations

import bisect
import os
import struct
from collections.abc import Iterator
from pathlib import Path

import attrs

from broker.log.batch import (
    BATCH_LENGTH,
    HEADER_SIZE,
    LOG_OVERHEAD,
    HEADER_STRUCT,
    BatchHeader,
)

OFFSET_ENTRY = struct.Struct(">ii")  # relative offset, position
TIME_ENTRY = struct.Struct(">qi")  # max timestamp so far, relative offset
_INT32 = struct.Struct(">i")

# Header walks read this much at a time: one syscall covers many small batches.
SCAN_CHUNK = 64 * 1024


def segment_name(base_offset: int) -> str:
    """``00000000000000001000`` — the 20-digit stem every file of a segment shares."""
    return f"{base_offset:020d}"


def parse_segment_name(path: Path) -> int | None:
    """The base offset encoded in a ``.log`` file name, or None if the name is not ours."""
    stem = path.stem
    if path.suffix != ".log" or len(stem) != 20 or not stem.isdigit():
        return None
    return int(stem)


def _open_rw(path: Path) -> int:
    # O_APPEND: every os.write/os.writev lands at the end, whatever the file position says.
    return os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND | getattr(os, "O_CLOEXEC", 0), 0o644)


def write_all(fd: int, buffers: list[bytes | bytearray | memoryview]) -> int:
    """``os.writev`` until every byte is written (a short write is legal, if rare)."""
    total = sum(len(b) for b in buffers)
    written = os.writev(fd, buffers)
    while written < total:
        # Rebuild the list of what is left; this path is practically never taken.
        rest = memoryview(b"".join(bytes(b) for b in buffers))[written:]
        written += os.write(fd, rest)
    return total


@attrs.define(eq=False)
class Segment:
    """The open files and in-memory indexes of one segment (state, hence ``define``)."""

    base_offset: int
    directory: Path
    log_fd: int
    index_fd: int
    time_fd: int
    # Bytes of whole batches in the .log file (the file is never longer, see recovery).
    size: int = 0
    # Offset the next batch appended here would get.
    next_offset: int = 0
    # How many bytes of .log are known to be on stable storage (fsync'd).
    flushed_size: int = 0
    # Sparse offset index, absolute offsets (bisect-able) and positions, kept in step.
    index_offsets: list[int] = attrs.field(factory=list)
    index_positions: list[int] = attrs.field(factory=list)
    # Sparse time index: max timestamp so far and the base offset of the batch holding it.
    time_stamps: list[int] = attrs.field(factory=list)
    time_offsets: list[int] = attrs.field(factory=list)
    bytes_since_index: int = 0
    # Largest batch maxTimestamp in the segment, and the batch base offset that carries it.
    max_timestamp: int = -1
    offset_of_max_timestamp: int = -1
    # The time that segment_ms is measured from (Kafka: the first batch's timestamp).
    rolling_timestamp: int | None = None
    # Broker time of the last append (or open): retention's fallback when batches carry no
    # timestamps (maxTimestamp -1).
    last_modified_ms: int = 0

    # -- files -------------------------------------------------------------------------------

    @classmethod
    def open_files(cls, directory: Path, base_offset: int, *, now_ms: int) -> Segment:
        """Open (creating if needed) the three files of a segment, with empty in-memory state."""
        stem = directory / segment_name(base_offset)
        return cls(
            base_offset=base_offset,
            directory=directory,
            log_fd=_open_rw(stem.with_suffix(".log")),
            index_fd=_open_rw(stem.with_suffix(".index")),
            time_fd=_open_rw(stem.with_suffix(".timeindex")),
            next_offset=base_offset,
            last_modified_ms=now_ms,
        )

    @property
    def log_path(self) -> Path:
        return self.directory / f"{segment_name(self.base_offset)}.log"

    @property
    def index_path(self) -> Path:
        return self.directory / f"{segment_name(self.base_offset)}.index"

    @property
    def time_index_path(self) -> Path:
        return self.directory / f"{segment_name(self.base_offset)}.timeindex"

    def fds(self) -> tuple[int, ...]:
        """The segment's open descriptors (the index files' only until it is sealed)."""
        return tuple(fd for fd in (self.log_fd, self.index_fd, self.time_fd) if fd >= 0)

    def seal(self) -> None:
        """No more appends: close the two index files, keep the .log open for reads.

        Only the active segment writes its indexes (readers use the in-memory copies), so a
        retained segment needs one descriptor instead of three: that is what lets a broker
        keep many segments within its open-file limit. Index files are not fsynced here;
        they are derived data, and recovery rebuilds any that a crash left short.
        """
        for fd in (self.index_fd, self.time_fd):
            if fd >= 0:
                os.close(fd)
        self.index_fd = self.time_fd = -1

    def close(self) -> None:
        for fd in self.fds():
            os.close(fd)
        self.log_fd = self.index_fd = self.time_fd = -1

    def delete(self) -> None:
        """Close and unlink. The .log goes first: a stray index without its .log is harmless
        (recovery removes it), a .log whose index vanished is merely re-indexed."""
        self.close()
        for path in (self.log_path, self.index_path, self.time_index_path):
            path.unlink(missing_ok=True)

    @property
    def is_empty(self) -> bool:
        return self.size == 0

    @property
    def largest_timestamp(self) -> int:
        """What time retention judges this segment by: its newest batch timestamp, or the
        broker time it was last written when batches carry none."""
        return self.max_timestamp if self.max_timestamp >= 0 else self.last_modified_ms

    # -- appending ---------------------------------------------------------------------------

    def append(self, buffers: list[bytes | bytearray | memoryview], header: BatchHeader, offset: int,
               index_interval_bytes: int, now_ms: int) -> None:
        """Write one batch (already validated and offset-stamped) and update the indexes.

        On a write error the .log is cut back to its previous size, so the segment is
        unchanged, and the error propagates.
        """
        size = header.batch_length + LOG_OVERHEAD
        position = self.size
        try:
            write_all(self.log_fd, buffers)
        except OSError:
            os.ftruncate(self.log_fd, position)
            raise
        self.size = position + size
        self.next_offset = offset + header.last_offset_delta + 1
        self.last_modified_ms = now_ms
        if self.rolling_timestamp is None:
            self.rolling_timestamp = header.max_timestamp if header.max_timestamp >= 0 else now_ms
        index_entries = self.note_batch(position, offset, header, index_interval_bytes)
        if index_entries is not None:
            offset_entry, time_entry = index_entries
            os.write(self.index_fd, offset_entry)
            if time_entry:
                os.write(self.time_fd, time_entry)

    def note_batch(self, position: int, offset: int, header: BatchHeader,
                   index_interval_bytes: int) -> tuple[bytes, bytes] | None:
        """Account for a batch at ``position`` in the in-memory indexes.

        Shared by the append path and by recovery's rebuild, so both produce exactly the
        same entries. Returns the encoded (offset entry, time entry or b"") to persist when
        this batch earned an index entry, else None.
        """
        if header.max_timestamp > self.max_timestamp:
            self.max_timestamp = header.max_timestamp
            self.offset_of_max_timestamp = offset
        # Kafka's rule: index a batch once more than index_interval_bytes have gone by since
        # the last entry. Position 0 needs no entry: a lookup before the first entry starts
        # at the beginning of the file anyway.
        result = None
        if self.bytes_since_index > index_interval_bytes:
            relative = offset - self.base_offset
            self.index_offsets.append(offset)
            self.index_positions.append(position)
            time_entry = b""
            if not self.time_stamps or self.max_timestamp > self.time_stamps[-1]:
                self.time_stamps.append(self.max_timestamp)
                self.time_offsets.append(self.offset_of_max_timestamp)
                time_entry = TIME_ENTRY.pack(self.max_timestamp, self.offset_of_max_timestamp - self.base_offset)
            result = (OFFSET_ENTRY.pack(relative, position), time_entry)
            self.bytes_since_index = 0
        self.bytes_since_index += header.batch_length + LOG_OVERHEAD
        return result

    def encoded_indexes(self) -> tuple[bytes, bytes]:
        """The full contents the .index and .timeindex files should have."""
        offsets = b"".join(
            OFFSET_ENTRY.pack(o - self.base_offset, p) for o, p in zip(self.index_offsets, self.index_positions)
        )
        times = b"".join(
            TIME_ENTRY.pack(t, o - self.base_offset) for t, o in zip(self.time_stamps, self.time_offsets)
        )
        return offsets, times

    # -- reading -----------------------------------------------------------------------------

    def headers(self, start: int = 0, chunk_size: int = SCAN_CHUNK) -> Iterator[tuple[int, BatchHeader]]:
        """Yield ``(position, header)`` for each batch from file position ``start`` on.

        Reads ``chunk_size`` bytes at a time and walks headers inside each chunk, re-reading
        from a batch's start when its header straddles the chunk end.
        """
        position = start
        chunk_size = max(chunk_size, HEADER_SIZE)
        while position < self.size:
            want = min(chunk_size, self.size - position)
            chunk = os.pread(self.log_fd, want, position)
            advanced = False
            # Only headers are wanted, so walk lengths inside the chunk; a batch may extend
            # past the chunk end, which is fine — the next chunk starts where it ends.
            inner = 0
            while len(chunk) - inner >= HEADER_SIZE:
                header = BatchHeader._make(HEADER_STRUCT.unpack_from(chunk, inner))
                yield position + inner, header
                inner += header.batch_length + LOG_OVERHEAD
                advanced = True
            if not advanced:
                # Fewer than 61 bytes left in this segment: cannot happen for a recovered
                # segment (sizes are batch-aligned); stop rather than loop.
                return
            position += inner

    def locate(self, offset: int, index_interval_bytes: int = SCAN_CHUNK) -> tuple[int, BatchHeader]:
        """The position and header of the batch containing ``offset`` (which must be in
        ``[base_offset, next_offset)``)."""
        i = bisect.bisect_right(self.index_offsets, offset) - 1
        start = self.index_positions[i] if i >= 0 else 0
        # The wanted batch starts at most about one index interval after the entry, so a read
        # of that size usually finds it with one syscall — and no more bytes than needed when
        # batches are large (a fetch loop calls this once per read).
        chunk = min(SCAN_CHUNK, index_interval_bytes + HEADER_SIZE)
        for position, header in self.headers(start, chunk):
            if header.base_offset + header.last_offset_delta >= offset:
                return position, header
        raise AssertionError(f"offset {offset} not found in segment {self.base_offset}")  # pragma: no cover

    def read_from(self, position: int, max_bytes: int, *, at_least_one: bool) -> bytes:
        """Whole batches from ``position`` whose total size stays within ``max_bytes``;
        the first batch regardless of size when ``at_least_one``."""
        remaining = self.size - position
        if remaining <= 0:
            return b""
        data = os.pread(self.log_fd, min(max(max_bytes, 0), remaining), position)
        end = 0
        length = len(data)
        while end + LOG_OVERHEAD <= length:
            size = _INT32.unpack_from(data, end + BATCH_LENGTH)[0] + LOG_OVERHEAD
            if end + size > length:
                break
            end += size
        if end == 0:
            if not at_least_one:
                return b""
            (batch_length,) = _INT32.unpack_from(os.pread(self.log_fd, LOG_OVERHEAD, position), BATCH_LENGTH)
            return os.pread(self.log_fd, batch_length + LOG_OVERHEAD, position)
        return data if end == length else data[:end]

    def first_at_or_after_timestamp(self, timestamp: int) -> BatchHeader | None:
        """The first batch whose maxTimestamp >= ``timestamp``, using the time index to skip."""
        if self.max_timestamp < timestamp:
            return None
        # Time-index entries with a max-so-far below the target prove that every batch up to
        # that entry's batch is older than the target, so the walk may start there.
        i = bisect.bisect_left(self.time_stamps, timestamp) - 1
        start = 0
        if i >= 0:
            start, _ = self.locate(self.time_offsets[i])
        for _, header in self.headers(start):
            if header.max_timestamp >= timestamp:
                return header
        return None

