"""The broker process: one trio nursery owning both front-ends and the maintenance tasks.

This is a composition root: it may import the core and both modes, and it is where the wall
clock enters the core (``now_ms`` for appends, retention and segment ages).

Start-up order matters for scripts and tests that wait on ``--ready-file``:

1. open the broker's state (``broker.state.BrokerState``): check the data directory (exists
   or can be created, writable) and take its lock, so two brokers never write the same log;
   open the topics (log recovery runs here: torn tails are truncated), the committed
   offsets, the producer state and the group coordinator;
2. start the Kafka and RESP listeners with ``nursery.start``, handing each the state it
   serves — each reports its bound address only once it accepts connections, which is what
   makes port 0 usable — then, if ``[http] listen`` is set, the HTTP listener serving
   ``/metrics`` and the dashboard, which reads the state and both front-ends;
3. in cluster mode (``[cluster] etcd``), join the cluster (``modes.cluster.node``): register
   under a lease with the advertised addresses, read the cluster's topics, run for
   controller - a node id already taken, or etcd unreachable, stops the start here; then
   read the cluster's secret and start forwarding PUBLISH to the other brokers
   (``modes.cluster.push_forwarding``);
4. start maintenance (retention, aged segment rolls) and, for ``fsync = "interval"``, the
   periodic flush;
5. write the ready file atomically and log ``broker_started``.

Shutdown is cancellation: SIGINT/SIGTERM cancel the nursery, listeners stop accepting,
connection tasks unwind, and a shielded cleanup flushes and closes every log and the offsets
and releases the lock. The whole sequence is bounded so the process exits well within 5 seconds.
"""

from __future__ import annotations

import errno
import functools
import json
import os
import resource
import signal
import time
from pathlib import Path

import attrs
import trio

from broker.config import BrokerConfig, parse_host_port
from broker.errors import BrokerError, ConfigError
from broker.files import write_atomically
from broker.loggers import get_logger
from broker.producers import ProducerRegistry
from broker.state import BrokerState
from broker.stats import ServerInfo
from broker.topics import TopicRegistry
from modes.common.running import RunningServers
from modes.pull.log_runtime import flush_logs
from modes.pull.server import serve_kafka
from modes.push.server import serve_resp

log = get_logger(__name__)

# How long cleanup (flushing and closing logs) may take after cancellation before we give up
# waiting; fsync of a large dirty page cache is the slow part.
SHUTDOWN_CLEANUP_SECONDS = 4.0


def wall_ms() -> int:
    """Milliseconds since the epoch: record timestamps and retention are wall-clock based."""
    return time.time_ns() // 1_000_000


class ListenerError(BrokerError):
    """A listener could not open its port (already in use, not allowed, no such address)."""


@attrs.frozen
class Addresses:
    """Where a started broker listens, as ``HOST:PORT`` strings."""

    kafka: str
    resp: str
    # The HTTP listener (metrics, dashboard); "" when it is off.
    http: str = ""


