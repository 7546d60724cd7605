"""The shared listener prologue, on a toy echo protocol over real TCP sockets.

What every front-end gets from ``ConnectionTable``: an exception in one connection's handler
ends that connection only (logged once, with its traceback); a peer gone before it could be
named is closed quietly and counted; accept errors never stop a listener; the listener-wide
and per-IP caps; and the receive-buffer limits (per connection and in total).
"""

from __future__ import annotations

import errno
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import trio
import trio.testing
from structlog.testing import capture_logs

from modes.common.listener import Connection, ConnectionLimits, ConnectionTable

TIMEOUT = 5.0
LIMITS = ConnectionLimits(max_connections=100, max_connections_setting="test.max_connections",
                          max_per_ip=100, max_per_ip_setting="test.max_per_ip")


async def echo_until_boom(conn: Connection) -> None:
    """Echo every read; a read starting with ``boom`` is a bug in the handler."""
    while True:
        data = await conn.stream.receive_some(1024)
        if not data:
            return
        if data.startswith(b"boom"):
            raise RuntimeError("a bug in this connection's handler")
        await conn.stream.send_all(data)


@asynccontextmanager
async def serving(limits: ConnectionLimits = LIMITS, handler=echo_until_boom, refuse=None,
                  listeners=None) -> AsyncIterator[tuple[ConnectionTable, int]]:
    listeners = listeners or await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].socket.getsockname()[1]
    table = ConnectionTable(mode="test", limits=limits, handler=handler, refuse=refuse)
    async with trio.open_nursery() as nursery:
        await nursery.start(table.serve, listeners)
        yield table, port
        nursery.cancel_scope.cancel()


async def connect(port: int, source: str = "127.0.0.1") -> trio.SocketStream:
    """A TCP connection to 127.0.0.1:port from ``source`` (any 127.x address is loopback)."""
    sock = trio.socket.socket()
    with trio.fail_after(TIMEOUT):
        await sock.bind((source, 0))
        await sock.connect(("127.0.0.1", port))
    return trio.SocketStream(sock)


async def echo(stream: trio.SocketStream, data: bytes) -> bytes:
    with trio.fail_after(TIMEOUT):
        await stream.send_all(data)
        received = b""
        while len(received) < len(data):
            chunk = await stream.receive_some(1024)
            assert chunk, "connection closed"
            received += chunk
    return received


async def read_to_eof(stream: trio.SocketStream) -> bytes:
    data = b""
    with trio.fail_after(TIMEOUT):
        while True:
            try:
                chunk = await stream.receive_some(1024)
            except trio.BrokenResourceError:
                return data
            if not chunk:
                return data
            data += chunk


async def test_an_exception_in_one_handler_closes_only_that_connection():
    async with serving() as (table, port):
        bystander = await connect(port)
        victim = await connect(port)
        assert await echo(bystander, b"before") == b"before"
        with capture_logs() as logs:
            await victim.send_all(b"boom")
            assert await read_to_eof(victim) == b""
            await trio.testing.wait_all_tasks_blocked()
        assert await echo(bystander, b"after") == b"after"
        # And the listener still accepts.
        newcomer = await connect(port)
        assert await echo(newcomer, b"new") == b"new"
        failed = [entry for entry in logs if entry["event"] == "connection_failed"]
        assert len(failed) == 1 and failed[0]["exc_info"] is True
        assert "RuntimeError" in failed[0]["error"]
        closed = [entry for entry in logs if entry["event"] == "connection_closed"]
        assert [entry["reason"] for entry in closed] == ["internal error: RuntimeError"]
        assert table.statistics().connection_failures == 1
        assert table.statistics().connections_open == 2
        for stream in (bystander, victim, newcomer):
            await stream.aclose()


async def test_a_peer_gone_before_it_is_named_is_closed_quietly_and_counted():
    class GoneSocket:
        def getpeername(self):
            raise OSError(errno.ENOTCONN, "Transport endpoint is not connected")

    class GoneStream:
        socket = GoneSocket()
        closed = False

        async def aclose(self) -> None:
            self.closed = True

    table = ConnectionTable(mode="test", limits=LIMITS, handler=echo_until_boom)
    stream = GoneStream()
    with capture_logs() as logs:
        await table._run_connection(stream)
    assert stream.closed
    assert table.statistics().peers_gone_at_accept == 1
    assert table.statistics().connections_received == 0
    assert logs == []


class FlakyListener(trio.abc.Listener):
    """A real listener whose first accepts fail, the way a loaded kernel makes them fail."""

    def __init__(self, real: trio.SocketListener, errors: list[int]) -> None:
        self.real = real
        self.socket = real.socket
        self.errors = errors

    async def accept(self) -> trio.SocketStream:
        if self.errors:
            await trio.lowlevel.checkpoint()
            code = self.errors.pop(0)
            raise OSError(code, errno.errorcode[code])
        return await self.real.accept()

    async def aclose(self) -> None:
        await self.real.aclose()


async def test_accept_errors_never_stop_the_listener():
    (real,) = await trio.open_tcp_listeners(0, host="127.0.0.1")
    # EMFILE: out of descriptors (trio.serve_listeners sleeps on it too); EINVAL: an errno
    # trio.serve_listeners would let escape, ending the listener and the broker with it.
    flaky = FlakyListener(real, [errno.EMFILE, errno.EINVAL])
    with capture_logs() as logs:
        async with serving(listeners=[flaky]) as (table, port):
            stream = await connect(port)
            assert await echo(stream, b"still here") == b"still here"
            await stream.aclose()
    failures = [entry for entry in logs if entry["event"] == "accept_failed"]
    assert [entry["errno"] for entry in failures] == ["EMFILE", "EINVAL"]
    assert all(entry["log_level"] == "error" for entry in failures)
    # Running out of descriptors is a known condition; an unknown errno comes with a traceback.
    assert "exc_info" not in failures[0] and failures[1]["exc_info"] is True


