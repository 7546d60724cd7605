"""Verifying a partition's files without changing them: the walk recovery and ``dualmq check`` share.

Nothing is served that has not been verified. A crash can leave the newest data half-written
(a batch cut anywhere, zeros where a batch should be), and a disk can damage *any* byte of an
older segment, including the ``baseOffset`` and ``batchLength`` fields that Kafka's CRC does
not cover. So every batch of every segment is checked, in order:

* its header fits in the file, ``magic`` is 2, ``batchLength`` is at least a header's worth
  and the batch ends inside the file (a garbage length never sizes an allocation: batches
  larger than one read are checksummed piece by piece);
* ``partitionLeaderEpoch`` is not negative and never decreases along the log, across segments
  (a leader stamps its epoch, a follower truncates before taking a newer leader's batches, so
  epochs only rise; the field sits outside the CRC, so a decrease can only be damage). The
  walk also collects where each epoch starts: the partition's leader-epoch cache (``epochs.py``)
  is checked against that list at open;
* offsets are dense: each batch starts exactly where the previous one ended, and a segment's
  first batch at the offset in its file name — this is what catches a damaged ``baseOffset``,
  which would otherwise serve records under offsets like 1,095,216,667,480;
* the CRC-32C over attributes..end matches (catches damaged records and, since the length
  decides where the CRC stops, most damaged lengths).

Segments must chain: each starts at the offset where the previous one ends. The first batch
that fails, or the first segment that does not continue the chain, ends the intact prefix;
Kafka's recovery does the same — it truncates at the first invalid batch and deletes the
segments after it, because offsets after a hole cannot be served consistently.

Why verify everything at start-up rather than each segment before its first read: a cut
found while serving would make the log end move backwards under producers and consumers that
were already told about later offsets; at start-up nobody has been told anything yet. What it
costs, measured with ``bench/verify_segments.py --mib 1024`` (1 GiB per batch size, page cache
warm, 2 shared cores, where CRC-32C alone runs at 8-14 GB/s): the walk runs at 2.0 GB/s with
16 KB batches (start-up grows by 0.3-0.5 s per GiB), 0.6 GB/s with 1 KB batches (~2 s per GiB)
and 0.13 GB/s with 170-byte one-record batches (8-10 s per GiB): the per-batch Python work,
~1.3-1.7 µs, not the CRC, dominates small batches. Verifying lazily costs the same, moved onto
the first fetch of each sealed segment: with the default 1 GiB segments that fetch would stall
the event loop — every connection — for 0.5 to 8 s.

The walk also rebuilds each segment's sparse indexes in memory (``Segment.note_batch``) and
compares them with the ``.index`` / ``.timeindex`` files: an index is a cache of the ``.log``,
so one that differs is rewritten by recovery (reported by check), never trusted.

Everything here opens files read-only and changes nothing on disk (``fsync`` aside, which
changes no byte): ``recovery.py`` applies what a scan decided, ``check.py`` reports it.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

import attrs
import crc32c

from broker.log.segment import Segment, segment_name
from wire.kafka.batch import (
    BATCH_LENGTH,
    CRC_START,
    CURRENT_MAGIC,
    HEADER_SIZE,
    HEADER_STRUCT,
    LOG_OVERHEAD,
    MAGIC,
    BatchHeader,
)

_INT32 = struct.Struct(">i")
# Verification reads this much per system call; a batch larger than that is checksummed in
# pieces of this size, so memory stays bounded whatever a damaged length says.
VERIFY_CHUNK = 4 * 1024 * 1024
_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


@attrs.define
class BatchWalk:
    """What walking one ``.log`` found: the intact prefix and why it ended early, if it did."""

    end: int  # bytes of verified whole batches from the start of the file
    next_offset: int  # the offset after the last verified batch
    batches: int = 0
    reason: str | None = None  # why the walk stopped before the end of the file
    # The partitionLeaderEpoch of the last verified batch (the one given to the walk if none).
    epoch: int = -1


def walk_log(fd: int, segment: Segment, file_size: int, index_interval_bytes: int, *,
             epoch: int = -1, epoch_starts: list[tuple[int, int]] | None = None) -> BatchWalk:
    """Verify the batches of one ``.log`` from position 0 (the checks in the module docstring).

    Feeds every good batch to ``segment``'s in-memory indexes, which must start empty.

    Args:
        fd: a descriptor of the file, readable.
        segment: the segment the file belongs to (its ``base_offset`` is the expected first offset).
        file_size: how far to walk.
        index_interval_bytes: the spacing of index entries (to rebuild the indexes exactly).
        epoch: the epoch of the batch before this segment (-1: none); no batch may have less.
        epoch_starts: where each batch that raises the epoch is noted as ``(epoch, base offset)``.

    Returns:
        The intact prefix. ``end < file_size`` exactly when ``reason`` is set.

    Raises:
        OSError: a read failed.
    """
    # The loop runs once per batch, millions of times for a large log of small batches: it
    # keeps its state in local variables and decodes each header with one C-level unpack.
    expected = segment.base_offset
    last_epoch = epoch
    reason = None
    batches = 0
    buffer = b""
    view = memoryview(buffer)
    buffer_start = 0
    position = 0
    while position < file_size:
        remaining = file_size - position
        if remaining < HEADER_SIZE:
            reason = f"torn batch: only {remaining} bytes at the end of the file"
            break
        inner = position - buffer_start
        if len(buffer) - inner < HEADER_SIZE:
            buffer = os.pread(fd, min(VERIFY_CHUNK, remaining), position)
            view = memoryview(buffer)
            buffer_start, inner = position, 0
            if len(buffer) < HEADER_SIZE:
                reason = "the file shrank while it was being read"
                break
        if buffer[inner + MAGIC] != CURRENT_MAGIC:
            reason = f"magic byte is {buffer[inner + MAGIC]}, expected {CURRENT_MAGIC}"
            break
        fields = HEADER_STRUCT.unpack_from(buffer, inner)
        base_offset, batch_length, epoch, _magic, stored_crc, _attributes, last_offset_delta = fields[:7]
        size = batch_length + LOG_OVERHEAD
        if size < HEADER_SIZE:
            reason = f"batchLength {batch_length} is too small for a v2 batch"
            break
        if size > remaining:
            reason = f"batchLength {batch_length} runs past the end of the file ({remaining} bytes left)"
            break
        if epoch < last_epoch or epoch < 0:
            reason = (f"partitionLeaderEpoch {epoch} is negative" if epoch < 0 else
                      f"partitionLeaderEpoch decreases from {last_epoch} to {epoch}")
            break
        if base_offset != expected:
            reason = f"offsets not dense: batch has baseOffset {base_offset}, expected {expected}"
            break
        if last_offset_delta < 0:
            reason = f"negative lastOffsetDelta {last_offset_delta}"
            break
        if len(buffer) - inner >= size:
            crc = crc32c.crc32c(view[inner + CRC_START : inner + size])
        elif size <= VERIFY_CHUNK:
            buffer = os.pread(fd, min(VERIFY_CHUNK, remaining), position)
            view = memoryview(buffer)
            buffer_start, inner = position, 0
            if len(buffer) < size:
                reason = "the file shrank while it was being read"
                break
            crc = crc32c.crc32c(view[CRC_START:size])
        else:
            crc = _crc_in_pieces(fd, position, size)
            buffer, buffer_start = b"", position + size
            view = memoryview(buffer)
            if crc is None:
                reason = "the file shrank while it was being read"
                break
        if crc != stored_crc:
            reason = "CRC-32C mismatch"
            break
        header = BatchHeader._make(fields)
        segment.note_batch(position, base_offset, header, index_interval_bytes)
        if not batches:
            # Kafka measures segment.ms from the first batch's timestamp.
            segment.rolling_timestamp = header.max_timestamp if header.max_timestamp >= 0 else None
        if epoch != last_epoch:
            if epoch_starts is not None:
                epoch_starts.append((epoch, base_offset))
            last_epoch = epoch
        batches += 1
        position += size
        expected = base_offset + last_offset_delta + 1
    # On a failure ``position`` is where the failed batch starts: the end of the intact prefix.
    return BatchWalk(end=position, next_offset=expected, batches=batches, reason=reason, epoch=last_epoch)


def _crc_in_pieces(fd: int, position: int, size: int) -> int | None:
    """CRC-32C of bytes [CRC_START, size) of the batch at ``position``, read VERIFY_CHUNK at a
    time; None if the file ended early."""
    crc = 0
    done = CRC_START
    while done < size:
        piece = os.pread(fd, min(VERIFY_CHUNK, size - done), position + done)
        if not piece:
            return None
        crc = crc32c.crc32c(piece, crc)
        done += len(piece)
    return crc


def count_batches(fd: int, start: int, end: int) -> int:
    """How many batches (a torn last one included) the range [start, end) held, going by
    their length fields — for the log line that says what a cut dropped."""
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


@attrs.frozen(kw_only=True)
class Cut:
    """Where the intact prefix of a partition ends inside a file."""

    path: Path
    position: int  # the file is intact before this byte
    file_size: int
    reason: str
    batches_kept: int
    batches_dropped: int

    @property
    def bytes_dropped(self) -> int:
        return self.file_size - self.position


@attrs.frozen(kw_only=True)
class DroppedSegment:
    """A segment after the intact prefix: unreachable, so recovery deletes it."""

    path: Path
    base_offset: int
    size: int


@attrs.define(kw_only=True)
class PartitionScan:
    """What a scan of one partition directory found, and what recovery would do about it."""

    directory: Path
    # The segments recovery keeps, in offset order, with their in-memory indexes and sizes
    # (after the cut, if any). They hold no descriptors.
    segments: list[Segment] = attrs.field(factory=list)
    # Sizes of the kept segments' .log files as found (before any cut).
    found_sizes: list[int] = attrs.field(factory=list)
    cut: Cut | None = None
    # Segments after the intact prefix, and why they are unreachable.
    dropped: list[DroppedSegment] = attrs.field(factory=list)
    drop_reason: str | None = None
    # Index files of kept segments whose content differs from what the .log says.
    stale_indexes: list[Path] = attrs.field(factory=list)
    # Index files with no .log (left by a deletion a crash interrupted).
    stray_files: list[Path] = attrs.field(factory=list)
    # (epoch, start offset) of each leader epoch in the kept batches, in log order.
    epoch_starts: list[tuple[int, int]] = attrs.field(factory=list)

    @property
    def bytes_dropped(self) -> int:
        """All the data recovery would remove: the cut's tail plus the dropped segments."""
        return (self.cut.bytes_dropped if self.cut else 0) + sum(d.size for d in self.dropped)

    @property
    def damaged(self) -> bool:
        """Whether any data is unusable or any index disagrees with its .log. (Empty trailing
        segments and stray index files are left-overs of interrupted rolls and deletions,
        not damage.)"""
        return self.bytes_dropped > 0 or bool(self.stale_indexes)

    @property
    def log_start_offset(self) -> int | None:
        return self.segments[0].base_offset if self.segments else None

    @property
    def log_end_offset(self) -> int | None:
        return self.segments[-1].next_offset if self.segments else None

    @property
    def intact_bytes(self) -> int:
        return sum(s.size for s in self.segments)


