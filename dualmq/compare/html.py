"""The ``--html`` page: one self-contained file, summary first, then charts and tables; no network.

Per scenario, in this order:

* **the summary**, in big type: the verdict (one sentence generated from the numbers, see
  ``summary``), then pull and push side by side - sent, delivered, lost, not delivered, and
  why each message that did not arrive did not;
* **two charts** drawn as inline SVG (no JavaScript, no external fonts or scripts), each with
  its legend above the plot (never on the curves) and a caption that explains its lines:

  - *latency*: x - end-to-end latency in ms (log scale); y - the fraction of the messages
    **sent** that were delivered within that latency. A mode that delivered 18 % of what
    was sent ends at 0.18: the height where a line stops is how much arrived at all.
  - *messages over time*: the cumulative count of messages sent (dashed) and delivered
    (solid). Cumulative counts rather than rates per second, because a producer at full
    speed sends everything in a spike that would flatten every other rate on a linear
    scale; here a rate is the slope, the backlog is the vertical gap between a mode's two
    lines, and a line that goes flat while the other climbs is delivery that stopped.

* the full table (the terminal's), the reasons, and the guarantee receipt.

Not here: the numbers (``accounting``, ``summary``) - this module only draws them.
"""

from __future__ import annotations

import html
import math

from dualmq.compare.report import DUPLICATES_WHY, THROUGHPUT_CAVEAT, TITLES, ScenarioReport, _rows, workload_line
from dualmq.compare.summary import ModeSummary, percent

COLOURS = {"pull": "#1f77b4", "push": "#d62728"}
WIDTH = 540
LEFT, RIGHT, BOTTOM = 72, 16, 50     # plot margins; TOP depends on the legend's rows
LEGEND_ROW = 17
CHAR_WIDTH = 6.6                     # a generous estimate for 11 px sans-serif, to lay out legends
PLOT_HEIGHT = 250
SOLID, DASHED = "", "6,4"


def _esc(text: object) -> str:
    return html.escape(str(text))


# --- axes and ticks -----------------------------------------------------------------------------


def compact(value: float) -> str:
    """Tick label: ``0.25``, ``500``, ``20k``, ``1.5M`` (short, so labels never collide)."""
    if value >= 1_000_000:
        return f"{value / 1_000_000:g}M"
    if value >= 10_000:
        return f"{value / 1000:g}k"
    return f"{value:,.10g}"


def nice_ticks(high: float, most: int = 6) -> list[float]:
    """Round tick values from 0 to at least ``high``: steps of 1, 2, 2.5 or 5 x 10^k."""
    if high <= 0:
        return [0.0, 1.0]
    rough = high / (most - 1)
    power = 10 ** math.floor(math.log10(rough))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= rough)
    count = math.ceil(high / step - 1e-9)
    return [round(i * step, 10) for i in range(count + 1)]


class Frame:
    """The geometry of one chart: the plot rectangle below a legend of ``legend_rows`` rows."""

    def __init__(self, legend_rows: int) -> None:
        self.top = 12 + LEGEND_ROW * legend_rows + 10
        self.height = self.top + PLOT_HEIGHT + BOTTOM
        self.left, self.right = LEFT, WIDTH - RIGHT
        self.bottom = self.top + PLOT_HEIGHT

    def axes(self, x_label: str, y_label: str, x_ticks: list[tuple[float, str]],
             y_ticks: list[tuple[float, str]]) -> str:
        """Plot area, grid, tick labels and axis titles (tick positions already in pixels)."""
        parts = [f'<rect class="plot-area" x="{self.left}" y="{self.top}" width="{self.right - self.left}" '
                 f'height="{PLOT_HEIGHT}" fill="#fafafa" stroke="#999"/>']
        for x, label in x_ticks:
            parts.append(f'<line x1="{x:.1f}" y1="{self.top}" x2="{x:.1f}" y2="{self.bottom}" stroke="#e3e3e3"/>')
            parts.append(f'<text class="tick-label" x="{x:.1f}" y="{self.bottom + 16}" font-size="11" '
                         f'text-anchor="middle">{_esc(label)}</text>')
        for y, label in y_ticks:
            parts.append(f'<line x1="{self.left}" y1="{y:.1f}" x2="{self.right}" y2="{y:.1f}" stroke="#e3e3e3"/>')
            parts.append(f'<text class="tick-label" x="{self.left - 6}" y="{y + 4:.1f}" font-size="11" '
                         f'text-anchor="end">{_esc(label)}</text>')
        middle_y = (self.top + self.bottom) / 2
        parts.append(f'<text class="axis-label" x="{(self.left + self.right) / 2}" y="{self.height - 10}" '
                     f'font-size="12" text-anchor="middle">{_esc(x_label)}</text>')
        parts.append(f'<text class="axis-label" x="16" y="{middle_y}" font-size="12" text-anchor="middle" '
                     f'transform="rotate(-90 16 {middle_y})">{_esc(y_label)}</text>')
        return "\n".join(parts)


