"""bench/chaos.py: its verdict logic, and one real SIGKILL trial as a smoke test.

The script's claim is "0 acknowledged records lost at fsync=always". A check that cannot fail
proves nothing, so besides the smoke run (which must report 0 lost) there are runs where the
answer must be "lost": the comparison fed a made-up read back, and a real trial whose newest
segment the script itself cuts in half after the kill (``--sabotage``).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from bench.chaos import SEQ, AckTracker, TrialResult, compare
from tests.support import KAFKA_PYTHON_IMPORT_WARNING, require_module

REPO = Path(__file__).resolve().parent.parent
SCRIPT_TIMEOUT_SECONDS = 60


def value(seq: int) -> bytes:
    return SEQ.pack(seq)


def test_compare_counts_each_kind_of_damage() -> None:
    # Sent 0..7. Acked: 0..5 at offsets 0..5. Read back: 0, 1, 3 (2 lost), 2 at offset 3 moved
    # after 3 (reordered), 3 again (duplicated), 4 at offset 5 although acked at 4 (wrong
    # offset), 6 (unacked but present), garbage; 5 and 7 missing (5 lost, 7 unacked absent).
    tracker = AckTracker(acked={seq: (0, seq) for seq in range(6)})
    records = {0: [(0, value(0)), (1, value(1)), (2, value(3)), (3, value(2)), (4, value(3)),
                   (5, value(4)), (6, value(6)), (7, b"junk")]}
    result = TrialResult("always", 0, sent=8)
    compare(result, tracker, records, partitions=1)
    assert result.acked == 6
    assert result.lost == 1             # seq 5
    assert result.reordered == 1        # seq 2 read after seq 3
    assert result.duplicated == 1       # seq 3 twice
    # seq 2 acked at offset 2 (holds 3), 3 acked at 3 (holds 2), 4 acked at 4 (holds 3 again)
    assert result.wrong_offset == 3
    assert result.unacked_present == 1  # seq 6
    assert result.unacked_absent == 1   # seq 7
    assert result.read == 8
    assert any("junk" in note for note in result.notes)


def test_compare_clean_read_back_reports_nothing() -> None:
    tracker = AckTracker(acked={seq: (seq % 2, seq // 2) for seq in range(10)})
    records = {p: [(seq // 2, value(seq)) for seq in range(p, 10, 2)] for p in range(2)}
    result = TrialResult("always", 0, sent=10)
    compare(result, tracker, records, partitions=2)
    assert (result.acked, result.lost, result.duplicated, result.reordered, result.wrong_offset,
            result.unacked_present, result.unacked_absent) == (10, 0, 0, 0, 0, 0, 0)


def run_chaos(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    """Run the script in its own process group, so a timeout also kills the broker it started."""
    process = subprocess.Popen(
        [sys.executable, str(REPO / "bench" / "chaos.py"), "--workdir", str(workdir), *args],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )
    try:
        out, err = process.communicate(timeout=SCRIPT_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        out, err = process.communicate(timeout=10)
        pytest.fail(f"bench/chaos.py still running after {SCRIPT_TIMEOUT_SECONDS} s:\n{out}\n{err}")
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


def table_row(output: str, policy: str) -> dict[str, str]:
    lines = [line for line in output.splitlines() if line.startswith("|")]
    header = [cell.strip() for cell in lines[0].strip("|").split("|")]
    for line in lines[2:]:
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        if cells[0] == policy:
            return dict(zip(header, cells))
    raise AssertionError(f"no row for {policy} in:\n{output}")


@pytest.mark.interop
@pytest.mark.filterwarnings(KAFKA_PYTHON_IMPORT_WARNING)
def test_one_sigkill_trial_at_fsync_always_loses_nothing(tmp_path: Path) -> None:
    require_module("kafka", "kafka-python")
    done = run_chaos(tmp_path / "work", "--trials", "1", "--policies", "always", "--seed", "12")
    assert done.returncode == 0, done.stdout + done.stderr
    row = table_row(done.stdout, "always")
    assert row["trials"] == "1" and row["errors"] == "0"
    assert int(row["acked"].replace(",", "")) > 0
    assert row["lost"] == "0" and row["wrong offset"] == "0"
    assert row["duplicated"] == "0" and row["reordered"] == "0"


@pytest.mark.interop
@pytest.mark.filterwarnings(KAFKA_PYTHON_IMPORT_WARNING)
def test_sabotaged_segment_is_reported_as_lost(tmp_path: Path) -> None:
    # The same trial, but the script halves the newest segment after the kill: acknowledged
    # records are gone, and the run must say so and fail.
    require_module("kafka", "kafka-python")
    done = run_chaos(tmp_path / "work", "--trials", "1", "--policies", "always", "--seed", "12", "--sabotage")
    assert done.returncode == 1, done.stdout + done.stderr
    assert int(table_row(done.stdout, "always")["lost"].replace(",", "")) > 0
    assert "fsync=always lost" in done.stderr
