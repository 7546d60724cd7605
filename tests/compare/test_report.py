"""The report outputs: terminal table, JSON document, the CLI subcommand, workload files, and the
HTML page rendered by a real headless Chromium (the charts must actually draw)."""

from __future__ import annotations

import argparse
import html
import json
import re
import struct
import subprocess
import zlib

import pytest

from dualmq.compare import command
from dualmq.compare.accounting import ModeLog
from dualmq.compare.report import SCHEMA, ScenarioReport, render_text, to_json
from dualmq.compare.runner import RunResult
from dualmq.compare.sweep_html import render_page
from dualmq.compare.workload import Workload, WorkloadError, scenario
from tests.compare.synthetic import mode_log
from tests.support import require_binary


def report_of(name: str, logs: dict[str, ModeLog]) -> ScenarioReport:
    for mode, log in logs.items():
        log.guarantees = {"fsync": "always"} if mode == "pull" else {"retention": "none"}
    run = RunResult(workload=scenario(name), run_id="00" * 8, broker_kind="embedded",
                    addresses={"kafka": "127.0.0.1:1", "resp": "127.0.0.1:2"}, logs=logs, skipped={})
    return ScenarioReport.from_run(run)


def synthetic_report() -> ScenarioReport:
    """late-joiner's shape: push's subscriber arrives after half of the 2,000 messages."""
    return report_of("late-joiner", {"pull": mode_log("pull", 2000, set(range(2000))),
                                     "push": mode_log("push", 2000, set(range(1000, 2000)), window_from=1000)})


def slow_consumer_report() -> ScenarioReport:
    """slow-consumer's shape: push's subscriber is cut off; 446 of 2,500 arrive."""
    return report_of("slow-consumer", {"pull": mode_log("pull", 2500, set(range(2500))),
                                       "push": mode_log("push", 2500, set(range(446)), cut_at=509)})


def test_text_and_json():
    report = synthetic_report()
    text = render_text([report])
    assert "verdict: Pull delivered all 2,000 messages; push delivered 1,000 of 2,000 messages (50%): 1,000 " \
           "published while no subscriber was connected (not subscribed yet)." in text
    assert "push: 1,000 published while no subscriber was connected (not subscribed yet)" in text
    assert re.search(r"group assignments \(joins\+rebal\.\)\s+n/a \(no group\)", text)
    assert "output buffer high-water" in text and "n/a (server keeps no peak)" in text
    document = json.loads(json.dumps(to_json([report])))
    assert document["schema"] == SCHEMA
    scenario_json = document["scenarios"][0]
    assert scenario_json["verdict"] == report.verdict and scenario_json["interrupted"] is False
    push = scenario_json["modes"]["push"]
    assert push["not_promised"] == 1000 and push["delivered"] == 1000 and push["lost"] == 0
    assert push["summary"] == {"expected": 2000, "not_delivered": 1000, "shortfalls": [
        {"kind": "no subscriber", "reason": "not subscribed yet", "count": 1000}]}
    assert set(push["latency"]) == {"count", "p50_ms", "p99_ms", "p999_ms", "max_ms"}
    # The latency distribution is of the messages sent: half were never delivered.
    assert push["cdf"][-1][1] == 0.5 and document["scenarios"][0]["modes"]["pull"]["cdf"][-1][1] == 1.0
    assert push["progress"][-1][1:] == [2000, 1000]


def test_workload_toml(tmp_path):
    path = tmp_path / "w.toml"
    path.write_text('messages = 10\nrate = 5\n[broker.log]\nfsync = "always"\n'
                    '[[events]]\nkind = "join"\nat = 0.5\n')
    workload = Workload.from_toml(path)
    assert workload.name == "w" and workload.messages == 10 and workload.broker == {"log": {"fsync": "always"}}
    assert workload.events[0].kind == "join"
    path.write_text("mesages = 10\n")
    with pytest.raises(WorkloadError, match="mesages"):
        Workload.from_toml(path)
    with pytest.raises(WorkloadError, match="events.kind"):
        Workload.from_dict({"events": [{"kind": "explode", "at": 0.1}]})


