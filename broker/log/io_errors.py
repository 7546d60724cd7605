"""Counting and logging the log's I/O errors (disk full, a failing disk, no descriptor left).

A full disk makes every append fail. Each failure is answered to its producer
(``KAFKA_STORAGE_ERROR``), but an operator needs to hear about it too — once, with the file
and the errno, and not 27,000 times: a log line per failed append would flood the very disk
that is full. So:

* every error is counted (broker-wide here, per partition in ``PartitionLog``), and the count
  is shown by ``INFO`` (push mode's ``dualmq`` section) and the statistics snapshots;
* the first error is logged at once (``log_io_failed``, with operation, path and errno);
  errors within the next ``interval_ms`` only increase a "suppressed" count, reported by the
  next line that is logged — or by :meth:`IoErrorReporter.report_suppressed`, which the
  broker's maintenance pass calls so that a burst that stops is still accounted for.

Time comes in as ``now_ms`` from the caller: this module never reads a clock, so tests drive
the rate limit exactly.
"""

from __future__ import annotations

import errno
from pathlib import Path

from broker.loggers import get_logger

log = get_logger(__name__)

# At most one ``log_io_failed`` line per this many milliseconds (the rest are counted).
DEFAULT_INTERVAL_MS = 10_000


class IoErrorReporter:
    """Counts I/O errors and logs them rate-limited. One per broker (see ``LogStorage``).

    Args:
        interval_ms: minimum time between two logged lines.
    """

    def __init__(self, interval_ms: int = DEFAULT_INTERVAL_MS) -> None:
        self.interval_ms = interval_ms
        self.total = 0
        self._suppressed = 0
        self._last_logged_ms: int | None = None

    @property
    def suppressed(self) -> int:
        """Errors counted since the last logged line but not logged themselves."""
        return self._suppressed

    def record(self, operation: str, error: OSError, now_ms: int, *, path: Path | str | None = None) -> bool:
        """Count one error; log it unless a line was logged less than ``interval_ms`` ago.

        Args:
            operation: what failed, e.g. ``"append"``, ``"read"``, ``"fsync"``.
            error: the exception (its ``filename`` names the file when set).
            now_ms: the caller's clock.
            path: the file or directory to name when ``error.filename`` is not set.

        Returns:
            Whether a line was logged.
        """
        self.total += 1
        if self._last_logged_ms is not None and now_ms - self._last_logged_ms < self.interval_ms:
            self._suppressed += 1
            return False
        where = error.filename if error.filename is not None else path
        log.error(
            "log_io_failed",
            operation=operation,
            path=str(where) if where is not None else None,
            errno=errno.errorcode.get(error.errno, error.errno) if error.errno is not None else None,
            error=error.strerror or str(error),
            suppressed_since_last=self._suppressed,
            io_errors_total=self.total,
        )
        self._suppressed = 0
        self._last_logged_ms = now_ms
        return True

    def report_suppressed(self, now_ms: int) -> bool:
        """Log how many errors were suppressed, once the interval has passed since the last
        line (so the tail of a burst is not left unreported). Returns whether it logged."""
        if not self._suppressed or self._last_logged_ms is None or now_ms - self._last_logged_ms < self.interval_ms:
            return False
        log.error("log_io_errors_suppressed", count=self._suppressed, io_errors_total=self.total)
        self._suppressed = 0
        self._last_logged_ms = now_ms
        return True
