"""Recovery on open: torn and corrupt tails are cut (and logged), indexes rebuilt, nothing
before the damage is lost."""

from __future__ import annotations

import os
import random
from pathlib import Path

import attrs
import pytest
from structlog.testing import capture_logs

from broker.config import LogConfig
from broker.errors import OffsetOutOfRange
from broker.log.partition_log import PartitionLog
from tests.broker.batches import build_batch, with_base_offset

CONFIG = LogConfig(fsync="never", index_interval_bytes=200)
T0 = 1_700_000_000_000


def fill(tmp_path: Path, count: int = 12, **changes) -> tuple[PartitionLog, list[bytes]]:
    log = PartitionLog.open(tmp_path / "t-0", attrs.evolve(CONFIG, **changes), now_ms=T0)
    stored = []
    for i in range(count):
        batch = build_batch(i % 4 + 1, 30, fill=i, timestamp=T0 + i)
        stored.append(with_base_offset(batch, log.append(batch, T0)))
    log.close()
    return log, stored


def reopen(tmp_path: Path, **changes) -> PartitionLog:
    return PartitionLog.open(tmp_path / "t-0", attrs.evolve(CONFIG, **changes), now_ms=T0)


def last_log_file(tmp_path: Path) -> Path:
    return sorted((tmp_path / "t-0").glob("*.log"))[-1]


def truncations(logs: list[dict]) -> list[dict]:
    return [e for e in logs if e["event"] == "segment_tail_truncated"]


@pytest.mark.parametrize("seed", range(8))
def test_cut_at_random_byte(tmp_path: Path, seed: int) -> None:
    _, stored = fill(tmp_path)
    path = last_log_file(tmp_path)
    data = path.read_bytes()
    cut = random.Random(seed).randrange(1, len(data))
    path.write_bytes(data[:cut])
    # Which batches are wholly before the cut?
    kept, position = 0, 0
    while kept < len(stored) and position + len(stored[kept]) <= cut:
        position += len(stored[kept])
        kept += 1
    with capture_logs() as logs:
        log = reopen(tmp_path)
    assert log.read(0, 10**9) == b"".join(stored[:kept])
    assert log.high_watermark == sum(i % 4 + 1 for i in range(kept))
    events = truncations(logs)
    if cut == position:
        assert events == []  # cut on a batch boundary: nothing torn
    else:
        (event,) = events
        assert event["file"] == str(path)
        assert event["position"] == position
        assert event["bytes_dropped"] == cut - position
        assert event["batches_dropped"] == 1
    # The log works on: the next append continues densely.
    assert log.append(build_batch(1), T0) == log.high_watermark - 1
    log.close()


