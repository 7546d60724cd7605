"""How push mode serves many connections: arrival order, slow clients, limits, bugs, shutdown.

Run under both connection drivers (see ``conftest``): the epoll event loop must keep every
promise the task-per-connection driver kept, and add one: commands of different clients run
in the order their bytes arrived. Most tests run a broker in the test's own trio run, so the
test can put bytes in the kernel for several clients before the broker runs again
(``_write_now``: a plain ``os.write``, no checkpoint), which makes "ready in the same wake-up"
deterministic. The ordering test under load needs a broker that runs while the test sends, so
it starts a broker process.
"""

from __future__ import annotations

import itertools
import os
import re
import sys
import time

import attrs
import pytest
import trio
import trio.testing
from structlog.testing import capture_logs

from modes.push import commands, drivers, event_loop
from tests.modes.common.servers import TIMEOUT, RespClient, push_broker
from tests.support import RawClient, broker_process

PSUBSCRIBED = b"*3\r\n$10\r\npsubscribe\r\n$6\r\nnews.*\r\n:1\r\n"
PUNSUBSCRIBED = b"*3\r\n$12\r\npunsubscribe\r\n$6\r\nnews.*\r\n:0\r\n"
ORDER_TRIALS = 30


def _write_now(client: RespClient, data: bytes) -> None:
    """Put ``data`` in the kernel at once, without letting the in-process broker run."""
    assert os.write(client.stream.socket.fileno(), data) == len(data)


def _command(*args: bytes) -> bytes:
    return b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%b\r\n" % (len(arg), arg) for arg in args)


def _message(channel: bytes, payload: bytes) -> bytes:
    return b"*3\r\n$7\r\nmessage\r\n$%d\r\n%b\r\n$%d\r\n%b\r\n" % (len(channel), channel, len(payload), payload)


def _subscribed(channel: bytes) -> bytes:
    return b"*3\r\n$9\r\nsubscribe\r\n$%d\r\n%b\r\n:1\r\n" % (len(channel), channel)


async def _small_receiver_subscribed(address: tuple[str, int], channel: bytes, name: bytes = b"") -> RespClient:
    """A subscriber whose kernel receive buffer is tiny (what it does not read piles up
    quickly), named ``name`` if given, that has read its SUBSCRIBE confirmation."""
    sock = trio.socket.socket()
    sock.setsockopt(trio.socket.SOL_SOCKET, trio.socket.SO_RCVBUF, 4096)
    with trio.fail_after(TIMEOUT):
        await sock.connect(address)
    client = RespClient(trio.SocketStream(sock))
    if name:
        await client.send(b"CLIENT SETNAME " + name + b"\r\n")
        await client.expect(b"+OK\r\n")
    await client.send(b"SUBSCRIBE " + channel + b"\r\n")
    await client.expect(_subscribed(channel))
    return client


# -- arrival order ------------------------------------------------------------------------------


# With one task per connection the scheduler, not the arrival, orders clients: the promise
# is the event loop's own, so these run under the epoll driver only (see conftest).
@pytest.mark.epoll_only
async def test_clients_ready_in_one_wakeup_run_in_the_order_their_bytes_arrived(push_driver):
    async with push_broker() as address:
        leaver = await RespClient.connect(address)
        publisher = await RespClient.connect(address)
        for trial in range(ORDER_TRIALS):
            await leaver.send(b"PSUBSCRIBE news.*\r\n")
            await leaver.expect(PSUBSCRIBED)
            # Both requests are in the kernel before the broker looks: one wake-up finds both
            # clients ready, and the PUNSUBSCRIBE came first.
            _write_now(leaver, b"PUNSUBSCRIBE news.*\r\n")
            _write_now(publisher, b"PUBLISH news.1 hello\r\n")
            await publisher.expect(b":0\r\n")
            await leaver.expect(PUNSUBSCRIBED)
        await leaver.aclose()
        await publisher.aclose()


def _tcp_queues(local_port: int, remote_port: int) -> tuple[int, int]:
    """(bytes sent but not acknowledged, bytes received but not read) of the loopback TCP
    socket ``local_port`` -> ``remote_port``, from ``/proc/net/tcp``."""
    with open("/proc/net/tcp") as table:
        next(table)
        for line in table:
            fields = line.split()
            local, remote = fields[1].split(":")[1], fields[2].split(":")[1]
            if (int(local, 16), int(remote, 16)) == (local_port, remote_port):
                unacked, unread = fields[4].split(":")
                return int(unacked, 16), int(unread, 16)
    raise AssertionError(f"no socket {local_port} -> {remote_port} in /proc/net/tcp")


