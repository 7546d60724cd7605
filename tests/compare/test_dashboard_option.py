"""``dualmq compare --dashboard``: the scenario's broker serves the dashboard, and says where."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import urllib.request

import pytest


@pytest.mark.timeout(120)
@pytest.mark.parametrize("broker", ["embedded", "subprocess"])
def test_compare_prints_a_dashboard_url_that_answers_while_it_runs(broker):
    # ~2 s per mode at 1,000 msg/s: long enough to look at the page while the scenario runs.
    process = subprocess.Popen([sys.executable, "-m", "dualmq", "compare", "late-joiner", "--dashboard", "--broker",
                                broker, "--messages", "2000", "--rate", "1000"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
    try:
        deadline = time.monotonic() + 60
        address = None
        while address is None:
            assert time.monotonic() < deadline, "no dashboard line"
            line = process.stderr.readline()
            assert line, "compare ended without printing the dashboard's address"
            found = re.match(r"dashboard: http://(\S+)/ ", line)
            address = found.group(1) if found else None
        with urllib.request.urlopen(f"http://{address}/state.json", timeout=10) as response:
            frame = json.loads(response.read())
        assert set(frame) == {"t", "pull", "push"}
        with urllib.request.urlopen(f"http://{address}/", timeout=10) as response:
            assert b"dualmq live" in response.read()
        stdout, _ = process.communicate(timeout=90)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0
    assert "late-joiner" in stdout
