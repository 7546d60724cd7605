"""Running a measured scenario: every point of a sweep, ``runs`` times, in each mode.

The runs go round-robin over the points (run 1 of every point, then run 2 ...), so a machine
that slows down for a while spreads its slowness over all of them instead of one point. One
broker serves the whole sweep (each run gets its own topic or channel). The verdict is made
at the end, from the medians (``verdicts``).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from dualmq.compare import payload
from dualmq.compare.brokers import open_broker
from dualmq.compare.measured import measure_mode
from dualmq.compare.security import ClientSecurity
from dualmq.compare.sweeps import DEFAULT_RUNS, MODES, PointResult, Sweep, SweepResult, workload_for
from dualmq.compare.verdicts import verdict
from dualmq.compare.workload import Workload

Progress = Callable[[str], None]


async def run_sweep(sweep: Sweep, *, runs: int = DEFAULT_RUNS, broker: str = "subprocess",
                    kafka: str | None = None, resp: str | None = None, modes: tuple[str, ...] = MODES,
                    overrides: dict[str, Any] | None = None, progress: Progress | None = None,
                    stop=None, broker_log: Callable[[str], None] | None = None,
                    security: ClientSecurity | None = None,
                    dashboard: bool = False) -> SweepResult:
    """Measure every point of ``sweep`` ``runs`` times in each mode and return the results.

    Args:
        broker: "subprocess" (default) or "embedded" when no address is given.
        kafka, resp: external brokers (real Kafka / Redis allowed); only their modes run.
        overrides: workload keys from the command line (``messages``, ``min_seconds`` ...).
        progress: a one-line status callback.
        stop: a ``runner.StopRequest``; when requested, the results so far are returned.
        broker_log: given a started broker's log path (``--verbose``).
        security: how the clients log in to an external broker (``security.ClientSecurity``).
        dashboard: the broker serves the live dashboard, its address printed (``--dashboard``).
    """
    overrides = overrides or {}
    kind = "external" if kafka or resp else broker
    workloads = [workload_for(sweep, point, overrides) for point in sweep.points]
    result = SweepResult(sweep=sweep, points=[PointResult(point) for point in sweep.points], runs=runs,
                         broker=kind, cpus=os.cpu_count() or 1)
    settings = _broker_settings(workloads)
    async with open_broker(kind, settings, kafka=kafka, resp=resp, verbose=broker_log is not None,
                           security=security, dashboard=dashboard) as handle:
        available = tuple(m for m in modes if (handle.kafka if m == "pull" else handle.resp))
        result.authentication = {mode: handle.security.describe(mode) for mode in available}
        run_id = payload.new_run_id()
        scope = stop.cancel_scope() if stop is not None else _null_scope()
        with scope:
            for run in range(runs):
                for point, workload, point_result in zip(sweep.points, workloads, result.points):
                    for mode in (m for m in available if m in point.modes):
                        if progress is not None:
                            progress(f"{sweep.name}: {point.label} {mode} run {run + 1}/{runs}")
                        measurement = await measure_mode(mode, workload, handle, run_id,
                                                         compression=point.compression)
                        point_result.runs.setdefault(mode, []).append(measurement)
        if broker_log is not None and handle.process is not None:
            broker_log(str(handle.process.log_path))
    result.interrupted = bool(stop is not None and stop.requested)
    if result.interrupted:
        result.notes.append("interrupted (Ctrl-C): the figures cover the runs that finished")
    for mode in modes:
        wanted = any(mode in point.modes for point in sweep.points)   # compression is pull's alone
        if wanted and mode not in result.modes() and not result.interrupted:
            result.notes.append(f"{mode} mode not run: no {'--kafka' if mode == 'pull' else '--resp'} address given"
                                if kind == "external" else f"{mode} mode not run")
    result.verdict = verdict(result)
    return result


def _broker_settings(workloads: list[Workload]) -> dict[str, dict[str, Any]]:
    settings: dict[str, dict[str, Any]] = {}
    for workload in workloads:
        for section, values in workload.broker.items():
            settings.setdefault(section, {}).update(values)
    return settings


class _null_scope:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False



__all__ = ["run_sweep"]
