"""``Histogram``: a distribution of durations counted into fixed buckets, cheap to update.

What lives here: the one histogram type the broker's metrics use (request latency per Kafka
API, fsync latency). Observing a value is a binary search over a short tuple and two
additions on plain Python numbers, so it may sit on a request path; the Prometheus objects
that expose it are built only when someone scrapes (``modes.http.collector``).

What does not: a clock. The caller measures (a front-end, which owns the clock) and hands the
duration in, in seconds, like every other time the core is told about.

Buckets follow Prometheus's rule: a value belongs to the first bucket whose upper bound is
greater than or equal to it (``le``, "less or equal"); anything above the last bound goes to
the implicit ``+Inf`` bucket.
"""

from __future__ import annotations

from bisect import bisect_left

import attrs

__all__ = ["Histogram", "HistogramSnapshot", "LATENCY_BUCKETS_SECONDS"]

# From 50 µs (an in-memory PUBLISH batch, a page-cache fsync) to 30 s (Kafka's request
# timeout): roughly 1-2.5-5 per decade, so any latency lands within a factor of ~2.5.
LATENCY_BUCKETS_SECONDS: tuple[float, ...] = (
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
    0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
)


@attrs.frozen(kw_only=True)
class HistogramSnapshot:
    """A histogram at one moment: per-bucket counts (not cumulative), their sum and count."""

    bounds: tuple[float, ...]
    counts: tuple[int, ...]  # len(bounds) + 1: the last is the +Inf bucket
    total: float

    @property
    def count(self) -> int:
        return sum(self.counts)

    def cumulative(self) -> list[tuple[float, int]]:
        """``(upper bound, cumulative count)`` pairs as Prometheus exposes them, ``inf`` last."""
        running = 0
        pairs = []
        for bound, count in zip((*self.bounds, float("inf")), self.counts):
            running += count
            pairs.append((bound, running))
        return pairs


@attrs.define(slots=True, eq=False)
class Histogram:
    """Counts of observed values per bucket (see the module docstring)."""

    bounds: tuple[float, ...] = LATENCY_BUCKETS_SECONDS
    counts: list[int] = attrs.field(init=False)
    total: float = attrs.field(default=0.0, init=False)

    def __attrs_post_init__(self) -> None:
        self.counts = [0] * (len(self.bounds) + 1)

    def observe(self, value: float) -> None:
        """Count one value (seconds, for the latency histograms)."""
        self.counts[bisect_left(self.bounds, value)] += 1
        self.total += value

    def snapshot(self) -> HistogramSnapshot:
        return HistogramSnapshot(bounds=self.bounds, counts=tuple(self.counts), total=self.total)
