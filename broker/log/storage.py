"""``LogStorage``: what every partition log of one broker shares.

Two things are broker-wide rather than per partition:

* the bounded cache of open segment files (``file_cache.py``): the open-file limit is the
  process's, so the bound must be one number for all partitions together;
* the I/O error reporter (``io_errors.py``): one rate limit and one count for the broker,
  so a full disk produces one log line, not one per partition;
* the fsync latency histogram: the front-end that runs an fsync times it and records it
  here (the core has no clock), for ``/metrics``.

The topic registry builds one ``LogStorage`` and hands it to every ``PartitionLog`` it opens;
a ``PartitionLog`` opened on its own (tests, benchmarks) gets a private one.
"""

from __future__ import annotations

import attrs

from broker.histogram import Histogram, HistogramSnapshot
from broker.log.file_cache import FileCacheStatistics, OpenFileCache, default_capacity, open_file_limit
from broker.log.io_errors import IoErrorReporter
from broker.loggers import get_logger

log = get_logger(__name__)


@attrs.frozen(kw_only=True)
class LogStorageStatistics:
    """A snapshot for INFO, the CLI and tests."""

    files: FileCacheStatistics
    io_errors: int
    fsync_seconds: HistogramSnapshot


@attrs.define(eq=False)
class LogStorage:
    """The shared file cache and I/O error reporter. Build it with :meth:`from_config`."""

    files: OpenFileCache
    io_errors: IoErrorReporter = attrs.field(factory=IoErrorReporter)
    # How long each fsync of a partition log took (seconds), as measured by whoever ran it.
    fsync_seconds: Histogram = attrs.field(factory=Histogram)

    @classmethod
    def from_config(cls, max_open_segment_files: int) -> LogStorage:
        """A storage whose cache holds ``max_open_segment_files`` descriptors; 0 means
        "derive it from this process's open-file limit" (``file_cache.default_capacity``).

        An explicit size that leaves little of the limit for anything else is kept (the
        operator asked for it) but logged, since connections may then fail to open.
        """
        limit = open_file_limit()
        capacity = max_open_segment_files or default_capacity(limit)
        if limit is not None and capacity > limit // 2:
            log.warning("open_segment_files_near_limit", max_open_segment_files=capacity, open_file_limit=limit)
        return cls(files=OpenFileCache(capacity))

    def statistics(self) -> LogStorageStatistics:
        return LogStorageStatistics(files=self.files.statistics(), io_errors=self.io_errors.total,
                                    fsync_seconds=self.fsync_seconds.snapshot())
