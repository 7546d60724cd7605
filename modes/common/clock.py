"""The wall clock, as both front-ends read it.

The core never reads a clock (time is handed to it as ``now_ms``); the front-ends do, and
they must agree on what "now" means: record timestamps, retention and Redis's client ages are
all wall-clock milliseconds since the epoch.
"""

from __future__ import annotations

import time


def now_ms() -> int:
    """Wall-clock milliseconds since the Unix epoch.

    Returns:
        The current time, truncated to a whole millisecond.
    """
    return time.time_ns() // 1_000_000