def _wait_until(condition, what: str) -> None:
    deadline = time.monotonic() + TIMEOUT
    while not condition():
        assert time.monotonic() < deadline, what


@pytest.mark.epoll_only
@pytest.mark.skipif(not os.path.exists("/proc/net/tcp"), reason="reads the broker's receive queue from /proc")
def test_a_punsubscribe_that_arrived_first_wins_over_a_later_publish_under_load(tmp_path, push_driver):
    """While the broker runs a long batch of the publisher's, a PUNSUBSCRIBE arrives, then
    the publisher's PUBLISH. The PUBLISH must not reach the leaver.

    The test waits until the broker has read the whole batch, so the publisher has nothing
    unread when the PUNSUBSCRIBE arrives. (Had it, the PUBLISH would be read with those bytes
    and run first — in Redis too: a client's pending bytes are read and run together.) And it
    sends the PUBLISH only once the PUNSUBSCRIBE is in the broker's kernel: on a busy machine
    the kernel may deliver two sends from two CPUs in either order.

    With one task per connection the two clients wake in the same scheduler pass, in either
    order. A level-triggered epoll set would list the publisher first: it keeps a socket it
    has just reported on its ready list, ahead of sockets that become ready later.
    """
    pings = 10_000  # 60 KB: one read, and milliseconds of work
    with broker_process(tmp_path) as broker, RawClient(broker.resp) as leaver, \
            RawClient(broker.resp) as publisher:
        broker_port = broker.resp[1]
        publisher_port, leaver_port = publisher.sock.getsockname()[1], leaver.sock.getsockname()[1]
        for trial in range(ORDER_TRIALS):
            leaver.send(b"PSUBSCRIBE news.*\r\n")
            leaver.expect(PSUBSCRIBED)
            publisher.send(b"PING\r\n" * pings)
            _wait_until(lambda: _tcp_queues(broker_port, publisher_port)[1] == 0, "the batch was never read")
            leaver.send(b"PUNSUBSCRIBE news.*\r\n")
            # Arrived: waiting unread at the broker, or acknowledged by its kernel.
            _wait_until(lambda: _tcp_queues(broker_port, leaver_port)[1] > 0
                        or _tcp_queues(leaver_port, broker_port)[0] == 0, "the PUNSUBSCRIBE never arrived")
            publisher.send(b"PUBLISH news.1 hello\r\n")
            publisher.expect(b"+PONG\r\n" * pings)
            assert publisher.read_exactly(4) == b":0\r\n", f"trial {trial}: the PUBLISH ran first"
            leaver.expect(PUNSUBSCRIBED)


# -- slow clients and big requests --------------------------------------------------------------


async def test_a_client_that_never_reads_delays_nobody(push_driver):
    payload = b"x" * 10_000
    frame = _message(b"firehose", payload)
    async with push_broker(pubsub_hard_limit=0, pubsub_soft_limit=0) as address:
        stuck = await _small_receiver_subscribed(address, b"firehose", name=b"stuck")  # its last read
        fast = await RespClient.connect(address)
        await fast.send(b"SUBSCRIBE firehose\r\n")
        await fast.expect(_subscribed(b"firehose"))
        publisher = await RespClient.connect(address)
        watcher = await RespClient.connect(address)
        rounds_after_stuck = 0
        for _ in range(300):
            await publisher.send(b"PUBLISH firehose " + payload + b"\r\n")
            await publisher.expect(b":2\r\n")
            await fast.expect(frame)
            await watcher.send(b"CLIENT LIST\r\n")
            listing = await _read_bulk(watcher)
            stuck_line = next(line for line in listing.splitlines() if b" name=stuck " in line)
            # omem: the bytes the broker holds for it because its socket refused them.
            if int(re.search(rb" omem=(\d+) ", stuck_line).group(1)) > 0:
                rounds_after_stuck += 1
                if rounds_after_stuck == 20:
                    break
        assert rounds_after_stuck == 20, "the stuck client's socket never filled up"
        for client in (stuck, fast, publisher, watcher):
            await client.aclose()


async def test_a_reader_that_falls_behind_gets_everything_once_it_reads(push_driver):
    payload = b"w" * 100_000
    frame = _message(b"news", payload)
    async with push_broker(pubsub_hard_limit=0, pubsub_soft_limit=0) as address:
        late = await _small_receiver_subscribed(address, b"news")
        publisher = await RespClient.connect(address)
        for _ in range(40):  # 4 MB while it does not read: its socket refuses most of it
            await publisher.send(_command(b"PUBLISH", b"news", payload))
            await publisher.expect(b":1\r\n")
        # Its socket said "no more" long ago; the rest must follow as it makes room.
        await late.send(b"PING\r\n")
        with trio.fail_after(4 * TIMEOUT):
            for _ in range(40):
                await late.expect(frame)
        await late.expect(b"*2\r\n$4\r\npong\r\n$0\r\n\r\n")
        await late.aclose()
        await publisher.aclose()


