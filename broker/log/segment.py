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

Open files: only the *active* segment (the one appended to) holds descriptors of its own, all
three. A *sealed* segment keeps its indexes in memory and borrows a read-only descriptor of
its ``.log`` from the broker's shared :class:`~broker.log.file_cache.OpenFileCache` for each
read, so retained segments cost no descriptor while idle, however many there are.

What does not live here: deciding when to roll or delete (``partition_log.py``), verifying
and repairing files after a crash (``verify.py``, ``recovery.py``).
"""

from __future__ import annotations

import bisect
import errno
import os
import struct
from collections.abc import Iterator
from pathlib import Path

import attrs

from broker.log.file_cache import OpenFileCache
from wire.kafka.batch import BATCH_LENGTH, HEADER_SIZE, HEADER_STRUCT, LOG_OVERHEAD, BatchHeader

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


def with_path(error: OSError, path: Path) -> OSError:
    """``error`` with ``filename`` set to ``path`` when the system call did not set it.

    Calls on a descriptor (``pread``, ``writev``, ``fsync``) raise errors that name no file;
    the log line and the operator need to know which file failed.
    """
    if error.filename is None:
        error.filename = str(path)
    return error


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
    """One segment's in-memory indexes and, while it is active, its open files (state, hence
    ``define``; ``eq=False`` so it hashes by identity: it is a key of the file cache)."""

    base_offset: int
    directory: Path
    # Where a sealed segment borrows a descriptor of its .log for reads (see module docstring).
    files: OpenFileCache | None = None
    # The active segment's own descriptors; -1 once sealed (or before ``activate``).
    log_fd: int = -1
    index_fd: int = -1
    time_fd: int = -1
    # Bytes of whole batches in the .log file (the file is never longer, see recovery).
    size: int = 0
    # Offset the next batch appended here would get (set to ``base_offset`` when built).
    next_offset: int = attrs.field(default=attrs.Factory(lambda self: self.base_offset, takes_self=True))
    # How many bytes of .log are known to be on stable storage (fsync'd).
    flushed_size: int = 0
    # Sparse offset index, absolute offsets (bisect-able) and positions, kept in step.
    index_offsets: list[int] = attrs.field(factory=list)
    index_positions: list[int] = attrs.field(factory=list)
    # Sparse time index: max timestamp so far and the base offset of the batch holding it.
    time_stamps: list[int] = attrs.field(factory=list)
    time_offsets: list[int] = attrs.field(factory=list)
    # For each time-index entry, the offset of the batch whose offset-index entry it was
    # written with (in memory only): truncation keeps exactly the entries written before a cut.
    time_moments: list[int] = attrs.field(factory=list)
    bytes_since_index: int = 0
    # Largest batch maxTimestamp in the segment, and the batch base offset that carries it.
    max_timestamp: int = -1
    offset_of_max_timestamp: int = -1
    # The time that segment_ms is measured from (Kafka: the first batch's timestamp).
    rolling_timestamp: int | None = None
    # Broker time of the last append (or open): retention's fallback when batches carry no
    # timestamps (maxTimestamp -1).
    last_modified_ms: int = 0
    # Set (to the error text) when a failed write could not be cut back: see ``append``.
    append_blocked: str | None = None

    # -- files -------------------------------------------------------------------------------

    @classmethod
    def open_files(cls, directory: Path, base_offset: int, *, now_ms: int,
                   files: OpenFileCache | None = None) -> Segment:
        """Create (or open) the three files of a new active segment, with empty in-memory state.

        Raises:
            OSError: a file could not be opened; none of the three stays open.
        """
        segment = cls(base_offset=base_offset, directory=directory, files=files, last_modified_ms=now_ms)
        segment.activate()
        return segment

    def activate(self) -> None:
        """Open the three files for appending: this segment becomes the active one.

        Raises:
            OSError: a file could not be opened (no descriptor left, disk full for a new
                file…); whatever was opened is closed again, so nothing leaks.
        """
        opened: list[int] = []
        try:
            for path in (self.log_path, self.index_path, self.time_index_path):
                opened.append(_open_rw(path))
        except OSError:
            for fd in opened:
                os.close(fd)
            raise
        self.log_fd, self.index_fd, self.time_fd = opened

    @property
    def log_path(self) -> Path:
        return self.directory / f"{segment_name(self.base_offset)}.log"

    @property
    def index_path(self) -> Path:
        return self.directory / f"{segment_name(self.base_offset)}.index"

    @property
    def time_index_path(self) -> Path:
        return self.directory / f"{segment_name(self.base_offset)}.timeindex"

    @property
    def is_active(self) -> bool:
        """Whether this segment holds its own descriptors (it is the one appended to)."""
        return self.log_fd >= 0

    def _log_descriptor(self) -> int:
        """A descriptor to read the .log through: the active segment's own, or one borrowed
        from the shared cache — valid only until the next call into the cache."""
        if self.log_fd >= 0:
            return self.log_fd
        assert self.files is not None, "a sealed segment reads through the shared file cache"
        return self.files.descriptor(self, self.log_path)

    def pread(self, size: int, position: int) -> bytes:
        """Up to ``size`` bytes of the .log from ``position``.

        Raises:
            OSError: the read (or opening the file) failed; ``filename`` names the .log.
        """
        try:
            return os.pread(self._log_descriptor(), size, position)
        except OSError as exc:
            raise with_path(exc, self.log_path) from None

    def fsync(self) -> None:
        """fsync the .log (and, while active, the indexes), blocking.

        Raises:
            OSError: ``filename`` names the .log.
        """
        try:
            if self.log_fd >= 0:
                for fd in (self.log_fd, self.index_fd, self.time_fd):
                    os.fsync(fd)
            else:
                # Linux flushes a file's dirty pages whichever descriptor asks, so one borrowed
                # from the cache (read-only, even) makes what was written before sealing durable.
                os.fsync(self._log_descriptor())
        except OSError as exc:
            raise with_path(exc, self.log_path) from None

    def duplicate_descriptors(self) -> list[int]:
        """Duplicates (``os.dup``) of the descriptors an fsync needs; the caller closes them.

        For a worker thread: the duplicates stay valid if the cache evicts (closes) its own
        copy, or retention deletes the segment, while the thread is still using them.

        Raises:
            OSError: ``filename`` names the .log.
        """
        try:
            if self.log_fd >= 0:
                return [os.dup(fd) for fd in (self.log_fd, self.index_fd, self.time_fd)]
            # dup at once: the next call into the cache may close the descriptor it returned.
            return [os.dup(self._log_descriptor())]
        except OSError as exc:
            raise with_path(exc, self.log_path) from None

    def seal(self) -> None:
        """No more appends: close the two index files and hand the .log to the file cache.

        Only the active segment writes its indexes (readers use the in-memory copies), so a
        sealed segment needs no descriptor of its own: the cache keeps its .log open while it
        is recently used and closes it when others are needed more. Index files are not
        fsynced here; they are derived data, and recovery rebuilds any that a crash left short.
        """
        for fd in (self.index_fd, self.time_fd):
            if fd >= 0:
                os.close(fd)
        self.index_fd = self.time_fd = -1
        if self.log_fd >= 0:
            if self.files is not None:
                self.files.adopt(self, self.log_fd)
            else:
                os.close(self.log_fd)
            self.log_fd = -1

    def close(self) -> None:
        """Close every descriptor of this segment, its own or held for it by the cache."""
        for fd in (self.log_fd, self.index_fd, self.time_fd):
            if fd >= 0:
                os.close(fd)
        self.log_fd = self.index_fd = self.time_fd = -1
        if self.files is not None:
            self.files.discard(self)

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
               index_interval_bytes: int, now_ms: int) -> OSError | None:
        """Write one batch (already validated and offset-stamped) and update the indexes.

        On a write error the .log is cut back to its previous size, so the segment is
        unchanged, and the error propagates. If even that cut fails, the file may end in a
        partial batch that appends (O_APPEND writes at the real end of file) would land after,
        where no read looks: the segment then refuses appends until a restart, whose recovery
        cuts the partial batch.

        Returns:
            None, or the error that writing an *index* entry raised. The batch is stored all
            the same — indexes are derived data, the in-memory copy is complete, and recovery
            rebuilds the files — so the caller only reports it.

        Raises:
            OSError: the batch was not stored (``filename`` names the .log).
        """
        if self.append_blocked is not None:
            raise OSError(errno.EIO, f"appends refused since a failed write could not be undone "
                                     f"({self.append_blocked}); restart the broker to recover", str(self.log_path))
        size = header.batch_length + LOG_OVERHEAD
        position = self.size
        try:
            write_all(self.log_fd, buffers)
        except OSError as exc:
            try:
                os.ftruncate(self.log_fd, position)
            except OSError as cut_error:
                self.append_blocked = cut_error.strerror or str(cut_error)
            raise with_path(exc, self.log_path) from None
        self.size = position + size
        self.next_offset = offset + header.last_offset_delta + 1
        self.last_modified_ms = now_ms
        if self.rolling_timestamp is None:
            self.rolling_timestamp = header.max_timestamp if header.max_timestamp >= 0 else now_ms
        index_entries = self.note_batch(position, offset, header, index_interval_bytes)
        if index_entries is not None:
            offset_entry, time_entry = index_entries
            try:
                os.write(self.index_fd, offset_entry)
                if time_entry:
                    os.write(self.time_fd, time_entry)
            except OSError as exc:
                return with_path(exc, self.index_path)
        return None

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
                self.time_moments.append(offset)
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

    def truncate(self, position: int, index_interval_bytes: int) -> None:
        """Cut the ``.log`` at ``position`` (a batch boundary, at most ``size``), fsync it, and
        bring the in-memory indexes and the index files back to what they were when the
        segment ended there — exactly what recovery would rebuild, so the next open finds
        nothing stale.

        Index entries depend only on the batches before them, so the ones written before the
        cut stay as they are. From the last of them (a batch whose state is known: the index
        says where it is, the time index what the largest timestamp was) ``note_batch`` is
        replayed up to the cut: about ``index_interval_bytes`` read, whatever the segment size.

        The segment must be active (it is, or becomes, the one appended to).

        Raises:
            OSError: the cut or its fsync failed (``filename`` names the file).
        """
        assert self.log_fd >= 0, "only the active segment is truncated"
        assert 0 <= position <= self.size, (position, self.size)
        try:
            os.ftruncate(self.log_fd, position)
            os.fsync(self.log_fd)
        except OSError as exc:
            raise with_path(exc, self.log_path) from None
        self.size = position
        self.flushed_size = min(self.flushed_size, position)
        self.append_blocked = None
        # Entries at batches before the cut; the last one is where the replay starts.
        kept = bisect.bisect_left(self.index_positions, position)
        replay_from = self.index_positions[kept - 1] if kept else 0
        restart_offset = self.index_offsets[kept - 1] if kept else -1
        times = bisect.bisect_right(self.time_moments, restart_offset)
        del self.index_offsets[kept:], self.index_positions[kept:]
        del self.time_stamps[times:], self.time_offsets[times:], self.time_moments[times:]
        # Right after the batch that earned an index entry, the largest timestamp so far is
        # the last time entry's (one is written whenever it grew since the previous entry).
        self.max_timestamp = self.time_stamps[-1] if self.time_stamps else -1
        self.offset_of_max_timestamp = self.time_offsets[-1] if self.time_offsets else -1
        self.bytes_since_index = 0
        next_offset = self.base_offset
        chunk = min(SCAN_CHUNK, index_interval_bytes + HEADER_SIZE)
        for batch_position, header in self.headers(replay_from, chunk):
            if batch_position == replay_from and kept:
                # Its entries are kept; only what follows it counts from here.
                self.bytes_since_index = header.batch_length + LOG_OVERHEAD
            else:
                self.note_batch(batch_position, header.base_offset, header, index_interval_bytes)
            next_offset = header.base_offset + header.last_offset_delta + 1
        self.next_offset = next_offset
        if position == 0:
            self.rolling_timestamp = None
        offsets, times_data = self.encoded_indexes()
        try:
            for fd, content in ((self.index_fd, offsets), (self.time_fd, times_data)):
                os.ftruncate(fd, 0)
                if content:
                    write_all(fd, [content])
        except OSError as exc:
            raise with_path(exc, self.index_path) from None

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
            chunk = self.pread(want, position)
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
        data = self.pread(min(max(max_bytes, 0), remaining), position)
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
            (batch_length,) = _INT32.unpack_from(self.pread(LOG_OVERHEAD, position), BATCH_LENGTH)
            return self.pread(batch_length + LOG_OVERHEAD, position)
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