def curve(colour: str, points: str, *, width: float = 2.5, dash: str = SOLID) -> str:
    """One data line (``points``: "x,y x,y ..." in pixels); class ``curve`` marks it for the tests."""
    dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
    return (f'<polyline class="curve" fill="none" stroke="{colour}" stroke-width="{width:g}"{dash_attr} '
            f'points="{points}"/>')


def centred_note(frame: Frame, text: str) -> str:
    """A note in the middle of an empty plot (nothing to draw)."""
    return (f'<text x="{(frame.left + frame.right) / 2}" y="{(frame.top + frame.bottom) / 2}" '
            f'text-anchor="middle" font-size="12">{_esc(text)}</text>')


def _legend_rows(items: list[tuple[str, str, str]]) -> list[list[tuple[str, str, str]]]:
    """Lay ``(colour, dash, text)`` items out in rows that fit the chart's width."""
    rows: list[list[tuple[str, str, str]]] = [[]]
    used = 0.0
    for item in items:
        width = _legend_item_width(item[2])
        if rows[-1] and used + width > WIDTH - LEFT - RIGHT:
            rows.append([])
            used = 0.0
        rows[-1].append(item)
        used += width
    return rows


def _legend_item_width(text: str) -> float:
    return 30 + len(text) * CHAR_WIDTH + 16


def _legend(rows: list[list[tuple[str, str, str]]]) -> str:
    """The legend, above the plot area: a line sample in the item's colour and dash, then text."""
    parts = ['<g class="legend">']
    for r, row in enumerate(rows):
        y = 12 + r * LEGEND_ROW + 6
        x = float(LEFT)
        for colour, dash, text in row:
            dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
            parts.append(f'<line x1="{x:.1f}" y1="{y - 4}" x2="{x + 24:.1f}" y2="{y - 4}" stroke="{colour}" '
                         f'stroke-width="2.5"{dash_attr}/>'
                         f'<text x="{x + 30:.1f}" y="{y}" font-size="11">{_esc(text)}</text>')
            x += _legend_item_width(text)
    parts.append("</g>")
    return "\n".join(parts)


def _svg(frame: Frame, body: str, title: str) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{frame.height}" '
            f'viewBox="0 0 {WIDTH} {frame.height}" role="img"><title>{_esc(title)}</title>\n{body}\n</svg>')


def _figure(svg: str, caption: str) -> str:
    return f"<figure>{svg}<figcaption>{caption}</figcaption></figure>"


# --- the two charts -------------------------------------------------------------------------------


def latency_cdf_svg(report: ScenarioReport) -> str:
    """Latency of every mode, as the fraction of the messages sent delivered within x ms."""
    summaries = report.summaries
    modes = [m for m in report.modes if report.results[m].cdf]
    items = []
    for mode in report.modes:
        s = summaries[mode]
        items.append((COLOURS[mode], SOLID, f"{TITLES[mode]}: {s.delivered:,} of {s.expected:,} delivered "
                                            f"({percent(s.delivered, s.expected)})"))
    rows = _legend_rows(items)
    frame = Frame(len(rows))
    values = [ms for m in modes for ms, _ in report.results[m].cdf]
    low = max(min((v for v in values if v > 0), default=0.01), 0.01)
    high = max(max(values, default=1.0), low * 10)
    lo_exp, hi_exp = math.floor(math.log10(low)), math.ceil(math.log10(high))
    plot_w = frame.right - frame.left

    def x_of(ms: float) -> float:
        value = math.log10(max(ms, 10 ** lo_exp))
        return frame.left + (value - lo_exp) / max(hi_exp - lo_exp, 1) * plot_w

    def y_of(fraction: float) -> float:
        return frame.top + (1 - fraction) * PLOT_HEIGHT

    decades = list(range(lo_exp, hi_exp + 1))
    every = max(1, math.ceil(len(decades) / 7))   # at most 7 labels: they stay apart
    x_ticks = [(x_of(10 ** e), f"{10 ** e:,g}") for e in decades[::every]]
    y_ticks = [(y_of(f), f"{f:g}") for f in (0, 0.25, 0.5, 0.75, 1.0)]
    parts = [frame.axes("latency (ms, log scale)", "fraction of messages sent", x_ticks, y_ticks)]
    for mode in modes:
        cdf = report.results[mode].cdf
        points = " ".join(f"{x_of(ms):.1f},{y_of(f):.1f}" for ms, f in cdf)
        parts.append(curve(COLOURS[mode], points))
        # Where the line stops: nothing more was ever delivered.
        parts.append(f'<circle cx="{x_of(cdf[-1][0]):.1f}" cy="{y_of(cdf[-1][1]):.1f}" r="3.5" '
                     f'fill="{COLOURS[mode]}"/>')
    parts.append(_legend(rows))
    if not modes:
        parts.append(centred_note(frame, "no message was delivered"))
    return _svg(frame, "\n".join(parts), f"{report.workload.name}: latency")


