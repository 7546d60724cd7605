"""The side-by-side report: a terminal table, and the same data as JSON.

``ScenarioReport.from_run`` accounts each mode's log (``accounting.account``); ``render_text``
prints one table per scenario with the *reasons* for every message not delivered and the
guarantee receipt (the settings each number was measured under); ``to_json`` writes the
machine-readable document.

JSON schema (``--json FILE``), version ``dualmq-compare/1``::

    {
      "schema": "dualmq-compare/1",
      "generated_at": "2025-01-01T12:00:00+00:00",      # UTC, ISO 8601
      "scenarios": [
        {
          "name": "late-joiner", "description": "...",
          "run_id": "16 hex digits",                     # also inside every message header
          "broker": {"kind": "embedded|subprocess|external", "kafka": "host:port", "resp": "host:port"},
          "workload": {...},                             # every Workload field, events as a list
          "skipped": {"push": "why"},                    # modes not run
          "modes": {
            "pull": {                                    # and "push", same shape
              "mode": "pull",
              "sent": int, "acknowledged": int, "unacknowledged": int,
              "delivered": int,                          # distinct messages, summed over consumers
              "duplicated": int, "reordered": int,
              "lost": int,                               # acknowledged + promised + not delivered
              "not_promised": int,                       # acknowledged, no subscriber at publish time
              "lost_reasons": {"reason": int}, "not_promised_reasons": {"reason": int},
              "duration_s": float, "send_rate": float, "delivery_rate": float,   # messages/s
              "latency": {"count": int, "p50_ms": float, "p99_ms": float, "p999_ms": float, "max_ms": float},
              "cdf": [[latency_ms, fraction], ...],     # ascending
              "timeline": [[t_s, sent_per_s, delivered_per_s], ...],
              "consumers": [{"name", "receipts", "delivered", "duplicated", "reordered", "lost",
                             "lost_reasons", "not_promised", "not_promised_reasons",
                             "unacknowledged_not_delivered"}],
              "metrics": {"consumer_lag_high_water": int, "rebalances": int, "commits": int,
                          "subscriber_buffer_high_water_bytes": int,
                          "disconnects_seen_by_subscribers": int,
                          "server_disconnects_output_buffer_limit": int,
                          "backlog_high_water": int, ...},   # mode-specific keys, all optional
              "guarantees": {"name": "setting in words"},
              "incidents": [[t_s, "what happened"], ...],
              "notes": ["..."]
            }
          }
        }
      ]
    }

Not here: the HTML page (``html``).
"""

from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import Any

import attrs

from dualmq.compare.accounting import ModeResult, account
from dualmq.compare.runner import RunResult
from dualmq.compare.workload import Workload

SCHEMA = "dualmq-compare/1"
TITLES = {"pull": "pull (Kafka-like)", "push": "push (Redis-like)"}


@attrs.frozen
class ScenarioReport:
    workload: Workload
    run_id: str
    broker: dict[str, Any]
    results: dict[str, ModeResult]
    skipped: dict[str, str]

    @classmethod
    def from_run(cls, run: RunResult) -> ScenarioReport:
        return cls(workload=run.workload, run_id=run.run_id,
                   broker={"kind": run.broker_kind, **run.addresses},
                   results={mode: account(log) for mode, log in run.logs.items()}, skipped=dict(run.skipped))


# --- terminal -------------------------------------------------------------------------------


def _n(value: float) -> str:
    return f"{value:,.0f}"


def _ms(value: float) -> str:
    return f"{value:.3g}" if value < 100 else f"{value:,.0f}"


