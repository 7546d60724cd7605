"""Push mode's RESP listener: the server state commands see, batches, writes, output limits.

Everything the broker sends a client — command replies and pub/sub pushes alike — goes through
that client's ``Outbox`` (``broker.subscribers``), because Redis measures and limits a
subscriber's *whole* pending output, and because replies and pushes must leave in the order
they were produced.

How bytes leave (Redis's own strategy, "clients with pending writes"):

* While batches of pipelined commands run, every client that gets output — the replies of
  the client that sent them, and the subscribers its PUBLISHes reached — is noted as dirty.
  When the batches are done, each dirty client is written once, with one non-blocking
  ``os.write``. No task switch per message or per subscriber: on the hottest paths
  (``redis-benchmark -P 16 PUBLISH``, fan-out to 10 subscribers) that is the cost that
  matters.
* Only when the kernel refuses bytes (a slow reader, a full socket buffer) does the unsent
  tail go back to the front of the client's outbox — where it counts against the output-
  buffer limit, as Redis counts unsent bytes — and the driver waits until the socket is
  writable. The publisher never waits for a subscriber; a subscriber whose outbox grows past
  ``client-output-buffer-limit pubsub`` is cut off (``PubSub.publish`` reports it; we close
  its connection and log ``subscriber_disconnected``).

Who reads the sockets and when "the batches are done" is the connection driver's business
(``modes.push.drivers``): on Linux one event loop per listener (``modes.push.event_loop``)
serves every ready client of a wake-up and then writes; elsewhere each connection has its own
reader and writer task. What a batch does — parse, run the commands, queue their output — is
``modes.push.batch`` (no sockets there). The commands are ``modes.push.commands``; each
connection's state is ``modes.push.client.Client``.

Accepting, connection caps (``maxclients``, ``maxclients_per_ip``), the query-buffer limits
(``client-query-buffer-limit`` per client, ``maxmemory-clients`` over all of them) and the rule
that an exception ends one connection and never the listener live in
``modes.common.listener``, shared with pull mode; this module supplies the RESP part: the
refusal lines and what runs on an admitted connection.
"""

from __future__ import annotations

import collections
import functools
import os
import select
from typing import Any

import attrs
import trio

from broker.channels import PubSub
from broker.config import RespConfig, TlsConfig, parse_host_port
from broker.errors import ConfigError
from broker.loggers import get_logger
from broker.security.exposure import exposure_warning
from broker.security.redis_acl import RedisAcl
from broker.security.redis_acl_log import AclLog
from broker.stats import ServerInfo
from broker.subscribers import OutputLimits, Outbox, Subscriber
from modes.common.clock import now_ms
from modes.common.request_stats import RequestStats
from modes.common.running import RunningServers
from modes.common.listener import (
    Connection,
    ConnectionLimits,
    ConnectionTable,
    ListenerStatistics,
    format_address,
)
from modes.push.batch import resume_postponed, run_batch
from modes.push.client import Client
from modes.push.drivers import (
    CLOSE_DRAIN_SECONDS,
    DRIVER_ENVIRONMENT_VARIABLE,
    DRIVER_NAMES,
    ConnectionDriver,
    StreamPerConnection,
    TaskPerConnection,
)
from modes.common.tls import server_context
from modes.push.commands import CommandState
from modes.push.commands.acl import build_acl, refresh_client
from modes.push.commands.cluster import drop_foreign_shard_channels
from modes.push.protected_mode import PROTECTED_MODE_DENIED, is_loopback_peer
from wire.resp import encoder
from wire.resp.requests import RequestParser

log = get_logger(__name__)

# Redis's clientsCron visits every client about every 100 ms; soft-limit timers and idle
# timeouts are checked on this beat.
CRON_INTERVAL_SECONDS = 0.1
NO_LIMITS = OutputLimits(hard_bytes=0, soft_bytes=0, soft_seconds=0)
# How many recent cut-offs the server remembers for the dashboard.
RECENT_CUTS = 20


# What a connection over a cap is told before it is closed. The first is Redis's own line;
# Redis has no per-IP limit, so the second is ours, worded the same way.
_REFUSALS = {
    "resp.maxclients": encoder.error("ERR max number of clients reached"),
    "resp.maxclients_per_ip": encoder.error("ERR max number of clients per IP address reached"),
}