def progress_svg(report: ScenarioReport) -> str:
    """Messages sent (dashed) and delivered (solid) so far, per mode, over time."""
    summaries = report.summaries
    modes = [m for m in report.modes if report.results[m].progress]
    rows = []   # one row per mode: its sent line, then its delivered line
    for mode in modes:
        consumers = summaries[mode].consumers
        sent = "sent" if consumers == 1 else f"sent x {consumers} consumers"
        rows.append([(COLOURS[mode], DASHED, f"{TITLES[mode]}: {sent}"),
                     (COLOURS[mode], SOLID, f"{TITLES[mode]}: delivered")])
    frame = Frame(len(rows))
    t_max = max((report.results[m].progress[-1][0] for m in modes), default=1.0) or 1.0
    n_max = max((max(summaries[m].expected, report.results[m].progress[-1][2]) for m in modes), default=1) or 1
    x_values, y_values = nice_ticks(t_max), nice_ticks(n_max)
    t_top, n_top = x_values[-1], y_values[-1]

    def x_of(t: float) -> float:
        return frame.left + t / t_top * (frame.right - frame.left)

    def y_of(count: float) -> float:
        return frame.top + (1 - count / n_top) * PLOT_HEIGHT

    x_ticks = [(x_of(t), compact(t)) for t in x_values]
    y_ticks = [(y_of(n), compact(n)) for n in y_values]
    parts = [frame.axes("seconds since the first send", "messages so far", x_ticks, y_ticks)]
    for mode in modes:
        progress = report.results[mode].progress
        consumers = summaries[mode].consumers
        sent = " ".join(f"{x_of(t):.1f},{y_of(s * consumers):.1f}" for t, s, _ in progress)
        delivered = " ".join(f"{x_of(t):.1f},{y_of(d):.1f}" for t, _, d in progress)
        parts.append(curve(COLOURS[mode], sent, width=1.5, dash=DASHED))
        parts.append(curve(COLOURS[mode], delivered))
    parts.append(_legend(rows))
    return _svg(frame, "\n".join(parts), f"{report.workload.name}: messages sent and delivered over time")


LOST_MEANS = (
    "<b>Lost</b>: accepted by the broker for a consumer (into the log, or for a subscriber connected at the "
    "time) and never delivered. The other messages not delivered were published while no subscriber was "
    "connected - push mode's contract: nobody was promised them - or not acknowledged because the send failed.")
LATENCY_CAPTION = (
    "<b>Latency.</b> One line per mode. A point (x, y) means: a fraction y of all the messages sent was "
    "delivered within x ms. Fractions are of the messages <i>sent</i>, so a line stops at the share that was "
    "delivered at all (the dot); a line further left is faster only for the messages it did deliver.")
PROGRESS_CAPTION = (
    "<b>Messages over time</b>, counted from each mode's first send (the modes ran one after the other). "
    "Dashed: sent so far; solid: delivered so far. The slope is the rate; the vertical gap between a mode's "
    "two lines is what was sent and not (yet) delivered. Counts rather than rates per second, so that a "
    "producer's burst at full speed does not flatten everything else.")


# --- the summary and the tables -----------------------------------------------------------------------


def _side_html(mode: str, summary: ModeSummary) -> str:
    rows = [("sent", f"{summary.sent:,}")]
    if summary.consumers > 1:
        rows.append((f"deliveries expected ({summary.consumers} consumers)", f"{summary.expected:,}"))
    rows += [
        ("delivered", f"{summary.delivered:,} <span class=share>({percent(summary.delivered, summary.expected)})"
                      f"</span>"),
        ("not delivered", f"{summary.not_delivered:,}"),
        ("of which lost", f"{summary.lost:,}"),
    ]
    table = "".join(f"<tr><th>{label}</th><td>{value}</td></tr>" for label, value in rows)
    if summary.shortfalls:
        why = ("<p class=why-title>Why the rest were not delivered:</p><ul class=why>"
               + "".join(f"<li>{_esc(s.describe())}</li>" for s in summary.shortfalls) + "</ul>")
    else:
        why = "<p class=why-title>Every message sent was delivered.</p>"
    if summary.duplicated:
        why += f"<p class=why-title>Also {summary.duplicated:,} {_esc(DUPLICATES_WHY)}.</p>"
    return (f'<div class="side {mode}" style="border-top-color:{COLOURS[mode]}"><h3>{_esc(TITLES[mode])}</h3>'
            f"<table class=big>{table}</table>{why}</div>")


