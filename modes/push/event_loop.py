"""One event loop for all the connections of a RESP listener (Linux: epoll), as Redis runs.

Redis serves every client from one loop: wait once for whichever sockets are ready, handle
each ready client in turn (read, run its commands), then write each client that has pending
output once, and wait again. ``EpollEventLoop`` does the same inside trio:

* Every client socket is in one ``select.epoll`` set, and one task waits for that set with
  ``trio.lowlevel.wait_readable(epoll_fd)`` (an epoll descriptor is readable while any of its
  sockets is ready). One wake-up of one task then serves every ready client: the cost of a
  task switch is paid once per wake-up, not once per connection.
* Ready clients are handled in the order the kernel reports them, which is the order their
  bytes arrived: a PUNSUBSCRIBE that reached the server before another client's PUBLISH
  takes effect first. (With one task per connection, the scheduler would pick.)
* Output of the whole wake-up is written at its end, each client with pending output
  (``PushServer.dirty``) once: a subscriber reached by 50 publishers gets one write, not 50.
* A socket that refuses part of a write is not waited for by anyone: its rest stays in its
  outbox (counting against the output-buffer limit) and the same epoll set reports when the
  socket is writable again (``EPOLLOUT``, watched only while such a rest is pending). A client that never reads only ever costs that; the others keep
  being served.

Edge-triggered, on purpose, and watching for writability only while a write is pending —
both so that the ready list stays in arrival order. A socket that is already on the kernel's
ready list keeps its place there when more bytes arrive. With level-triggered epoll the kernel
puts every socket it has just reported back on the list (to check it again), *ahead* of
sockets that become ready later; and a socket watched for writability all along would sit on
the list for being writable. Either way a client could be handled before one whose bytes
arrived earlier. Edge-triggered, input-only, a socket joins the list when new bytes arrive.
The price: the kernel reports new bytes only once, so a read that fills the whole buffer may
have left bytes behind, and such a client is read again on the next pass without waiting for
another report (``_unread``). ``EPOLLOUT`` is added for a socket that refused bytes, and
removed once its outbox is empty again, as Redis installs its write handler only then.

The ordering promise, precisely (Redis's too): a client's unread bytes are read and run
together, so if A's command arrives while B still has bytes the loop has not read, B's later
command may run with them, before A's. Once B has nothing unread, a command of B's that
arrives after A's runs after it.

Each connection keeps its task from the listener (``modes.common.listener``), which owns its
cancel scope, its clean-up and its ``connection_closed`` line; here that task only waits until
the loop says the connection is over (``Client.finished``) and then sends the last output. A
bug in one client's commands is handed to that task to raise, so it ends that connection only.

Not here: accepting and admitting (``modes.common.listener``), running a batch
(``PushServer.execute``), the portable driver with one task per connection (``drivers``).
"""

from __future__ import annotations

import functools
import os
import select

import trio

from modes.common.clock import now_ms
from modes.push.client import Client
from modes.push.drivers import CLOSE_DRAIN_SECONDS, RECEIVE_CHUNK, ServerSteps

__all__ = ["EpollEventLoop"]

_EPOLLOUT = select.EPOLLOUT
# What a client socket is watched for: new bytes (or EOF, or an error)...
_INPUT_EVENTS = select.EPOLLIN | select.EPOLLET
# ... and, while the socket holds back a refused write, space to write.
_INPUT_OUTPUT_EVENTS = _INPUT_EVENTS | select.EPOLLOUT
# Reported bits that mean "read now": bytes, EOF (a read returns b""), or an error (the read
# raises it).
_READ_EVENTS = select.EPOLLIN | select.EPOLLHUP | select.EPOLLERR


