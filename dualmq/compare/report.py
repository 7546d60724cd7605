"""The side-by-side report: a terminal table, and the same data as JSON.

``ScenarioReport.from_run`` accounts each mode's log (``accounting.account``) and sums it up
(``summary``); ``render_text`` prints one table per scenario, headed by the verdict (one
sentence generated from the numbers), with the *reasons* for every message not delivered and
the guarantee receipt (the settings each number was measured under); ``to_json`` writes the
machine-readable document.

JSON schema (``--json FILE``), version ``dualmq-compare/1``::

    {
      "schema": "dualmq-compare/1",
      "generated_at": "2025-01-01T12:00:00+00:00",      # UTC, ISO 8601
      "scenarios": [
        {
          "name": "late-joiner", "description": "...",
          "run_id": "16 hex digits",                     # also inside every message header
          "broker": {"kind": "embedded|subprocess|external|cluster", "kafka": "host:port[,...]",
                     "resp": "host:port[,...]", "cluster": int},   # cluster: nodes (0: one broker)
          "workload": {...},                             # every Workload field, events as a list
          "skipped": {"push": "why"},                    # modes not run
          "interrupted": bool,                           # stopped early (Ctrl-C): counts are partial
          "verdict": "one sentence from the numbers",
          "modes": {
            "pull": {                                    # and "push", same shape
              "mode": "pull",
              "sent": int, "acknowledged": int, "unacknowledged": int,
              "delivered": int,                          # distinct messages, summed over consumers
              "duplicated": int, "reordered": int,
              "longest_gap_ms": float,                   # worst consumer: longest time between two receipts
              "cut_off_ms": float,                       # worst consumer: time not subscribed after its first window
              "lost": int,                               # acknowledged + promised + not delivered
              "not_promised": int,                       # acknowledged, no subscriber at publish time
              "lost_reasons": {"reason": int}, "not_promised_reasons": {"reason": int},
              "duration_s": float, "send_rate": float, "delivery_rate": float,   # messages/s
              "latency": {"count": int, "p50_ms": float, "p99_ms": float, "p999_ms": float, "max_ms": float},
              "cdf": [[latency_ms, fraction], ...],     # ascending; fraction of the messages
                                                         # SENT (x consumers) delivered within
                                                         # latency_ms: ends below 1 if some never came
              "timeline": [[t_s, sent_per_s, delivered_per_s], ...],
              "progress": [[t_s, sent_so_far, delivered_so_far], ...],
              "summary": {"expected": int,               # sent x consumers
                          "not_delivered": int,          # expected - delivered
                          "shortfalls": [{"kind": "lost|no subscriber|send failed|in flight",
                                          "reason": "...", "count": int}]},   # add up to not_delivered
              "consumers": [{"name", "receipts", "delivered", "duplicated", "reordered", "lost",
                             "lost_reasons", "not_promised", "not_promised_reasons",
                             "unacknowledged_not_delivered", "longest_gap_ms", "cut_off_ms"}],
              "metrics": {"consumer_lag_high_water": int, "commits": int,
                          "group_assignments": int,      # pull, consumer groups only
                          "consumer_restarts": int, "consumer_reconnects": int, "broker_restarts": int,
                          "subscriber_buffer_high_water_bytes": int,      # absent: unknown
                          "subscriber_buffer_high_water_source": "broker counter|sampled",
                          "subscriber_buffer_at_cut_off_bytes": int,      # absent: unknown / no cut
                          "disconnects_seen_by_subscribers": int,
                          "server_disconnects_output_buffer_limit": int,
                          "counters_restarted": bool,    # push: the broker whose counters these are restarted
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
from dualmq.compare.summary import ModeSummary, summarize, verdict
from dualmq.compare.workload import Workload

SCHEMA = "dualmq-compare/1"
TITLES = {"pull": "pull (Kafka-like)", "push": "push (Redis-like)"}
MODE_ORDER = ("pull", "push")
DUPLICATES_WHY = "duplicate deliveries (read again after a consumer restarted from its last commit, or sent again by a producer retry)"


@attrs.frozen
class ScenarioReport:
    workload: Workload
    run_id: str
    broker: dict[str, Any]
    results: dict[str, ModeResult]
    skipped: dict[str, str]
    interrupted: bool = False

    @classmethod
    def from_run(cls, run: RunResult) -> ScenarioReport:
        return cls(workload=run.workload, run_id=run.run_id,
                   broker={"kind": run.broker_kind, **run.addresses, "cluster": run.cluster},
                   results={mode: account(log) for mode, log in run.logs.items()}, skipped=dict(run.skipped),
                   interrupted=run.interrupted)

    @property
    def modes(self) -> list[str]:
        """The modes that ran, pull first."""
        return [mode for mode in MODE_ORDER if mode in self.results]

    @property
    def summaries(self) -> dict[str, ModeSummary]:
        return {mode: summarize(self.results[mode]) for mode in self.modes}

    @property
    def verdict(self) -> str:
        """One sentence generated from the numbers (see ``summary.verdict``)."""
        text = verdict(list(self.summaries.values()))
        if self.interrupted:
            text = "Interrupted before the end, so these counts are partial. " + text
        return text


# --- terminal -------------------------------------------------------------------------------


def _n(value: float) -> str:
    return f"{value:,.0f}"


def _ms(value: float) -> str:
    return f"{value:.3g}" if value < 100 else f"{value:,.0f}"


def _pair(result: ModeResult, first: float, second: float) -> str:
    if not result.latency.count:
        return "n/a (none delivered)"
    return f"{_ms(first)} / {_ms(second)}"


def _reconnects(result: ModeResult) -> str:
    m = result.metrics
    if result.mode == "push":
        return _n(m.get("disconnects_seen_by_subscribers", 0))
    if not m.get("consumer_reconnects") and m.get("broker_restarts"):
        # The Kafka client retries fetches through an outage without telling its caller.
        return "n/a (client retries inside)"
    return _n(m.get("consumer_reconnects", 0))


def _bytes(value: int) -> str:
    return f"{value:,} B" if value < 10 * 1024 else f"{value:,} B ({value / 1024:,.0f} KiB)"


def _buffer_rows(m: dict) -> list[tuple[str, str]]:
    """Push mode's output-buffer figures; unknown is "n/a", never 0."""
    peak = m.get("subscriber_buffer_high_water_bytes")
    if peak is None:
        high_water = "n/a (server keeps no peak)"
    elif m.get("subscriber_buffer_high_water_source") == "sampled":
        high_water = f">= {_bytes(peak)} (sampled)"
    else:
        high_water = _bytes(peak)
    cut_offs = m.get("server_disconnects_output_buffer_limit", 0)
    at_cut = m.get("subscriber_buffer_at_cut_off_bytes")
    if not cut_offs:
        when_cut = "- (not cut off)"
    else:
        when_cut = _bytes(at_cut) if at_cut is not None else "n/a (server does not say)"
    # The counters are the publisher's broker's: they restarted only if that one did.
    since = " since restart" if m.get("counters_restarted", m.get("broker_restarts")) else ""
    return [
        ("output buffer high-water", high_water),
        ("output buffer at cut-off", when_cut),
        ("cut off by server / gaps seen", f"{cut_offs}{since} / {m.get('disconnects_seen_by_subscribers', 0)}"),
    ]


