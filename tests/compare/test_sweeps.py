"""The measured scenarios: listed, run, summarised in a verdict built from the numbers, charted.

Synthetic results (known medians) check the verdicts - including that they say so when a
measurement contradicts the article - and the HTML charts, rendered by a real headless Chromium.
Short real runs (small counts, no minimum duration) check the command end to end.
"""

from __future__ import annotations

import argparse
import json

import attrs
import pytest
import trio

from dualmq.compare import command
from dualmq.compare.measured import Measurement
from dualmq.compare.sweep_html import render_page
from dualmq.compare.sweep_report import render_sweep, sweep_document
from dualmq.compare.sweep_runner import run_sweep
from dualmq.compare.sweeps import SWEEPS, PointResult, SweepResult
from dualmq.compare.verdicts import verdict
from tests.compare.test_report import _rendered_geometry
from tests.support import require_binary

SWEEP_NAMES = ("fan-out", "parallelism", "message-size", "compression", "rate")


def measurement(mode: str, **figures: float) -> Measurement:
    values = dict(consumers=1, sent=1000, failed_sends=0, window_s=2.4, sending_s=3.0, send_per_s=1000.0,
                  delivered_per_s=1000.0, per_consumer_per_s=1000.0, distinct_per_s=1000.0,
                  delivered_mb_per_s=0.1, delivered=1000, duplicated=0, not_delivered=0, p50_ms=1.0, p99_ms=2.0,
                  p999_ms=3.0, max_ms=4.0)
    values.update(figures)
    return Measurement(mode=mode, **values)


def synthetic(name: str, figures) -> SweepResult:
    """``figures(mode, index)`` -> the dict of one run's figures; three runs at 0.9x, 1x, 1.1x."""
    sweep = SWEEPS[name]
    points = []
    for index, point in enumerate(sweep.points):
        result = PointResult(point)
        for mode in point.modes:
            base = figures(mode, index)
            result.runs[mode] = [measurement(mode, **{k: v * f for k, v in base.items()}) for f in (0.9, 1.0, 1.1)]
        points.append(result)
    result = SweepResult(sweep=sweep, points=points, runs=3, broker="subprocess", cpus=2)
    result.verdict = verdict(result)
    return result


def fan_out(pull_slows: bool) -> SweepResult:
    subs = (1, 2, 5, 10, 50)

    def figures(mode, i):
        if mode == "push":
            return dict(send_per_s=170_000 / subs[i], per_consumer_per_s=170_000 / subs[i])
        rate = 460_000 / (1 + 0.02 * subs[i]) if pull_slows else 460_000
        return dict(send_per_s=rate, per_consumer_per_s=rate / 2)
    return synthetic("fan-out", figures)


def test_fan_out_verdict_is_built_from_the_numbers_and_names_a_contradiction() -> None:
    slows = fan_out(pull_slows=True).verdict
    assert "from 1 to 50 subscribers push's producer rate fell 50.0x (170,000/s -> 3,400/s)" in slows
    assert "Push's publisher slowed with every subscriber added, as the article says" in slows
    assert "Pull's producer slowed too, which the article does not predict" in slows
    assert "2-core machine" in slows and "CPU-bound" in slows
    steady = fan_out(pull_slows=False).verdict
    assert "pull's producer rate stayed about the same (460,000/s -> 460,000/s)" in steady
    assert "Pull's producer kept its rate" in steady


def test_parallelism_verdict() -> None:
    members = (1, 2, 4, 8)
    result = synthetic("parallelism", lambda mode, i: dict(
        distinct_per_s=4000 * members[i] if mode == "pull" else 4200))
    assert "pull's distinct messages processed per second grew 8.0x (4,000/s -> 32,000/s)" in result.verdict
    assert "work scaled with them, as the article says" in result.verdict
    assert "more subscribers multiplied the work, not the throughput" in result.verdict
    flat = synthetic("parallelism", lambda mode, i: dict(distinct_per_s=4000))
    assert "contradicts the article's parallelism claim" in flat.verdict


def test_message_size_compression_and_rate_verdicts() -> None:
    sizes = synthetic("message-size", lambda mode, i: dict(p50_ms=(1 + i) * (2 if mode == "push" else 1),
                                                           p99_ms=(2 + i) * 3))
    assert "At 1 MB push was the slower of the two, in line with the article." in sizes.verdict
    codecs = synthetic("compression", lambda mode, i: dict(p50_ms=(1.0, 3.0, 1.5, 1.2, 1.4)[i]))
    assert codecs.verdict.startswith("Lowest median latency: none (1.00 ms); highest: gzip (3.00 ms)")
    assert "no codec lowered latency" in codecs.verdict
    rates = (1000, 5000, 20_000, 50_000, 100_000, 200_000)
    knees = synthetic("rate", lambda mode, i: dict(
        delivered_per_s=min(rates[i], 60_000 if mode == "push" else 150_000),
        p99_ms=1.0 if rates[i] <= (50_000 if mode == "push" else 100_000) else 500.0))
    assert "push kept up with a p99 of at most 10.00 ms up to 50,000 msg/s offered" in knees.verdict
    assert knees.verdict.startswith("Pull kept up with a p99 of at most 10.00 ms up to 100,000 msg/s offered")