async def _read_bulk(client: RespClient) -> bytes:
    await client._fill(1)
    while b"\r\n" not in client.buffer:
        await client._fill(len(client.buffer) + 1)
    header, _, rest = client.buffer.partition(b"\r\n")
    size = int(header[1:])
    await client._fill(len(header) + 2 + size + 2)
    body = client.buffer[len(header) + 2 : len(header) + 2 + size]
    client.buffer = client.buffer[len(header) + 2 + size + 2 :]
    return body


async def test_requests_bigger_than_one_read_are_served_without_more_bytes_arriving(
        push_driver, monkeypatch):
    # Reads of 1000 bytes: what the kernel holds is then several reads' worth.
    monkeypatch.setattr(drivers, "RECEIVE_CHUNK", 1000)
    monkeypatch.setattr(event_loop, "RECEIVE_CHUNK", 1000)
    payload = b"z" * 5000
    async with push_broker() as address:
        subscriber = await RespClient.connect(address)
        await subscriber.send(b"SUBSCRIBE big\r\n")
        await subscriber.expect(_subscribed(b"big"))
        publisher = await RespClient.connect(address)
        # All of it is in the kernel before the broker reads anything: an edge-triggered set
        # reports the socket once, and the loop must come back for the rest by itself.
        _write_now(publisher, _command(b"PUBLISH", b"big", payload) + b"PUBLISH big small\r\n" * 300)
        await publisher.expect(b":1\r\n" * 301)
        await subscriber.expect(_message(b"big", payload) + _message(b"big", b"small") * 300)
        await publisher.aclose()
        await subscriber.aclose()


# -- limits still apply -------------------------------------------------------------------------


async def test_idle_timeout_closes_idle_clients_only(push_driver):
    async with push_broker(timeout=1) as address:
        idle = await RespClient.connect(address)
        subscriber = await RespClient.connect(address)
        busy = await RespClient.connect(address)
        await subscriber.send(b"SUBSCRIBE quiet\r\n")
        await subscriber.expect(_subscribed(b"quiet"))
        await idle.send(b"PING\r\n")
        await idle.expect(b"+PONG\r\n")
        last_reply = trio.current_time()
        async with trio.open_nursery() as nursery:
            async def keep_busy() -> None:
                while True:
                    await busy.send(b"PING\r\n")
                    await busy.expect(b"+PONG\r\n")
                    await trio.sleep(0.2)

            nursery.start_soon(keep_busy)
            assert await idle.read_until_closed() == b""
            idle_for = trio.current_time() - last_reply
            nursery.cancel_scope.cancel()
        # Redis closes a client idle for *more than* `timeout` seconds, checked every 100 ms.
        # (idle_for starts a little after the broker's read, hence 0.95.)
        assert 0.95 < idle_for < 2.0
        for client in (subscriber, busy):
            await client.send(b"PING\r\n")
        await subscriber.expect(b"*2\r\n$4\r\npong\r\n$0\r\n\r\n")
        await busy.expect(b"+PONG\r\n")
        for client in (idle, subscriber, busy):
            await client.aclose()


# -- output from outside a batch ----------------------------------------------------------------


async def test_output_queued_outside_any_batch_is_written(push_driver, monkeypatch):
    """Output a timer or another task queues (no command of the client running) still leaves."""
    seen = {}

    def remember(server, client, args) -> None:
        seen["client"] = client
        client.reply(b"+remembered\r\n")

    monkeypatch.setitem(commands.COMMANDS, b"ECHO", attrs.evolve(commands.COMMANDS[b"ECHO"], handler=remember))
    monkeypatch.setattr(commands, "_SPELLINGS", {})  # forget cached lookups of the real one
    async with push_broker() as address:
        client = await RespClient.connect(address)
        await client.send(b"ECHO x\r\n")
        await client.expect(b"+remembered\r\n")
        await trio.testing.wait_all_tasks_blocked()
        seen["client"].reply(b"+later\r\n")
        await client.expect(b"+later\r\n")
        await client.aclose()


# -- bugs and shutdown --------------------------------------------------------------------------