def summary_html(report: ScenarioReport) -> str:
    """The verdict, then each mode's sent / delivered / lost / why, side by side."""
    sides = [_side_html(mode, summary) for mode, summary in report.summaries.items()]
    sides += [f'<div class="side skipped"><h3>{_esc(TITLES.get(mode, mode))}</h3><p>not run: {_esc(reason)}</p></div>'
              for mode, reason in report.skipped.items()]
    interrupted = ("<p class=interrupted>Interrupted (Ctrl-C): these counts cover what ran until then.</p>"
                   if report.interrupted else "")
    return (f"<div class=summary>{interrupted}<p class=verdict>{_esc(report.verdict)}</p>"
            f"<div class=sides>{''.join(sides)}</div><p class=small>{LOST_MEANS}</p></div>")


def _table(report: ScenarioReport) -> str:
    modes = report.modes
    rows = {m: dict(_rows(report.results[m])) for m in modes}
    labels: list[str] = []
    for m in modes:
        labels += [label for label in rows[m] if label not in labels]
    head = "".join(f"<th>{_esc(TITLES[m])}</th>" for m in modes)
    body = "".join(
        f"<tr><th>{_esc(label)}</th>" + "".join(f"<td>{_esc(rows[m].get(label, ''))}</td>" for m in modes) + "</tr>"
        for label in labels)
    return f"<table class=numbers><tr><th></th>{head}</tr>{body}</table>"


def _receipt(report: ScenarioReport) -> str:
    receipt = []
    for mode, result in report.results.items():
        rows = "".join(f"<tr><th>{_esc(k)}</th><td>{_esc(v)}</td></tr>" for k, v in result.guarantees.items())
        incidents = "".join(f"<li>t={at:.2f} s: {_esc(what)}</li>" for at, what in result.incidents)
        notes = "".join(f"<li>note: {_esc(note)}</li>" for note in result.notes)
        receipt.append(f"<div class=receipt><h4>{_esc(TITLES[mode])}</h4><table>{rows}</table>"
                       f"<ul>{incidents}{notes}</ul></div>")
    return "<h3>Guarantee receipt: the settings these numbers were measured under</h3>" + "".join(receipt)


STYLE = (
    "body{font-family:sans-serif;margin:20px;color:#222;max-width:1160px}"
    "table{border-collapse:collapse;margin:8px 0}"
    "td,th{border:1px solid #ccc;padding:3px 8px;text-align:right;font-size:13px}"
    "th{text-align:left;background:#f3f3f3}"
    ".summary{margin:12px 0 20px}.verdict{font-size:22px;line-height:1.35;margin:10px 0 14px}"
    ".interrupted{font-size:18px;color:#a00}"
    ".sides{display:flex;flex-wrap:wrap;gap:24px}"
    ".side{border-top:6px solid #999;padding:4px 12px 8px;background:#fbfbfb;min-width:300px;flex:1}"
    ".side h3{font-size:20px;margin:6px 0}"
    ".big td,.big th{font-size:24px;border:none;background:none;padding:2px 14px 2px 0}"
    ".big td{font-weight:bold}.share{font-weight:normal;color:#555;font-size:18px}"
    ".why-title{font-size:16px;margin:10px 0 4px}.why{font-size:16px;margin:0}"
    ".charts{display:flex;flex-wrap:wrap;gap:20px}figure{margin:0;width:540px}"
    "figcaption{font-size:13px;color:#444;line-height:1.4}"
    ".receipt{display:inline-block;vertical-align:top;margin-right:20px}.small{color:#666;font-size:13px}"
    "section{border-top:2px solid #ddd;margin-top:20px}"
)


def scenario_section(report: ScenarioReport) -> str:
    """The ``<section>`` of one in-process scenario."""
    w = report.workload
    return (f"<section><h2>{_esc(w.name)}</h2><p>{_esc(w.description)}</p>"
            f"<p class=small>{_esc(workload_line(report))}</p>"
            f"{summary_html(report)}"
            f"<div class=charts>{_figure(latency_cdf_svg(report), LATENCY_CAPTION)}"
            f"{_figure(progress_svg(report), PROGRESS_CAPTION)}</div>"
            f"<h3>All the numbers</h3>{_table(report)}<p class=small>{_esc(THROUGHPUT_CAVEAT)}</p>"
            f"{_receipt(report)}</section>")


def page(sections: list[str]) -> str:
    """A complete page around ``sections`` (the measured scenarios' come from ``sweep_html``)."""
    return ("<!DOCTYPE html><html><head><meta charset=utf-8><title>dualmq compare</title>"
            f"<style>{STYLE}</style></head><body><h1>dualmq compare: pull mode vs push mode</h1>"
            + "".join(sections) + "</body></html>\n")
