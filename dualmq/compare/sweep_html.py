"""The ``--html`` section of a measured scenario: its verdict, one chart per claim, the table.

Each chart (inline SVG, drawn with the axes, legend and frame helpers of ``html``) puts the
sweep's points on the x axis, evenly spaced and labelled with their values (1, 2, 5, 10, 50
subscribers; 100 B ... 1 MB), and one metric on the y axis (linear from 0, or log when the
values span decades). Each mode is a line through its medians; an error bar at every point
spans its lowest and highest run. Axis titles say what is measured and in which unit.

Not here: the numbers (``measured``, ``sweeps``) - this module only draws them.
"""

from __future__ import annotations

import math

from pathlib import Path

from dualmq.compare.html import COLOURS, PLOT_HEIGHT, SOLID, Frame, _esc, _figure, _legend, _legend_rows, _svg, \
    centred_note, compact, curve, nice_ticks, page, scenario_section
from dualmq.compare.measured import CLIENT_NOTE
from dualmq.compare.report import TITLES
from dualmq.compare.sweep_report import SHORT, _number
from dualmq.compare.sweeps import METRIC_LABELS, STEADY_WINDOW_NOTE, Chart, SweepResult

CAP = 4   # half-width of an error bar's caps, px


def _y_scale(values: list[float], log: bool, frame: Frame):
    """(y_of, ticks) for the values: log decades if asked and all positive, else linear from 0."""
    positive = [v for v in values if v > 0]
    if log and positive:
        lo = math.floor(math.log10(min(positive)))
        hi = max(math.ceil(math.log10(max(positive))), lo + 1)

        def y_of(v: float) -> float:
            v = math.log10(max(v, 10 ** lo))
            return frame.bottom - (v - lo) / (hi - lo) * PLOT_HEIGHT

        every = max(1, math.ceil((hi - lo + 1) / 7))
        return y_of, [(y_of(10 ** e), compact(10 ** e)) for e in range(lo, hi + 1, every)]
    ticks = nice_ticks(max(values, default=1.0) or 1.0)
    top = ticks[-1]

    def y_of(v: float) -> float:
        return frame.bottom - max(v, 0) / top * PLOT_HEIGHT

    return y_of, [(y_of(t), compact(t)) for t in ticks]


def chart_svg(result: SweepResult, chart: Chart) -> str:
    """One metric of a sweep against its points, per mode, medians with error bars."""
    modes = [m for m in result.modes() if any(p.stat(m, chart.metric) for p in result.points)]
    items = [(COLOURS[m], SOLID, f"{TITLES[m]}: median of {result.runs} run(s), bar = lowest-highest")
             for m in modes]
    rows = _legend_rows(items)
    frame = Frame(len(rows))
    count = len(result.points)
    plot_w = frame.right - frame.left

    def x_of(index: int) -> float:
        return frame.left + (index + 0.5) / count * plot_w

    values = [v for p in result.points for m in modes if (s := p.stat(m, chart.metric)) for v in s]
    y_of, y_ticks = _y_scale(values, chart.log_y, frame)
    x_ticks = [(x_of(i), p.point.label) for i, p in enumerate(result.points)]
    y_label = METRIC_LABELS[chart.metric] + (", log scale" if chart.log_y and any(v > 0 for v in values) else "")
    parts = [frame.axes(result.sweep.variable, y_label, x_ticks, y_ticks)]
    for mode in modes:
        colour = COLOURS[mode]
        line = []
        for i, p in enumerate(result.points):
            stat = p.stat(mode, chart.metric)
            if stat is None:
                continue
            median, low, high = stat
            x = x_of(i)
            line.append(f"{x:.1f},{y_of(median):.1f}")
            parts.append(f'<g class="error-bar" stroke="{colour}" stroke-width="1.5">'
                         f'<line x1="{x:.1f}" y1="{y_of(low):.1f}" x2="{x:.1f}" y2="{y_of(high):.1f}"/>'
                         f'<line x1="{x - CAP:.1f}" y1="{y_of(low):.1f}" x2="{x + CAP:.1f}" y2="{y_of(low):.1f}"/>'
                         f'<line x1="{x - CAP:.1f}" y1="{y_of(high):.1f}" x2="{x + CAP:.1f}" y2="{y_of(high):.1f}"/>'
                         f'</g><circle cx="{x:.1f}" cy="{y_of(median):.1f}" r="3.5" fill="{colour}">'
                         f'<title>{_esc(f"{mode} {p.point.label}: {_number(chart.metric, median)}")}</title></circle>')
        parts.append(curve(colour, " ".join(line)))
    parts.append(_legend(rows))
    if not modes:
        parts.append(centred_note(frame, "nothing measured"))
    return _svg(frame, "\n".join(parts), f"{result.sweep.name}: {chart.title}")


def _table(result: SweepResult) -> str:
    sweep = result.sweep
    head = "".join(f"<th>{_esc(SHORT[c])}</th>" for c in sweep.columns)
    rows = []
    for point in result.points:
        for mode in result.modes():
            if not point.runs.get(mode):
                continue
            cells = []
            for column in sweep.columns:
                stat = point.stat(mode, column)
                cells.append("<td>n/a</td>" if stat is None else
                             f"<td>{_number(column, stat[0])}<br><span class=small>"
                             f"{_number(column, stat[1])}-{_number(column, stat[2])}</span></td>")
            rows.append(f"<tr><th>{_esc(point.point.label)}</th><th>{mode}</th>{''.join(cells)}</tr>")
    return (f"<table class=numbers><tr><th>{_esc(sweep.variable)}</th><th>mode</th>{head}</tr>"
            + "".join(rows) + "</table>")


def sweep_section(result: SweepResult) -> str:
    """The HTML section of one measured scenario: verdict first, then its charts and table."""
    sweep = result.sweep
    charts = "".join(_figure(chart_svg(result, chart),
                             _esc(f"{chart.title} against {sweep.variable}; each point is the median of "
                                  f"{result.runs} run(s), its bar spans the lowest and highest run."))
                     for chart in sweep.charts)
    notes = "".join(f"<p class=small>note: {_esc(n)}</p>" for n in result.notes)
    return (f"<section><h2>{_esc(sweep.name)}</h2><p>{_esc(sweep.description)}</p>"
            f"<div class=summary><p class=verdict>{_esc(result.verdict)}</p></div>"
            f"<div class=charts>{charts}</div><h3>All the numbers</h3>{_table(result)}"
            f"<p class=small>{_esc(STEADY_WINDOW_NOTE)}. Broker: {_esc(result.broker)}; {result.cpus} CPU core(s); "
            f"every producer and consumer ran in its own process; {_esc(CLIENT_NOTE)}. "
            f"{_esc(result.authentication_line())}</p>{notes}</section>")


def render_page(reports: list, sweeps: list[SweepResult]) -> str:
    """The ``--html`` page: the measured scenarios, then the in-process ones (``ScenarioReport``)."""
    return page([sweep_section(result) for result in sweeps] + [scenario_section(report) for report in reports])


def write_page(path: str | Path, reports: list, sweeps: list[SweepResult]) -> None:
    Path(path).write_text(render_page(reports, sweeps), encoding="utf-8")