def test_terminal_table_and_json_keep_medians_spread_and_every_run() -> None:
    result = fan_out(pull_slows=True)
    text = render_sweep(result)
    assert text.startswith("== fan-out") and f"verdict: {result.verdict}" in text
    assert "153,000-187,000" in text   # push at 1 subscriber: 0.9x and 1.1x of 170,000
    assert "steady window" in text
    document = json.loads(json.dumps(sweep_document(result), allow_nan=False))
    point = document["points"][0]["modes"]["push"]
    assert point["median"]["send_per_s"] == pytest.approx(170_000)
    assert point["low"]["send_per_s"] == pytest.approx(153_000) and point["high"]["send_per_s"] == pytest.approx(187_000)
    assert len(point["runs"]) == 3 and len(document["points"]) == 5


def test_list_names_every_sweep(capsys) -> None:
    parser = argparse.ArgumentParser()
    command.add_parsers(parser.add_subparsers())
    args = parser.parse_args(["compare", "--list"])
    assert args.handler(args) == 0
    out = capsys.readouterr().out
    for name in ("baseline", *SWEEP_NAMES, "late-joiner", "broker-kill"):
        assert f" {name}  " in out, name


@pytest.mark.timeout(90)
def test_sweep_html_charts_render_in_headless_chromium(tmp_path) -> None:
    chromium = require_binary("chromium", "chromium")
    results = [fan_out(pull_slows=True),
               synthetic("parallelism", lambda mode, i: dict(distinct_per_s=4000 * (1 + i) if mode == "pull" else 4000)),
               synthetic("message-size", lambda mode, i: dict(p50_ms=1 + i, p99_ms=3 + 10 * i)),
               synthetic("compression", lambda mode, i: dict(p50_ms=1 + i / 2, p99_ms=3 + i)),
               synthetic("rate", lambda mode, i: dict(delivered_per_s=1000 * 4 ** i, p99_ms=1 + i ** 3))]
    page = render_page([], results)
    geometry = _rendered_geometry(chromium, page, tmp_path)
    expected = [f"{r.sweep.name}: {c.title}" for r in results for c in r.sweep.charts]
    assert [chart["title"] for chart in geometry["charts"]] == expected
    for chart, result in zip(geometry["charts"], [r for r in results for _ in r.sweep.charts]):
        assert chart["overlapping"] == [] and chart["outside"] == [] and chart["legend_on_plot"] == [], chart
        strokes = sorted(stroke for stroke, _, _ in chart["curve_tops"])
        assert strokes == (["#1f77b4"] if result.sweep.name == "compression" else ["#1f77b4", "#d62728"]), chart
    # Axis titles, point labels and error bars are in the page.
    assert page.count('class="error-bar"') == sum(len(p.modes) * len(r.sweep.charts)
                                                 for r in results for p in r.sweep.points)
    assert "subscribers / consumer groups" in page and "producer: messages sent per second" in page
    assert ">1 MB<" in page and ">zstd<" in page
    # Parallelism's pull line rises to the top of its plot, push's stays low.
    tops = {stroke: top for stroke, _, top in geometry["charts"][2]["curve_tops"]}
    assert tops["#1f77b4"] > 0.7 and tops["#d62728"] < 0.3


@pytest.mark.timeout(180)
def test_a_trimmed_sweep_runs_every_point_and_mode_each_run() -> None:
    sweep = attrs.evolve(SWEEPS["fan-out"], points=SWEEPS["fan-out"].points[:2])

    async def main():
        return await run_sweep(sweep, runs=2, overrides=dict(messages=2000, min_seconds=0.0))

    result = trio.run(main)
    for point in result.points:
        for mode in ("pull", "push"):
            runs = point.runs[mode]
            assert len(runs) == 2
            assert all(m.delivered == m.sent * m.consumers and m.sent == 2000 for m in runs), runs
            median, low, high = point.stat(mode, "send_per_s")
            assert low <= median <= high
    assert result.verdict.startswith("From 1 to 2 groups pull's producer rate")


@pytest.mark.timeout(120)
def test_command_baseline_json_and_html(tmp_path, capsys) -> None:
    parser = argparse.ArgumentParser()
    command.add_parsers(parser.add_subparsers())
    json_path, html_path = tmp_path / "b.json", tmp_path / "b.html"
    args = parser.parse_args(["compare", "baseline", "--seconds", "0", "--messages", "3000", "--runs", "2",
                              "--broker", "embedded", "--json", str(json_path), "--html", str(html_path)])
    assert args.handler(args) == 0
    out = capsys.readouterr().out
    assert "== baseline" in out and "verdict: Over the steady window pull delivered" in out
    document = json.loads(json_path.read_text())
    (baseline,) = document["sweeps"]
    assert baseline["broker"] == "embedded" and baseline["runs"] == 2
    for mode in ("pull", "push"):
        runs = baseline["points"][0]["modes"][mode]["runs"]
        assert [r["delivered"] for r in runs] == [3000, 3000]
    assert "baseline: delivered messages per second" in html_path.read_text()
