"""The broker process: one trio nursery owning both front-ends and the maintenance tasks.

This is a composition root (DESIGN.md §2): it may import the core and both modes, and it is
where the wall clock enters the core (``now_ms`` for appends, retention and segment ages).

Start-up order matters for scripts and tests that wait on ``--ready-file``:

1. check the data directory (exists or can be created, writable) and take its lock, so two
   brokers never write the same log;
2. open the topic registry (this runs log recovery: torn tails are truncated here);
3. start the Kafka and RESP listeners with ``nursery.start`` — each reports its bound address
   only once it accepts connections, which is what makes port 0 usable;
4. start maintenance (retention, aged segment rolls) and, for ``fsync = "interval"``, the
   periodic flush;
5. write the ready file atomically and log ``broker_started``.

Shutdown is cancellation: SIGINT/SIGTERM cancel the nursery, listeners stop accepting,
connection tasks unwind, and a shielded cleanup flushes and closes every log and releases the
lock. The whole sequence is bounded so the process exits well within 5 seconds.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import resource
import signal
import time
from pathlib import Path

import attrs
import structlog
import trio

from broker.channels import PubSub
from broker.config import BrokerConfig
from broker.errors import DataDirError
from broker.stats import ServerInfo
from broker.topics import TopicRegistry
from modes.pull.server import serve_kafka
from modes.push.server import serve_resp

log = structlog.get_logger("dualmq.daemon")

# How long cleanup (flushing and closing logs) may take after cancellation before we give up
# waiting; fsync of a large dirty page cache is the slow part.
SHUTDOWN_CLEANUP_SECONDS = 4.0


def wall_ms() -> int:
    """Milliseconds since the epoch: record timestamps and retention are wall-clock based."""
    return time.time_ns() // 1_000_000


@attrs.frozen
class Addresses:
    """Where a started broker listens, as ``HOST:PORT`` strings."""

    kafka: str
    resp: str


class DataDirLock:
    """An exclusive ``flock`` on ``<data_dir>/.lock`` holding the owner's pid.

    The kernel drops a flock when its process dies, so a crashed broker never leaves a stale
    lock behind (unlike a lock *file* checked for existence).
    """

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / ".lock"
        self._fd: int | None = None

    def acquire(self) -> None:
        """Raises: DataDirError if another process holds the lock."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            owner = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise DataDirError(
                    f"data dir {self.path.parent} is in use by another broker (pid {owner}); "
                    "stop it or choose another --data-dir"
                ) from None
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing drops the flock
            self._fd = None


def prepare_data_dir(data_dir: Path) -> None:
    """Create the data dir if needed and prove it is writable.

    Raises:
        DataDirError: with a message saying what is wrong and where.
    """
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataDirError(f"cannot create data dir {data_dir}: {exc.strerror}") from None
    if not data_dir.is_dir():
        raise DataDirError(f"data dir {data_dir} exists but is not a directory")
    probe = data_dir / ".write-probe"
    try:
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise DataDirError(f"data dir {data_dir} is not writable: {exc.strerror}") from None


def write_ready_file(path: Path, addresses: Addresses) -> None:
    """Write ``{"kafka": …, "resp": …, "pid": …}`` atomically (temp file + rename)."""
    payload = json.dumps({"kafka": addresses.kafka, "resp": addresses.resp, "pid": os.getpid()})
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(payload + "\n")
    os.replace(tmp, path)