@attrs.define
class PushServer:
    """Shared state of the RESP front-end, and the steps its connection driver runs.

    The first half — the client table, counters, output limits, cutting a subscriber off,
    the cron — is what commands see of the server (``commands.ServerState``). The second
    half is what the driver calls: ``serve_connection`` (each admitted connection),
    ``execute`` (one read's batch, via ``batch.run_batch``), ``flush_dirty`` (write every
    client that got output, once) and ``drain`` (a closing client's last output).
    """

    config: RespConfig
    pubsub: PubSub
    info: ServerInfo
    address: str = ""
    clients: dict[int, Client] = attrs.field(factory=dict)
    limits: OutputLimits = attrs.field(default=None)
    # Accepting, caps and buffer accounting (built by serve_resp around serve_connection).
    connections: ConnectionTable | None = None
    # Who reads and writes the sockets (built by serve_resp, see ``drivers``).
    driver: ConnectionDriver | None = None
    # Clients with output queued while batches ran (Redis's "clients with pending writes");
    # the driver writes to all of them, each once, when its batches are done.
    dirty: list[Client] = attrs.field(factory=list)
    in_batch: bool = False
    # What the commands keep per server: CLIENT PAUSE and its held clients, ...
    command_state: CommandState = attrs.field(factory=CommandState)
    commands_processed: int = 0
    # Commands by name and error replies by code, for ``/metrics``; never reset (CONFIG
    # RESETSTAT zeroes INFO's counters only: a Prometheus counter must not go back).
    requests: RequestStats = attrs.field(factory=RequestStats)
    output_limit_disconnections: int = 0
    protocol_errors: int = 0
    # The largest output buffer of any subscriber that has since unsubscribed or gone (live
    # ones are read from their outboxes), and the largest buffer that got one cut off at its
    # limit: INFO's exact figures, for subscribers CLIENT LIST no longer shows.
    gone_subscribers_output_high_water: int = 0
    output_at_disconnect_max: int = 0
    # The last subscribers cut off at their output-buffer limit, newest last, for the
    # dashboard: (time ms, client id, name, pending bytes, "hard" or "soft").
    recent_cuts: collections.deque = attrs.field(factory=lambda: collections.deque(maxlen=RECENT_CUTS))
    # The ACL users and ACL LOG (built from the config when not given).
    acl: RedisAcl = attrs.field(default=None)
    acl_log: AclLog = attrs.field(default=None)
    # In cluster mode, the cluster as push mode sees it (``commands.cluster.PushCluster``):
    # PUBLISH is forwarded through it, sharded pub/sub redirected by its slot map.
    cluster: Any = None

    def __attrs_post_init__(self) -> None:
        if self.limits is None:
            self.limits = OutputLimits.from_config(self.config)
        if self.acl is None:
            self.acl = build_acl(self.config)
        if self.acl_log is None:
            self.acl_log = AclLog(max_len=self.config.acllog_max_len)

    def set_subscribed_limits(self, client: Client) -> None:
        """Pub/sub class limits apply while a client has a subscription (Redis rule)."""
        was_subscribed = client.subscribed
        client.subscribed = client.subscriber.has_subscriptions
        if was_subscribed and not client.subscribed:
            self.note_subscriber_gone(client)
        client.outbox.set_limits(self.limits if client.subscribed else NO_LIMITS)

    def listener_statistics(self) -> ListenerStatistics:
        """Accepted, refused and evicted connections, buffered query bytes (for INFO)."""
        return self.connections.statistics()

    def note_subscriber_gone(self, client: Client) -> None:
        """Keep the output high-water of a subscriber that unsubscribed or disconnected."""
        high_water = client.outbox.high_water_bytes
        if high_water > self.gone_subscribers_output_high_water:
            self.gone_subscribers_output_high_water = high_water

    def subscriber_output_high_water(self) -> int:
        """The most bytes any subscriber's output buffer has held, gone subscribers included."""
        live = (c.outbox.high_water_bytes for c in self.clients.values() if c.subscribed)
        return max(self.gone_subscribers_output_high_water, max(live, default=0))

    def cut_off(self, subscriber: Subscriber, pending: int, limit: str) -> None:
        """Disconnect a subscriber over its output-buffer limit (Redis: no error, just EOF)."""
        client = self.clients.get(subscriber.client_id)
        self.output_limit_disconnections += 1
        self.output_at_disconnect_max = max(self.output_at_disconnect_max, pending)
        if client is None:
            return
        self.recent_cuts.append((now_ms(), client.id, client.name.decode(errors="replace"), pending, limit))
        limit_bytes = self.limits.hard_bytes if limit == "hard" else self.limits.soft_bytes
        log.warning(
            "subscriber_disconnected",
            client_id=client.id,
            client_name=client.name.decode(errors="replace"),
            peer=client.addr,
            pending_bytes=pending,
            limit=limit,
            limit_bytes=limit_bytes,
            soft_seconds=self.limits.soft_seconds if limit == "soft" else None,
        )
        client.conn.close(f"output buffer over {limit} limit")

    def overflowed(self, client: Client) -> None:
        """A reply pushed a subscribed client over its limit: same fate as in publish."""
        self.pubsub.remove(client.subscriber)
        client.subscriber.closed = True
        outbox = client.outbox
        self.cut_off(client.subscriber, outbox.cut_bytes, outbox.cut_reason or "hard")

    def kill(self, client: Client, reason: str) -> None:
        """Close ``client``'s connection (CLIENT KILL, idle timeout), logging ``reason``."""
        client.conn.close(reason)

    def output_queued(self, client: Client) -> None:
        """Outbox callback: the client's queue went from empty to non-empty."""
        if self.in_batch:
            self.dirty.append(client)
        elif not client.blocked:
            # Output from outside any batch (a timer, another task): the driver gets it
            # written soon, without waiting for the client to send something.
            self.driver.flush_soon(client)

    async def cron(self) -> None:
        """Soft-limit timers and idle timeouts, checked every 100 ms like clientsCron."""
        while True:
            await trio.sleep(CRON_INTERVAL_SECONDS)
            now = now_ms()
            for subscriber, pending, limit in self.pubsub.sweep(now):
                self.cut_off(subscriber, pending, limit)
            self.resume_paused()
            if self.config.timeout:
                idle_limit_ms = self.config.timeout * 1000
                for client in list(self.clients.values()):
                    # Subscribers never time out in Redis: they are expected to sit idle.
                    if not client.subscribed and now - client.last_interaction_ms > idle_limit_ms:
                        self.kill(client, "idle timeout")

    def new_client(self, conn: Connection, fd: int = -1) -> Client:
        """The state of a connection as it starts: RESP2, no output limits, the ``default`` user
        (authenticated if that user needs no password), its outbox wired to this server.

        Args:
            conn: the listener's record of the connection.
            fd: its socket's descriptor (-1 for a connection without one, in tests).
        """
        outbox = Outbox(limits=NO_LIMITS)
        subscriber = Subscriber(client_id=conn.id, frame_format=2, outbox=outbox)
        acl = self.acl
        client = Client(conn=conn, subscriber=subscriber, fd=fd,
                        parser=RequestParser(max_bulk_len=self.config.proto_max_bulk_len),
                        last_interaction_ms=conn.opened_ms, on_overflow=self.overflowed,
                        error_counts=self.requests.errors,
                        user=acl.default_user, authenticated=not acl.auth_required())
        refresh_client(self, client)
        if isinstance(self.driver, StreamPerConnection):
            outbox.wakeup = self.driver.wakeup_for(client)  # TLS: bytes go through the stream
        else:
            outbox.wakeup = functools.partial(self.output_queued, client)
        return client

    async def serve_connection(self, conn: Connection) -> None:
        """Serve one admitted connection until it closes, errs, or is cut off.

        The listener (``ConnectionTable``) has already named and admitted it, runs this in the
        connection's cancel scope, and closes the socket and logs ``connection_closed`` after.
        The driver does the reading and writing (``drivers.ConnectionDriver.serve``).
        """
        client = self.new_client(conn, conn.stream.socket.fileno())
        subscriber = client.subscriber
        if self.config.protected_mode and self.acl.default_user.nopass and not is_loopback_peer(conn.peer_host):
            # Redis's protected mode: answered before the client says anything, then closed. On a
            # TLS listener the line would land in the middle of the client's handshake: we only
            # close (the connection_closed line says why).
            conn.close_reason = "protected mode"
            if not isinstance(self.driver, StreamPerConnection):
                with trio.move_on_after(CLOSE_DRAIN_SECONDS):
                    await conn.stream.send_all(PROTECTED_MODE_DENIED)
            return
        self.clients[conn.id] = client
        try:
            await self.driver.serve(client)
        finally:
            self.pubsub.remove(subscriber)
            if client.subscribed:
                self.note_subscriber_gone(client)
            del self.clients[conn.id]
            conn.summary.update(
                commands=client.commands_processed,
                bytes_in=client.bytes_received,
                bytes_out=client.bytes_sent,
                output_high_water=client.outbox.high_water_bytes,
            )

    def execute(self, client: Client, data: bytes, now: int) -> bool:
        """Run the commands ``data`` (just read from ``client``) completes; queue their output.

        The caller sets ``in_batch`` around one or more calls, and writes the clients that
        got output (``flush_dirty``) when it is done: once per read with one task per
        connection, once per wake-up of the event loop.

        Args:
            client: the connection ``data`` was read from.
            data: the bytes read.
            now: the time of the read (milliseconds since the epoch).

        Returns:
            True when the connection must close once its output is sent (see ``run_batch``).
        """
        client.bytes_received += len(data)
        client.last_interaction_ms = now
        parser = client.parser
        must_close = run_batch(self, client, parser, data)
        # Query-buffer limits, once per read: what is left in the parser is the start of a
        # request not complete yet. Usually 0 (reads end on a command boundary), and then
        # unchanged, so the common case costs one comparison.
        buffered = parser.buffered
        conn = client.conn
        if buffered != conn.buffered_bytes:
            self.connections.account(conn, buffered)
        return must_close

    def resume_paused(self) -> None:
        """Run the commands CLIENT PAUSE held, once the pause is over, and write their output.

        Drivers call it after each pass's ``flush_dirty`` (and the cron every 100 ms): while
        nobody is paused it costs one attribute test.
        """
        if not self.command_state.pause.held:
            return
        self.in_batch = True
        try:
            results = resume_postponed(self, now_ms())
        finally:
            self.in_batch = False
            self.flush_dirty()
        for client, must_close in results:
            if must_close:
                # Its last reply (QUIT's +OK, a protocol error) was just written, unless the
                # socket was full: then it is lost with the connection.
                client.conn.close(client.close_reason)

    def flush_dirty(self) -> None:
        """Write every client that got output since the last flush, each once, never waiting."""
        dirty = self.dirty
        if dirty:
            self.dirty = []
            try_send = self.try_send
            for client in dirty:
                try_send(client)

    def try_send(self, client: Client) -> None:
        """Write as much of the client's queue as the socket takes right now, never waiting.

        What the kernel does not accept goes back to the front of the outbox (still counted
        against the output-buffer limit, as Redis counts unsent bytes), the client is marked
        ``blocked``, and the driver waits until the socket is writable again.
        """
        if client.blocked:
            return
        outbox = client.outbox
        data = outbox.take_bytes()
        if not data:
            return
        try:
            sent = os.write(client.fd, data)
        except BlockingIOError:
            sent = 0
        except OSError as exc:
            client.conn.close(f"connection reset ({exc.strerror})")
            return
        client.bytes_sent += sent
        if sent < len(data):
            outbox.put_back(data[sent:])
            client.blocked = True
            self.driver.write_refused(client)

    async def drain(self, client: Client) -> None:
        """Send everything still queued, waiting for the socket as needed (a closing client's
        last words: QUIT's +OK, a protocol error). The caller bounds the wait."""
        sock = client.stream.socket
        self.try_send(client)
        while client.blocked:
            await trio.lowlevel.wait_writable(sock)
            client.blocked = False
            self.try_send(client)


