"""The push-mode SDK (``dualmq.push``) against ``dualmq serve`` *and* a real ``redis-server``.

Every test body runs against both servers (the ``server`` fixture is parametrized) and, where
it matters, in RESP2 and RESP3: the SDK must not be tuned to our own broker. Each test is
bounded by ``trio.fail_after``; nothing sleeps where a condition can be awaited.
"""

from __future__ import annotations

import functools
import time

import pytest
import trio

from dualmq.errors import ConnectionLost, ServerError, Timeout
from dualmq.push import Backoff, Gap, Message, Publisher, subscribe
from tests.sdk.push_servers import SERVERS

TEST_TIMEOUT = 15.0
PROTOCOLS = pytest.mark.parametrize("protocol", [3, 2], ids=["resp3", "resp2"])


@pytest.fixture(scope="module", params=sorted(SERVERS), ids=sorted(SERVERS))
def shared_server(request, tmp_path_factory):
    """One server per kind for the tests that do not kill it."""
    server = SERVERS[request.param](tmp_path_factory.mktemp(request.param))
    server.start()
    yield server
    server.close()


@pytest.fixture(params=sorted(SERVERS), ids=sorted(SERVERS))
def own_server(request, tmp_path):
    """A server this test may kill and restart."""
    server = SERVERS[request.param](tmp_path)
    server.start()
    yield server
    server.close()


@PROTOCOLS
async def test_publish_subscribe_round_trip(shared_server, protocol) -> None:
    address = shared_server.address
    with trio.fail_after(TEST_TIMEOUT):
        async with subscribe(address, "rt", protocol=protocol) as sub, Publisher(address, protocol=protocol) as pub:
            assert sub.protocol == protocol and pub.protocol == protocol
            assert await pub.publish("rt", "héllo") == 1  # str is sent as UTF-8
            assert await pub.publish(b"rt", b"\x00\r\n\xff") == 1  # binary-safe
            assert await sub.receive() == Message(b"rt", "héllo".encode(), None)
            assert await sub.receive() == Message(b"rt", b"\x00\r\n\xff", None)


@PROTOCOLS
async def test_receiver_counts_and_patterns(shared_server, protocol) -> None:
    address = shared_server.address
    with trio.fail_after(TEST_TIMEOUT):
        async with (
            subscribe(address, "rc.news", protocol=protocol) as first,
            subscribe(address, "rc.news", patterns=["rc.*"], protocol=protocol) as second,
            Publisher(address, protocol=protocol) as pub,
        ):
            # Redis counts one delivery per matching subscription: 2 channel + 1 pattern.
            assert await pub.publish("rc.news", "m") == 3
            assert await pub.publish("rc.sport", "p") == 1
            assert await pub.publish("elsewhere", "x") == 0
            assert await first.receive() == Message(b"rc.news", b"m")
            got = {await second.receive(), await second.receive(), await second.receive()}
            assert got == {
                Message(b"rc.news", b"m", None),
                Message(b"rc.news", b"m", b"rc.*"),
                Message(b"rc.sport", b"p", b"rc.*"),
            }


@PROTOCOLS
async def test_publish_many_preserves_order(shared_server, protocol) -> None:
    address = shared_server.address
    count = 2000
    with trio.fail_after(TEST_TIMEOUT):
        async with subscribe(address, "pm.a", "pm.b", protocol=protocol) as sub, Publisher(address, protocol=protocol) as pub:
            batch = [("pm.a" if i % 2 else "pm.b", b"%d" % i) for i in range(count)]
            assert await pub.publish_many(batch) == [1] * count
            assert await pub.publish_many([]) == []
            received = [await sub.receive() for _ in range(count)]
            assert [(m.channel, m.data) for m in received] == [(c.encode(), d) for c, d in batch]


