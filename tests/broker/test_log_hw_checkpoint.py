"""The high-watermark checkpoint: a restarted replica starts its high watermark from the file,
never from its log end (docs/cluster.md#replication)."""

from __future__ import annotations

from pathlib import Path

import attrs
import pytest

from broker.config import BrokerConfig, LogConfig
from broker.errors import ConfigError
from broker.log.hw_checkpoint import HIGH_WATERMARK_CHECKPOINT, read_high_watermark, write_high_watermark
from broker.log.partition_log import PartitionLog
from tests.broker.batches import build_batch

CONFIG = LogConfig(fsync="never", index_interval_bytes=256)
T0 = 1_700_000_000_000


def open_log(directory: Path, **changes) -> PartitionLog:
    return PartitionLog.open(directory, attrs.evolve(CONFIG, **changes), now_ms=T0)


def test_round_trip_and_missing(tmp_path: Path) -> None:
    assert read_high_watermark(tmp_path) is None
    write_high_watermark(tmp_path, 42)
    assert read_high_watermark(tmp_path) == 42
    assert (tmp_path / HIGH_WATERMARK_CHECKPOINT).read_text() == "0\n42\n"
    assert not (tmp_path / (HIGH_WATERMARK_CHECKPOINT + ".tmp")).exists()
    with pytest.raises(ValueError, match="negative"):
        write_high_watermark(tmp_path, -1)
    assert read_high_watermark(tmp_path) == 42  # the bad write lost nothing


@pytest.mark.parametrize("content", [b"", b"0\n", b"1\n5\n", b"0\n-3\n", b"0\nfive\n", b"0\n5\n6\n", b"\xff\xfe"])
def test_a_damaged_file_reads_as_missing(tmp_path: Path, content: bytes) -> None:
    (tmp_path / HIGH_WATERMARK_CHECKPOINT).write_bytes(content)
    assert read_high_watermark(tmp_path) is None


def test_restart_starts_from_the_checkpoint_not_the_log_end(tmp_path: Path) -> None:
    log = open_log(tmp_path / "t-0")
    log.track_high_watermark(0)
    log.append(build_batch(4), T0)           # 0-3
    log.advance_high_watermark(2)
    assert log.checkpoint_high_watermark()
    assert not log.checkpoint_high_watermark()  # unchanged: no write
    log.append(build_batch(3), T0)           # 4-6, never committed
    log.advance_high_watermark(5)
    log.close()                              # a clean stop writes the latest: 5
    log = open_log(tmp_path / "t-0")
    assert (log.checkpointed_high_watermark, log.log_end_offset) == (5, 7)
    log.track_high_watermark(log.checkpointed_high_watermark)
    assert log.high_watermark == 5
    assert log.read(5, 10**6) == b""         # the uncommitted tail is not served to consumers
    log.close()


def test_crash_keeps_the_last_periodic_checkpoint(tmp_path: Path) -> None:
    log = open_log(tmp_path / "t-0")
    log.track_high_watermark(0)
    log.append(build_batch(4), T0)
    log.advance_high_watermark(3)
    log.checkpoint_high_watermark()
    log.advance_high_watermark(4)            # not checkpointed before the "crash"
    # no close(): a SIGKILL
    again = open_log(tmp_path / "t-0")
    assert again.checkpointed_high_watermark == 3
    again.track_high_watermark(again.checkpointed_high_watermark)
    assert again.high_watermark == 3
    again.close()
    log.close()


def test_start_is_capped_at_the_log_end_after_truncation(tmp_path: Path) -> None:
    log = open_log(tmp_path / "t-0")
    log.track_high_watermark(0)
    for n in (2, 2, 2):
        log.append(build_batch(n), T0)       # 0-1, 2-3, 4-5
    log.advance_high_watermark(6)
    log.close()                              # checkpoint 6
    log = open_log(tmp_path / "t-0")
    log.truncate_to(2)                       # diverged tail cut after the restart
    log.track_high_watermark(log.checkpointed_high_watermark)
    assert (log.high_watermark, log.log_end_offset) == (2, 2)
    log.close()


def test_start_below_log_start_is_raised_to_it(tmp_path: Path) -> None:
    log = open_log(tmp_path / "t-0", segment_bytes=100, retention_bytes=1)
    for _ in range(4):
        log.append(build_batch(2), T0)
    log.apply_retention(T0)
    assert log.log_start_offset > 0
    log.track_high_watermark(0)
    assert log.high_watermark == log.log_start_offset
    log.close()


def test_untracked_log_writes_no_checkpoint(tmp_path: Path) -> None:
    log = open_log(tmp_path / "t-0")        # a single broker: the high watermark is the log end
    log.append(build_batch(2), T0)
    assert not log.checkpoint_high_watermark()
    log.close()
    assert not (tmp_path / "t-0" / HIGH_WATERMARK_CHECKPOINT).exists()
    log = open_log(tmp_path / "t-0")
    assert (log.high_watermark, log.tracks_high_watermark) == (2, False)
    log.close()


def test_config_key_is_validated() -> None:
    config = BrokerConfig.from_dict({"cluster": {"high_watermark_checkpoint_interval_ms": 250}})
    assert config.cluster.high_watermark_checkpoint_interval_ms == 250
    assert BrokerConfig().cluster.high_watermark_checkpoint_interval_ms == 5000
    with pytest.raises(ConfigError, match="high_watermark_checkpoint_interval_ms = 0: allowed range"):
        BrokerConfig.from_dict({"cluster": {"high_watermark_checkpoint_interval_ms": 0}})
