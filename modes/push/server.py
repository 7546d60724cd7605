"""Push mode's RESP listener: connections, their reader/writer, and output-buffer enforcement.

Each connection is one task (the reader) plus a writer task, both owned by the connection's
nursery. Everything the broker sends a client — command replies and pub/sub pushes alike —
goes through that client's ``Outbox`` (``broker.subscribers``), because Redis measures and
limits a subscriber's *whole* pending output, and because replies and pushes must leave in
the order they were produced.

How bytes leave (Redis's own strategy, "clients with pending writes"):

* While a reader executes a batch of pipelined commands, every client that gets output —
  the reader's own replies, and the subscribers its PUBLISHes reached — is noted as dirty.
  When the batch is done the reader writes to each dirty client directly, with one
  non-blocking ``os.write``. No task switch per message or per subscriber: on the hottest
  paths (``redis-benchmark -P 16 PUBLISH``, fan-out to 10 subscribers) that is the cost
  that matters.
* Only when the kernel refuses bytes (a slow reader, a full socket buffer) does the unsent
  tail go back to the front of the client's outbox — where it counts against the output-
  buffer limit, as Redis counts unsent bytes — and the client's writer task wait until the
  socket is writable. The publisher never waits for a subscriber; a subscriber whose outbox
  grows past ``client-output-buffer-limit pubsub`` is cut off (``PubSub.publish`` reports
  it; we close its connection and log ``subscriber_disconnected``).

What a batch does — parse, run the commands, queue their output — is ``modes.push.batch``
(no sockets there); this module reads the socket, calls it, and writes what it queued. The
commands are ``modes.push.commands``; each connection's state is ``modes.push.client.Client``.

Accepting, connection caps (``maxclients``, ``maxclients_per_ip``), the query-buffer limits
(``client-query-buffer-limit`` per client, ``maxmemory-clients`` over all of them) and the rule
that an exception ends one connection and never the listener live in
``modes.common.listener``, shared with pull mode; this module supplies the RESP part: the
refusal lines and what runs on an admitted connection.
"""

from __future__ import annotations

import functools
import os

import attrs
import structlog
import trio

from broker.channels import PubSub
from broker.config import RespConfig, parse_host_port
from broker.stats import ServerInfo
from broker.subscribers import OutputLimits, Outbox, Subscriber
from modes.common.clock import now_ms
from modes.common.listener import (
    Connection,
    ConnectionLimits,
    ConnectionTable,
    ListenerStatistics,
    format_address,
)
from modes.push.batch import resume_postponed, run_batch
from modes.push.client import Client
from modes.push.commands import CommandState
from wire.resp import encoder
from wire.resp.requests import RequestParser

log = structlog.get_logger("dualmq.push")

RECEIVE_CHUNK = 64 * 1024
# Redis's clientsCron visits every client about every 100 ms; soft-limit timers and idle
# timeouts are checked on this beat.
CRON_INTERVAL_SECONDS = 0.1
NO_LIMITS = OutputLimits(hard_bytes=0, soft_bytes=0, soft_seconds=0)
# How long a closing connection may take to deliver its last reply (QUIT's +OK, an error).
CLOSE_DRAIN_SECONDS = 1.0


# What a connection over a cap is told before it is closed. The first is Redis's own line;
# Redis has no per-IP limit, so the second is ours, worded the same way.
_REFUSALS = {
    "resp.maxclients": encoder.error("ERR max number of clients reached"),
    "resp.maxclients_per_ip": encoder.error("ERR max number of clients per IP address reached"),
}