def _rows(result: ModeResult) -> list[tuple[str, str]]:
    m = result.metrics
    rows = [
        ("sent", _n(result.sent)),
        ("acknowledged", _n(result.acknowledged) + (f"  ({_n(result.unacknowledged)} failed)"
                                                    if result.unacknowledged else "")),
    ]
    for consumer in result.consumers:
        rows.append((f"delivered ({consumer.name})", _n(consumer.delivered)))
    rows += [
        ("not delivered: no subscriber", _n(result.not_promised) if result.mode == "push" or result.not_promised
         else "- (log keeps it)"),
        ("LOST (promised, not delivered)", _n(result.lost)),
        ("duplicated", _n(result.duplicated)),
        ("reordered (per producer+key)", _n(result.reordered)),
        ("throughput sent/s", _n(result.send_rate)),
        ("throughput delivered/s", _n(result.delivery_rate)),
        ("latency p50 / p99 ms", f"{_ms(result.latency.p50_ms)} / {_ms(result.latency.p99_ms)}"),
        ("latency p99.9 / max ms", f"{_ms(result.latency.p999_ms)} / {_ms(result.latency.max_ms)}"),
    ]
    if result.mode == "pull":
        rows.append(("lag high-water", f"{_n(m.get('consumer_lag_high_water', 0))} msgs"))
        rows.append(("rebalances / restarts", f"{m.get('rebalances', 0)} / {m.get('consumer_reconnects', 0)}"))
    else:
        rows.append(("buffer high-water (omem)", f"{_n(m.get('subscriber_buffer_high_water_bytes', 0))} B"))
        rows.append(("disconnects (server / seen)", f"{m.get('server_disconnects_output_buffer_limit', 0)} / "
                                                    f"{m.get('disconnects_seen_by_subscribers', 0)}"))
    return rows


def render_scenario(report: ScenarioReport) -> str:
    w = report.workload
    modes = [mode for mode in ("pull", "push") if mode in report.results]
    rate = f"{w.rate:,.0f} msg/s" if w.rate else "full speed"
    lines = [
        f"== {w.name}: {w.description}" if w.description else f"== {w.name}",
        f"   {w.producers} producer(s) x {w.messages:,} msgs of {w.message_size} B at {rate}, "
        f"{w.consumers} consumer(s); broker {report.broker['kind']}; run {report.run_id}",
    ]
    table = {mode: _rows(report.results[mode]) for mode in modes}
    labels: list[str] = []
    for rows in table.values():
        for label, _ in rows:
            if label not in labels:
                labels.append(label)
    width = max(len(label) for label in labels) + 2 if labels else 10
    lines.append("")
    lines.append(" " * width + "".join(f"{TITLES[mode]:>22}" for mode in modes))
    for label in labels:
        cells = [dict(table[mode]).get(label, "") for mode in modes]
        lines.append(f"{label:<{width}}" + "".join(f"{cell:>22}" for cell in cells))
    for mode, reason in report.skipped.items():
        lines.append(f"({mode} mode not run: {reason})")
    why = []
    for mode in modes:
        result = report.results[mode]
        for reason, count in result.not_promised_reasons.items():
            why.append(f"  {mode}: {count:,} not delivered, {reason}")
        for reason, count in result.lost_reasons.items():
            why.append(f"  {mode}: {count:,} LOST, {reason}")
        if result.unacknowledged:
            why.append(f"  {mode}: {result.unacknowledged:,} sends failed (never acknowledged: not counted as lost)")
        if result.duplicated:
            why.append(f"  {mode}: {result.duplicated:,} duplicates: redelivered after a restart from the last commit")
    if why:
        lines += ["", "why:"] + why
    lines += ["", "guarantee receipt:"]
    for mode in modes:
        result = report.results[mode]
        lines.append(f"  {TITLES[mode]}")
        lines.extend(f"    {k:<30} {v}" for k, v in result.guarantees.items())
        for at, what in result.incidents:
            lines.append(f"    t={at:6.2f}s  {what}")
        for note in result.notes:
            lines.append(f"    note: {note}")
    return "\n".join(lines)


def render_text(reports: list[ScenarioReport]) -> str:
    return "\n\n".join(render_scenario(report) for report in reports) + "\n"


# --- JSON -----------------------------------------------------------------------------------------


def _mode_json(result: ModeResult) -> dict[str, Any]:
    data = attrs.asdict(result, recurse=True)
    data["lost_reasons"] = result.lost_reasons
    data["not_promised_reasons"] = result.not_promised_reasons
    return data


def to_json(reports: list[ScenarioReport]) -> dict[str, Any]:
    """The JSON document described in the module docstring."""
    return {
        "schema": SCHEMA,
        "generated_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "scenarios": [
            {
                "name": r.workload.name,
                "description": r.workload.description,
                "run_id": r.run_id,
                "broker": r.broker,
                "workload": attrs.asdict(r.workload),
                "skipped": r.skipped,
                "modes": {mode: _mode_json(result) for mode, result in r.results.items()},
            }
            for r in reports
        ],
    }


def write_json(reports: list[ScenarioReport], path: str | Path) -> None:
    Path(path).write_text(json.dumps(to_json(reports), indent=1) + "\n")
