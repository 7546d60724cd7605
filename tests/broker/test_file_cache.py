"""The bounded cache of open segment files, and the partition budget that counts it."""

from __future__ import annotations

import os
from pathlib import Path

import attrs
import pytest
import trio

from broker.config import LogConfig
from broker.errors import ConfigError
from broker.log.file_cache import AUTO_MAX, AUTO_MIN, OpenFileCache, default_capacity
from broker.log.partition_log import PartitionLog
from broker.log.storage import LogStorage
from broker.topics import FILES_PER_PARTITION, partition_budget
from modes.pull.log_runtime import flush_log
from tests.broker.batches import build_batch

T0 = 1_700_000_000_000


def is_open(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True


def files(tmp_path: Path, count: int) -> list[Path]:
    paths = []
    for i in range(count):
        path = tmp_path / f"f{i}"
        path.write_bytes(bytes([i]) * 10)
        paths.append(path)
    return paths


def test_lru_eviction_closes_the_least_recently_used(tmp_path: Path) -> None:
    a, b, c = files(tmp_path, 3)
    cache = OpenFileCache(2)
    fd_a = cache.descriptor("a", a)
    fd_b = cache.descriptor("b", b)
    assert cache.descriptor("a", a) == fd_a  # a hit, and "a" becomes the most recent
    fd_c = cache.descriptor("c", c)  # evicts "b", the least recently used
    assert "b" not in cache and not is_open(fd_b)
    assert is_open(fd_a) and is_open(fd_c)
    assert os.pread(cache.descriptor("a", a), 10, 0) == b"\x00" * 10
    stats = cache.statistics()
    assert (stats.open_files, stats.capacity, stats.hits, stats.misses, stats.evictions) == (2, 2, 2, 3, 1)
    cache.close_all()
    assert len(cache) == 0 and not is_open(fd_a) and not is_open(fd_c)


def test_adopt_and_discard(tmp_path: Path) -> None:
    a, b = files(tmp_path, 2)
    cache = OpenFileCache(1)
    own = os.open(a, os.O_RDONLY)
    cache.adopt("a", own)
    assert cache.descriptor("a", a) == own  # a hit: the adopted descriptor is used
    fd_b = cache.descriptor("b", b)  # evicts (closes) the adopted one
    assert not is_open(own)
    cache.discard("b")
    assert not is_open(fd_b) and len(cache) == 0
    cache.discard("never-there")  # harmless


def test_a_failed_open_leaves_the_cache_unchanged(tmp_path: Path) -> None:
    (a,) = files(tmp_path, 1)
    cache = OpenFileCache(1)
    fd = cache.descriptor("a", a)
    with pytest.raises(FileNotFoundError):
        cache.descriptor("missing", tmp_path / "missing")
    assert "a" in cache and is_open(fd)
    cache.close_all()


def test_capacity_must_be_positive() -> None:
    with pytest.raises(ValueError):
        OpenFileCache(0)


def test_default_capacity_is_an_eighth_of_the_limit_within_bounds() -> None:
    assert default_capacity(1024) == 128
    assert default_capacity(20) == AUTO_MIN
    assert default_capacity(10**7) == AUTO_MAX
    assert default_capacity(None) == AUTO_MAX


def test_config_key_is_validated() -> None:
    assert LogConfig().max_open_segment_files == 0
    assert LogConfig(max_open_segment_files=7).max_open_segment_files == 7
    with pytest.raises(ConfigError, match="max_open_segment_files"):
        LogConfig(max_open_segment_files=-1)
    assert LogStorage.from_config(7).files.capacity == 7
    assert LogStorage.from_config(0).files.capacity >= AUTO_MIN


def test_partition_budget_counts_active_files_cache_and_headroom(monkeypatch) -> None:
    import broker.topics as topics

    monkeypatch.setattr(topics, "open_file_limit", lambda: 1024)
    # 1024 - 256 headroom - 128 cache = 640 files, three per partition.
    assert partition_budget(128) == 640 // FILES_PER_PARTITION == 213
    assert partition_budget() == 213  # the default cache is an eighth of the limit
    assert partition_budget(10_000) == 1  # never below one
    monkeypatch.setattr(topics, "open_file_limit", lambda: None)
    assert partition_budget() >= 10_000


def test_many_partitions_share_one_bounded_cache(tmp_path: Path) -> None:
    # Four partitions of eight segments each, one cache of three: reading everything keeps
    # at most 4 x 3 active files + 3 cached open, and every read still returns the right data.
    batch = build_batch(1, 40)
    config = LogConfig(fsync="never", segment_bytes=len(batch))
    storage = LogStorage(files=OpenFileCache(3))
    before = len(os.listdir("/proc/self/fd"))
    logs = [PartitionLog.open(tmp_path / f"t-{i}", config, now_ms=T0, storage=storage) for i in range(4)]
    for log in logs:
        for _ in range(8):
            log.append(batch, T0)
    for _ in range(2):
        for log in logs:
            for offset in range(8):
                assert log.read(offset, 1)[:8] == offset.to_bytes(8, "big")
    assert len(os.listdir("/proc/self/fd")) - before <= 4 * 3 + 3
    assert len(storage.files) == 3
    for log in logs:
        trio.run(flush_log, log)
        log.close()
    assert len(os.listdir("/proc/self/fd")) == before


def test_flush_of_sealed_segments_survives_eviction(tmp_path: Path) -> None:
    # A flush duplicates descriptors before handing them to the worker thread; evicting (or
    # deleting) segments while it runs must neither break it nor close a reused number.
    batch = build_batch(1, 40)
    config = LogConfig(fsync="never", segment_bytes=len(batch))
    storage = LogStorage(files=OpenFileCache(1))
    log = PartitionLog.open(tmp_path / "t-0", config, now_ms=T0, storage=storage)
    for _ in range(5):
        log.append(batch, T0)
    assert log.has_unflushed

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(flush_log, log)
            await trio.sleep(0)
            # While the thread fsyncs: read every segment (churning the one-slot cache).
            for offset in range(5):
                assert log.read(offset, 1)[:8] == offset.to_bytes(8, "big")

    trio.run(main)
    assert not log.has_unflushed
    log.close()


def test_segment_files_do_not_leak_when_a_roll_fails(tmp_path: Path, monkeypatch) -> None:
    import broker.log.segment as segment_module

    batch = build_batch(1, 40)
    log = PartitionLog.open(tmp_path / "t-0", attrs.evolve(LogConfig(fsync="never"), segment_bytes=len(batch)),
                            now_ms=T0)
    log.append(batch, T0)
    before = len(os.listdir("/proc/self/fd"))
    real_open = segment_module._open_rw
    calls = []

    def third_open_fails(path: Path) -> int:
        calls.append(path)
        if len(calls) == 3:
            raise OSError(24, "Too many open files")
        return real_open(path)

    monkeypatch.setattr(segment_module, "_open_rw", third_open_fails)
    with pytest.raises(OSError):
        log.append(batch, T0)  # needs a roll: its third file fails
    monkeypatch.undo()
    assert len(os.listdir("/proc/self/fd")) == before
    assert log.high_watermark == 1 and log.io_errors == 1
    assert log.append(batch, T0) == 1
    log.close()