class EpollEventLoop:
    """The event-loop connection driver (see the module docstring).

    Args:
        server: the push server whose connections this loop serves.
    """

    name = "epoll"

    def __init__(self, server: ServerSteps) -> None:
        self.server = server
        self._epoll = select.epoll()
        # Client sockets in the epoll set, by descriptor.
        self._clients: dict[int, Client] = {}
        # Clients whose last read filled the whole buffer: there may be more bytes, and an
        # edge-triggered set will not report them again until still more arrive.
        self._unread: list[Client] = []
        # Descriptors of clients watched for EPOLLOUT (a write of theirs was refused).
        self._output_watched: set[int] = set()
        # Lets other tasks wake the loop (output queued outside a batch, see flush_soon).
        self._wakeup_fd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        self._wakeup_pending = False
        self._epoll.register(self._wakeup_fd, select.EPOLLIN)
        # Passes of the loop, and reads that brought bytes (for ``statistics``).
        self._passes = 0
        self._reads = 0

    # -- the loop ---------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Wait for ready clients and serve them, until cancelled."""
        epoll_fd = self._epoll.fileno()
        poll = self._epoll.poll
        task_status.started()
        while True:
            if self._unread:
                # Bytes are (probably) waiting already: only let the other tasks run first.
                await trio.lowlevel.checkpoint()
            else:
                await trio.lowlevel.wait_readable(epoll_fd)
            self.serve_ready(poll(0))

    def serve_ready(self, events: list[tuple[int, int]]) -> None:
        """One pass of the loop: read and run every ready client in order, then write.

        Args:
            events: ``(fd, event mask)`` pairs from the epoll set, in the kernel's order.
        """
        self._passes += 1
        server = self.server
        clients = self._clients
        now = now_ms()
        unread = self._unread
        if unread:
            self._unread = []
        resumed: list[Client] = []
        server.in_batch = True
        try:
            for client in unread:
                if client.watched:
                    self._read_and_run(client, now)
            for fd, mask in events:
                client = clients.get(fd)
                if client is None:
                    if fd == self._wakeup_fd:
                        os.eventfd_read(fd)
                        self._wakeup_pending = False
                    continue  # a client closed earlier in this pass
                if mask & _EPOLLOUT and client.blocked:
                    # Space again in a socket that refused bytes: its outbox goes out with
                    # everybody else's output at the end of this pass.
                    client.blocked = False
                    server.dirty.append(client)
                    resumed.append(client)
                if not mask & _READ_EVENTS:
                    continue
                self._read_and_run(client, now)
        finally:
            server.in_batch = False
            server.flush_dirty()
            server.resume_paused()
            for client in resumed:
                if not client.blocked and client.watched:
                    # All sent: stop watching for space (the next refusal watches again).
                    self._output_watched.discard(client.fd)
                    self._epoll.modify(client.fd, _INPUT_EVENTS)

    def _read_and_run(self, client: Client, now: int) -> None:
        try:
            data = os.read(client.fd, RECEIVE_CHUNK)
        except BlockingIOError:
            return
        except OSError as exc:
            client.close_reason = f"connection reset ({exc.strerror})"
            self._finish(client)
            return
        if not data:
            self._finish(client)
            return
        self._reads += 1
        if len(data) == RECEIVE_CHUNK:
            self._unread.append(client)
        try:
            must_close = self.server.execute(client, data, now)
        except Exception as exc:
            self._fail(client, exc)
            return
        if must_close:
            self._finish(client)

    # -- one connection ---------------------------------------------------------------------

    async def serve(self, client: Client) -> None:
        """Put ``client`` in the loop and wait (in its own task) until the loop is done with it.

        Raises:
            Exception: what the client's commands raised in the loop (a bug).
        """
        self._watch(client)
        try:
            await client.finished.wait()
        finally:
            # Also when cancelled (CLIENT KILL, a limit, the broker stopping): the socket is
            # closed right after this returns, and must not stay in the set.
            self._forget(client)
        if client.failure is not None:
            raise client.failure
        # Last words (QUIT's +OK, a protocol error) must reach the peer.
        with trio.move_on_after(CLOSE_DRAIN_SECONDS):
            await self.server.drain(client)

    def _watch(self, client: Client) -> None:
        fd = client.fd
        self._clients[fd] = client
        client.watched = True
        # Closed from anywhere (CLIENT KILL run by another client, an output or query buffer
        # limit, the idle timeout): stop reading it now, not when its task next runs.
        client.conn.on_close = functools.partial(self._forget, client)
        # Bytes that arrived before this call are reported at once (epoll checks on adding).
        self._epoll.register(fd, _INPUT_EVENTS)

    def _forget(self, client: Client) -> None:
        if client.watched:
            client.watched = False
            del self._clients[client.fd]
            self._output_watched.discard(client.fd)
            self._epoll.unregister(client.fd)

    def _finish(self, client: Client) -> None:
        """The connection is over (EOF, QUIT, a protocol error): its task takes it from here."""
        self._forget(client)
        client.finished.set()

    def _fail(self, client: Client, exc: Exception) -> None:
        client.failure = exc
        self._finish(client)

    # -- the driver interface ---------------------------------------------------------------

    def write_refused(self, client: Client) -> None:
        fd = client.fd
        if client.watched and fd not in self._output_watched:
            # Reported once the socket has room again (at once if it already has: epoll
            # checks when the set changes, so no wake-up is lost in between).
            self._output_watched.add(fd)
            self._epoll.modify(fd, _INPUT_OUTPUT_EVENTS)

    def flush_soon(self, client: Client) -> None:
        self.server.dirty.append(client)
        if not self._wakeup_pending:
            self._wakeup_pending = True
            os.eventfd_write(self._wakeup_fd, 1)

    def statistics(self) -> dict[str, float]:
        """How busy the loop was: passes, reads, and reads per pass (the clients one wake-up
        served on average; the higher, the less each pays for the wake-up)."""
        return {"passes": self._passes, "reads": self._reads,
                "reads_per_pass": round(self._reads / self._passes, 2) if self._passes else 0.0}

    def close(self) -> None:
        """Close the epoll set and the wake-up descriptor (after every connection ended)."""
        self._epoll.close()
        os.close(self._wakeup_fd)
