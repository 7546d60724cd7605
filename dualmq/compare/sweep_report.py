"""The terminal table and the JSON document of a measured scenario (``baseline`` and the sweeps).

Terminal: a heading, the verdict, then one row per point and mode with the median of each
column and its spread (lowest-highest run) under it, then how it was measured.

JSON (``--json``; the in-process scenarios' documents sit beside these under ``scenarios``)::

    {"sweeps": [{
        "name": "fan-out", "description": "...", "variable": "subscribers / consumer groups",
        "verdict": "...", "runs": 3, "broker": "subprocess", "cpus": 2,
        "steady_window": "rates are counted over ...", "clients": "pull clients: ...",
        "authentication": {"pull": "SASL SCRAM-SHA-256 as user alice; over TLS", "push": "..."},
        "interrupted": false, "notes": [...],
        "points": [{"label": "1", "x": 1,
                    "modes": {"pull": {"median": {"send_per_s": ..., ...},
                                       "low": {...}, "high": {...},
                                       "runs": [{<every figure of one run, see measured.Measurement>}]}}}]
    }]}
"""

from __future__ import annotations

import json
from typing import Any

from dualmq.compare.measured import CLIENT_NOTE
from dualmq.compare.sweeps import METRIC_LABELS, METRICS, STEADY_WINDOW_NOTE, SweepResult

SHORT = {"send_per_s": "sent/s", "delivered_per_s": "delivered/s", "per_consumer_per_s": "per consumer/s",
         "distinct_per_s": "distinct/s", "delivered_mb_per_s": "MB/s", "p50_ms": "p50 ms", "p99_ms": "p99 ms",
         "p999_ms": "p99.9 ms", "max_ms": "max ms"}


def _number(metric: str, value: float) -> str:
    if value != value:
        return "n/a"
    if metric.endswith("_ms") or metric == "delivered_mb_per_s":
        return f"{value:,.2f}" if value < 100 else f"{value:,.0f}"
    return f"{value:,.0f}"


def render_sweep(result: SweepResult) -> str:
    """The terminal text of one measured scenario."""
    sweep = result.sweep
    lines = [f"== {sweep.name}: {sweep.description}", f"verdict: {result.verdict}", ""]
    header = f"{sweep.variable[:30]:<30} {'mode':<5}" + "".join(f"{SHORT[c]:>22}" for c in sweep.columns)
    lines.append(header)
    for point in result.points:
        for mode in result.modes():
            if not point.runs.get(mode):
                continue
            cells, spreads = [], []
            for column in sweep.columns:
                stat = point.stat(mode, column)
                if stat is None:
                    cells.append("n/a")
                    spreads.append("")
                else:
                    cells.append(_number(column, stat[0]))
                    spreads.append(f"{_number(column, stat[1])}-{_number(column, stat[2])}")
            lines.append(f"{point.point.label[:30]:<30} {mode:<5}" + "".join(f"{c:>22}" for c in cells))
            lines.append(f"{'':<30} {'':<5}" + "".join(f"{s:>22}" for s in spreads))
        cut = {name: why for mode in result.modes() for m in point.runs.get(mode, []) for name, why in m.cut_off.items()}
        if cut:
            lines.append(f"{'':<36}cut off: " + "; ".join(f"{n}: {w}" for n, w in sorted(cut.items())))
    lines.append("")
    sample = next((m for p in result.points for ms in p.runs.values() for m in ms), None)
    lines.append(f"medians of {result.runs} run(s) per point (spread under each: lowest-highest run); broker: "
                 f"{result.broker}; {result.cpus} CPU core(s); every producer and consumer in its own process")
    lines.append(f"{STEADY_WINDOW_NOTE}" + (f" (e.g. {sample.window_s:.2f} s of {sample.sending_s:.2f} s)"
                                             if sample is not None else ""))
    lines.append(CLIENT_NOTE)
    if result.authentication:
        lines.append(result.authentication_line())
    lines.extend(f"note: {note}" for note in result.notes)
    return "\n".join(lines)


def sweep_document(result: SweepResult) -> dict[str, Any]:
    """The JSON-ready dict of one measured scenario (schema in the module docstring)."""
    sweep = result.sweep
    points = []
    for point in result.points:
        modes = {}
        for mode, measurements in point.runs.items():
            stats = {metric: point.stat(mode, metric) for metric in METRICS}
            modes[mode] = {
                "median": {k: v[0] if v else None for k, v in stats.items()},
                "low": {k: v[1] if v else None for k, v in stats.items()},
                "high": {k: v[2] if v else None for k, v in stats.items()},
                "runs": [_clean(m.as_dict()) for m in measurements],
            }
        points.append({"label": point.point.label, "x": point.point.x, "modes": modes})
    return {"name": sweep.name, "description": sweep.description, "variable": sweep.variable,
            "verdict": result.verdict, "runs": result.runs, "broker": result.broker, "cpus": result.cpus,
            "steady_window": STEADY_WINDOW_NOTE, "clients": CLIENT_NOTE, "authentication": dict(result.authentication),
            "interrupted": result.interrupted, "notes": list(result.notes),
            "metrics": METRIC_LABELS, "points": points}


def _clean(values: dict[str, Any]) -> dict[str, Any]:
    """NaN is not JSON: a figure that could not be measured is null."""
    return {k: (None if isinstance(v, float) and v != v else v) for k, v in values.items()}


def write_json(path: str, sweeps: list[SweepResult], reports: list | None = None) -> None:
    """Write the measured scenarios and the in-process ones (``report.ScenarioReport`` objects) to one file."""
    from dualmq.compare.report import to_json

    document: dict[str, Any] = {**to_json(reports or []), "sweeps": [sweep_document(r) for r in sweeps]}
    with open(path, "w") as f:
        json.dump(document, f, indent=2, allow_nan=False)
        f.write("\n")
