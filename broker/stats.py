"""Facts about the running broker that INFO, the CLI, metrics and ``compare`` report.

``ServerInfo`` is fixed at start-up (who we are, where we listen, which guarantees are in
force); the live counters live with the parts that count them (``PubSub.statistics()``,
``PartitionLog.statistics()``) and are gathered here only as frozen snapshots, so a report
never reads half-updated state.
"""

from __future__ import annotations

import os
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import attrs

from broker.config import BrokerConfig


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

    @property
    def data_dir(self) -> Path:
        return self.config.data_dir

    def uptime_seconds(self, now_ms: int) -> int:
        return max(0, (now_ms - self.started_at_ms) // 1000)
