"""A bounded cache of open ``.log`` descriptors for sealed segments, shared by all partitions.

Why it exists: a partition with a small ``segment.bytes`` accumulates thousands of segments,
and a process may only hold so many open files (``ulimit -n``, often 1024). If every retained
segment kept its file open, the broker would run out of descriptors — at start-up, where
recovery opened every segment, and later, when it could no longer accept a connection.

So a sealed segment (one no longer appended to) costs no descriptor while idle. When a read
needs its ``.log``, the segment asks this cache, which hands back an open descriptor: one it
already holds (a hit), or a freshly opened read-only one (a miss). When the cache is full, the
descriptor used least recently is closed (LRU eviction). Consumers read a segment from start
to end, so a small cache serves them with few re-opens; only the *active* segment of each
partition keeps its three files open outside the cache.

How Kafka does it: it keeps every segment's file open (and memory-maps the indexes) and asks
the operator to raise ``ulimit -n`` to 100,000 or more; it has no setting like this one. We
bound the count instead, because a teaching broker must keep working under a default limit.

Rules for users of a descriptor from :meth:`OpenFileCache.descriptor`: use it at once, with
no ``await`` (and no ``yield``) before the system call, because the next call into the cache
may close it — and the kernel reuses descriptor numbers, so a stale one could read another
file. Code that hands a descriptor to another thread (fsync in a worker) duplicates it first
with ``os.dup``: eviction then closes only the cache's copy.

No clock, no threads, no trio: a plain ordered dict.
"""

from __future__ import annotations

import os
import resource
from collections import OrderedDict
from pathlib import Path
from typing import Hashable

import attrs

# ``[log] max_open_segment_files = 0`` means "derive it from the open-file limit": this
# fraction of the soft limit, within these bounds. An eighth leaves most descriptors to
# connections and to the active segments of partitions (three files each).
AUTO_FRACTION = 8
AUTO_MIN = 16
AUTO_MAX = 4096

_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


def open_file_limit() -> int | None:
    """This process's soft open-file limit, or None when it is unlimited."""
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return None if soft == resource.RLIM_INFINITY else soft


def default_capacity(soft_limit: int | None) -> int:
    """The cache size used when the config says 0 (auto): an eighth of ``soft_limit``,
    at least 16 and at most 4096 (4096 when the limit is unlimited)."""
    if soft_limit is None:
        return AUTO_MAX
    return max(AUTO_MIN, min(AUTO_MAX, soft_limit // AUTO_FRACTION))


@attrs.frozen(kw_only=True)
class FileCacheStatistics:
    """A snapshot of the cache, for stats output and tests."""

    open_files: int
    capacity: int
    hits: int
    misses: int
    evictions: int


class OpenFileCache:
    """An LRU of read-only descriptors, keyed by the object that owns the file.

    Args:
        capacity: the most descriptors held open at once (at least 1).
    """

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, not {capacity}")
        self.capacity = capacity
        self._open: OrderedDict[Hashable, int] = OrderedDict()
        self.hits = 0
        self.misses = 0
        self.evictions = 0

    def __len__(self) -> int:
        return len(self._open)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._open

    def descriptor(self, key: Hashable, path: Path) -> int:
        """An open descriptor for ``path`` (read-only if it had to be opened here).

        Valid until the next call into this cache — see the module docstring.

        Raises:
            OSError: the file could not be opened (missing, or no descriptor left: EMFILE).
        """
        fd = self._open.get(key)
        if fd is not None:
            self._open.move_to_end(key)
            self.hits += 1
            return fd
        fd = os.open(path, os.O_RDONLY | _O_CLOEXEC)
        self.misses += 1
        self._insert(key, fd)
        return fd

    def adopt(self, key: Hashable, fd: int) -> None:
        """Take ownership of an already open descriptor (a segment that was just sealed keeps
        its ``.log`` descriptor here rather than closing it: it is likely to be read soon)."""
        self.discard(key)
        self._insert(key, fd)

    def _insert(self, key: Hashable, fd: int) -> None:
        self._open[key] = fd
        while len(self._open) > self.capacity:
            _, oldest = self._open.popitem(last=False)
            self.evictions += 1
            os.close(oldest)

    def discard(self, key: Hashable) -> None:
        """Close the descriptor held for ``key``, if any (its file is closed or deleted)."""
        fd = self._open.pop(key, None)
        if fd is not None:
            os.close(fd)

    def close_all(self) -> None:
        while self._open:
            _, fd = self._open.popitem()
            os.close(fd)

    def statistics(self) -> FileCacheStatistics:
        return FileCacheStatistics(open_files=len(self._open), capacity=self.capacity, hits=self.hits,
                                   misses=self.misses, evictions=self.evictions)
