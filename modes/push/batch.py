"""One batch: the commands a single read of a connection brought, parsed and run in order.

``run_batch`` is the step between reading a socket and writing the output: feed the bytes to
the connection's request parser, run every complete command through ``dispatch``, then queue
what PUBLISH held back. Each command's output lands in an outbox (the connection's own, and
those of the subscribers its PUBLISHes reached); writing the outboxes to their sockets is the
caller's next step, once per batch.

No sockets, no tasks, no waiting: the same step serves whichever way the connections are
read (one event loop for all of them, or one reader task per connection: ``drivers``).

A protocol error (malformed RESP) ends the batch: the replies to the commands before the bad
bytes are queued, then Redis's ``-ERR Protocol error: …`` line, and the connection must close.
Only that connection: every other client carries on undisturbed. Other errors a client can
cause (unknown command, wrong arity) are replies; the connection stays up.

CLIENT PAUSE (see ``modes.push.commands.pause``): dispatch may hold a client's commands; the
client's later reads are still fed here and queue behind them (a protocol error among them
is answered after them). The connection loop's part is ``resume_postponed``: call it after a
batch, and whenever ``pause.deadline_ms`` passes, to run what was held once the pause is over.
"""

from __future__ import annotations

from broker.loggers import get_logger
from modes.push.client import Client
from modes.push.commands import ServerState, dispatch, release_held_output
from wire.errors import RemoteProtocolError
from wire.resp import encoder
from wire.resp.requests import RequestParser

__all__ = ["resume_postponed", "run_batch"]

log = get_logger(__name__)


def run_batch(server: ServerState, client: Client, parser: RequestParser, data: bytes) -> bool:
    """Parse ``data`` and run every complete command in it, queueing all their output.

    Args:
        server: the push server.
        client: the connection ``data`` was read from; ``client.last_interaction_ms`` is the
            time of that read.
        parser: the connection's request parser; an incomplete command stays buffered in it.
        data: the bytes just read.

    Returns:
        True when the connection must close once its output is sent: a protocol error, or a
        command that ends the connection (QUIT, CLIENT KILL of itself).
    """
    error: RemoteProtocolError | None = None
    executed = 0
    try:
        commands: list[list[bytes]] = []
        try:
            if client.close_after_reply:
                parser.feed(data)  # (nothing more runs on a closing connection)
            else:
                commands = parser.commands_after(data)
        except RemoteProtocolError as exc:
            error = exc
        while commands:
            executed += dispatch(server, client, commands)
            if parser.drained or client.close_after_reply:
                break  # one parse per read, unless a protocol error waits to be raised
            try:
                commands = parser.commands()
            except RemoteProtocolError as exc:
                error = exc
                break
    finally:
        # Also when a command raised (a bug: the connection then closes): the deliveries
        # other publishes of the batch held back must still reach their subscribers.
        release_held_output(server, client)
    if error is not None and server.command_state.pause.is_holding(client):
        # Redis would not even have read these bytes yet: answer them after the held commands.
        server.command_state.pause.hold_error(client, error)
        error = None
    return _finish(server, client, executed, error)


def _finish(server: ServerState, client: Client, executed: int, error: RemoteProtocolError | None) -> bool:
    if error is not None:
        server.protocol_errors += 1
        client.reply(error.reply or encoder.error("ERR Protocol error"))
        client.close_reason = f"protocol error: {error.message}"
        # Named here rather than left to the caller's logging context: with one event loop
        # for all connections, the task running this is not the connection's own.
        log.info("protocol_error", error=error.message, conn_id=client.id, peer=client.addr)
    server.commands_processed += executed
    client.commands_processed += executed
    return error is not None or client.close_after_reply


# --- CLIENT PAUSE: resuming the held clients ------------------------------------------------------

def resume_postponed(server: ServerState, now_ms: int) -> list[tuple[Client, bool]]:
    """Once CLIENT PAUSE is over, run what it held, client by client in the order they were held.

    Each client's held commands go through ``dispatch`` again (a new pause may hold them
    again), then a protocol error read after them is answered. Connections that closed
    meanwhile are skipped. Like ``run_batch``, this only queues output: the caller writes it.

    Args:
        server: the push server.
        now_ms: the current time (a pause whose end time has passed is over).

    Returns:
        Each client that ran commands, and whether its connection must now close (QUIT, a
        protocol error, ...). Empty while the pause lasts.
    """
    results = []
    for client, held in server.command_state.pause.take_resumable(now_ms):
        if server.clients.get(client.id) is not client:
            continue
        executed = 0
        try:
            executed = dispatch(server, client, held.commands)
        finally:
            release_held_output(server, client)
        error = held.error
        if error is not None and server.command_state.pause.is_holding(client):
            server.command_state.pause.hold_error(client, error)
            error = None
        results.append((client, _finish(server, client, executed, error)))
    return results