@PROTOCOLS
async def test_change_subscriptions_while_iterating(shared_server, protocol) -> None:
    address = shared_server.address
    with trio.fail_after(TEST_TIMEOUT):
        async with subscribe(address, "cs.a", "cs.b", protocol=protocol) as sub, Publisher(address) as pub:
            received: list[Message] = []
            got_three = trio.Event()

            async def consume() -> None:
                async for message in sub:
                    received.append(message)
                    if len(received) == 3:
                        got_three.set()

            async with trio.open_nursery() as nursery:
                nursery.start_soon(consume)
                await sub.unsubscribe("cs.a")
                assert sub.channels == {b"cs.b"}
                assert await pub.publish("cs.a", "gone") == 0  # unsubscribe stops delivery
                await sub.subscribe("cs.c")
                await sub.psubscribe("cs.p*")
                await sub.ping()
                assert await pub.publish("cs.c", "c") == 1
                assert await pub.publish("cs.pp", "p") == 1
                assert await pub.publish("cs.b", "b") == 1
                await got_three.wait()
                await sub.punsubscribe()
                await sub.unsubscribe()
                assert sub.channels == set() and sub.patterns == set()
                assert await pub.publish("cs.b", "late") == 0
                nursery.cancel_scope.cancel()
            assert received == [Message(b"cs.c", b"c"), Message(b"cs.pp", b"p", b"cs.p*"), Message(b"cs.b", b"b")]


async def test_server_error_surfaces_and_connection_survives(shared_server) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        async with Publisher(shared_server.address) as pub:
            with pytest.raises(ServerError, match="unknown command"):
                await pub.execute("NO-SUCH-COMMAND", "x")
            assert await pub.execute("PING") == "PONG"
            assert await pub.publish("se", "still fine") == 0


async def test_subscription_error_surfaces(shared_server) -> None:
    # Under RESP2 a subscribed client may only run (P)(UN)SUBSCRIBE/PING/QUIT/RESET: the server
    # refuses anything else with an error. We provoke that refusal through the Publisher's
    # escape hatch on a RESP2 connection that subscribed by hand.
    with trio.fail_after(TEST_TIMEOUT):
        async with Publisher(shared_server.address, protocol=2) as raw:
            assert await raw.execute("SUBSCRIBE", "se2") == [b"subscribe", b"se2", 1]
            with pytest.raises(ServerError, match="only .*allowed in this context"):
                await raw.execute("PUBLISH", "x", "y")


async def test_connection_refused_is_connection_lost(shared_server) -> None:
    with trio.socket.socket() as sock:  # a port nobody listens on: bound, never listening
        await sock.bind(("127.0.0.1", 0))
        address = ("127.0.0.1", sock.getsockname()[1])
        with trio.fail_after(TEST_TIMEOUT):
            with pytest.raises(ConnectionLost, match="cannot connect"):
                async with subscribe(address, "x", timeout=2):
                    pass
            with pytest.raises(ConnectionLost):
                async with Publisher(address, timeout=2):
                    pass


async def test_silent_server_times_out() -> None:
    """A server that accepts TCP and never answers: every call gives up at its deadline."""
    with trio.fail_after(TEST_TIMEOUT):
        async with trio.open_nursery() as nursery:
            listeners = await nursery.start(functools.partial(trio.serve_tcp, _hold_forever, 0, host="127.0.0.1"))
            address = listeners[0].socket.getsockname()[:2]
            started = trio.current_time()
            with pytest.raises(Timeout, match="connecting to"):
                async with subscribe(address, "x", timeout=0.3):
                    pass
            with pytest.raises(Timeout):
                async with Publisher(address, timeout=0.3):
                    pass
            pub = Publisher(address, protocol=2, timeout=5)
            with pytest.raises(Timeout, match="no reply to PUBLISH"):
                await pub.publish("x", "y", timeout=0.3)  # no HELLO in RESP2: the PUBLISH waits
            await pub.aclose()
            assert trio.current_time() - started < 5
            nursery.cancel_scope.cancel()


async def _hold_forever(stream: trio.SocketStream) -> None:
    async with stream:
        while await stream.receive_some(4096):
            pass


async def test_subscription_without_reconnect_raises_connection_lost(own_server) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        async with subscribe(own_server.address, "nr") as sub, Publisher(own_server.address) as pub:
            assert await pub.publish("nr", "before") == 1
            assert await sub.receive() == Message(b"nr", b"before")
            own_server.kill()
            with pytest.raises(ConnectionLost):
                await sub.receive()
            with pytest.raises(ConnectionLost):  # and it stays failed
                await sub.receive()
            with pytest.raises(ConnectionLost):
                await sub.subscribe("more")