def _warn_if_exposed(server: PushServer, host: str) -> None:
    """One warning at start for a listener other machines can reach with no password."""
    if server.config.protected_mode:
        mitigation = ("protected mode refuses every client but 127.0.0.1 and ::1 until the default user has "
                      "a password (set resp.requirepass or define [[resp.users]])")
    else:
        mitigation = ("protected mode is off: anyone who can connect may publish, subscribe and kill "
                      "clients; set resp.requirepass or define [[resp.users]]")
    warning = exposure_warning(f"RESP listener {server.address}", host,
                               authentication_required=server.acl.auth_required(), mitigation=mitigation)
    if warning is not None:
        log.warning("listener_exposed", mode="push", address=server.address, warning=warning)


def make_driver(server: PushServer, name: str | None = None) -> ConnectionDriver:
    """The connection driver called ``name``, or the best one this platform has.

    Args:
        server: the push server the driver works for.
        name: ``"epoll"``, ``"tasks"`` or ``"auto"``; None reads ``DUALMQ_PUSH_DRIVER``
            (default ``auto``: the event loop where ``select.epoll`` exists, else tasks).

    Returns:
        A driver, not started yet (``run`` it in the listener's nursery, ``close`` it after).

    Raises:
        ConfigError: an unknown name, or ``epoll`` where the platform has none.
    """
    if name is None:
        name = os.environ.get(DRIVER_ENVIRONMENT_VARIABLE, "auto") or "auto"
    if name not in DRIVER_NAMES:
        raise ConfigError(f"{DRIVER_ENVIRONMENT_VARIABLE}={name!r} is not one of {', '.join(DRIVER_NAMES)}")
    has_epoll = hasattr(select, "epoll") and hasattr(os, "eventfd")
    if name == "epoll" and not has_epoll:
        raise ConfigError(f"{DRIVER_ENVIRONMENT_VARIABLE}=epoll: this platform has no epoll")
    if name == "tasks" or not has_epoll:
        return TaskPerConnection(server)
    # Imported here: the module reads epoll's constants, which only Linux's select has.
    from modes.push.event_loop import EpollEventLoop

    return EpollEventLoop(server)