def test_command_runs_and_writes_json_and_html(tmp_path, capsys):
    parser = argparse.ArgumentParser(prog="dualmq")
    command.add_parsers(parser.add_subparsers(dest="command"))
    out_json, out_html = tmp_path / "r.json", tmp_path / "r.html"
    args = parser.parse_args(["compare", "late-joiner", "--messages", "400", "--rate", "4000",
                              "--json", str(out_json), "--html", str(out_html)])
    assert args.handler(args) == 0
    printed = capsys.readouterr().out
    assert "pull (Kafka-like)" in printed and "push (Redis-like)" in printed
    document = json.loads(out_json.read_text())
    modes = document["scenarios"][0]["modes"]
    assert modes["push"]["not_promised"] == 200 and modes["pull"]["lost"] == 0
    assert "<svg" in out_html.read_text()
    args = parser.parse_args(["compare", "no-such-scenario"])
    assert args.handler(args) == 2


def _png_pixels(data: bytes) -> tuple[int, int, int, bytes]:
    """Width, height, bytes per pixel and the de-filtered pixel rows of an 8-bit PNG."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, header = 8, b"", None
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        chunk = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", chunk)
        elif kind == b"IDAT":
            idat += chunk
        pos += 12 + length
    width, height, depth, colour = header[:4]
    assert depth == 8
    bpp = {2: 3, 6: 4, 0: 1, 4: 2}[colour]
    raw = zlib.decompress(idat)
    stride = width * bpp
    rows, previous = [], bytearray(stride)
    for y in range(height):
        kind, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            left = line[i - bpp] if i >= bpp else 0
            up, corner = previous[i], previous[i - bpp] if i >= bpp else 0
            if kind == 1:
                line[i] = (line[i] + left) & 255
            elif kind == 2:
                line[i] = (line[i] + up) & 255
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 255
            elif kind == 4:
                p = left + up - corner
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                line[i] = (line[i] + (left if pa <= pb and pa <= pc else up if pb <= pc else corner)) & 255
        rows.append(bytes(line))
        previous = line
    return width, height, bpp, b"".join(rows)


@pytest.mark.timeout(60)
def test_html_renders_in_headless_chromium(tmp_path):
    chromium = require_binary("chromium", "chromium")
    page = tmp_path / "report.html"
    page.write_text(render_page([synthetic_report()], []))
    shot = tmp_path / "shot.png"
    subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--no-first-run",
                    f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={shot}", "--window-size=1200,900",
                    page.as_uri()], check=True, timeout=45, stdin=subprocess.DEVNULL,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    width, height, bpp, pixels = _png_pixels(shot.read_bytes())
    assert (width, height) == (1200, 900)
    colours = {pixels[i:i + 3] for i in range(0, len(pixels), bpp * 7)}
    assert len(colours) > 20, "screenshot looks blank"
    # The two mode colours of the chart lines are present (pull blue, push red), so the SVG drew.
    def near(target):
        return any(all(abs(c[k] - target[k]) < 40 for k in range(3)) for c in colours)
    assert near(bytes((0x1f, 0x77, 0xb4))) and near(bytes((0xd6, 0x27, 0x28)))


# Run inside the rendered page: bounding boxes of every chart's texts, legend and curves, and the
# summaries' text, written into the DOM as JSON for --dump-dom to carry out.
GEOMETRY_SCRIPT = """
<script>
(function () {
  const out = {charts: [], summaries: []};
  const overlap = (a, b) => a.left < b.right - 0.5 && b.left < a.right - 0.5 &&
                            a.top < b.bottom - 0.5 && b.top < a.bottom - 0.5;
  const inside = (a, b) => a.left >= b.left - 0.5 && a.right <= b.right + 0.5 &&
                           a.top >= b.top - 0.5 && a.bottom <= b.bottom + 0.5;
  document.querySelectorAll("svg").forEach((svg) => {
    const frame = svg.getBoundingClientRect();
    const plot = svg.querySelector(".plot-area").getBoundingClientRect();
    const texts = [...svg.querySelectorAll("text")].map((t) => [t.textContent, t.getBoundingClientRect()]);
    const chart = {title: svg.querySelector("title").textContent, texts: texts.length,
                   overlapping: [], outside: [], legend_on_plot: [], curve_tops: []};
    for (let i = 0; i < texts.length; i++) {
      if (!inside(texts[i][1], frame)) chart.outside.push(texts[i][0]);
      for (let j = i + 1; j < texts.length; j++)
        if (overlap(texts[i][1], texts[j][1])) chart.overlapping.push([texts[i][0], texts[j][0]]);
    }
    svg.querySelectorAll(".legend > *").forEach((el) => {
      if (overlap(el.getBoundingClientRect(), plot)) chart.legend_on_plot.push(el.textContent || el.tagName);
    });
    svg.querySelectorAll("polyline.curve").forEach((line) => {
      const box = line.getBoundingClientRect();
      chart.curve_tops.push([line.getAttribute("stroke"), line.getAttribute("stroke-dasharray"),
                             (plot.bottom - box.top) / plot.height]);
    });
    out.charts.push(chart);
  });
  document.querySelectorAll(".summary").forEach((el) => out.summaries.push(el.innerText));
  const pre = document.createElement("pre");
  pre.id = "geometry";
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
})();
</script>
"""


def _rendered_geometry(chromium: str, page_html: str, tmp_path) -> dict:
    page = tmp_path / "measured.html"
    page.write_text(page_html.replace("</body>", GEOMETRY_SCRIPT + "</body>"))
    dom = subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                          "--disable-component-update", "--disable-sync", "--no-first-run",
                          f"--user-data-dir={tmp_path / 'profile-dom'}", "--window-size=1200,900", "--dump-dom",
                          page.as_uri()], check=True, timeout=45, stdin=subprocess.DEVNULL,
                         capture_output=True, text=True).stdout
    found = re.search(r'<pre id="geometry">(.*?)</pre>', dom, re.DOTALL)
    assert found, "the measuring script did not run"
    return json.loads(html.unescape(found.group(1)))


@pytest.mark.timeout(60)
def test_html_summary_first_and_charts_that_do_not_mislead(tmp_path):
    chromium = require_binary("chromium", "chromium")
    reports = [slow_consumer_report(), synthetic_report()]
    page_html = render_page(reports, [])
    # The summary comes before the charts and the table in each section.
    first = page_html.index("<section>")
    assert page_html.index("class=summary", first) < page_html.index("<svg", first) < page_html.index("class=numbers", first)
    geometry = _rendered_geometry(chromium, page_html, tmp_path)

    slow, late = (" ".join(text.split()) for text in geometry["summaries"])
    assert slow.startswith("Pull delivered all 2,500 messages; push delivered 446 of 2,500 messages (18%): 1,991 "
                           "published while no subscriber was connected (cut off at the pubsub output-buffer limit) "
                           "and 63 lost (cut off at the pubsub output-buffer limit).")
    assert "push (Redis-like) sent 2,500 delivered 446 (18%) not delivered 2,054 of which lost 63" in slow
    assert "pull (Kafka-like) sent 2,500 delivered 2,500 (100%) not delivered 0 of which lost 0" in slow
    assert "1,991 published while no subscriber was connected" in slow
    assert late.startswith("Pull delivered all 2,000 messages; push delivered 1,000 of 2,000 messages (50%)")

    assert len(geometry["charts"]) == 4
    for chart in geometry["charts"]:
        assert chart["texts"] >= 10, chart
        assert chart["overlapping"] == [], chart["title"]
        assert chart["outside"] == [], chart["title"]
        assert chart["legend_on_plot"] == [], chart["title"]
    # Latency fractions are of the messages sent: push's line stops at 446 / 2,500.
    slow_latency = geometry["charts"][0]
    tops = {stroke: top for stroke, _, top in slow_latency["curve_tops"]}
    assert abs(tops["#d62728"] - 446 / 2500) < 0.01 and abs(tops["#1f77b4"] - 1.0) < 0.01
    # Over time: every mode has a dashed "sent" line and a solid "delivered" line; push's
    # delivered line stays at 446 of the 2,500 sent.
    slow_progress = {(stroke, dash): top for stroke, dash, top in geometry["charts"][1]["curve_tops"]}
    assert slow_progress[("#d62728", "6,4")] > 0.8 and slow_progress[("#d62728", None)] < 0.2