async def run_broker(
    config: BrokerConfig,
    *,
    ready_file: Path | None = None,
    task_status: trio.TaskStatus[Addresses] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run a broker until cancelled.

    Args:
        config: the full configuration (listen addresses may use port 0).
        ready_file: if given, where to write the bound addresses once both listeners accept.
        task_status: reports ``Addresses`` to ``nursery.start`` once serving.

    Raises:
        DataDirError: missing/unwritable data dir or one locked by another broker.
    """
    data_dir = config.data_dir
    prepare_data_dir(data_dir)
    lock = DataDirLock(data_dir)
    lock.acquire()
    topics: TopicRegistry | None = None
    try:
        topics = TopicRegistry.open(data_dir, config.log, now_ms=wall_ms())
        pubsub = PubSub()
        info = ServerInfo(config=config, started_at_ms=wall_ms(), log_storage=topics.storage)
        async with trio.open_nursery() as nursery:
            kafka_address = await nursery.start(serve_kafka, config, topics, info)
            # Push mode's INFO names the Kafka listener too, so a learner finds both modes;
            # its SHUTDOWN command (when enabled) stops the broker as a signal does.
            info = attrs.evolve(info, kafka_address=kafka_address,
                                request_shutdown=nursery.cancel_scope.cancel)
            resp_address = await nursery.start(serve_resp, config.resp, pubsub, info)
            addresses = Addresses(kafka=kafka_address, resp=resp_address)
            nursery.start_soon(_maintenance, config, topics)
            if config.log.fsync == "interval":
                nursery.start_soon(_periodic_flush, config, topics)
            if ready_file is not None:
                write_ready_file(ready_file, addresses)
            log.info(
                "broker_started",
                data_dir=str(data_dir),
                kafka=addresses.kafka,
                resp=addresses.resp,
                fsync=config.log.fsync,
                topics=len(topics.topics()),
                version=info.version,
                pid=info.pid,
            )
            task_status.started(addresses)
    finally:
        with trio.CancelScope(shield=True):
            with trio.move_on_after(SHUTDOWN_CLEANUP_SECONDS):
                if topics is not None:
                    await topics.flush_all(wall_ms())
            if topics is not None:
                topics.close()
            lock.release()
            if ready_file is not None:
                ready_file.unlink(missing_ok=True)
            log.info("broker_stopped", data_dir=str(data_dir))


async def _maintenance(config: BrokerConfig, topics: TopicRegistry) -> None:
    """Apply retention and roll aged segments every ``maintenance_interval_ms``."""
    while True:
        await trio.sleep(config.maintenance_interval_ms / 1000)
        topics.maintain(wall_ms())


async def _periodic_flush(config: BrokerConfig, topics: TopicRegistry) -> None:
    """``fsync = "interval"``: fsync every log with unflushed data every flush_interval_ms."""
    while True:
        await trio.sleep(config.log.flush_interval_ms / 1000)
        await topics.flush_all(wall_ms())


def raise_open_file_limit() -> None:
    """Lift this process's soft open-file limit to its hard limit, as servers do.

    Every partition keeps three files open (its active segment), the shared cache of sealed
    segments' files takes an eighth of the limit, and every connection one more; many systems
    start processes with a soft limit of 1024 (a hard one far above): that would cap the
    broker at a couple of hundred partitions (``broker.topics.partition_budget``). Only the
    broker process does this (``dualmq serve``), never an application embedding it.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    # RLIM_INFINITY is not a valid soft limit for open files; the kernel's own ceiling is.
    target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
    if soft != resource.RLIM_INFINITY and soft >= target:
        return
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    except (ValueError, OSError) as exc:
        log.warning("open_file_limit_kept", soft=soft, hard=hard, error=str(exc))
        return
    log.info("open_file_limit_raised", before=soft, now=target)


async def serve_until_signalled(config: BrokerConfig, *, ready_file: Path | None = None) -> None:
    """Run the broker until SIGINT or SIGTERM, then shut down cleanly (exit status 0)."""
    raise_open_file_limit()
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:

            async def run_then_stop(task_status: trio.TaskStatus[Addresses]) -> None:
                # The broker also ends on its own (a SHUTDOWN command): stop waiting for signals.
                await run_broker(config, ready_file=ready_file, task_status=task_status)
                nursery.cancel_scope.cancel()

            await nursery.start(run_then_stop)

            async def stop_on_signal() -> None:
                async for signum in signals:
                    log.info("shutdown_requested", signal=signal.Signals(signum).name)
                    nursery.cancel_scope.cancel()
                    return

            nursery.start_soon(stop_on_signal)