def connection_limits(config: RespConfig) -> ConnectionLimits:
    """The listener caps push mode applies, named by their config keys."""
    return ConnectionLimits(
        max_connections=config.maxclients,
        max_connections_setting="resp.maxclients",
        max_per_ip=config.maxclients_per_ip,
        max_per_ip_setting="resp.maxclients_per_ip",
        per_connection_buffer_bytes=config.client_query_buffer_limit,
        per_connection_buffer_setting="resp.client_query_buffer_limit",
        total_buffer_bytes=config.maxmemory_clients,
        total_buffer_setting="resp.maxmemory_clients",
    )


async def refuse_connection(stream: trio.SocketStream, setting: str) -> None:
    """Tell a client over a connection cap why (Redis sends one ``-ERR`` line, then closes)."""
    with trio.move_on_after(CLOSE_DRAIN_SECONDS):
        await stream.send_all(_REFUSALS[setting])


async def serve_resp(
    config: RespConfig,
    pubsub: PubSub,
    info: ServerInfo,
    *,
    driver: str | None = None,
    running: RunningServers | None = None,
    tls: TlsConfig | None = None,
    cluster: Any = None,
    task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Listen for RESP clients until cancelled; report ``HOST:PORT`` once accepting.

    Args:
        config, pubsub, info: the ``[resp]`` settings, the channel registry, server info.
        driver: how connections are read (``"epoll"``, ``"tasks"``, ``"auto"``); None: from
            the ``DUALMQ_PUSH_DRIVER`` environment variable, else ``auto`` (see ``drivers``).
        running: if given, ``running.push`` is set to the server once it accepts (metrics).
        tls: the certificate, for ``config.tls`` (which then ignores ``driver``: TLS needs
            ``StreamPerConnection``).
        cluster: in cluster mode, PUBLISH's forwarding and the slot map
            (``commands.cluster.PushCluster``); None for a broker on its own.

    Raises:
        ConfigError: an unknown driver, or one this platform lacks.
    """
    host, port = parse_host_port(config.listen)
    server = PushServer(config=config, pubsub=pubsub, info=info, cluster=cluster)
    if cluster is not None:
        # A slot this broker loses takes its shard subscriptions with it, as in Redis Cluster.
        cluster.on_slots_changed(functools.partial(drop_foreign_shard_channels, server))
    if config.tls:
        if tls is None or not tls.configured:
            raise ConfigError("resp.tls = true needs a certificate: set tls.cert_file and tls.key_file")
        server.driver = StreamPerConnection(server, server_context(tls))
    else:
        server.driver = make_driver(server, driver)
    try:
        listeners = await trio.open_tcp_listeners(port, host=host)
        server.address = format_address(listeners[0].socket.getsockname())
        server.connections = ConnectionTable(mode="push", limits=connection_limits(config),
                                             handler=server.serve_connection, refuse=refuse_connection)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(server.cron)
            await nursery.start(server.driver.run)
            await nursery.start(server.connections.serve, listeners)
            if running is not None:
                running.push = server
            log.info("resp_listener_started", address=server.address, driver=server.driver.name,
                     tls=config.tls)
            _warn_if_exposed(server, host)
            task_status.started(server.address)
    finally:
        # Every connection has ended (the nursery waited for them): nothing uses it any more.
        server.driver.close()
        log.info("resp_listener_stopped", address=server.address, driver=server.driver.name,
                 commands=server.commands_processed, **server.driver.statistics())
