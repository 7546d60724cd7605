"""The ``--html`` page: one self-contained file, tables plus inline SVG charts, no network needed.

Per scenario: the same numbers as the terminal table, the reasons, the guarantee receipt, and
two charts drawn as inline SVG (no JavaScript, no external fonts or scripts):

* **latency CDF** - x: end-to-end latency in ms (log scale), y: fraction of messages delivered
  within it; one line per mode.
* **throughput over time** - x: seconds since the first send, y: messages/s; solid lines are
  deliveries, dashed lines sends, one colour per mode.
"""

from __future__ import annotations

import html
import math
from pathlib import Path

from dualmq.compare.report import TITLES, ScenarioReport, _rows

COLOURS = {"pull": "#1f77b4", "push": "#d62728"}
WIDTH, HEIGHT = 520, 300
LEFT, RIGHT, TOP, BOTTOM = 60, 15, 20, 45


def _esc(text: object) -> str:
    return html.escape(str(text))


def _axes(x_label: str, y_label: str, x_ticks: list[tuple[float, str]], y_ticks: list[tuple[float, str]]) -> str:
    parts = [f'<rect x="{LEFT}" y="{TOP}" width="{WIDTH - LEFT - RIGHT}" height="{HEIGHT - TOP - BOTTOM}" '
             f'fill="#fafafa" stroke="#999"/>']
    for x, label in x_ticks:
        parts.append(f'<line x1="{x:.1f}" y1="{TOP}" x2="{x:.1f}" y2="{HEIGHT - BOTTOM}" stroke="#e3e3e3"/>')
        parts.append(f'<text x="{x:.1f}" y="{HEIGHT - BOTTOM + 15}" font-size="11" text-anchor="middle">'
                     f'{_esc(label)}</text>')
    for y, label in y_ticks:
        parts.append(f'<line x1="{LEFT}" y1="{y:.1f}" x2="{WIDTH - RIGHT}" y2="{y:.1f}" stroke="#e3e3e3"/>')
        parts.append(f'<text x="{LEFT - 5}" y="{y + 4:.1f}" font-size="11" text-anchor="end">{_esc(label)}</text>')
    parts.append(f'<text x="{(LEFT + WIDTH - RIGHT) / 2}" y="{HEIGHT - 8}" font-size="12" '
                 f'text-anchor="middle">{_esc(x_label)}</text>')
    parts.append(f'<text x="14" y="{(TOP + HEIGHT - BOTTOM) / 2}" font-size="12" text-anchor="middle" '
                 f'transform="rotate(-90 14 {(TOP + HEIGHT - BOTTOM) / 2})">{_esc(y_label)}</text>')
    return "\n".join(parts)


def _legend(modes: list[str], extra: str = "") -> str:
    parts = []
    for i, mode in enumerate(modes):
        x = LEFT + 10 + i * 150
        parts.append(f'<rect x="{x}" y="{TOP + 6}" width="14" height="4" fill="{COLOURS[mode]}"/>'
                     f'<text x="{x + 18}" y="{TOP + 12}" font-size="11">{_esc(TITLES[mode])}{extra}</text>')
    return "\n".join(parts)


def _svg(body: str, title: str) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
            f'viewBox="0 0 {WIDTH} {HEIGHT}" role="img"><title>{_esc(title)}</title>\n{body}\n</svg>')


def latency_cdf_svg(report: ScenarioReport) -> str:
    """Latency CDF of every mode, log-scale x axis."""
    modes = [m for m in ("pull", "push") if m in report.results and report.results[m].cdf]
    values = [ms for m in modes for ms, _ in report.results[m].cdf]
    low = max(min((v for v in values if v > 0), default=0.01), 0.01)
    high = max(max(values, default=1.0), low * 10)
    lo_exp, hi_exp = math.floor(math.log10(low)), math.ceil(math.log10(high))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x_of(ms: float) -> float:
        value = math.log10(max(ms, 10 ** lo_exp))
        return LEFT + (value - lo_exp) / max(hi_exp - lo_exp, 1) * plot_w

    def y_of(fraction: float) -> float:
        return TOP + (1 - fraction) * plot_h

    x_ticks = [(x_of(10 ** e), f"{10 ** e:g}") for e in range(lo_exp, hi_exp + 1)]
    y_ticks = [(y_of(f), f"{f:.2g}") for f in (0, 0.25, 0.5, 0.75, 0.99, 1.0)]
    parts = [_axes("latency (ms, log scale)", "fraction delivered", x_ticks, y_ticks)]
    for mode in modes:
        points = " ".join(f"{x_of(ms):.1f},{y_of(f):.1f}" for ms, f in report.results[mode].cdf)
        parts.append(f'<polyline fill="none" stroke="{COLOURS[mode]}" stroke-width="2.5" points="{points}"/>')
    parts.append(_legend(modes))
    if not modes:
        parts.append(f'<text x="{WIDTH / 2}" y="{HEIGHT / 2}" text-anchor="middle">no deliveries</text>')
    return _svg("\n".join(parts), f"{report.workload.name}: latency CDF")