def _rows(result: ModeResult) -> list[tuple[str, str]]:
    m = result.metrics
    failed = result.unacknowledged - result.unanswered_at_stop
    unanswered = [f"{_n(failed)} failed"] if failed else []
    unanswered += [f"{_n(result.unanswered_at_stop)} unanswered at stop"] if result.unanswered_at_stop else []
    rows = [
        ("sent", _n(result.sent)),
        ("acknowledged", _n(result.acknowledged) + (f"  ({', '.join(unanswered)})" if unanswered else "")),
    ]
    for consumer in result.consumers:
        rows.append((f"delivered ({consumer.name})", _n(consumer.delivered)))
    rows += [
        ("not delivered: no subscriber", _n(result.not_promised) if result.mode == "push" or result.not_promised
         else "- (log keeps it)"),
        ("LOST (promised, not delivered)", _n(result.lost)),
    ]
    if result.stopped:
        rows.append(("not delivered yet (run stopped)", _n(sum(c.still_in_flight for c in result.consumers))))
    rows += [
        ("duplicated", _n(result.duplicated)),
        ("reordered (per producer+key)", _n(result.reordered)),
        ("longest delivery gap ms (worst)", _ms(result.longest_gap_ms)),
        ("sent/s (to the client library)", _n(result.send_rate)),
        ("delivered/s (all consumers)", _n(result.delivery_rate)),
        ("latency of delivered p50 / p99 ms", _pair(result, result.latency.p50_ms, result.latency.p99_ms)),
        ("latency of delivered p99.9/max ms", _pair(result, result.latency.p999_ms, result.latency.max_ms)),
        ("consumer restarts after a crash", _n(m.get("consumer_restarts", 0))),
        ("reconnects after a lost connection", _reconnects(result)),
        ("broker restarts by the scenario", _n(m.get("broker_restarts", 0))),
    ]
    if result.mode == "pull":
        rows.append(("consumer lag high-water", f"{_n(m.get('consumer_lag_high_water', 0))} msgs"))
        assignments = m.get("group_assignments")
        rows.append(("group assignments (joins+rebal.)",
                     _n(assignments) if assignments is not None else "n/a (no group)"))
    else:
        rows.append(("cut off, not subscribed ms (worst)", _ms(result.cut_off_ms)))
        rows += _buffer_rows(m)
    return rows


