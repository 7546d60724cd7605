"""Facts about the running broker that INFO, the CLI, metrics and ``compare`` report.

``ServerInfo`` is fixed at start-up (who we are, where we listen, which guarantees are in
force); the live counters live with the parts that count them (``PubSub.statistics()``,
``PartitionLog.statistics()``, ``LogStorage.statistics()`` — open segment files and I/O
errors, reachable from ``ServerInfo.log_statistics()``) and are gathered only as frozen
snapshots, so a report never reads half-updated state.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import attrs

from broker.config import BrokerConfig
from broker.log.storage import LogStorage, LogStorageStatistics


def dualmq_version() -> str:
    """The installed distribution's version (``0.0.0+unknown`` from a bare source tree)."""
    try:
        return version("dualmq")
    except PackageNotFoundError:
        return "0.0.0+unknown"


@attrs.frozen(kw_only=True)
class ServerInfo:
    """Identity and settings of this broker process, fixed once it has started."""

    config: BrokerConfig
    started_at_ms: int
    pid: int = attrs.field(factory=os.getpid)
    version: str = attrs.field(factory=dualmq_version)
    kafka_address: str = ""
    resp_address: str = ""
    # The log's shared file cache and I/O error counter (live: read it through
    # ``log_statistics``); None when no log is attached (tests of one front-end alone).
    log_storage: LogStorage | None = None
    # Stops the whole broker, as SHUTDOWN asks (the daemon cancels its nursery); None when
    # a front-end runs without a broker around it that it could stop.
    request_shutdown: Callable[[], None] | None = None

    def log_statistics(self) -> LogStorageStatistics | None:
        """A snapshot of the log's open segment files and I/O error count, if a log is attached."""
        return self.log_storage.statistics() if self.log_storage is not None else None

    @property
    def data_dir(self) -> Path:
        return self.config.data_dir

    def uptime_seconds(self, now_ms: int) -> int:
        return max(0, (now_ms - self.started_at_ms) // 1000)