def segment_bases(directory: Path) -> tuple[list[int], list[Path]]:
    """The base offsets of the segments in ``directory``, sorted, and the index files that
    belong to no segment."""
    # Plain strings rather than Path objects: with tens of thousands of segments, pathlib's
    # parsing is a visible share of start-up time.
    bases: list[int] = []
    index_stems: list[tuple[str, str]] = []
    with os.scandir(directory) as entries:
        for entry in entries:
            stem, dot, suffix = entry.name.rpartition(".")
            if not dot:
                continue
            if suffix == "log":
                if len(stem) == 20 and stem.isdigit():
                    bases.append(int(stem))
            elif suffix in ("index", "timeindex"):
                index_stems.append((stem, entry.name))
    bases.sort()
    known = set(bases)
    strays = sorted(directory / name for stem, name in index_stems
                    if not (len(stem) == 20 and stem.isdigit() and int(stem) in known))
    return bases, strays


def scan_partition(directory: Path, index_interval_bytes: int, *, fsync: bool = False) -> PartitionScan:
    """Verify every segment of a partition directory, one file open at a time; change nothing.

    Args:
        directory: the partition directory (``<topic>-<partition>``); it must exist.
        index_interval_bytes: the broker's index spacing, to rebuild the indexes exactly.
        fsync: also fsync each ``.log`` while it is open (recovery: what survived the crash is
            made durable before the broker reports it as flushed). Writes no byte.

    Returns:
        The scan: kept segments, the cut, dropped segments, stale and stray index files.

    Raises:
        OSError: a file could not be listed, opened or read.
    """
    bases, strays = segment_bases(directory)
    scan = PartitionScan(directory=directory, stray_files=strays)
    expected: int | None = None
    epoch = -1
    for i, base in enumerate(bases):
        segment = Segment(base_offset=base, directory=directory)
        if expected is not None and base != expected:
            scan.drop_reason = (f"segment {segment_name(base)}.log starts at offset {base}, "
                                f"but the log before it ends at offset {expected}")
            scan.dropped = _dropped(directory, bases[i:])
            break
        fd = os.open(os.path.join(directory, segment_name(base) + ".log"), os.O_RDONLY | _O_CLOEXEC)
        try:
            file_size = os.fstat(fd).st_size
            walk = walk_log(fd, segment, file_size, index_interval_bytes, epoch=epoch,
                            epoch_starts=scan.epoch_starts)
            epoch = walk.epoch
            if walk.reason is not None:
                scan.cut = Cut(path=segment.log_path, position=walk.end, file_size=file_size, reason=walk.reason,
                               batches_kept=walk.batches,
                               batches_dropped=count_batches(fd, walk.end, file_size))
            if fsync:
                os.fsync(fd)
        finally:
            os.close(fd)
        segment.size = segment.flushed_size = walk.end
        segment.next_offset = walk.next_offset
        scan.segments.append(segment)
        scan.found_sizes.append(file_size)
        scan.stale_indexes.extend(_stale_indexes(segment))
        if scan.cut is not None:
            if i + 1 < len(bases):
                scan.drop_reason = f"they come after the damage in {segment.log_path.name}"
                scan.dropped = _dropped(directory, bases[i + 1 :])
            break
        expected = segment.next_offset
    return scan


def _dropped(directory: Path, bases: list[int]) -> list[DroppedSegment]:
    out = []
    for base in bases:
        path = directory / f"{segment_name(base)}.log"
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            size = 0
        out.append(DroppedSegment(path=path, base_offset=base, size=size))
    return out


def _stale_indexes(segment: Segment) -> list[Path]:
    """The segment's index files whose content differs from the indexes just rebuilt."""
    offsets, times = segment.encoded_indexes()
    stem = os.path.join(segment.directory, segment_name(segment.base_offset))
    stale = []
    for suffix, wanted in ((".index", offsets), (".timeindex", times)):
        path = stem + suffix
        try:
            size = os.stat(path).st_size
        except FileNotFoundError:
            stale.append(Path(path))
            continue
        # Compare sizes first: the common case (a matching, often empty, index) reads nothing.
        if size != len(wanted) or (size and Path(path).read_bytes() != wanted):
            stale.append(Path(path))
    return stale
