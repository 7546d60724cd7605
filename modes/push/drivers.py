"""How push mode reads and writes its connections: one interface, two implementations.

Whatever a connection sends is handled the same way: read some bytes, run the commands they
complete (``PushServer.execute``, which calls ``batch.run_batch``), then write every client
that got output (``PushServer.flush_dirty``). What differs is *who waits for the sockets*:

* ``EpollEventLoop`` (``modes.push.event_loop``, Linux): one task per listener waits on one
  readiness set holding every client socket, as Redis's event loop does. Each wake-up handles
  every ready client in the order their bytes arrived and then writes each dirty client once.
  It is the default wherever ``select.epoll`` exists.
* ``TaskPerConnection`` (here): each connection has its own reader task and writer task, each
  waiting on its own socket through trio. Portable (trio runs it on every platform), but each
  batch costs a task wake-up, and when several clients are ready at once the scheduler picks
  the order in which their commands run — not necessarily the order their bytes arrived.
* ``StreamPerConnection`` (here): like ``TaskPerConnection``, but every byte goes through the
  connection's trio stream instead of the raw socket. A TLS listener (``resp.tls``) needs it:
  the bytes on the socket are encrypted records, only ``trio.SSLStream`` turns them into RESP.
  It runs the TLS handshake first; its output reaches the writer task through the outbox's
  wake-up (``wakeup_for``), never through ``PushServer.try_send``'s raw ``os.write``.

``ConnectionDriver`` is the contract both keep; ``ServerSteps`` is what they call on the
server (``modes.push.server.PushServer``, which picks the driver in ``make_driver``). The
environment variable ``DUALMQ_PUSH_DRIVER`` (``auto``, ``epoll`` or ``tasks``) overrides the
choice: tests run the same scenarios with both, and a learner can measure the difference.

Not here: accepting and admitting connections (``modes.common.listener``), the commands
(``modes.push.commands``), output-buffer limits (``broker.subscribers``).
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Callable
from typing import Protocol

import attrs
import trio

from modes.common.clock import now_ms
from modes.common.tls import TlsHandshakeFailed, accept_tls
from modes.push.client import Client

__all__ = [
    "CLOSE_DRAIN_SECONDS",
    "DRIVER_ENVIRONMENT_VARIABLE",
    "DRIVER_NAMES",
    "ConnectionDriver",
    "RECEIVE_CHUNK",
    "ServerSteps",
    "StreamPerConnection",
    "TaskPerConnection",
]

# Bytes asked for per read. A pipeline of 64 small commands is ~2 KiB; a bigger chunk only
# matters for huge arguments, which then take fewer reads.
RECEIVE_CHUNK = 64 * 1024
# How long a closing connection may take to deliver its last reply (QUIT's +OK, an error).
CLOSE_DRAIN_SECONDS = 1.0

DRIVER_ENVIRONMENT_VARIABLE = "DUALMQ_PUSH_DRIVER"
DRIVER_NAMES = ("auto", "epoll", "tasks")


class ServerSteps(Protocol):
    """What a driver calls on the push server (``PushServer`` implements it)."""

    # True while batches run: output is then noted in ``dirty`` for ``flush_dirty``.
    in_batch: bool
    dirty: list[Client]

    def execute(self, client: Client, data: bytes, now: int) -> bool:
        """Run the commands ``data`` completes; True when the connection must close."""
        ...

    def flush_dirty(self) -> None:
        """Write every client in ``dirty`` once, never waiting."""
        ...

    def resume_paused(self) -> None:
        """Run what CLIENT PAUSE held if the pause is over (called after each ``flush_dirty``)."""
        ...

    def try_send(self, client: Client) -> None:
        """Write what the socket of ``client`` takes now; the rest waits (``blocked``)."""
        ...

    async def drain(self, client: Client) -> None:
        """Send everything still queued for a closing client, waiting as needed."""
        ...


class ConnectionDriver(Protocol):
    """Reads the connections of one RESP listener, runs their batches, writes their output.

    The server calls ``serve`` from each connection's own task (inside its cancel scope, so
    ``Connection.close`` ends it), ``write_refused`` when the kernel did not take all of a
    write, and ``flush_soon`` when output was queued outside any batch.
    """

    name: str

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """The listener-wide part, if any (the event loop); runs until cancelled."""
        ...

    async def serve(self, client: Client) -> None:
        """Serve ``client`` until it must close; send its last output before returning.

        Raises:
            Exception: a bug while running the client's commands; it ends this client only.
        """
        ...

    def write_refused(self, client: Client) -> None:
        """The socket of ``client`` (now ``blocked``) took only part of a write: send the
        rest when it is writable."""
        ...

    def flush_soon(self, client: Client) -> None:
        """Output was queued for ``client`` outside any batch: get it written soon."""
        ...

    def statistics(self) -> dict[str, float]:
        """Counters worth a log line when the listener stops (may be empty)."""
        ...

    def close(self) -> None:
        """Release what the driver holds from the OS (once nothing runs any more)."""
        ...


@attrs.define(eq=False)
class TaskPerConnection:
    """One reader task and one writer task per connection (the portable driver).

    The reader waits until its socket is readable, reads, runs the batch and writes every
    client the batch gave output to. The writer task only steps in for writes the kernel
    refused (a slow reader) and for output queued outside any batch.
    """

    server: ServerSteps
    name: str = "tasks"

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        # Nothing listener-wide: every connection waits for itself.
        task_status.started()

    def statistics(self) -> dict[str, float]:
        return {}

    def close(self) -> None:
        pass

    async def serve(self, client: Client) -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._writer, client)
            await self._reader(client)
            # Last words (QUIT's +OK, a protocol error) must reach the peer.
            with trio.move_on_after(CLOSE_DRAIN_SECONDS):
                await self.server.drain(client)
            nursery.cancel_scope.cancel()

    def write_refused(self, client: Client) -> None:
        client.writer_lot.unpark_all()

    def flush_soon(self, client: Client) -> None:
        client.flush_requested = True
        client.writer_lot.unpark_all()

    async def _reader(self, client: Client) -> None:
        """Read, execute a batch of pipelined commands, write all output it produced, repeat.

        Reads and writes go straight to the non-blocking socket (``os.read``/``os.write``)
        and only wait through trio when the kernel says "would block": on the hot path a
        batch costs one read, one write per client that got output, and one scheduler
        checkpoint (so a busy client cannot starve the others).
        """
        server = self.server
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
            server.in_batch = True
            try:
                must_close = server.execute(client, data, now_ms())
            finally:
                server.in_batch = False
                server.flush_dirty()
            server.resume_paused()
            if must_close:
                return

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
            self.server.try_send(client)


@attrs.define(eq=False)
class StreamPerConnection:
    """One reader and one writer task per connection, both through its trio stream (TLS).

    The reader receives, runs the batch, flushes the other clients the batch reached (a
    listener has one driver, so they are stream clients too: their writers are woken), and then
    sends its own client's replies itself — no task switch for a request's answer. The writer
    task sends what is queued for the client from elsewhere (another connection's PUBLISH, a
    timer). A per-connection lock keeps the two from writing the stream at once. While a send is
    in flight its bytes have left the outbox, so the output-buffer limit counts what waits
    behind it: at most one write's worth less than Redis counts.
    """

    server: ServerSteps
    context: ssl.SSLContext
    name: str = "tls-streams"
    handshakes_failed: int = 0
    # The client whose batch is running: its output is sent by its reader right after.
    _reading: Client | None = None

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()

    def statistics(self) -> dict[str, float]:
        return {"tls_handshakes_failed": self.handshakes_failed}

    def close(self) -> None:
        pass

    def wakeup_for(self, client: Client) -> Callable[[], None]:
        """What the client's outbox calls when output is queued."""

        def wake() -> None:
            client.flush_requested = True
            if client is not self._reading:
                client.writer_lot.unpark_all()

        return wake

    def write_refused(self, client: Client) -> None:  # never called: no raw writes here
        client.writer_lot.unpark_all()

    def flush_soon(self, client: Client) -> None:
        client.flush_requested = True
        client.writer_lot.unpark_all()

    async def serve(self, client: Client) -> None:
        try:
            stream = await accept_tls(client.stream, self.context)
        except TlsHandshakeFailed as exc:
            self.handshakes_failed += 1
            client.conn.close_reason = str(exc)
            return
        sending = trio.StrictFIFOLock()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._writer, client, stream, sending)
            await self._reader(client, stream, sending)
            with trio.move_on_after(CLOSE_DRAIN_SECONDS):
                async with sending:
                    await self._send_queued(client, stream)
            nursery.cancel_scope.cancel()

    async def _reader(self, client: Client, stream: trio.SSLStream, sending: trio.StrictFIFOLock) -> None:
        server = self.server
        while True:
            data = await stream.receive_some(RECEIVE_CHUNK)
            if not data:
                return
            server.in_batch = True
            self._reading = client
            try:
                must_close = server.execute(client, data, now_ms())
            finally:
                self._reading = None
                server.in_batch = False
                server.flush_dirty()
            server.resume_paused()
            if client.flush_requested:
                client.flush_requested = False
                async with sending:
                    await self._send_queued(client, stream)
            if must_close:
                return

    async def _writer(self, client: Client, stream: trio.SSLStream, sending: trio.StrictFIFOLock) -> None:
        while True:
            while not client.flush_requested:
                await client.writer_lot.park()
            client.flush_requested = False
            async with sending:
                await self._send_queued(client, stream)

    @staticmethod
    async def _send_queued(client: Client, stream: trio.SSLStream) -> None:
        while data := client.outbox.take_bytes():
            await stream.send_all(data)
            client.bytes_sent += len(data)
