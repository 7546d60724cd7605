"""What the ``dualmq`` command prints is its results and its errors, not log lines.

Client commands show warnings and errors only, rendered for a human (never raw JSON on a pipe);
``compare`` runs an embedded broker whose expected warnings (a slow subscriber cut off) are part
of what it measures and reports in its own table, so it shows errors only.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.support import fast_groups_broker


def dualmq(*args: str, stdin: str = "", timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dualmq", *args], input=stdin, capture_output=True, text=True,
                          timeout=timeout)


def json_lines(text: str) -> list[str]:
    found = []
    for line in text.splitlines():
        try:
            if isinstance(json.loads(line), dict):
                found.append(line)
        except ValueError:
            pass
    return found


def test_a_group_consumer_prints_records_and_no_log_lines(tmp_path) -> None:
    with fast_groups_broker(tmp_path) as broker:
        assert dualmq("produce", "-b", broker.kafka_address, "t", stdin="x\n").returncode == 0
        consumed = dualmq("consume", "-b", broker.kafka_address, "t", "--group", "g", "--from-beginning",
                          "--max", "1")
    assert (consumed.returncode, consumed.stdout, consumed.stderr) == (0, "x\n", "")


@pytest.mark.timeout(180)
def test_compare_output_carries_no_broker_log_lines() -> None:
    # slow-consumer makes the embedded broker cut a subscriber off: a warning in its log.
    result = dualmq("compare", "slow-consumer", "--messages", "2000")
    assert result.returncode == 0, result.stderr
    assert json_lines(result.stdout) == [] and json_lines(result.stderr) == []
    assert "subscriber_disconnected" not in result.stdout + result.stderr
    assert "[warning" not in result.stderr


@pytest.mark.timeout(180)
def test_compare_verbose_still_shows_the_embedded_brokers_log() -> None:
    result = dualmq("compare", "baseline", "--messages", "200", "--seconds", "0", "--runs", "1", "--verbose")
    assert result.returncode == 0, result.stderr
    assert "broker_started" in result.stderr and json_lines(result.stderr) == []