def _raise_bug(*args: object) -> None:
    raise ZeroDivisionError("a bug in a handler")


async def test_a_bug_closes_only_its_client_even_in_a_shared_wakeup(push_driver, monkeypatch):
    monkeypatch.setitem(commands.COMMANDS, b"ECHO", attrs.evolve(commands.COMMANDS[b"ECHO"], handler=_raise_bug))
    monkeypatch.setattr(commands, "_SPELLINGS", {})
    async with push_broker() as address:
        subscriber = await RespClient.connect(address)
        await subscriber.send(b"SUBSCRIBE news\r\n")
        await subscriber.expect(_subscribed(b"news"))
        before = await RespClient.connect(address)
        victim = await RespClient.connect(address)
        after = await RespClient.connect(address)
        with capture_logs() as logs:
            # Three clients ready in the same wake-up; the one in the middle hits the bug.
            _write_now(before, b"PUBLISH news one\r\n")
            _write_now(victim, b"PUBLISH news two\r\nECHO boom\r\nPUBLISH news never\r\n")
            _write_now(after, b"PUBLISH news three\r\n")
            await before.expect(b":1\r\n")
            await after.expect(b":1\r\n")
            # What the victim's commands did before the bug still happened and was sent.
            assert await victim.read_until_closed() == b":1\r\n"
            await trio.testing.wait_all_tasks_blocked()
        frames = [_message(b"news", word) for word in (b"one", b"two", b"three")]
        await subscriber._fill(sum(map(len, frames)))
        if push_driver == "epoll":  # in arrival order
            assert subscriber.buffer == b"".join(frames)
        else:  # in the scheduler's order
            assert subscriber.buffer in {b"".join(order) for order in itertools.permutations(frames)}
        subscriber.buffer = b""
        failed = [entry for entry in logs if entry["event"] == "connection_failed"]
        assert len(failed) == 1 and failed[0]["exc_info"] is True
        await subscriber.send(b"PING\r\n")
        await subscriber.expect(b"*2\r\n$4\r\npong\r\n$0\r\n\r\n")
        for client in (subscriber, before, victim, after):
            await client.aclose()


def test_a_protocol_error_is_logged_with_the_connection_it_came_from(tmp_path, push_driver):
    """The loop runs every client's commands in one task, so log lines written there must
    name the connection themselves (a task per connection had it bound in its context)."""
    with broker_process(tmp_path) as broker, RawClient(broker.resp) as bad:
        bad.send(b"*1\r\n$x\r\n")
        assert bad.read_until_closed() == b"-ERR Protocol error: invalid bulk length\r\n"
        port = bad.sock.getsockname()[1]
        _wait_until(lambda: any(line.get("event") == "protocol_error" for line in broker.log_lines()),
                    "no protocol_error line")
        line = next(line for line in broker.log_lines() if line.get("event") == "protocol_error")
        assert line["peer"] == f"127.0.0.1:{port}" and isinstance(line["conn_id"], int)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="counts descriptors in /proc/self/fd")
async def test_stopping_the_broker_closes_every_client_and_the_loop(push_driver):
    open_before = len(os.listdir("/proc/self/fd"))
    with capture_logs() as logs:
        async with push_broker(pubsub_hard_limit=0, pubsub_soft_limit=0) as address:
            plain = await RespClient.connect(address)
            await plain.send(b"PING\r\n")
            await plain.expect(b"+PONG\r\n")
            subscriber = await RespClient.connect(address)
            await subscriber.send(b"SUBSCRIBE news\r\n")
            await subscriber.expect(_subscribed(b"news"))
            stuck = await _small_receiver_subscribed(address, b"news")  # its last read
            publisher = await RespClient.connect(address)
            payload = b"y" * 100_000
            for _ in range(40):  # 4 MB for the stuck client: its socket refuses most of it
                await publisher.send(_command(b"PUBLISH", b"news", payload))
                await publisher.expect(b":2\r\n")
                await subscriber.expect(_message(b"news", payload))
        # Every client sees its connection end.
        for client in (plain, subscriber, stuck, publisher):
            with trio.fail_after(TIMEOUT):
                await client.read_until_closed()
            await client.aclose()
    closed = [entry for entry in logs if entry["event"] == "connection_closed"]
    assert len(closed) == 4
    assert {entry["reason"] for entry in closed} == {"broker stopping"}
    assert all({"commands", "bytes_in", "bytes_out", "output_high_water"} <= entry.keys() for entry in closed)
    # Sockets, the epoll set and its wake-up descriptor: all closed again.
    assert len(os.listdir("/proc/self/fd")) == open_before