def workload_line(report: ScenarioReport) -> str:
    """``1 producer(s) x 2,000 msgs of 100 B at 4,000 msg/s, 1 consumer(s); broker embedded``."""
    w = report.workload
    rate = f"{w.rate:,.0f} msg/s" if w.rate else "full speed"
    return (f"{w.producers} producer(s) x {w.messages:,} msgs of {w.message_size} B at {rate}, "
            f"{w.consumers} consumer(s); broker {report.broker['kind']}"
            + (f" of {report.broker['cluster']} nodes" if report.broker.get("cluster") else "") + f"; run {report.run_id}")


def render_scenario(report: ScenarioReport) -> str:
    w = report.workload
    modes = report.modes
    lines = [
        f"== {w.name}: {w.description}" if w.description else f"== {w.name}",
        f"   {workload_line(report)}",
    ]
    if report.interrupted:
        lines.append("   INTERRUPTED (Ctrl-C): partial counts; messages still in flight are counted apart")
    if report.verdict:
        lines += ["", f"verdict: {report.verdict}"]
    table = {mode: _rows(report.results[mode]) for mode in modes}
    labels: list[str] = []
    for rows in table.values():
        for label, _ in rows:
            if label not in labels:
                labels.append(label)
    width = max(len(label) for label in labels) + 2 if labels else 10
    columns = {mode: max([len(TITLES[mode])] + [len(cell) for _, cell in table[mode]]) + 3 for mode in modes}
    lines.append("")
    lines.append(" " * width + "".join(f"{TITLES[mode]:>{columns[mode]}}" for mode in modes))
    for label in labels:
        lines.append(f"{label:<{width}}" + "".join(f"{dict(table[mode]).get(label, ''):>{columns[mode]}}"
                                                    for mode in modes))
    for mode, reason in report.skipped.items():
        lines.append(f"({mode} mode not run: {reason})")
    why = []
    for mode, summary in report.summaries.items():
        why += [f"  {mode}: {shortfall.describe()}" for shortfall in summary.shortfalls]
        if summary.duplicated:
            why.append(f"  {mode}: {summary.duplicated:,} {DUPLICATES_WHY}")
    if why:
        lines += ["", "why not delivered:"] + why
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


THROUGHPUT_CAVEAT = ("sent/s and delivered/s come from short runs with producers, consumers and the accounting in "
                     "one process: they measure this harness as much as the mode, not either model's capacity.")


def render_text(reports: list[ScenarioReport]) -> str:
    return "\n\n".join(render_scenario(report) for report in reports) + f"\n\nnote: {THROUGHPUT_CAVEAT}\n"


# --- JSON -----------------------------------------------------------------------------------------


def _mode_json(result: ModeResult) -> dict[str, Any]:
    data = attrs.asdict(result, recurse=True)
    data["lost_reasons"] = result.lost_reasons
    data["longest_gap_ms"] = result.longest_gap_ms
    data["cut_off_ms"] = result.cut_off_ms
    data["not_promised_reasons"] = result.not_promised_reasons
    summary = summarize(result)
    data["summary"] = {"expected": summary.expected, "not_delivered": summary.not_delivered,
                       "shortfalls": [attrs.asdict(s) for s in summary.shortfalls]}
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
                "interrupted": r.interrupted,
                "verdict": r.verdict,
                "modes": {mode: _mode_json(result) for mode, result in r.results.items()},
            }
            for r in reports
        ],
    }


def write_json(reports: list[ScenarioReport], path: str | Path) -> None:
    Path(path).write_text(json.dumps(to_json(reports), indent=1) + "\n")
