"""The daemon as users run it: a real ``dualmq serve`` process, ready file, signals, data dir."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support import RawClient, broker_process, serve_command


def run_cli(*args: str, timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dualmq", *args], capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def test_version_flag() -> None:
    result = run_cli("--version")
    assert result.returncode == 0
    assert result.stdout.startswith("dualmq ")


def test_serve_writes_ready_file_answers_and_stops_cleanly_on_sigterm(tmp_path) -> None:
    with broker_process(tmp_path) as broker:
        assert broker.kafka[1] > 0 and broker.resp[1] > 0
        with RawClient(broker.resp) as client:
            client.send(b"PING\r\n")
            client.expect(b"+PONG\r\n")
        started = time.monotonic()
        assert broker.stop(signal.SIGTERM) == 0
        assert time.monotonic() - started < 5
        events = [line.get("event") for line in broker.log_lines()]
        assert "broker_started" in events and "broker_stopped" in events
        started_line = next(line for line in broker.log_lines() if line.get("event") == "broker_started")
        assert started_line["fsync"] == "interval"
        assert started_line["data_dir"] == str(broker.data_dir)
    # Same data dir again: the lock was released and recovery is clean.
    with broker_process(tmp_path, data_dir=broker.data_dir) as again:
        assert again.stop(signal.SIGINT) == 130  # Ctrl-C: a clean stop, reported as interrupted


def test_second_broker_on_same_data_dir_is_refused(tmp_path) -> None:
    with broker_process(tmp_path) as broker:
        result = subprocess.run(serve_command(broker.data_dir, tmp_path / "second-ready.json"),
                                capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
        assert result.returncode != 0
        assert "in use by another broker" in result.stderr
        assert f"pid {broker.process.pid}" in result.stderr
        assert not (tmp_path / "second-ready.json").exists()


@pytest.mark.parametrize(
    ("toml", "named"),
    [
        ("[log]\nsegment_bytes = 3\n", "log.segment_bytes"),
        ('[log]\nfsync = "sometimes"\n', "log.fsync"),
        ("[resp]\nmaxclients = 0\n", "resp.maxclients"),
        ("[kafka]\nnum_partitons = 3\n", "num_partitons"),
        ("mystery = 1\n", "mystery"),
        ("[log\n", "not valid TOML"),
    ],
)
def test_bad_config_is_refused_naming_the_key(tmp_path, toml: str, named: str) -> None:
    config = tmp_path / "dualmq.toml"
    config.write_text(toml)
    result = run_cli("serve", "--config", str(config), "--data-dir", str(tmp_path / "d"),
                     "--kafka", "127.0.0.1:0", "--resp", "127.0.0.1:0")
    assert result.returncode != 0
    assert named in result.stderr
    assert "Traceback" not in result.stderr


def test_config_file_values_are_used(tmp_path) -> None:
    config = tmp_path / "dualmq.toml"
    config.write_text('[log]\nfsync = "always"\n[resp]\npubsub_hard_limit = 1048576\n')
    with broker_process(tmp_path, "--config", str(config)) as broker:
        with RawClient(broker.resp) as client:
            client.send(b"CONFIG GET client-output-buffer-limit\r\n")
            reply = client.read_exactly(2)
            assert reply == b"*2"
        started = next(line for line in broker.log_lines() if line.get("event") == "broker_started")
        assert started["fsync"] == "always"


def test_data_dir_that_cannot_be_created_is_a_clear_error(tmp_path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    result = run_cli("serve", "--data-dir", str(blocker / "data"), "--kafka", "127.0.0.1:0",
                     "--resp", "127.0.0.1:0")
    assert result.returncode != 0
    assert "cannot create data dir" in result.stderr
    assert "Traceback" not in result.stderr


def test_listen_address_in_use_is_a_clear_error(tmp_path) -> None:
    with broker_process(tmp_path) as broker:
        host, port = broker.resp
        result = run_cli("serve", "--data-dir", str(tmp_path / "other"), "--kafka", "127.0.0.1:0",
                         "--resp", f"{host}:{port}")
        assert result.returncode != 0
        assert "dualmq: error:" in result.stderr
        assert "Traceback" not in result.stderr


def test_ready_file_is_json_with_addresses_and_pid(tmp_path) -> None:
    with broker_process(tmp_path) as broker:
        ready = [p for p in tmp_path.glob("ready-*.json")]
        assert len(ready) == 1
        payload = json.loads(ready[0].read_text())
        assert payload["pid"] == broker.process.pid
        assert payload["resp"].startswith("127.0.0.1:")


def test_serve_lifts_a_low_soft_open_file_limit_to_the_hard_one(tmp_path) -> None:
    # Each log segment keeps three files open; a soft limit of 1024 (common) would cap the
    # broker at a few hundred partitions. The child inherits our limits at start.
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    low = 256
    if hard != resource.RLIM_INFINITY and hard <= low:
        pytest.skip(f"hard open-file limit {hard} leaves nothing to raise")
    resource.setrlimit(resource.RLIMIT_NOFILE, (low, hard))
    try:
        with broker_process(tmp_path) as broker:
            limits = Path(f"/proc/{broker.process.pid}/limits").read_text()
            row = next(line for line in limits.splitlines() if line.startswith("Max open files"))
            lines = broker.log_lines()
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    expected = str(hard) if hard != resource.RLIM_INFINITY else "1048576"
    assert row.split()[3] == expected, row
    assert any(line.get("event") == "open_file_limit_raised" and line.get("before") == low for line in lines)
