"""Disk errors are never silent: logged with path and errno (rate-limited), counted, shown in
INFO — and a failed append loses nothing that was acknowledged, nor leaves anything behind."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import attrs
import pytest
import trio
from structlog.testing import capture_logs

import broker.log.segment as segment_module
from broker.config import LogConfig
from broker.log.io_errors import IoErrorReporter
from broker.log.partition_log import PartitionLog
from broker.topics import TopicRegistry
from modes.pull.log_runtime import flush_log, flush_logs
from tests.broker.batches import build_batch, with_base_offset
from tests.support import kafka_python_noise, require_module

CONFIG = LogConfig(fsync="never", index_interval_bytes=100)
T0 = 1_700_000_000_000


def disk_full(*_args: object) -> int:
    raise OSError(errno.ENOSPC, "No space left on device")


def failures(logs: list[dict]) -> list[dict]:
    return [e for e in logs if e["event"] == "log_io_failed"]


def test_rate_limit_logs_the_first_then_one_line_per_interval() -> None:
    reporter = IoErrorReporter(interval_ms=10_000)
    error = OSError(errno.ENOSPC, "No space left on device", "/data/t-0/00.log")
    with capture_logs() as logs:
        assert reporter.record("append", error, T0) is True
        assert reporter.record("append", error, T0 + 1) is False
        assert reporter.record("append", error, T0 + 9_999) is False
        assert reporter.report_suppressed(T0 + 9_999) is False  # too early
        assert reporter.record("append", error, T0 + 10_000) is True
        assert reporter.record("append", error, T0 + 10_001) is False
        assert reporter.report_suppressed(T0 + 20_000) is True
        assert reporter.report_suppressed(T0 + 40_000) is False  # nothing left to report
    first, second, tail = logs
    assert (first["event"], first["log_level"]) == ("log_io_failed", "error")
    assert first["path"] == "/data/t-0/00.log" and first["errno"] == "ENOSPC"
    assert first["operation"] == "append" and first["suppressed_since_last"] == 0
    assert second["suppressed_since_last"] == 2 and second["io_errors_total"] == 4
    assert (tail["event"], tail["count"], tail["io_errors_total"]) == ("log_io_errors_suppressed", 1, 5)
    assert reporter.total == 5 and reporter.suppressed == 0


def open_log(tmp_path: Path, **changes) -> PartitionLog:
    return PartitionLog.open(tmp_path / "t-0", attrs.evolve(CONFIG, **changes), now_ms=T0)


def test_failed_append_is_logged_counted_and_leaves_the_log_unchanged(tmp_path: Path, monkeypatch) -> None:
    log = open_log(tmp_path)
    kept = [build_batch(2, 30, fill=i) for i in range(3)]
    for batch in kept:
        log.append(batch, T0)
    path = tmp_path / "t-0" / "00000000000000000000.log"
    size_before = path.stat().st_size

    def half_then_full(fd: int, buffers: list) -> int:
        # What a filling disk does: part of the batch is written, then ENOSPC.
        os.write(fd, bytes(buffers[0])[:10])
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(segment_module, "write_all", half_then_full)
    with capture_logs() as logs:
        for i in range(5):
            with pytest.raises(OSError) as caught:
                log.append(build_batch(1, 30, fill=100 + i), T0 + i)
            assert caught.value.errno == errno.ENOSPC and caught.value.filename == str(path)
    monkeypatch.undo()
    (line,) = failures(logs)  # once, not five times
    assert line["path"] == str(path) and line["errno"] == "ENOSPC" and line["operation"] == "append"
    assert log.io_errors == 5 and log.statistics().io_errors == 5 and log.storage.io_errors.total == 5
    # Nothing of the failed batches remains, on disk or in the log.
    assert path.stat().st_size == size_before == log.size_bytes
    assert log.high_watermark == 6
    # Once the disk has room again, appends continue where the log ended.
    after = build_batch(1, 30, fill=200)
    assert log.append(after, T0) == 6
    expected = b"".join(with_base_offset(b, 2 * i) for i, b in enumerate(kept)) + with_base_offset(after, 6)
    assert log.read(0, 10**9) == expected
    log.close()
    reopened = open_log(tmp_path)
    assert reopened.read(0, 10**9) == expected
    reopened.close()


def test_a_write_that_cannot_be_undone_blocks_appends_until_recovery(tmp_path: Path, monkeypatch) -> None:
    log = open_log(tmp_path)
    log.append(build_batch(1, 30), T0)

    def partial(fd: int, buffers: list) -> int:
        os.write(fd, b"\x00" * 20)
        raise OSError(errno.EIO, "Input/output error")

    def no_cut(fd: int, length: int) -> None:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(segment_module, "write_all", partial)
    monkeypatch.setattr(segment_module.os, "ftruncate", no_cut)
    with pytest.raises(OSError):
        log.append(build_batch(1, 30), T0)
    monkeypatch.undo()
    # 20 stray bytes sit at the end of the file: an append now would land after them, where
    # no read looks. So appends are refused, with the reason, until a restart recovers.
    with pytest.raises(OSError, match="restart"):
        log.append(build_batch(1, 30), T0)
    assert log.read(0, 10**9) == with_base_offset(build_batch(1, 30), 0)
    log.close()
    reopened = open_log(tmp_path)
    assert reopened.append(build_batch(1, 30, fill=7), T0) == 1
    assert reopened.read(1, 10**9) == with_base_offset(build_batch(1, 30, fill=7), 1)
    reopened.close()


def test_a_failed_index_write_keeps_the_batch_and_is_reported(tmp_path: Path, monkeypatch) -> None:
    log = open_log(tmp_path)
    real_write = os.write

    def index_write_fails(fd: int, data: bytes) -> int:
        if fd == log._segments[-1].index_fd:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(segment_module.os, "write", index_write_fails)
    batches = [build_batch(1, 60, fill=i) for i in range(4)]  # enough bytes to earn an index entry
    with capture_logs() as logs:
        offsets = [log.append(b, T0) for b in batches]
    monkeypatch.undo()
    assert offsets == [0, 1, 2, 3]
    (line,) = failures(logs)
    assert line["operation"] == "index write" and line["path"].endswith(".index")
    assert log.io_errors >= 1
    expected = b"".join(with_base_offset(b, i) for i, b in enumerate(batches))
    assert log.read(0, 10**9) == expected
    log.close()
    reopened = open_log(tmp_path)  # recovery rebuilds the index the failure left short
    assert reopened.read(2, 10**9) == expected[2 * len(expected) // 4:]
    reopened.close()


def test_failed_fsync_is_not_marked_flushed_and_periodic_flush_carries_on(tmp_path: Path, monkeypatch) -> None:
    registry = TopicRegistry.open(tmp_path / "data", CONFIG, now_ms=T0)
    registry.create("a", 2, now_ms=T0)
    for index in range(2):
        registry.partition("a", index).append(build_batch(1), T0)

    def fsync_fails(fd: int) -> None:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(os, "fsync", fsync_fails)
    first = registry.partition("a", 0)
    with pytest.raises(OSError) as caught:
        trio.run(flush_log, first)
    assert caught.value.filename.endswith(".log")
    with capture_logs() as logs:
        trio.run(flush_logs, registry, T0)  # records, does not raise, tries both partitions
    monkeypatch.undo()
    assert [e["operation"] for e in failures(logs)] == ["fsync"]  # the second one is rate-limited
    assert registry.storage.io_errors.total == 2
    assert first.has_unflushed and registry.partition("a", 1).has_unflushed
    trio.run(flush_logs, registry, T0)
    assert not first.has_unflushed
    registry.close()


@pytest.mark.interop
@kafka_python_noise
async def test_disk_full_through_real_clients_is_reported_in_info_and_loses_nothing_acked(
        tmp_path: Path, monkeypatch) -> None:
    kafka = require_module("kafka", "kafka-python")
    redis = require_module("redis", "redis")
    from dualmq.embedded import broker as embedded_broker

    real_write_all = segment_module.write_all
    disk = {"full": False}

    def write_all(fd: int, buffers: list) -> int:
        if disk["full"]:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write_all(fd, buffers)

    monkeypatch.setattr(segment_module, "write_all", write_all)

    def produce(address: str, values: list[bytes]) -> list[int | str]:
        # No retries and no idempotence: each failure comes back to us as it happened.
        producer = kafka.KafkaProducer(bootstrap_servers=address, acks=1, retries=0, enable_idempotence=False,
                                       request_timeout_ms=10000, linger_ms=0)
        outcomes: list[int | str] = []
        try:
            for value in values:
                try:
                    outcomes.append(producer.send("full", value, partition=0).get(timeout=20).offset)
                except kafka.errors.KafkaError as exc:
                    outcomes.append(type(exc).__name__)
        finally:
            producer.close()
        return outcomes

    def consume(address: str, expected: int) -> list[tuple[int, bytes]]:
        consumer = kafka.KafkaConsumer(bootstrap_servers=address, group_id=None, enable_auto_commit=False,
                                       consumer_timeout_ms=3000, request_timeout_ms=10000)
        try:
            tp = kafka.TopicPartition("full", 0)
            consumer.assign([tp])
            consumer.seek_to_beginning(tp)
            records = []
            for _ in range(40):
                for batch in consumer.poll(timeout_ms=500).values():
                    records.extend((r.offset, r.value) for r in batch)
                if len(records) >= expected:
                    break
            return records
        finally:
            consumer.close()

    def info_dualmq(address: str) -> dict:
        host, _, port = address.rpartition(":")
        client = redis.Redis(host=host, port=int(port), socket_timeout=10)
        try:
            return client.info("dualmq")
        finally:
            client.close()

    with capture_logs() as logs:
        async with embedded_broker(tmp_path / "data", log={"fsync": "always"}) as b:
            before = await trio.to_thread.run_sync(produce, b.kafka, [b"a0", b"a1"])
            disk["full"] = True
            during = await trio.to_thread.run_sync(produce, b.kafka, [b"x0", b"x1", b"x2"])
            info = await trio.to_thread.run_sync(info_dualmq, b.resp)
            disk["full"] = False
            after = await trio.to_thread.run_sync(produce, b.kafka, [b"b0"])
            records = await trio.to_thread.run_sync(consume, b.kafka, 3)
    assert before == [0, 1]
    assert during == ["KafkaStorageError"] * 3
    assert after == [2]
    assert info["log_io_errors"] == 3
    assert "log_open_segment_files" in info and info["log_max_open_segment_files"] >= 16
    lines = failures(logs)
    assert len(lines) == 1  # the first failure, at once; the next two within the interval are counted
    assert lines[0]["errno"] == "ENOSPC" and lines[0]["path"].endswith("full-0/00000000000000000000.log")
    # Every acknowledged record is there, in order, and nothing that was refused.
    assert records == [(0, b"a0"), (1, b"a1"), (2, b"b0")]