@pytest.mark.parametrize("victim", [-1, -2, 5])
def test_flipped_byte(tmp_path: Path, victim: int) -> None:
    _, stored = fill(tmp_path)
    path = last_log_file(tmp_path)
    data = bytearray(path.read_bytes())
    # Flip a byte in the middle of batch ``victim``: every batch from it on is dropped.
    victim %= len(stored)
    start = sum(map(len, stored[:victim]))
    data[start + len(stored[victim]) // 2] ^= 0x40
    path.write_bytes(bytes(data))
    with capture_logs() as logs:
        log = reopen(tmp_path)
    assert log.read(0, 10**9) == b"".join(stored[:victim])
    (event,) = truncations(logs)
    assert event["position"] == start
    assert event["bytes_dropped"] == len(data) - start
    assert event["batches_dropped"] == len(stored) - victim
    assert event["reason"] == "CRC-32C mismatch"
    log.close()


def test_non_dense_offsets_are_cut(tmp_path: Path) -> None:
    _, stored = fill(tmp_path, count=4)
    path = last_log_file(tmp_path)
    data = bytearray(path.read_bytes())
    # baseOffset is outside the CRC: only the density check can catch a wrong one.
    position = sum(map(len, stored[:2]))
    data[position + 7] ^= 0x01
    path.write_bytes(bytes(data))
    with capture_logs() as logs:
        log = reopen(tmp_path)
    assert log.read(0, 10**9) == b"".join(stored[:2])
    assert "not dense" in truncations(logs)[0]["reason"]
    log.close()


def test_zeros_at_tail(tmp_path: Path) -> None:
    # What a crash can leave: the file grew but the data never reached the disk.
    _, stored = fill(tmp_path, count=3)
    path = last_log_file(tmp_path)
    with path.open("ab") as f:
        f.write(b"\x00" * 100)
    with capture_logs() as logs:
        log = reopen(tmp_path)
    assert log.read(0, 10**9) == b"".join(stored)
    assert truncations(logs)[0]["bytes_dropped"] == 100
    log.close()


@pytest.mark.parametrize("damage", ["delete", "garbage", "truncate", "extend"])
def test_damaged_index_is_rebuilt(tmp_path: Path, damage: str) -> None:
    _, stored = fill(tmp_path, count=30)
    directory = tmp_path / "t-0"
    index = directory / "00000000000000000000.index"
    original = index.read_bytes()
    assert len(original) >= 16
    if damage == "delete":
        index.unlink()
    elif damage == "garbage":
        index.write_bytes(b"\xff" * len(original))
    elif damage == "truncate":
        index.write_bytes(original[:5])
    else:
        index.write_bytes(original + original[-8:])
    with capture_logs() as logs:
        log = reopen(tmp_path)
    assert truncations(logs) == []
    assert any(e["event"] == "index_rebuilt" for e in logs)
    assert index.read_bytes() == original
    for i, batch in enumerate(stored):
        offset = sum(j % 4 + 1 for j in range(i))
        assert log.read(offset, 1) == batch
    log.close()


def test_damaged_index_of_closed_segment(tmp_path: Path) -> None:
    _, stored = fill(tmp_path, count=30, segment_bytes=1200)
    directory = tmp_path / "t-0"
    first_index = sorted(directory.glob("*.index"))[0]
    original = first_index.read_bytes()
    first_index.write_bytes(b"\x00\x00\x00\x05\x00\x00\x00\x07")  # points into the middle of a batch
    with capture_logs() as logs:
        log = reopen(tmp_path, segment_bytes=1200)
    assert log.segment_count > 2
    assert first_index.read_bytes() == original
    assert [e["event"] for e in logs if e["event"] == "index_rebuilt"]
    assert log.read(0, 10**9) == b"".join(stored)
    log.close()


def test_clean_reopen_logs_nothing_and_keeps_everything(tmp_path: Path) -> None:
    _, stored = fill(tmp_path, count=30, segment_bytes=1200)
    with capture_logs() as logs:
        log = reopen(tmp_path, segment_bytes=1200)
    assert [e for e in logs if e["log_level"] in ("warning", "info")] == []
    assert log.read(0, 10**9) == b"".join(stored)
    log.close()


def test_gap_between_segments_drops_the_rest(tmp_path: Path) -> None:
    _, stored = fill(tmp_path, count=30, segment_bytes=1200)
    directory = tmp_path / "t-0"
    logs_files = sorted(directory.glob("*.log"))
    assert len(logs_files) >= 3
    # Lose the tail of the *first* segment (as if its last write never reached the disk).
    first = logs_files[0]
    data = first.read_bytes()
    first.write_bytes(data[:-1])
    with capture_logs() as logs:
        log = reopen(tmp_path, segment_bytes=1200)
    events = [e["event"] for e in logs]
    assert "segments_dropped_after_gap" in events and "segment_tail_truncated" in events
    assert log.segment_count == 1
    kept = log.read(0, 10**9)
    assert b"".join(stored).startswith(kept) and len(kept) < len(data)
    assert sorted(directory.glob("*.log")) == [first]
    log.close()


def test_empty_trailing_segment_kept_or_dropped(tmp_path: Path) -> None:
    _, stored = fill(tmp_path, count=3)
    directory = tmp_path / "t-0"
    log = reopen(tmp_path)
    hw = log.high_watermark
    log.close()
    # A roll whose first batch never arrived: an empty segment at the log end is kept...
    (directory / f"{hw:020d}.log").write_bytes(b"")
    # ...one beyond it is not.
    (directory / f"{hw + 50:020d}.log").write_bytes(b"")
    (directory / "00000000000000099999.index").write_bytes(b"")  # stray index
    log = reopen(tmp_path)
    assert log.segment_count == 2 and log.high_watermark == hw
    assert not (directory / f"{hw + 50:020d}.log").exists()
    assert not (directory / "00000000000000099999.index").exists()
    assert log.append(build_batch(1), T0) == hw
    assert log.read(0, 10**9) == b"".join(stored) + with_base_offset(build_batch(1), hw)
    log.close()


def test_everything_torn(tmp_path: Path) -> None:
    fill(tmp_path, count=1)
    last_log_file(tmp_path).write_bytes(b"\x01\x02\x03")
    with capture_logs() as logs:
        log = reopen(tmp_path)
    assert (log.log_start_offset, log.high_watermark, log.size_bytes) == (0, 0, 0)
    assert truncations(logs)[0]["bytes_dropped"] == 3
    log.close()


# -- damage inside an older segment ---------------------------------------------------------
# Every segment is verified at open, not only the newest: a damaged byte anywhere ends the
# intact prefix there, and nothing from that point on is ever served.


def _older_segment_damage(tmp_path: Path, field: str) -> tuple[list[bytes], Path, int, int]:
    """Fill several segments, damage ``field`` of the 2nd batch of the 2nd segment (an older,
    sealed one); return (stored, damaged file, batch position in it, index of the batch)."""
    _, stored = fill(tmp_path, count=30, segment_bytes=1200)
    files = sorted((tmp_path / "t-0").glob("*.log"))
    assert len(files) >= 4
    victim_file = files[1]
    first_in_file = int(victim_file.stem)
    # Which stored batches are in the victim file: the ones from its base offset on.
    offsets = []
    offset = 0
    for i in range(len(stored)):
        offsets.append(offset)
        offset += i % 4 + 1
    first = offsets.index(first_in_file)
    victim = first + 1
    position = len(stored[first])
    data = bytearray(victim_file.read_bytes())
    if field == "baseOffset":
        data[position + 3] ^= 0x01  # a high byte: offsets jump by 2**32 if served
    elif field == "batchLength":
        data[position + 10] ^= 0x01  # the length grows by 256 bytes: the CRC covers the wrong range
    elif field == "batchLength-high":
        data[position + 8] ^= 0x01  # the length grows by 16 MiB: past the end of the file
    else:
        data[position + 17] ^= 0xFF  # the stored CRC itself
    victim_file.write_bytes(bytes(data))
    return stored, victim_file, position, victim


@pytest.mark.parametrize("field", ["baseOffset", "batchLength", "batchLength-high", "crc"])
def test_damage_in_an_older_segment_is_cut_there(tmp_path: Path, field: str) -> None:
    stored, victim_file, position, victim = _older_segment_damage(tmp_path, field)
    later_files = [p for p in sorted((tmp_path / "t-0").glob("*.log")) if p > victim_file]
    later_bytes = sum(p.stat().st_size for p in later_files)
    with capture_logs() as logs:
        log = reopen(tmp_path, segment_bytes=1200)
    # Exactly the intact prefix is served, with the right offsets, and nothing after it.
    intact = b"".join(stored[:victim])
    assert log.read(0, 10**9) == intact
    expected_hw = sum(i % 4 + 1 for i in range(victim))
    assert log.high_watermark == expected_hw
    assert [offset for offset, _ in log.batches()] == [sum(j % 4 + 1 for j in range(i)) for i in range(victim)]
    with pytest.raises(OffsetOutOfRange):
        log.read(expected_hw + 1, 10**6)
    # One warning names the file and the position, and says what went with the cut.
    (event,) = truncations(logs)
    assert event["log_level"] == "warning"
    assert event["file"] == str(victim_file)
    assert event["position"] == position
    assert event["later_segments_dropped"] == len(later_files)
    assert event["later_bytes_dropped"] == later_bytes
    reasons = {"baseOffset": "not dense", "batchLength": "CRC-32C mismatch", "batchLength-high": "runs past the end",
               "crc": "CRC-32C mismatch"}
    assert reasons[field] in event["reason"]
    assert [e for e in logs if e["event"] == "segments_dropped_after_gap"][0]["segments_dropped"] == len(later_files)
    assert sorted((tmp_path / "t-0").glob("*.log"))[-1] == victim_file
    # The log carries on densely from the cut.
    assert log.append(build_batch(1), T0) == expected_hw
    log.close()
    reopened = reopen(tmp_path, segment_bytes=1200)
    assert reopened.read(0, 10**9) == intact + with_base_offset(build_batch(1), expected_hw)
    reopened.close()


def test_damaged_first_batch_of_an_older_segment_breaks_the_chain(tmp_path: Path) -> None:
    # The first batch of a segment must start at the offset its file name says.
    _, stored = fill(tmp_path, count=30, segment_bytes=1200)
    files = sorted((tmp_path / "t-0").glob("*.log"))
    data = bytearray(files[1].read_bytes())
    data[0] ^= 0x10  # baseOffset's top byte
    files[1].write_bytes(bytes(data))
    with capture_logs() as logs:
        log = reopen(tmp_path, segment_bytes=1200)
    assert log.high_watermark == int(files[1].stem)
    (event,) = truncations(logs)
    assert (event["file"], event["position"]) == (str(files[1]), 0)
    assert log.read(0, 10**9) == files[0].read_bytes()
    log.close()


def test_clean_shutdown_skips_the_fsyncs_a_crash_needs(tmp_path: Path, monkeypatch) -> None:
    # After a crash every kept .log is fsynced (the previous process may have left data in the
    # page cache only); after a clean close, which flushed everything, none is.
    fill(tmp_path, count=30, segment_bytes=1200)  # closed cleanly
    segments = len(list((tmp_path / "t-0").glob("*.log")))
    synced: list[int] = []
    real_fsync = os.fsync

    def counting_fsync(fd: int) -> None:
        synced.append(fd)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", counting_fsync)
    log = reopen(tmp_path, segment_bytes=1200)
    assert synced == []
    # A "crash": the process dies without close(); the marker was consumed at open.
    log.storage.files.close_all()
    for segment in log._segments:
        segment.close()
    reopened = reopen(tmp_path, segment_bytes=1200)
    assert len(synced) == segments
    reopened.close()