@attrs.define
class PushServer:
    """Shared state of the RESP front-end, and each connection's tasks.

    The first half — the client table, counters, output limits, cutting a subscriber off,
    the cron — is what commands see of the server (``commands.ServerState``). The second
    half is the socket plumbing: ``serve_connection`` runs one reader and one writer task per
    connection; the reader hands each read to ``batch.run_batch`` and then writes, with
    ``_flush_dirty``, to every client the batch queued output for.
    """

    config: RespConfig
    pubsub: PubSub
    info: ServerInfo
    address: str = ""
    clients: dict[int, Client] = attrs.field(factory=dict)
    limits: OutputLimits = attrs.field(default=None)
    # Accepting, caps and buffer accounting (built by serve_resp around serve_connection).
    connections: ConnectionTable | None = None
    # Clients with output queued during the batch being executed (Redis's "clients with
    # pending writes"); the reader writes to all of them when its batch is done.
    dirty: list[Client] = attrs.field(factory=list)
    in_batch: bool = False
    # What the commands keep per server: CLIENT PAUSE and its held clients, ...
    command_state: CommandState = attrs.field(factory=CommandState)
    commands_processed: int = 0
    output_limit_disconnections: int = 0
    protocol_errors: int = 0

    def __attrs_post_init__(self) -> None:
        if self.limits is None:
            self.limits = OutputLimits.from_config(self.config)

    def set_subscribed_limits(self, client: Client) -> None:
        """Pub/sub class limits apply while a client has a subscription (Redis rule)."""
        client.subscribed = client.subscriber.has_subscriptions
        client.outbox.set_limits(self.limits if client.subscribed else NO_LIMITS)

    def listener_statistics(self) -> ListenerStatistics:
        """Accepted, refused and evicted connections, buffered query bytes (for INFO)."""
        return self.connections.statistics()

    def cut_off(self, subscriber: Subscriber, pending: int, limit: str) -> None:
        """Disconnect a subscriber over its output-buffer limit (Redis: no error, just EOF)."""
        client = self.clients.get(subscriber.client_id)
        self.output_limit_disconnections += 1
        if client is None:
            return
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
            client.flush_requested = True
            client.writer_lot.unpark_all()

    async def cron(self) -> None:
        """Soft-limit timers and idle timeouts, checked every 100 ms like clientsCron."""
        while True:
            await trio.sleep(CRON_INTERVAL_SECONDS)
            now = now_ms()
            for subscriber, pending, limit in self.pubsub.sweep(now):
                self.cut_off(subscriber, pending, limit)
            if self.command_state.pause.held:
                self._resume_postponed()
            if self.config.timeout:
                idle_limit_ms = self.config.timeout * 1000
                for client in list(self.clients.values()):
                    # Subscribers never time out in Redis: they are expected to sit idle.
                    if not client.subscribed and now - client.last_interaction_ms > idle_limit_ms:
                        self.kill(client, "idle timeout")

    async def serve_connection(self, conn: Connection) -> None:
        """Serve one admitted connection until it closes, errs, or is cut off.

        The listener (``ConnectionTable``) has already named and admitted it, runs this in the
        connection's cancel scope, and closes the socket and logs ``connection_closed`` after.
        """
        stream = conn.stream
        outbox = Outbox(limits=NO_LIMITS)
        subscriber = Subscriber(client_id=conn.id, frame_format=2, outbox=outbox)
        client = Client(conn=conn, subscriber=subscriber, fd=stream.socket.fileno(),
                        last_interaction_ms=conn.opened_ms, on_overflow=self.overflowed)
        outbox.wakeup = functools.partial(self.output_queued, client)
        self.clients[conn.id] = client
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._writer, client)
                await self._reader(client)
                # Last words (QUIT's +OK, a protocol error) must reach the peer.
                with trio.move_on_after(CLOSE_DRAIN_SECONDS):
                    await self._drain(client)
                nursery.cancel_scope.cancel()
        finally:
            self.pubsub.remove(subscriber)
            del self.clients[conn.id]
            conn.summary.update(
                commands=client.commands_processed,
                bytes_in=client.bytes_received,
                bytes_out=client.bytes_sent,
                output_high_water=outbox.high_water_bytes,
            )

    async def _reader(self, client: Client) -> None:
        """Read, execute a batch of pipelined commands, write all output it produced, repeat.

        Reads and writes go straight to the non-blocking socket (``os.read``/``os.write``)
        and only wait through trio when the kernel says "would block": on the hot path a
        batch costs one read, one write per client that got output, and one scheduler
        checkpoint (so a busy client cannot starve the others).
        """
        parser = RequestParser(max_bulk_len=self.config.proto_max_bulk_len)
        conn = client.conn
        account = self.connections.account
        fd = client.fd
        sock = client.stream.socket
        while True:
            # Wait first, then read: a client that gets a reply to every batch (each
            # redis-benchmark client, every request/response client) has sent nothing more
            # yet, so reading first would mostly fail with EAGAIN. The wait is also this
            # loop's one scheduler checkpoint per batch (no busy client starves the others):
            # with bytes already there it returns on the next pass of the run loop.
            await trio.lowlevel.wait_readable(sock)
            try:
                data = os.read(fd, RECEIVE_CHUNK)
            except BlockingIOError:
                continue
            except OSError as exc:
                client.close_reason = f"connection reset ({exc.strerror})"
                return
            if not data:
                return
            client.bytes_received += len(data)
            client.last_interaction_ms = now_ms()
            self.in_batch = True
            try:
                must_close = run_batch(self, client, parser, data)
            finally:
                self.in_batch = False
                self._flush_dirty()
            if self.command_state.pause.held:
                self._resume_postponed()
            # Query-buffer limits, once per read: what is left in the parser is the start of
            # a request not complete yet. Usually 0 (reads end on a command boundary), and
            # then unchanged, so the common case costs one comparison.
            buffered = parser.buffered
            if buffered != conn.buffered_bytes:
                account(conn, buffered)
            if must_close:
                return

    def _resume_postponed(self) -> None:
        """Run the commands CLIENT PAUSE held, once it is over, and write what they produced."""
        self.in_batch = True
        try:
            results = resume_postponed(self, now_ms())
        finally:
            self.in_batch = False
            self._flush_dirty()
        for client, must_close in results:
            if must_close:
                # Its last reply (QUIT's +OK, a protocol error) was just written, unless the
                # socket was full: then it is lost with the connection.
                client.conn.close(client.close_reason)

    def _flush_dirty(self) -> None:
        dirty = self.dirty
        if dirty:
            self.dirty = []
            for client in dirty:
                self._try_send(client)

    def _try_send(self, client: Client) -> None:
        """Write as much of the client's queue as the socket takes right now, never waiting.

        What the kernel does not accept goes back to the front of the outbox (still counted
        against the output-buffer limit, as Redis counts unsent bytes) and the writer task
        takes over until the socket is writable again.
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
            client.writer_lot.unpark_all()

    async def _writer(self, client: Client) -> None:
        """Finish writes the socket refused, and send output queued outside a batch."""
        sock = client.stream.socket
        while True:
            while not (client.blocked or client.flush_requested):
                await client.writer_lot.park()
            if client.blocked:
                await trio.lowlevel.wait_writable(sock)
                client.blocked = False
            client.flush_requested = False
            self._try_send(client)

    async def _drain(self, client: Client) -> None:
        """Send everything still queued, waiting for the socket as needed."""
        sock = client.stream.socket
        self._try_send(client)
        while client.blocked:
            await trio.lowlevel.wait_writable(sock)
            client.blocked = False
            self._try_send(client)


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
    task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Listen for RESP clients until cancelled; report ``HOST:PORT`` once accepting."""
    host, port = parse_host_port(config.listen)
    listeners = await trio.open_tcp_listeners(port, host=host)
    address = format_address(listeners[0].socket.getsockname())
    server = PushServer(config=config, pubsub=pubsub, info=info, address=address)
    server.connections = ConnectionTable(mode="push", limits=connection_limits(config),
                                         handler=server.serve_connection, refuse=refuse_connection)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(server.cron)
        await nursery.start(server.connections.serve, listeners)
        task_status.started(address)
