"""The report outputs: terminal table, JSON document, the CLI subcommand, workload files, and the
HTML page rendered by a real headless Chromium (the charts must actually draw)."""

from __future__ import annotations

import argparse
import json
import struct
import subprocess
import zlib

import pytest

from dualmq.compare import command
from dualmq.compare.accounting import ModeLog, Receipt, Send, Window
from dualmq.compare.html import render_html
from dualmq.compare.report import SCHEMA, ScenarioReport, render_text, to_json
from dualmq.compare.runner import RunResult
from dualmq.compare.workload import Workload, WorkloadError, scenario
from tests.support import require_binary


def synthetic_report() -> ScenarioReport:
    logs = {}
    for mode, skew in (("pull", 3_000_000), ("push", 400_000)):
        log = ModeLog(mode=mode)
        log.sends = [Send(0, i, -1, i * 1_000_000, i * 1_000_000 + 10, 1 if mode == "push" else None)
                     for i in range(2000)]
        first = 0 if mode == "pull" else 1000
        log.receipts = {"c0": [Receipt(0, i, i * 1_000_000, i * 1_000_000 + skew + (i % 97) * 20_000)
                               for i in range(first, 2000)]}
        log.windows = {"c0": [Window(0)] if mode == "pull" else [Window(1000 * 1_000_000 - 1)]}
        log.guarantees = {"fsync": "always"} if mode == "pull" else {"retention": "none"}
        logs[mode] = log
    run = RunResult(workload=scenario("late-joiner"), run_id="00" * 8, broker_kind="embedded",
                    addresses={"kafka": "127.0.0.1:1", "resp": "127.0.0.1:2"}, logs=logs, skipped={})
    return ScenarioReport.from_run(run)


def test_text_and_json():
    report = synthetic_report()
    text = render_text([report])
    assert "not delivered: no subscriber" in text and "1,000" in text
    assert "no subscriber at publish time (not subscribed yet)" in text
    document = json.loads(json.dumps(to_json([report])))
    assert document["schema"] == SCHEMA
    push = document["scenarios"][0]["modes"]["push"]
    assert push["not_promised"] == 1000 and push["delivered"] == 1000 and push["lost"] == 0
    assert set(push["latency"]) == {"count", "p50_ms", "p99_ms", "p999_ms", "max_ms"}
    assert push["cdf"][-1][1] == 1.0


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
    page.write_text(render_html([synthetic_report()]))
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
