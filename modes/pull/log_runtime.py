"""The trio side of the partition logs: waiting for new data, and fsyncs off the event loop.

The log (``broker.log.partition_log``) never waits and is never touched by a thread. It offers
tickets instead, and this module does the waiting:

* :func:`wait_for_data` — a long-polling Fetch registers one ``DataTicket`` per partition it
  reads, all with the same ``trio.Event.set`` as their wake-up, and sleeps on that one event
  until an append completes a ticket or the deadline passes. No polling, no task per partition.
* :func:`flush_log` — an fsync in a worker thread so the event loop keeps serving: the log
  prepares a ``FlushJob`` (duplicated descriptors, nothing else), the thread fsyncs them, and
  back in the trio thread the log is told the data is durable. Nothing but the job's own
  descriptors is used off the trio thread.
* :func:`flush_logs` — every partition with unflushed data (the ``interval`` fsync policy's
  tick, and shutdown).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import trio

from broker.log.partition_log import PartitionLog
from broker.log.tickets import FlushJob
from broker.topics import TopicRegistry


# How often a wait for the high watermark re-checks that this broker still leads the
# partition: a deposed leader's high watermark never moves again, so without the check the
# wait would last until its deadline.
LEADERSHIP_CHECK_S = 0.25


async def wait_for_commit(log: PartitionLog, last_offset: int, deadline: float,
                          still_leading: Callable[[], bool]) -> None:
    """Wait until ``log``'s high watermark passes ``last_offset`` (every in-sync replica holds
    it), ``still_leading()`` turns false, or ``trio.current_time()`` reaches ``deadline``;
    the caller tells which from the log and ``still_leading`` afterwards (an ``acks=all``
    Produce, a replicated OffsetCommit)."""
    while log.high_watermark <= last_offset and still_leading() and trio.current_time() < deadline:
        await wait_for_data([(log, last_offset)], min(deadline, trio.current_time() + LEADERSHIP_CHECK_S))


async def wait_for_data(waiting: list[tuple[PartitionLog, int]], deadline: float, *, log_end: bool = False) -> bool:
    """Wait until one of the logs has data past its offset, or ``trio.current_time()`` reaches
    ``deadline``.

    Args:
        waiting: ``(log, offset)`` pairs; each log is watched for ``high_watermark > offset``
            (a consumer's fetch; a produce with ``acks=all`` waiting for its batch to be
            committed) or, with ``log_end``, for ``log_end_offset > offset`` (a follower's fetch).
        deadline: in ``trio.current_time()`` seconds.

    Returns:
        Whether data arrived. False also when a log closed under us (its topic was deleted):
        the caller reads again and stops waiting.
    """
    await trio.lowlevel.checkpoint()
    arrived = trio.Event()
    tickets = [(log, log.watch(offset, arrived.set, log_end=log_end)) for log, offset in waiting]
    try:
        if not any(ticket.done for _, ticket in tickets):
            with trio.move_on_at(deadline):
                await arrived.wait()
    finally:
        for log, ticket in tickets:
            log.unwatch(ticket)
    return any((log.log_end_offset if log_end else log.high_watermark) > offset for log, offset in waiting)


async def flush_log(log: PartitionLog) -> None:
    """fsync ``log``'s unflushed data in a worker thread; the event loop keeps running meanwhile.

    Raises:
        OSError: an fsync failed (``filename`` names the file); nothing is marked flushed.
            The caller reports it (``log.record_io_error``).
    """
    job = log.begin_flush()
    if job is None:
        await trio.lowlevel.checkpoint()
        return
    try:
        # Not abandoned on cancellation: the thread holds the job's descriptors until it ends.
        seconds = await trio.to_thread.run_sync(_timed_fsync, job)
    finally:
        job.close()
    log.finish_flush(job)
    # Recorded here, in the trio thread: the histogram is never touched by two threads.
    log.storage.fsync_seconds.observe(seconds)


def _timed_fsync(job: FlushJob) -> float:
    """Run ``job.fsync()`` (in the worker thread); return how long the fsync alone took.

    Timed in the thread, around the fsync only: waiting for a free worker thread and for the
    event loop to come back is not the disk's latency.
    """
    started = time.perf_counter()
    job.fsync()
    return time.perf_counter() - started


async def flush_logs(topics: TopicRegistry, now_ms: int) -> None:
    """fsync every partition with unflushed data.

    A partition whose fsync fails is recorded (``record_io_error``, with ``now_ms`` for its rate
    limit) and the others are still flushed: one failing file must not stop the flushes, nor
    the broker.
    """
    for log in topics.logs_to_flush():
        try:
            await flush_log(log)
        except OSError as exc:
            log.record_io_error("fsync", exc, now_ms)
