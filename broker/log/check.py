"""``dualmq check``: verify every segment of a data directory, report, change nothing.

Like Kafka's ``kafka-dump-log.sh --verify-index-only``/``--deep-iteration``, but with a verdict:
for each partition directory it runs the same walk recovery runs at start-up
(``verify.scan_partition``: every batch's offsets, lengths and CRC-32C, the chain between
segments, the index files against the ``.log``) and prints what is intact and, for anything
damaged, the file, the byte position and the reason — and what the next start's recovery would
cut or drop. Files are only ever opened read-only: nothing is truncated, rewritten or fsynced.

What it does not check: ``topics.json``, the committed-offsets journal and the producer-id
file. Their loaders repair as they load (they truncate a torn journal tail, for instance), so
checking them read-only needs read-only loaders of their own; until then ``dualmq check``
covers the partition logs, which is where the data is.

If a broker is running on the directory, its newest segments may be mid-write, so a torn tail
reported there can be an append in progress; the report says so. While the check runs it holds
a shared lock on ``<data_dir>/.lock``, so a broker cannot start (and repair) under it.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

import attrs

from broker.log.verify import PartitionScan, scan_partition, segment_bases

LOCK_FILE = ".lock"


@attrs.frozen(kw_only=True)
class PartitionCheck:
    """The verdict on one partition directory."""

    name: str
    scan: PartitionScan | None = None
    # Set when the directory could not be read at all (permissions, I/O error).
    error: str | None = None

    @property
    def damaged(self) -> bool:
        return self.error is not None or (self.scan is not None and self.scan.damaged)


@attrs.frozen(kw_only=True)
class DataDirCheck:
    """The verdict on a whole data directory."""

    data_dir: Path
    partitions: list[PartitionCheck]
    # The pid written in the lock file when a broker holds the directory, else None.
    running_broker: str | None = None

    @property
    def damaged(self) -> bool:
        return any(p.damaged for p in self.partitions)


def partition_directories(data_dir: Path) -> list[Path]:
    """The subdirectories of ``data_dir`` that hold segment files, sorted by name."""
    found = []
    with os.scandir(data_dir) as entries:
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                path = Path(entry.path)
                try:
                    bases, _ = segment_bases(path)
                except OSError:
                    found.append(path)  # unreadable: reported as such by check_data_dir
                    continue
                if bases:
                    found.append(path)
    return sorted(found)


@contextlib.contextmanager
def _shared_lock(data_dir: Path) -> Iterator[str | None]:
    """Hold a shared lock on the data dir's lock file, if it has one; yield the pid of a
    running broker that holds it exclusively (then no lock is held), else None."""
    try:
        fd = os.open(data_dir / LOCK_FILE, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        yield None
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise
            yield os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            return
        yield None
    finally:
        os.close(fd)  # drops the lock


def check_data_dir(data_dir: Path, index_interval_bytes: int) -> DataDirCheck:
    """Verify every partition directory of ``data_dir``, read-only.

    Args:
        data_dir: the broker's data directory.
        index_interval_bytes: the broker's ``[log] index_interval_bytes`` (indexes are
            compared with what that spacing produces).

    Returns:
        The verdict per partition.

    Raises:
        OSError: ``data_dir`` itself cannot be listed.
    """
    with _shared_lock(data_dir) as running:
        partitions = []
        for directory in partition_directories(data_dir):
            try:
                scan = scan_partition(directory, index_interval_bytes)
            except OSError as exc:
                partitions.append(PartitionCheck(name=directory.name, error=f"{exc.filename or directory}: {exc.strerror}"))
                continue
            partitions.append(PartitionCheck(name=directory.name, scan=scan))
    return DataDirCheck(data_dir=data_dir, partitions=partitions, running_broker=running)


def report_lines(check: DataDirCheck) -> list[str]:
    """The human-readable report: one block per partition, then the verdict."""
    lines = [f"checking {check.data_dir}"]
    if check.running_broker is not None:
        lines.append(f"note: a broker (pid {check.running_broker}) is using this directory; "
                     "a torn tail in a newest segment may be an append in progress")
    for partition in check.partitions:
        lines.extend(_partition_lines(partition))
    damaged = sum(p.damaged for p in check.partitions)
    if not check.partitions:
        lines.append("no partition directories with segment files found")
    if damaged:
        lines.append(f"DAMAGED: {damaged} of {_plural(len(check.partitions), 'partition')}")
    else:
        lines.append(f"OK: {_plural(len(check.partitions), 'partition')} intact")
    return lines


def _partition_lines(partition: PartitionCheck) -> list[str]:
    if partition.error is not None:
        return [f"{partition.name}: DAMAGED: could not be read: {partition.error}"]
    scan = partition.scan
    assert scan is not None
    if scan.segments and scan.log_end_offset > scan.log_start_offset:
        intact = (f"{_plural(len(scan.segments), 'segment')}, offsets {scan.log_start_offset}.."
                  f"{scan.log_end_offset - 1} ({scan.intact_bytes} bytes)")
    else:
        intact = "no records"
    lines = [f"{partition.name}: {'DAMAGED' if scan.damaged else 'ok'}: intact {intact}"]
    if scan.cut is not None:
        cut = scan.cut
        lines.append(f"  {cut.path.name} position {cut.position}: {cut.reason}")
        lines.append(f"    recovery would cut {cut.bytes_dropped} bytes ({cut.batches_dropped} batches) "
                     f"from this file")
    if scan.dropped:
        size = sum(d.size for d in scan.dropped)
        if size or scan.cut is not None:
            lines.append(f"  {_plural(len(scan.dropped), 'later segment')} ({size} bytes) unreachable, "
                         f"would be dropped: {scan.drop_reason}")
            lines.append(f"    first: {scan.dropped[0].path.name}, last: {scan.dropped[-1].path.name}")
        else:
            lines.append(f"  note: {_plural(len(scan.dropped), 'empty trailing segment')} would be removed")
    for path in scan.stale_indexes:
        lines.append(f"  {path.name}: does not match its .log (rebuilt from the .log at the next start; "
                     "no data lost)")
    if scan.stray_files:
        lines.append(f"  note: {_plural(len(scan.stray_files), 'index file')} without a .log would be removed")
    return lines


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"