def throughput_svg(report: ScenarioReport) -> str:
    """Sent/s (dashed) and delivered/s (solid) over time, per mode."""
    modes = [m for m in ("pull", "push") if m in report.results and report.results[m].timeline]
    t_max = max((t for m in modes for t, _, _ in report.results[m].timeline), default=1.0) or 1.0
    r_max = max((max(s, d) for m in modes for _, s, d in report.results[m].timeline), default=1.0) or 1.0
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x_of(t: float) -> float:
        return LEFT + t / t_max * plot_w

    def y_of(rate: float) -> float:
        return TOP + (1 - rate / r_max) * plot_h

    x_ticks = [(x_of(t_max * i / 4), f"{t_max * i / 4:.2g}") for i in range(5)]
    y_ticks = [(y_of(r_max * i / 4), f"{r_max * i / 4:,.0f}") for i in range(5)]
    parts = [_axes("seconds since the first send", "messages/s", x_ticks, y_ticks)]
    for mode in modes:
        timeline = report.results[mode].timeline
        sent = " ".join(f"{x_of(t):.1f},{y_of(s):.1f}" for t, s, _ in timeline)
        delivered = " ".join(f"{x_of(t):.1f},{y_of(d):.1f}" for t, _, d in timeline)
        parts.append(f'<polyline fill="none" stroke="{COLOURS[mode]}" stroke-width="1.5" '
                     f'stroke-dasharray="5,4" points="{sent}"/>')
        parts.append(f'<polyline fill="none" stroke="{COLOURS[mode]}" stroke-width="2.5" points="{delivered}"/>')
    parts.append(_legend(modes, " (solid: delivered, dashed: sent)" if len(modes) == 1 else ""))
    return _svg("\n".join(parts), f"{report.workload.name}: throughput over time")


def _table(report: ScenarioReport) -> str:
    modes = [m for m in ("pull", "push") if m in report.results]
    rows = {m: dict(_rows(report.results[m])) for m in modes}
    labels: list[str] = []
    for m in modes:
        labels += [label for label in rows[m] if label not in labels]
    head = "".join(f"<th>{_esc(TITLES[m])}</th>" for m in modes)
    body = "".join(
        f"<tr><th>{_esc(label)}</th>" + "".join(f"<td>{_esc(rows[m].get(label, ''))}</td>" for m in modes) + "</tr>"
        for label in labels)
    return f"<table><tr><th></th>{head}</tr>{body}</table>"


def _details(report: ScenarioReport) -> str:
    items = []
    for mode, result in report.results.items():
        for reason, count in result.not_promised_reasons.items():
            items.append(f"<li><b>{mode}</b>: {count:,} not delivered, {_esc(reason)}</li>")
        for reason, count in result.lost_reasons.items():
            items.append(f"<li><b>{mode}</b>: {count:,} <b>lost</b>, {_esc(reason)}</li>")
    receipt = []
    for mode, result in report.results.items():
        rows = "".join(f"<tr><th>{_esc(k)}</th><td>{_esc(v)}</td></tr>" for k, v in result.guarantees.items())
        incidents = "".join(f"<li>t={at:.2f} s: {_esc(what)}</li>" for at, what in result.incidents)
        receipt.append(f"<div class=receipt><h4>{_esc(TITLES[mode])}</h4><table>{rows}</table>"
                       f"<ul>{incidents}</ul></div>")
    why = f"<h3>Why not delivered</h3><ul>{''.join(items)}</ul>" if items else ""
    return why + "<h3>Guarantee receipt</h3>" + "".join(receipt)


def render_html(reports: list[ScenarioReport]) -> str:
    """The whole page as a string."""
    sections = []
    for report in reports:
        w = report.workload
        sections.append(
            f"<section><h2>{_esc(w.name)}</h2><p>{_esc(w.description)}</p>"
            f"<p class=small>{w.producers} producer(s) x {w.messages:,} messages of {w.message_size} B, "
            f"{w.consumers} consumer(s), broker {_esc(report.broker['kind'])}, run {_esc(report.run_id)}</p>"
            f"{_table(report)}<div class=charts>{latency_cdf_svg(report)}{throughput_svg(report)}</div>"
            f"{_details(report)}</section>")
    style = ("body{font-family:sans-serif;margin:20px;color:#222}table{border-collapse:collapse;margin:8px 0}"
             "td,th{border:1px solid #ccc;padding:3px 8px;text-align:right;font-size:13px}"
             "th{text-align:left;background:#f3f3f3}.charts{display:flex;flex-wrap:wrap;gap:16px}"
             ".receipt{display:inline-block;vertical-align:top;margin-right:20px}.small{color:#666;font-size:13px}"
             "section{border-top:2px solid #ddd;margin-top:20px}")
    return ("<!DOCTYPE html><html><head><meta charset=utf-8><title>dualmq compare</title>"
            f"<style>{style}</style></head><body><h1>dualmq compare: pull mode vs push mode</h1>"
            + "".join(sections) + "</body></html>\n")


def write_html(reports: list[ScenarioReport], path: str | Path) -> None:
    Path(path).write_text(render_html(reports), encoding="utf-8")
