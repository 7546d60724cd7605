"""The trio side of the partition logs: long-poll waits on data tickets, fsyncs in a thread."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio
import trio.testing

from broker.config import LogConfig
from broker.log.partition_log import PartitionLog
from modes.pull.log_runtime import flush_log, wait_for_data
from tests.broker.batches import build_batch

T0 = 1_700_000_000_000


def open_log(directory: Path, **settings) -> PartitionLog:
    return PartitionLog.open(directory, LogConfig(**settings), now_ms=T0)


async def test_flush_log_runs_the_fsync_and_marks_it(tmp_path: Path) -> None:
    log = open_log(tmp_path / "t-0", fsync="always")
    log.append(build_batch(2), T0)
    await flush_log(log)
    assert log.flushed_offset == 2 and not log.has_unflushed
    await flush_log(log)  # nothing to do: still fine
    log.close()


async def wait_while(waiting: list[tuple[PartitionLog, int]], action) -> bool:
    """What ``wait_for_data`` returns when ``action()`` runs once it is blocked (30 s deadline)."""
    results: list[bool] = []

    async def waiter() -> None:
        results.append(await wait_for_data(waiting, trio.current_time() + 30))

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(waiter)
            await trio.testing.wait_all_tasks_blocked()
            assert results == []  # really blocked
            action()
    return results[0]


async def test_wait_for_data_woken_by_append(tmp_path: Path) -> None:
    log = open_log(tmp_path / "t-0")
    assert await wait_while([(log, 0)], lambda: log.append(build_batch(1), T0))
    # Data already there: immediate, even with a deadline in the past.
    assert await wait_for_data([(log, 0)], trio.current_time())
    log.close()


async def test_wait_for_any_of_several_logs(tmp_path: Path) -> None:
    logs = [open_log(tmp_path / f"t-{i}") for i in range(3)]
    assert await wait_while([(log, 0) for log in logs], lambda: logs[2].append(build_batch(1), T0))
    # Every ticket was given back, on the logs that saw no data too.
    assert all(log._watchers == [] for log in logs)
    for log in logs:
        log.close()


def test_wait_for_data_times_out(tmp_path: Path) -> None:
    log = open_log(tmp_path / "t-0")
    log.append(build_batch(1), T0)

    async def main() -> tuple[bool, float]:
        start = trio.current_time()
        ok = await wait_for_data([(log, 1)], start + 5)
        return ok, trio.current_time() - start

    ok, waited = trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    assert not ok and waited == pytest.approx(5)
    assert log._watchers == []
    log.close()


async def test_a_closed_log_ends_the_wait(tmp_path: Path) -> None:
    # A topic deleted under a long-polling fetch: the fetch answers now, not at its deadline.
    log = open_log(tmp_path / "t-0")
    assert not await wait_while([(log, 0)], log.close)
