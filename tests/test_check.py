"""``dualmq check --data-dir DIR``: a read-only verdict on every segment, as users run it.

Exit 0 when everything is intact, 1 when anything is damaged (with file, position and reason
printed), 2 on usage errors — and the files are byte-for-byte the same afterwards.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import attrs
from structlog.testing import capture_logs

from broker.config import LogConfig
from broker.log.partition_log import PartitionLog
from tests.broker.batches import build_batch
from tests.support import broker_process

T0 = 1_700_000_000_000
CONFIG = LogConfig(fsync="never", segment_bytes=1200)


def run_check(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dualmq", "check", *args], capture_output=True, text=True,
                          timeout=60, stdin=subprocess.DEVNULL)


def build_data_dir(data_dir: Path) -> None:
    """Two partitions of several segments each, closed cleanly."""
    for name in ("alpha-0", "beta-0"):
        log = PartitionLog.open(data_dir / name, CONFIG, now_ms=T0)
        for i in range(40):
            log.append(build_batch(i % 3 + 1, 40, fill=i, timestamp=T0 + i), T0)
        log.close()


def snapshot(data_dir: Path) -> dict[str, tuple[str, int]]:
    """Every file's content hash and modification time."""
    return {str(p.relative_to(data_dir)): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
            for p in sorted(data_dir.rglob("*")) if p.is_file()}


def test_intact_data_dir_exits_0_and_changes_nothing(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    build_data_dir(data_dir)
    before = snapshot(data_dir)
    result = run_check("--data-dir", str(data_dir))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "alpha-0: ok: intact" in result.stdout and "beta-0: ok: intact" in result.stdout
    assert result.stdout.rstrip().endswith("OK: 2 partitions intact")
    assert snapshot(data_dir) == before


def test_damage_in_an_older_segment_exits_1_naming_file_and_position(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    build_data_dir(data_dir)
    victim = sorted((data_dir / "beta-0").glob("*.log"))[1]
    data = bytearray(victim.read_bytes())
    first_batch_size = int.from_bytes(data[8:12], "big") + 12
    data[first_batch_size + 2] ^= 0x20  # the second batch's baseOffset, outside the CRC
    victim.write_bytes(bytes(data))
    later = [p for p in sorted((data_dir / "beta-0").glob("*.log")) if p > victim]
    before = snapshot(data_dir)

    result = run_check("--data-dir", str(data_dir))

    assert result.returncode == 1, result.stdout + result.stderr
    out = result.stdout
    assert "alpha-0: ok" in out and "beta-0: DAMAGED" in out
    assert f"{victim.name} position {first_batch_size}: offsets not dense" in out
    assert f"{len(later)} later segments" in out
    assert out.rstrip().endswith("DAMAGED: 1 of 2 partitions")
    assert snapshot(data_dir) == before  # read-only: nothing truncated, nothing rewritten
    # And recovery, when it runs, cuts exactly where check said.
    with capture_logs() as logs:
        PartitionLog.open(data_dir / "beta-0", CONFIG, now_ms=T0).close()
    (cut,) = [e for e in logs if e["event"] == "segment_tail_truncated"]
    assert (cut["file"], cut["position"]) == (str(victim), first_batch_size)
    assert run_check("--data-dir", str(data_dir)).returncode == 0  # repaired now


def test_a_stale_index_is_reported_as_damage_without_data_loss(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    build_data_dir(data_dir)
    index = sorted((data_dir / "alpha-0").glob("*.index"))[1]
    assert index.read_bytes() == b""  # segments smaller than index_interval_bytes have no entries
    index.write_bytes(b"\x00\x00\x00\x03\x00\x00\x00\x40")  # one entry the .log does not justify
    before = snapshot(data_dir)
    result = run_check("--data-dir", str(data_dir))
    assert result.returncode == 1
    assert f"{index.name}: does not match its .log" in result.stdout and "no data lost" in result.stdout
    assert snapshot(data_dir) == before


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    assert run_check().returncode == 2  # --data-dir is required
    missing = run_check("--data-dir", str(tmp_path / "nope"))
    assert missing.returncode == 2 and "does not exist" in missing.stderr
    bad_config = tmp_path / "bad.toml"
    bad_config.write_text("[log]\nindex_interval_bytes = -5\n")
    (tmp_path / "data").mkdir()
    result = run_check("--data-dir", str(tmp_path / "data"), "--config", str(bad_config))
    assert result.returncode == 2 and "index_interval_bytes" in result.stderr


def test_check_beside_a_running_broker_says_so(tmp_path: Path) -> None:
    with broker_process(tmp_path) as broker:
        result = run_check("--data-dir", str(broker.data_dir))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"a broker (pid {broker.process.pid}) is using this directory" in result.stdout


def test_config_index_interval_is_used(tmp_path: Path) -> None:
    # Indexes are compared with what the broker's index_interval_bytes produces.
    data_dir = tmp_path / "data"
    log = PartitionLog.open(data_dir / "t-0", attrs.evolve(CONFIG, index_interval_bytes=100), now_ms=T0)
    for i in range(20):
        log.append(build_batch(1, 40, fill=i), T0)
    log.close()
    config = tmp_path / "dualmq.toml"
    config.write_text("[log]\nindex_interval_bytes = 100\n")
    assert run_check("--data-dir", str(data_dir), "--config", str(config)).returncode == 0
    assert run_check("--data-dir", str(data_dir)).returncode == 1  # the default spacing differs