def write_ready_file(path: Path, addresses: Addresses) -> None:
    """Write ``{"kafka": …, "resp": …, "pid": …}`` (plus ``"http"`` when that listener is on)
    atomically: a script polling for the file never reads half of it."""
    fields = {"kafka": addresses.kafka, "resp": addresses.resp}
    if addresses.http:
        fields["http"] = addresses.http
    payload = json.dumps({**fields, "pid": os.getpid()})
    write_atomically(path, (payload + "\n").encode())


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
        DataDirError: missing/unwritable data dir, one locked by another broker, or a damaged
            file in it.
        ListenerError: a listen address is in use or cannot be bound (the message names it).
    """
    data_dir = config.data_dir
    state = BrokerState.open(config, now_ms=wall_ms())
    topics = state.topics
    try:
        info = ServerInfo(config=config, started_at_ms=wall_ms(), log_storage=topics.storage)
        running = RunningServers()
        cluster = _cluster_node(config, topics, state.producers)
        forwarder = _push_forwarder(cluster)
        async with trio.open_nursery() as nursery:
            kafka_address = await _start_listener(nursery, "Kafka", "--kafka", config.kafka.listen,
                                                  functools.partial(serve_kafka, running=running, cluster=cluster),
                                                  state, info)
            # Push mode's INFO names the Kafka listener too, so a learner finds both modes;
            # its SHUTDOWN command (when enabled) stops the broker as a signal does.
            info = attrs.evolve(info, kafka_address=kafka_address,
                                request_shutdown=nursery.cancel_scope.cancel)
            resp_address = await _start_listener(nursery, "RESP", "--resp", config.resp.listen,
                                                 functools.partial(serve_resp, running=running, tls=config.tls,
                                                                   cluster=forwarder),
                                                 config.resp, state.pubsub, info)
            http_address = ""
            if config.http.listen:
                # Imported only when asked for: hypercorn and prometheus-client cost ~90 ms of
                # start-up that a broker without --http has no use for.
                from modes.http.server import serve_http
                http_address = await _start_listener(nursery, "HTTP", "--http", config.http.listen,
                                                     serve_http, config.http, state, running)
            addresses = Addresses(kafka=kafka_address, resp=resp_address, http=http_address)
            if cluster is not None:
                await nursery.start(cluster.run, _broker_info(config, addresses))
                # PUBLISH forwarded to the other brokers (docs/cluster.md#push-mode-in-a-cluster).
                await nursery.start(forwarder.run)
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
                http=addresses.http or None,
                fsync=config.log.fsync,
                node_id=config.cluster.node_id if cluster is not None else None,
                topics=len(topics.topics()),
                version=info.version,
                pid=info.pid,
            )
            task_status.started(addresses)
    finally:
        with trio.CancelScope(shield=True):
            # Flushing in worker threads first keeps the event loop (and the bound on this
            # cleanup) alive; close() then fsyncs whatever is left, blocking, and closes.
            with trio.move_on_after(SHUTDOWN_CLEANUP_SECONDS):
                await flush_logs(topics, wall_ms())
            try:
                state.close()
            finally:
                if ready_file is not None:
                    ready_file.unlink(missing_ok=True)
                log.info("broker_stopped", data_dir=str(data_dir))


def _cluster_node(config: BrokerConfig, topics: TopicRegistry, producers: ProducerRegistry):
    """The cluster membership ``[cluster] etcd`` asks for, or None for a single broker.

    Imported here only: cluster mode needs the ``dualmq[cluster]`` extra (httpx), which a
    single broker never loads.
    """
    if not config.cluster.enabled:
        return None
    try:
        from modes.cluster.etcd import EtcdClient
        from modes.cluster.node import ClusterNode
    except ImportError as exc:
        raise ConfigError(f"cluster mode needs the cluster extra: pip install 'dualmq[cluster]' ({exc})") from None
    return ClusterNode(config=config.cluster, etcd=EtcdClient(config.cluster.endpoints), topics=topics,
                       now_ms=wall_ms, producers=producers)


def _push_forwarder(cluster):
    """PUBLISH's forwarding to the other brokers, for a broker in a cluster (else None)."""
    if cluster is None:
        return None
    from modes.cluster.push_forwarding import PushForwarder
    return PushForwarder(cluster)


def _broker_info(config: BrokerConfig, addresses: Addresses):
    """What this broker registers in etcd: where clients reach its listeners.

    Raises:
        ConfigError: a wildcard listen address with no ``kafka.advertised``: other brokers
            would hand clients an address nobody can connect to.
    """
    from broker.cluster import BrokerInfo

    advertised = config.kafka.advertised or addresses.kafka
    host, port = parse_host_port(advertised)
    if host in ("0.0.0.0", "::", ""):
        raise ConfigError(f"cluster mode: the Kafka listener {addresses.kafka} is a wildcard address; set "
                          "kafka.advertised to the HOST:PORT clients should use")
    resp_host, resp_port = parse_host_port(addresses.resp)
    return BrokerInfo(node_id=config.cluster.node_id, host=host, kafka_port=port, resp_host=resp_host,
                      resp_port=resp_port)


async def _start_listener(nursery: trio.Nursery, name: str, flag: str, listen: str, serve, *args) -> str:
    """``nursery.start(serve, *args)``, turning "cannot bind" into an error that says which and what to do.

    Raises:
        ListenerError: the OS refused to bind ``listen`` (in use, not permitted, unknown address).
    """
    try:
        return await nursery.start(serve, *args)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            advice = (f"another process (another broker? redis-server or Kafka?) listens there; stop it, "
                      f"or choose another port with {flag} HOST:PORT (port 0 picks a free one)")
        else:
            advice = f"choose another address with {flag} HOST:PORT (port 0 picks a free port)"
        raise ListenerError(f"the {name} listener cannot listen on {listen}: {exc.strerror or exc}; {advice}") from None


async def _maintenance(config: BrokerConfig, topics: TopicRegistry) -> None:
    """Apply retention and roll aged segments every ``maintenance_interval_ms``."""
    while True:
        await trio.sleep(config.maintenance_interval_ms / 1000)
        topics.maintain(wall_ms())


async def _periodic_flush(config: BrokerConfig, topics: TopicRegistry) -> None:
    """``fsync = "interval"``: fsync every log with unflushed data every flush_interval_ms."""
    while True:
        await trio.sleep(config.log.flush_interval_ms / 1000)
        await flush_logs(topics, wall_ms())


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


async def serve_until_signalled(config: BrokerConfig, *, ready_file: Path | None = None) -> int | None:
    """Run the broker until SIGINT or SIGTERM, then shut down cleanly.

    Returns:
        The signal that stopped it (the CLI exits 130 after SIGINT, as shells expect of a
        program interrupted with Ctrl-C, and 0 after SIGTERM, a service manager's normal stop).
    """
    raise_open_file_limit()
    received: list[int] = []
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
                    received.append(signum)
                    nursery.cancel_scope.cancel()
                    return

            nursery.start_soon(stop_on_signal)
    return received[0] if received else None
