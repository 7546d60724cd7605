"""What CONFIG SET, CLIENT NO-EVICT and CLIENT PAUSE change in a running push-mode server.

The replies themselves are compared byte for byte with redis-server in
tests/interop/test_redis_differential.py; here, in-process over real TCP, the effects: a
lowered limit cuts the next publish, a new timeout closes idle clients, maxclients refuses
the next connection, NO-EVICT moves eviction to another client, a pause holds commands in
order and lets them go at UNPAUSE or at its end time, and a held client can neither hold
unbounded memory nor disturb anyone when it leaves.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import trio

from broker.config import MiB
from tests.modes.common.servers import TIMEOUT, RespClient, push_broker
from wire.resp import encoder


@contextlib.asynccontextmanager
async def _connected(address, count: int) -> AsyncIterator[list[RespClient]]:
    """``count`` clients, closed on leaving the block (more can be added to the list)."""
    clients = [await RespClient.connect(address) for _ in range(count)]
    try:
        yield clients
    finally:
        for client in clients:
            await client.aclose()


async def _subscribe(client: RespClient, channel: bytes) -> None:
    await client.send(b"SUBSCRIBE %b\r\n" % channel)
    await client.expect(b"*3\r\n$9\r\nsubscribe\r\n$%d\r\n%b\r\n:1\r\n" % (len(channel), channel))


async def _ok(client: RespClient, command: bytes) -> None:
    await client.send(command + b"\r\n")
    await client.expect(b"+OK\r\n")


async def _still_serves(client: RespClient) -> None:
    await client.send(b"PING\r\n")
    await client.expect(b"+PONG\r\n")


async def _nothing_arrives(client: RespClient, seconds: float = 0.2) -> None:
    with trio.move_on_after(seconds):
        chunk = await client.stream.receive_some(65536)
        raise AssertionError(f"unexpected bytes: {chunk!r}")


def _message(channel: bytes, payload: bytes) -> bytes:
    return b"*3\r\n$7\r\nmessage\r\n$%d\r\n%b\r\n$%d\r\n%b\r\n" % (len(channel), channel, len(payload), payload)


# --- CONFIG SET changes the running server -------------------------------------------------------

async def test_lowered_pubsub_hard_limit_cuts_the_next_publish() -> None:
    payload = b"x" * 2000
    async with push_broker() as address:
        async with _connected(address, 3) as (sub, pub, admin):
            await _subscribe(sub, b"big")
            await pub.send(encoder.command("PUBLISH", "big", payload))
            await pub.expect(b":1\r\n")
            await sub.expect(_message(b"big", payload))
            await admin.send(encoder.command("CONFIG", "SET", "client-output-buffer-limit", "pubsub 1000 0 0"))
            await admin.expect(b"+OK\r\n")
            # One frame of 2 kB is over a 1000-byte hard limit: the subscriber is cut, not served.
            await pub.send(encoder.command("PUBLISH", "big", payload))
            await pub.expect(b":0\r\n")
            assert await sub.read_until_closed() == b""
            await admin.send(b"CONFIG GET client-output-buffer-limit\r\n")
            await admin.expect(b"*2\r\n$26\r\nclient-output-buffer-limit\r\n$56\r\n"
                               b"normal 0 0 0 slave 268435456 67108864 60 pubsub 1000 0 0\r\n")
            info = await admin.info()
            assert info["client_output_buffer_limit_disconnections"] == "1"
            assert info["pubsub_limit_hard_bytes"] == "1000"


async def test_timeout_set_at_run_time_closes_idle_clients_but_not_subscribers() -> None:
    async with push_broker() as address:
        async with _connected(address, 3) as (idle, sub, admin):
            await _subscribe(sub, b"quiet")
            await _ok(admin, b"CONFIG SET timeout 1")
            with trio.fail_after(TIMEOUT):
                assert await idle.read_until_closed() == b""
            # Redis never times subscribers out: they are expected to sit idle.
            await sub.send(b"PING\r\n")
            await sub.expect(b"*2\r\n$4\r\npong\r\n$0\r\n\r\n")


async def test_maxclients_set_at_run_time_refuses_the_next_connection() -> None:
    async with push_broker() as address:
        async with _connected(address, 2) as (admin, _other):
            await _ok(admin, b"CONFIG SET maxclients 2")
            refused = await RespClient.connect(address)
            assert await refused.read_until_closed() == b"-ERR max number of clients reached\r\n"
            await refused.aclose()
            await _ok(admin, b"CONFIG SET maxclients 10000")
            welcome = await RespClient.connect(address)
            await _still_serves(welcome)
            await welcome.aclose()


async def test_query_buffer_limit_set_at_run_time_closes_a_client_over_it() -> None:
    async with push_broker() as address:
        async with _connected(address, 2) as (admin, big):
            await _ok(admin, b"CONFIG SET client-query-buffer-limit 1mb")
            # A bulk string announced at 2 MB whose bytes keep coming: over 1 MiB unparsed.
            await big.send(b"*2\r\n$4\r\nECHO\r\n$2000000\r\n" + b"y" * (MiB + 4096))
            assert await big.read_until_closed() == b""
            await _still_serves(admin)


async def test_resetstat_zeroes_the_counters() -> None:
    async with push_broker() as address:
        async with _connected(address, 1) as (client,):
            await client.send(b"PUBLISH nobody x\r\nPUBLISH nobody y\r\n")
            await client.expect(b":0\r\n:0\r\n")
            before = await client.info()
            assert before["messages_published"] == "2" and int(before["total_commands_processed"]) >= 2
            await _ok(client, b"CONFIG RESETSTAT")
            after = await client.info()
            # RESETSTAT itself counts once it has run, as in Redis.
            assert after["total_commands_processed"] == "1"
            assert after["messages_published"] == "0"
            assert after["messages_dropped_no_subscriber"] == "0"
            assert after["total_connections_received"] == "0"


# --- CLIENT NO-EVICT --------------------------------------------------------------------------

async def test_no_evict_client_is_passed_over_when_the_budget_is_exceeded() -> None:
    async with push_broker(maxmemory_clients=1 * MiB) as address:
        async with _connected(address, 2) as (protected, other):
            await _ok(protected, b"CLIENT NO-EVICT on")
            size = 700 * 1024
            head = b"*2\r\n$4\r\nECHO\r\n$%d\r\n" % size
            await protected.send(head + b"p" * (size - 10))
            await trio.sleep(0.1)
            # 400 kB more takes the total over 1 MiB: the largest *evictable* client goes, which is
            # this smaller one, not the protected one that holds more.
            await other.send(b"*2\r\n$4\r\nECHO\r\n$500000\r\n" + b"o" * 400_000)
            assert await other.read_until_closed() == b""
            await protected.send(b"p" * 10 + b"\r\n")
            await protected.expect(b"$%d\r\n" % size + b"p" * size + b"\r\n")


# --- CLIENT PAUSE ----------------------------------------------------------------------------

async def test_pause_write_holds_publish_in_order_until_unpause() -> None:
    async with push_broker() as address:
        async with _connected(address, 4) as (sub, first, second, admin):
            await _subscribe(sub, b"p")
            await _ok(admin, b"CLIENT PAUSE 10000 WRITE")
            await first.send(b"PUBLISH p 1\r\nECHO behind\r\n")
            await trio.sleep(0.05)
            await second.send(b"PUBLISH p 2\r\n")
            await _nothing_arrives(sub)
            await _nothing_arrives(first, 0.01)
            # Reads go on: the held client is listed as blocked, others are served.
            await admin.send(b"CLIENT LIST TYPE normal\r\n")
            listing = await admin.stream.receive_some(65536)
            assert listing.count(b"flags=b ") == 2
            await _ok(admin, b"CLIENT UNPAUSE")
            await sub.expect(_message(b"p", b"1") + _message(b"p", b"2"))
            await first.expect(b":1\r\n$6\r\nbehind\r\n")
            await second.expect(b":1\r\n")


async def test_pause_ends_by_itself_at_its_end_time() -> None:
    async with push_broker() as address:
        async with _connected(address, 3) as (sub, pub, admin):
            await _subscribe(sub, b"t")
            await _ok(admin, b"CLIENT PAUSE 300 WRITE")
            started = trio.current_time()
            await pub.send(b"PUBLISH t late\r\n")
            # Nobody sends anything else: the server's own beat must resume the held client.
            await pub.expect(b":1\r\n")
            assert trio.current_time() - started >= 0.29
            await sub.expect(_message(b"t", b"late"))


async def test_held_client_that_leaves_disturbs_nobody() -> None:
    async with push_broker() as address:
        async with _connected(address, 3) as (sub, leaver, admin):
            await _subscribe(sub, b"gone")
            await _ok(admin, b"CLIENT PAUSE 10000 WRITE")
            await leaver.send(b"PUBLISH gone never\r\n")
            await trio.sleep(0.05)
            await leaver.aclose()
            await trio.sleep(0.05)
            await admin.send(b"CLIENT UNPAUSE\r\nPUBLISH gone after\r\n")
            await admin.expect(b"+OK\r\n:1\r\n")
            await sub.expect(_message(b"gone", b"after"))


async def test_held_client_over_the_query_buffer_limit_is_closed() -> None:
    async with push_broker(client_query_buffer_limit=1 * MiB) as address:
        async with _connected(address, 2) as (hog, admin):
            await _ok(admin, b"CLIENT PAUSE 10000 WRITE")
            # Complete commands, each parsed at once and held: their bytes must stay bounded too.
            command = encoder.command("PUBLISH", "c", "z" * 60_000)
            with trio.move_on_after(TIMEOUT):
                try:
                    for _ in range(40):
                        await hog.send(command)
                except trio.BrokenResourceError:
                    pass
            assert await hog.read_until_closed() == b""
            await _still_serves(admin)


async def test_protocol_error_after_held_commands_is_answered_after_them() -> None:
    async with push_broker() as address:
        async with _connected(address, 2) as (client, admin):
            await _ok(admin, b"CLIENT PAUSE 10000 WRITE")
            await client.send(b"PUBLISH c 1\r\n*1\r\n$x\r\n")
            await _nothing_arrives(client)
            await _ok(admin, b"CLIENT UNPAUSE")
            assert await client.read_until_closed() == b":0\r\n-ERR Protocol error: invalid bulk length\r\n"


async def test_quit_held_by_pause_all_closes_after_its_reply() -> None:
    async with push_broker() as address:
        async with _connected(address, 2) as (client, admin):
            await _ok(admin, b"CLIENT PAUSE 300 ALL")
            await client.send(b"PING\r\nQUIT\r\n")
            assert await client.read_until_closed() == b"+PONG\r\n+OK\r\n"


# --- SHUTDOWN without a broker around the listener -----------------------------------------------

async def test_shutdown_needs_a_broker_to_stop() -> None:
    async with push_broker(enable_shutdown=True) as address:
        async with _connected(address, 1) as (client,):
            await client.send(b"SHUTDOWN\r\n")
            await client.expect(b"-ERR SHUTDOWN is not available: this RESP listener runs without a broker "
                                b"around it to stop.\r\n")


async def test_shutdown_is_refused_unless_enabled() -> None:
    async with push_broker() as address:
        async with _connected(address, 1) as (client,):
            await client.send(b"SHUTDOWN NOSAVE\r\n")
            await client.expect(b"-ERR SHUTDOWN is disabled: set enable_shutdown = true in the [resp] section "
                                b"of the broker's configuration file, and restart it, to allow clients to stop it.\r\n")