async def test_reconnect_yields_gap_then_messages(own_server) -> None:
    """Kill the server mid-stream, restart it on the same port: a Gap, then new messages.

    What is published while we are not subscribed is lost: a PUBLISH to the dead server
    fails, and one that reaches the restarted server before we resubscribed counts 0
    receivers. Neither ever shows up; the Gap is how the SDK says so.
    """
    address = own_server.address
    backoff = Backoff(initial=0.05, maximum=0.2)
    with trio.fail_after(TEST_TIMEOUT):
        async with subscribe(address, "rc", patterns=["rc.*"], reconnect=True, backoff=backoff) as sub:
            async with Publisher(address) as pub:
                assert await pub.publish("rc", "before") == 1
            assert await sub.receive() == Message(b"rc", b"before")

            killed_at = time.time()
            own_server.kill()
            with pytest.raises(ConnectionLost):
                async with Publisher(address, timeout=2) as pub:
                    await pub.publish("rc", "during the outage")
            await trio.to_thread.run_sync(own_server.start)  # same port

            # Publish until a message reaches a subscriber: those with 0 receivers were
            # published before the subscription was restored and are gone.
            lost, delivered = [], None
            async with Publisher(address) as pub:
                for i in range(10_000):
                    data = b"after-%d" % i
                    if await pub.publish("rc", data) == 0:
                        lost.append(data)
                        await trio.sleep(0.01)  # pacing only; the exit condition is the count
                        continue
                    delivered = data
                    break
                assert await pub.publish("rc.x", "pattern too") == 1

            gap = await sub.receive()
            assert isinstance(gap, Gap)
            assert killed_at <= gap.started_at <= gap.ended_at <= time.time()
            assert gap.attempts >= 1 and gap.reason
            assert await sub.receive() == Message(b"rc", delivered)
            assert await sub.receive() == Message(b"rc.x", b"pattern too", b"rc.*")
            assert sub.channels == {b"rc"} and sub.patterns == {b"rc.*"}


async def test_reconnect_gives_up_after_the_configured_time(own_server) -> None:
    backoff = Backoff(initial=0.05, maximum=0.1, give_up_after=0.5)
    with trio.fail_after(TEST_TIMEOUT):
        async with subscribe(own_server.address, "gu", reconnect=True, backoff=backoff) as sub:
            own_server.kill()
            with pytest.raises(ConnectionLost, match="gave up reconnecting"):
                await sub.receive()


async def test_exception_in_body_is_not_wrapped(shared_server) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        with pytest.raises(KeyError):
            async with subscribe(shared_server.address, "ex"):
                raise KeyError("mine")


async def test_receive_timeout(shared_server) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        async with subscribe(shared_server.address, "quiet") as sub:
            with pytest.raises(Timeout, match="no message"):
                await sub.receive(timeout=0.1)


async def test_messages_received_before_a_disconnect_are_still_delivered(tmp_path) -> None:
    """A subscriber killed by the server still gets every message it had already received."""
    import dualmq.embedded
    from dualmq.errors import ConnectionLost
    from dualmq.push import Publisher, subscribe

    async with dualmq.embedded.broker(tmp_path) as b:
        async with subscribe(b.resp, "doomed") as subscription, Publisher(b.resp) as publisher:
            for i in range(50):
                assert await publisher.publish("doomed", str(i)) == 1
            # Wait until all 50 reached the subscriber's process, then kill its connection.
            with trio.fail_after(5):
                while True:
                    clients = await publisher.execute("CLIENT", "LIST")
                    text = clients.decode() if isinstance(clients, bytes) else str(clients)
                    line = next(l for l in text.splitlines() if "sub=1" in l)
                    if "omem=0" in line:
                        break
                    await trio.sleep(0.01)
            await trio.sleep(0.1)
            victim = line.split()[0].split("=")[1]
            assert await publisher.execute("CLIENT", "KILL", "ID", victim) == 1
            received = []
            with pytest.raises(ConnectionLost), trio.fail_after(5):
                async for message in subscription:
                    received.append(int(message.data))
            assert received == list(range(50))
