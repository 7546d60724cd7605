"""``dualmq compare`` as a user runs it: a separate process, from any directory, stopped with Ctrl-C.

* From a directory holding a folder called ``dualmq`` (a clone's parent, a scratch dir) the
  broker processes compare starts must still run the installed dualmq, not that folder.
* Ctrl-C stops cleanly: no traceback, the partial report of what ran, exit status 130.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

DUALMQ = str(Path(sys.executable).with_name("dualmq"))   # the console script of this venv
INTERRUPTED = 130


def _start(args: list[str], cwd: Path) -> subprocess.Popen:
    # Its own session, so the test can send SIGINT to compare *and* the broker it started, as
    # a terminal's Ctrl-C does (it signals the whole foreground process group).
    return subprocess.Popen([DUALMQ, "compare", *args], cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True)


def _finish(process: subprocess.Popen, timeout: float) -> tuple[int, str, str]:
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        out, err = process.communicate()
        raise AssertionError(f"dualmq compare did not finish within {timeout} s; stderr:\n{err.decode()}") from None
    return process.returncode, out.decode(), err.decode()


@pytest.mark.timeout(120)
def test_broker_kill_runs_from_a_directory_containing_a_dualmq_folder(tmp_path):
    fake = tmp_path / "dualmq"
    fake.mkdir()
    (fake / "README").write_text("not the dualmq package: a folder that happens to have its name\n")
    process = _start(["broker-kill", "--messages", "400"], cwd=tmp_path)
    status, out, err = _finish(process, timeout=100)
    assert status == 0, err
    assert "Traceback" not in err and "ImportError" not in err, err
    assert "== broker-kill" in out and "verdict: Pull delivered all 400 messages" in out, out


def _wait_for_line(process: subprocess.Popen, text: str, timeout: float) -> str:
    """Read stderr until ``text`` appears (compare prints "running NAME ..." there); returns it all."""
    deadline = time.monotonic() + timeout
    seen = b""
    while time.monotonic() < deadline and text.encode() not in seen:
        ready, _, _ = select.select([process.stderr], [], [], 0.1)
        if ready:
            chunk = os.read(process.stderr.fileno(), 65536)
            if not chunk:
                break
            seen += chunk
    assert text.encode() in seen, f"{text!r} never appeared on stderr; saw:\n{seen.decode()}"
    return seen.decode()


@pytest.mark.timeout(120)
@pytest.mark.parametrize("scenario, extra", [
    ("burst", ["--messages", "40000", "--broker", "embedded"]),          # embedded broker
    ("broker-restart", ["--messages", "40000"]),                          # broker subprocess
])
def test_ctrl_c_stops_cleanly_with_a_partial_report(tmp_path, scenario, extra):
    json_path = tmp_path / "partial.json"
    process = _start([scenario, "late-joiner", *extra, "--json", str(json_path)], cwd=tmp_path)
    before = _wait_for_line(process, f"running {scenario}", timeout=30)
    time.sleep(3.0)   # well into the scenario's first mode (pull)
    os.killpg(process.pid, signal.SIGINT)
    status, out, err = _finish(process, timeout=60)
    err = before + err
    assert status == INTERRUPTED, (out, err)
    assert "Traceback" not in err and "ExceptionGroup" not in err, err
    assert "interrupted (Ctrl-C)" in err
    # The partial report of the scenario that was running; the next one never started.
    assert f"== {scenario}" in out and "INTERRUPTED (Ctrl-C)" in out, out
    assert "verdict: Interrupted before the end, so these counts are partial." in out
    assert "(push mode not run: interrupted (Ctrl-C) before it started)" in out
    assert "== late-joiner" not in out
    # What was in flight when it stopped is put down to the interruption, not left unexplained.
    assert "unexplained" not in out
    assert json_path.exists() and '"interrupted": true' in json_path.read_text()


@pytest.mark.timeout(120)
def test_ctrl_c_stops_a_measured_run_and_its_role_processes(tmp_path):
    json_path = tmp_path / "partial.json"
    process = _start(["baseline", "late-joiner", "--seconds", "60", "--runs", "1", "--json", str(json_path)],
                     cwd=tmp_path)
    before = _wait_for_line(process, "running baseline", timeout=30)
    time.sleep(4.0)   # the role processes are running: pull mode's producer is sending
    os.killpg(process.pid, signal.SIGINT)
    status, out, err = _finish(process, timeout=60)
    err = before + err
    assert status == INTERRUPTED, (out, err)
    assert "Traceback" not in err and "ExceptionGroup" not in err, err
    assert "== baseline" in out and "verdict: Interrupted before the end, so these figures are partial." in out
    assert "== late-joiner" not in out
    assert json_path.exists() and '"interrupted": true' in json_path.read_text()
    # No role process outlived compare (they run "python -P -m dualmq.compare.roles").
    time.sleep(0.5)
    ps = subprocess.run(["ps", "-eo", "pgid,args"], capture_output=True, text=True).stdout
    assert not [line for line in ps.splitlines()
                if line.split()[0] == str(process.pid) and "dualmq.compare.roles" in line], ps
