"""The measured scenarios: ``baseline`` and five sweeps over the variables the article argues about.

Each ``Sweep`` is a list of points (one value of its variable each); every point is measured
in each mode (``measured.measure_mode``: roles in their own processes) ``runs`` times, and
reported as the median with the spread (lowest and highest run). The runs go round-robin over
the points, so a machine that slows down for a while spreads its slowness over all of them.

=============== ==================================================================================
``baseline``    one producer, one consumer, full speed: each mode's own throughput and latency
``fan-out``     1, 2, 5, 10, 50 subscribers / independent consumer groups at full speed: "Redis
                throughput decreases with more connected nodes", "Kafka does not wait"
``parallelism`` a group of 1, 2, 4, 8 members over 8 partitions against as many subscribers, each
                spending 200 us per message: "Kafka supports parallelism, Redis does not"
``message-size``100 B to 1 MB at a fixed byte rate, latency percentiles per size: "Redis might not
                maintain ultra-low latency with larger messages"
``compression`` none/gzip/snappy/lz4/zstd in pull mode at a fixed rate: "compress to decrease
                latency ... but more time to decompress"
``rate``        offered load from 1k/s to saturation: latency against throughput (the knee)
=============== ==================================================================================

Each sweep ends with a verdict sentence built from its medians (``verdicts``); nothing in it is
written in advance.
"""

from __future__ import annotations

import statistics
from typing import Any

import attrs

from dualmq.compare.measured import WARM_UP_SHARE, Measurement
from dualmq.compare.workload import Workload, WorkloadError

MODES = ("pull", "push")
DEFAULT_RUNS = 3
# Full speed: at least 3 s *and* 200,000 messages per mode, so that there is a steady state.
FULL_SPEED = dict(messages=200_000, min_seconds=3.0, message_size=100)
# Paced: the rate decides the count; 3 s of it.
PACED = dict(messages=1, min_seconds=3.0, message_size=100)
METRICS = ("send_per_s", "delivered_per_s", "per_consumer_per_s", "distinct_per_s", "delivered_mb_per_s",
           "p50_ms", "p99_ms", "p999_ms", "max_ms")
METRIC_LABELS = {
    "send_per_s": "sent/s (producers)", "delivered_per_s": "delivered/s (all consumers)",
    "per_consumer_per_s": "delivered/s per consumer", "distinct_per_s": "distinct messages processed/s",
    "delivered_mb_per_s": "delivered MB/s", "p50_ms": "latency p50 (ms)", "p99_ms": "latency p99 (ms)",
    "p999_ms": "latency p99.9 (ms)", "max_ms": "latency max (ms)",
}
STEADY_WINDOW_NOTE = (f"rates are counted over the steady window: the sending period without its first and last "
                      f"{WARM_UP_SHARE:.0%} (warm-up, producers finishing) and without the drain after it; "
                      f"latency is of the messages received inside that window")


@attrs.frozen
class Point:
    """One value of a sweep's variable: the workload changes and the modes it runs in."""

    label: str
    x: float
    changes: dict[str, Any] = attrs.field(factory=dict)      # the swept variable: always applied
    sizing: dict[str, Any] = attrs.field(factory=dict)       # run length: command-line flags win
    modes: tuple[str, ...] = MODES
    compression: str | None = None


@attrs.frozen
class Chart:
    """One chart of a sweep: a metric on the y axis against the points."""

    metric: str
    title: str
    log_y: bool = False


@attrs.frozen
class Sweep:
    name: str
    description: str
    variable: str                         # the x axis label
    base: dict[str, Any]
    points: tuple[Point, ...]
    charts: tuple[Chart, ...]
    columns: tuple[str, ...]              # metrics in the terminal table


@attrs.define
class PointResult:
    point: Point
    runs: dict[str, list[Measurement]] = attrs.field(factory=dict)   # mode -> one per run

    def stat(self, mode: str, metric: str) -> tuple[float, float, float] | None:
        """``(median, lowest, highest)`` of ``metric`` over the runs in ``mode`` (None: not run)."""
        values = [getattr(m, metric) for m in self.runs.get(mode, [])]
        values = [v for v in values if v == v]   # NaN: nothing received in the window
        if not values:
            return None
        return statistics.median(values), min(values), max(values)

    def median(self, mode: str, metric: str) -> float:
        stat = self.stat(mode, metric)
        return stat[0] if stat else float("nan")


@attrs.define
class SweepResult:
    sweep: Sweep
    points: list[PointResult]
    runs: int
    broker: str
    cpus: int
    interrupted: bool = False
    verdict: str = ""
    notes: list[str] = attrs.field(factory=list)
    # mode -> how its clients logged in (``security.ClientSecurity.describe``; never a password)
    authentication: dict[str, str] = attrs.field(factory=dict)

    def authentication_line(self) -> str:
        """``clients' login: pull ...; push ...`` for the report's footer ("" when no mode ran)."""
        if not self.authentication:
            return ""
        return "clients' login: " + "; ".join(f"{mode} {how}" for mode, how in self.authentication.items())

    def modes(self) -> tuple[str, ...]:
        return tuple(m for m in MODES if any(p.runs.get(m) for p in self.points))