async def test_connection_cap_and_per_ip_cap_refuse_with_the_mode_s_words():
    limits = ConnectionLimits(max_connections=3, max_connections_setting="test.max_connections",
                              max_per_ip=2, max_per_ip_setting="test.max_per_ip")

    async def refuse(stream: trio.SocketStream, setting: str) -> None:
        await stream.send_all(f"refused by {setting}\n".encode())

    async with serving(limits, refuse=refuse) as (table, port):
        first, second = await connect(port), await connect(port)
        assert await echo(first, b"1") == b"1" and await echo(second, b"2") == b"2"
        with capture_logs() as logs:
            third = await connect(port)
            assert await read_to_eof(third) == b"refused by test.max_per_ip\n"
        rejected = [entry for entry in logs if entry["event"] == "connection_rejected"]
        assert rejected[0]["reason"] == "test.max_per_ip reached" and rejected[0]["limit"] == 2
        # Another address is not affected by 127.0.0.1's connections...
        other = await connect(port, source="127.0.0.2")
        assert await echo(other, b"o") == b"o"
        # ...but the listener-wide cap (3) counts everybody.
        fourth = await connect(port, source="127.0.0.3")
        assert await read_to_eof(fourth) == b"refused by test.max_connections\n"
        # Closing one of 127.0.0.1's connections frees its slot.
        await first.aclose()
        with trio.fail_after(TIMEOUT):
            while table.statistics().connections_open != 2:
                await trio.sleep(0.01)
        again = await connect(port)
        assert await echo(again, b"again") == b"again"
        assert table.statistics().rejected == {"test.max_per_ip": 1, "test.max_connections": 1}
        assert table.per_ip == {"127.0.0.1": 2, "127.0.0.2": 1}
        for stream in (second, third, other, fourth, again):
            await stream.aclose()


def make_connection(table: ConnectionTable, conn_id: int) -> Connection:
    """A connection registered in ``table`` without a socket (for the accounting rules)."""
    conn = Connection(id=conn_id, stream=None, peer_address=("127.0.0.1", 1000 + conn_id),
                      local_address=("127.0.0.1", 9), peer=f"127.0.0.1:{1000 + conn_id}",
                      local="127.0.0.1:9", opened_ms=0)
    table._admit(conn)
    return conn


async def test_over_the_total_the_largest_holder_is_closed_once():
    limits = ConnectionLimits(max_connections=10, max_connections_setting="m", max_per_ip=10,
                              max_per_ip_setting="p", total_buffer_bytes=100, total_buffer_setting="x.total")
    table = ConnectionTable(mode="test", limits=limits, handler=echo_until_boom)
    a, b, c = (make_connection(table, i) for i in (1, 2, 3))
    with capture_logs() as logs:
        table.account(a, 50)
        table.account(b, 20)
        table.account(c, 40)  # total 110: a (50) holds the most, though c tipped it over
    assert a.cancel_scope.cancel_called and "x.total" in a.close_reason
    assert not b.cancel_scope.cancel_called and not c.cancel_scope.cancel_called
    assert table.buffered_total == 60 and a.buffered_bytes == 0
    [warning] = [entry for entry in logs if entry["event"] == "request_buffer_budget_exceeded"]
    assert warning["peer"] == a.peer and warning["buffered_bytes"] == 50 and warning["total_bytes"] == 110
    assert warning["limit"] == "x.total" and warning["limit_bytes"] == 100
    # Bytes going down never close anyone; a closed connection's release leaves the total exact.
    table.account(c, 0)
    table._release(a)
    table._release(c)
    assert table.buffered_total == 20
    assert table.statistics().buffer_budget_evictions == 1


async def test_over_the_per_connection_limit_that_connection_is_closed():
    limits = ConnectionLimits(max_connections=10, max_connections_setting="m", max_per_ip=10,
                              max_per_ip_setting="p", per_connection_buffer_bytes=30,
                              per_connection_buffer_setting="x.client", total_buffer_bytes=1000,
                              total_buffer_setting="x.total")
    table = ConnectionTable(mode="test", limits=limits, handler=echo_until_boom)
    a, b = make_connection(table, 1), make_connection(table, 2)
    table.account(a, 30)  # at the limit: fine (Redis closes only above it)
    table.account(b, 31)
    assert not a.cancel_scope.cancel_called
    assert b.cancel_scope.cancel_called and "x.client" in b.close_reason
    assert table.buffered_total == 30
    assert table.statistics().buffer_limit_disconnections == 1


async def test_a_bug_in_the_refusal_still_costs_only_that_connection():
    limits = ConnectionLimits(max_connections=1, max_connections_setting="test.max_connections",
                              max_per_ip=10, max_per_ip_setting="test.max_per_ip")

    async def broken_refusal(stream: trio.SocketStream, setting: str) -> None:
        raise KeyError(setting)

    async with serving(limits, refuse=broken_refusal) as (table, port):
        admitted = await connect(port)
        assert await echo(admitted, b"1") == b"1"
        with capture_logs() as logs:
            refused = await connect(port)
            assert await read_to_eof(refused) == b""
            await trio.testing.wait_all_tasks_blocked()
        [failed] = [entry for entry in logs if entry["event"] == "connection_failed"]
        assert "KeyError" in failed["error"] and failed["exc_info"] is True
        assert await echo(admitted, b"2") == b"2"
        assert table.statistics().connection_failures == 1
        for stream in (admitted, refused):
            await stream.aclose()