def _sizes() -> tuple[Point, ...]:
    points = []
    for size, label in ((100, "100 B"), (1024, "1 KiB"), (10240, "10 KiB"), (102400, "100 KiB"),
                        (1_000_000, "1 MB")):
        # A fixed offered byte rate (20 MB/s, at most 5,000 messages/s): the sizes compete on
        # latency, not on who can push more bytes through a loopback.
        points.append(Point(label, size, dict(message_size=size, rate=min(5000.0, 20e6 / size))))
    return tuple(points)


SWEEPS: dict[str, Sweep] = {sweep.name: sweep for sweep in (
    Sweep("baseline", "one producer, one consumer, full speed, each role in its own process: the modes' own "
          "throughput and latency over a steady window", "workload", dict(FULL_SPEED),
          (Point("1 to 1, 100 B", 1),),
          (Chart("delivered_per_s", "delivered messages per second"),),
          ("send_per_s", "delivered_per_s", "p50_ms", "p99_ms")),
    Sweep("fan-out", "1, 2, 5, 10, 50 subscribers (push) / independent consumer groups (pull) at full speed: does "
          "the producer slow down as readers are added?", "subscribers / consumer groups",
          dict(FULL_SPEED, drain_timeout_s=2.0),
          tuple(Point(str(n), n, dict(consumers=n)) for n in (1, 2, 5, 10, 50)),
          (Chart("send_per_s", "producer: messages sent per second", log_y=True),
           Chart("per_consumer_per_s", "messages delivered per second, per subscriber / group", log_y=True)),
          ("send_per_s", "per_consumer_per_s", "p50_ms", "p99_ms")),
    Sweep("parallelism", "a consumer group of 1, 2, 4, 8 members over 8 partitions against as many push "
          "subscribers, each spending 200 us per message: pull splits the work, push multiplies it",
          "members / subscribers",
          dict(PACED, rate=40_000.0, partitions=8, pull_consumers="group", process_us=200.0, drain_timeout_s=1.0),
          tuple(Point(str(n), n, dict(consumers=n)) for n in (1, 2, 4, 8)),
          (Chart("distinct_per_s", "distinct messages processed per second"),),
          ("send_per_s", "distinct_per_s", "per_consumer_per_s", "p50_ms")),
    Sweep("message-size", "100 B to 1 MB at a fixed 20 MB/s (at most 5,000 messages/s): latency per size",
          "message size", dict(PACED), _sizes(),
          (Chart("p50_ms", "latency p50 (ms)", log_y=True), Chart("p99_ms", "latency p99 (ms)", log_y=True)),
          ("delivered_per_s", "delivered_mb_per_s", "p50_ms", "p99_ms", "p999_ms")),
    Sweep("compression", "pull mode at a fixed 20,000 messages/s of 1 KiB text-like values, per codec: "
          "what compression does to latency", "codec", dict(PACED, rate=20_000.0, message_size=1024),
          tuple(Point(codec, i, modes=("pull",), compression=None if codec == "none" else codec)
                for i, codec in enumerate(("none", "gzip", "snappy", "lz4", "zstd"))),
          (Chart("p50_ms", "latency p50 (ms)"), Chart("p99_ms", "latency p99 (ms)")),
          ("delivered_per_s", "p50_ms", "p99_ms", "p999_ms")),
    Sweep("rate", "offered load from 1,000 messages/s to full speed: latency against throughput (the knee)",
          "offered rate (messages/s)", dict(PACED),
          tuple(Point(f"{r:,}" if r else "max", r or 1e6, dict(rate=float(r)),
                      sizing={} if r else dict(messages=FULL_SPEED["messages"]))
                for r in (1000, 5000, 20_000, 50_000, 100_000, 0)),
          (Chart("delivered_per_s", "delivered messages per second", log_y=True),
           Chart("p99_ms", "latency p99 (ms)", log_y=True)),
          ("send_per_s", "delivered_per_s", "p50_ms", "p99_ms")),
)}


def workload_for(sweep: Sweep, point: Point, overrides: dict[str, Any]) -> Workload:
    """The workload of one point: the sweep's base, the user's overrides, then the point's own
    value (the swept variable always wins: it is what the sweep is about).

    Raises:
        WorkloadError: a bad override.
    """
    values = {**sweep.base, **point.sizing, **{k: v for k, v in overrides.items() if v is not None},
              **point.changes}
    try:
        return Workload(name=sweep.name, **values)
    except TypeError as exc:
        raise WorkloadError(str(exc)) from None


__all__ = ["DEFAULT_RUNS", "METRICS", "METRIC_LABELS", "SWEEPS", "Chart", "Point", "PointResult", "Sweep",
           "SweepResult", "workload_for"]
