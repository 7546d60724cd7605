"""PUBLISH's forwarding between brokers (modes/cluster/push_forwarding.py), in-process over TCP.

Real push servers (``serve_resp``) with a ``PushForwarder`` each, and a stand-in for the
cluster membership (the view is set by hand, etcd is a dict), so what the three-broker
interop test cannot force is shown here: a peer that reads nothing fills its queue and the
rest is dropped and counted while the publisher is answered at once; a peer that is down
drops too; links follow the view; a wrong secret or a broker that has none yet is refused;
and a broker outside a cluster knows none of these commands.
"""

from __future__ import annotations

import base64
import contextlib
import functools

import attrs
import pytest
import trio
from structlog.testing import capture_logs

from broker.channels import PubSub
from broker.cluster.model import BrokerInfo, ClusterView
from broker.config import BrokerConfig, RespConfig
from broker.stats import ServerInfo
from modes.cluster import push_forwarding
from modes.cluster.etcd import EtcdUnavailable, KeyValue, TxnResult
from modes.cluster.push_forwarding import SECRET_KEY, PeerLink, PushForwarder
from modes.push.server import serve_resp
from tests.modes.common.servers import TIMEOUT, RespClient, push_broker
from wire.resp import encoder

SECRET = b"ab" * 32


@attrs.define
class FakeEtcd:
    """Just the txn the forwarder runs: create-if-absent, then read."""

    store: dict[bytes, bytes] = attrs.field(factory=dict)

    async def txn(self, compare, success, failure=()):
        if SECRET_KEY in self.store:
            kv = KeyValue(SECRET_KEY, self.store[SECRET_KEY], 1, 1, 1, 0)
            return TxnResult(succeeded=False, revision=1, ranges=((kv,),))
        self.store[SECRET_KEY] = base64.b64decode(success[0]["request_put"]["value"])
        return TxnResult(succeeded=True, revision=1, ranges=())


@attrs.define(eq=False)
class FakeMember:
    node_id: int
    etcd: FakeEtcd
    view: ClusterView = attrs.field(factory=ClusterView)
    _changed: trio.Event = attrs.field(factory=trio.Event)

    def set_brokers(self, brokers: dict[int, tuple[str, int]]) -> None:
        self.view.brokers = {n: BrokerInfo(n, host, 1, host, port) for n, (host, port) in brokers.items()}
        self._changed.set()
        self._changed = trio.Event()

    async def wait_for(self, predicate, timeout: float = 5.0) -> bool:
        with trio.move_on_after(timeout):
            while not predicate():
                await self._changed.wait()
            return True
        return False


@contextlib.asynccontextmanager
async def broker(node_id: int, etcd: FakeEtcd, **forwarder):
    """One push server in a cluster; yields (its address, its member, its forwarder)."""
    config = BrokerConfig(resp=RespConfig(listen="127.0.0.1:0"))
    member = FakeMember(node_id, etcd)
    cluster = PushForwarder(member, **forwarder)
    async with trio.open_nursery() as nursery:
        address = await nursery.start(lambda task_status: serve_resp(
            config.resp, PubSub(), ServerInfo(config=config, started_at_ms=0), cluster=cluster,
            task_status=task_status))
        host, _, port = address.rpartition(":")
        nursery.start_soon(cluster.run)
        yield (host, int(port)), member, cluster
        nursery.cancel_scope.cancel()


async def wait_until(predicate, what: str) -> None:
    with trio.fail_after(TIMEOUT):
        while not predicate():
            await trio.sleep(0.01)


async def subscribe(address, channel: bytes) -> RespClient:
    client = await RespClient.connect(address)
    await client.send(encoder.command("SUBSCRIBE", channel))
    await client.expect(b"*3\r\n$9\r\nsubscribe\r\n$%d\r\n%b\r\n:1\r\n" % (len(channel), channel))
    return client


def message(channel: bytes, payload: bytes) -> bytes:
    return b"*3\r\n$7\r\nmessage\r\n$%d\r\n%b\r\n$%d\r\n%b\r\n" % (len(channel), channel, len(payload), payload)


async def test_two_brokers_forward_each_others_publishes_and_follow_the_view() -> None:
    etcd = FakeEtcd()
    async with broker(1, etcd) as (a, member_a, fa), broker(2, etcd) as (b, member_b, fb):
        for member in (member_a, member_b):
            member.set_brokers({1: a, 2: b})
        await wait_until(lambda: all(len(f.links) == 1 and all(link.connected for link in f.links.values())
                                     for f in (fa, fb)), "links up")
        sub_b = await subscribe(b, b"news")
        pub_a = await RespClient.connect(a)
        await pub_a.send(encoder.command("PUBLISH", "news", "hi"))
        await pub_a.expect(b":0\r\n")  # no subscriber on broker 1 itself
        await sub_b.expect(message(b"news", b"hi"))
        assert (fa.forwarded_out, fb.forwarded_in) == (1, 1)
        # A pipelined run of PUBLISHes (the batch fast path) is forwarded whole, in order.
        await pub_a.send(b"".join(encoder.command("PUBLISH", "news", f"m{i}") for i in range(20)))
        await pub_a.expect(b":0\r\n" * 20)
        for i in range(20):
            await sub_b.expect(message(b"news", f"m{i}".encode()))
        # Broker 2 leaves the view: broker 1's link goes, and it forwards nothing any more.
        member_a.set_brokers({1: a})
        await wait_until(lambda: not fa.links, "the link removed")
        await pub_a.send(encoder.command("PUBLISH", "news", "alone"))
        await pub_a.expect(b":0\r\n")
        with trio.move_on_after(0.2):
            raise AssertionError(await sub_b.stream.receive_some(100))
        info = await pub_a.info()
        assert info["forward_peers"] == "0" and info["forwarded_out"] == "21"
        for client in (sub_b, pub_a):
            await client.aclose()


async def test_a_peer_that_reads_nothing_gets_a_full_queue_and_the_rest_is_dropped() -> None:
    stalled = trio.Event()

    async def never_reads(stream: trio.SocketStream) -> None:
        # Answers the handshake like a broker, then reads nothing more.
        received = b""
        while b"\r\n" not in received or received.count(b"\r\n") < 7:
            received += await stream.receive_some(4096)
        await stream.send_all(b"+OK\r\n")
        await stalled.wait()

    etcd = FakeEtcd()
    async with trio.open_nursery() as nursery:
        [listener] = await nursery.start(functools.partial(trio.serve_tcp, never_reads, 0, host="127.0.0.1"))
        peer = listener.socket.getsockname()[:2]
        async with broker(1, etcd, max_queued_bytes=64 * 1024) as (a, member, forwarder):
            member.set_brokers({1: a, 2: peer})
            await wait_until(lambda: forwarder.links and forwarder.links[2].connected, "the link up")
            publisher = await RespClient.connect(a)
            payload = "x" * 60_000
            count = 400  # 24 MB: more than loopback's socket buffers and the queue together
            with trio.fail_after(TIMEOUT):
                for _ in range(count):
                    await publisher.send(encoder.command("PUBLISH", "news", payload))
                    await publisher.expect(b":0\r\n")  # answered at once, whatever the peer does
            link = forwarder.links[2]
            assert link.dropped > 0 and link.queued_bytes <= 64 * 1024
            info = await publisher.info()
            assert int(info["forward_dropped"]) == link.dropped
            assert "state=up" in info["forward_peer2"]
            await publisher.aclose()
        stalled.set()
        nursery.cancel_scope.cancel()


def test_a_link_that_is_down_drops_and_counts_and_one_that_is_up_queues_within_its_bound() -> None:
    link = PeerLink(node_id=2, host="127.0.0.1", port=1, max_queued_bytes=10)
    link.offer(b"12345")
    assert (link.dropped, link.queue) == (1, [])
    link.connected = True
    link.offer(b"12345")
    link.offer(b"12345")
    link.offer(b"1")
    assert (link.dropped, link.queue, link.queued_bytes) == (2, [b"12345", b"12345"], 10)
    # An empty queue takes one message of any size (a PUBLISH bigger than the bound).
    link.queue.clear()
    link.queued_bytes = 0
    link.offer(b"x" * 50)
    link.offer(b"1")
    assert (link.dropped, link.queued_bytes) == (3, 50)


async def test_a_peer_that_is_down_is_retried_and_forwarding_resumes_when_it_is_back() -> None:
    etcd = FakeEtcd()
    async with broker(1, etcd) as (a, member_a, fa):
        # Broker 2's address is known before it listens: the link fails and retries.
        with trio.socket.socket() as placeholder:
            await placeholder.bind(("127.0.0.1", 0))
            port = placeholder.getsockname()[1]
        member_a.set_brokers({1: a, 2: ("127.0.0.1", port)})
        publisher = await RespClient.connect(a)
        await wait_until(lambda: 2 in fa.links, "the link created")
        await publisher.send(encoder.command("PUBLISH", "news", "lost"))
        await publisher.expect(b":0\r\n")
        assert fa.links[2].dropped == 1
        async with broker(2, etcd) as (b, member_b, fb):
            member_a.set_brokers({1: a, 2: b})
            member_b.set_brokers({1: a, 2: b})
            await wait_until(lambda: fa.links[2].connected, "the link up")
            sub = await subscribe(b, b"news")
            await publisher.send(encoder.command("PUBLISH", "news", "found"))
            await publisher.expect(b":0\r\n")
            await sub.expect(message(b"news", b"found"))
            await sub.aclose()
        await publisher.aclose()


async def test_peer_handshake_refusals() -> None:
    etcd = FakeEtcd({SECRET_KEY: SECRET})
    async with broker(1, etcd) as (a, member, forwarder):
        await wait_until(lambda: forwarder.secret == SECRET, "the secret read")
        wrong = await RespClient.connect(a)
        await wrong.send(encoder.command("DUALMQ.PEER", "2", "nope"))
        assert await wrong.read_until_closed() == b"-ERR DUALMQ.PEER: wrong cluster secret\r\n"
        await wrong.aclose()
        right = await RespClient.connect(a)
        await right.send(encoder.command("DUALMQ.PEER", "2", SECRET))
        await right.expect(b"+OK\r\n")
        sub = await subscribe(a, b"c")
        await right.send(encoder.command("DUALMQ.FORWARD", "c", "via-peer"))
        await sub.expect(message(b"c", b"via-peer"))
        # A run of messages in one FORWARD: delivered in order, as one fan-out...
        await right.send(encoder.command("DUALMQ.FORWARD", "c", "r1", "r2", "r3"))
        for payload in (b"r1", b"r2", b"r3"):
            await sub.expect(message(b"c", payload))
        # ... or one by one when a pattern subscriber must see each between them.
        psub = await RespClient.connect(a)
        await psub.send(encoder.command("PSUBSCRIBE", "c*"))
        await psub.expect(b"*3\r\n$10\r\npsubscribe\r\n$2\r\nc*\r\n:1\r\n")
        await right.send(encoder.command("DUALMQ.FORWARD", "c", "p1", "p2"))
        for payload in (b"p1", b"p2"):
            await sub.expect(message(b"c", payload))
            await psub.expect(b"*4\r\n$8\r\npmessage\r\n$2\r\nc*\r\n$1\r\nc\r\n$2\r\n%b\r\n" % payload)
        assert forwarder.forwarded_in == 6
        await psub.aclose()
        for client in (right, sub):
            await client.aclose()
        # A broker that has not read the secret yet asks the peer to come back.
        forwarder.secret = b""
        early = await RespClient.connect(a)
        await early.send(encoder.command("DUALMQ.PEER", "2", SECRET))
        assert await early.read_until_closed() == b"-TRYAGAIN the cluster secret is not loaded yet\r\n"
        await early.aclose()


@pytest.mark.parametrize("command", [("CLUSTER", "SLOTS"), ("DUALMQ.PEER", "1", SECRET), ("DUALMQ.FORWARD", "c", "m")])
async def test_outside_a_cluster_the_cluster_commands_do_not_exist(command) -> None:
    async with push_broker() as address:
        client = await RespClient.connect(address)
        await client.send(encoder.command(*command))
        await client.expect(b"-ERR unknown command '%b'" % command[0].encode())
        await client.aclose()


async def test_a_slot_that_moves_to_another_broker_unsubscribes_its_shard_subscribers() -> None:
    etcd = FakeEtcd()
    async with broker(1, etcd) as (a, member_a, fa), broker(2, etcd) as (b, member_b, fb):
        member_a.set_brokers({1: a})  # alone: broker 1 owns every slot
        sub = await RespClient.connect(a)
        # foo is in slot 12182, bar in 5061: with brokers 1 and 2, foo moves to 2, bar stays.
        await sub.send(encoder.command("SSUBSCRIBE", "foo"))
        await sub.expect(b"*3\r\n$10\r\nssubscribe\r\n$3\r\nfoo\r\n:1\r\n")
        await sub.send(encoder.command("SSUBSCRIBE", "bar"))
        await sub.expect(b"*3\r\n$10\r\nssubscribe\r\n$3\r\nbar\r\n:2\r\n")
        member_a.set_brokers({1: a, 2: b})
        await sub.expect(b"*3\r\n$12\r\nsunsubscribe\r\n$3\r\nfoo\r\n:1\r\n")
        other = await RespClient.connect(a)
        await other.send(encoder.command("SPUBLISH", "foo", "x"))
        await other.expect(b"-MOVED 12182 %b:%d\r\n" % (b[0].encode(), b[1]))
        await other.send(encoder.command("SPUBLISH", "bar", "still-here"))
        await other.expect(b":1\r\n")
        await sub.expect(b"*3\r\n$8\r\nsmessage\r\n$3\r\nbar\r\n$10\r\nstill-here\r\n")
        assert (await other.info())["shard_subscriptions_moved"] == "1"
        for client in (sub, other):
            await client.aclose()


async def test_etcd_unreachable_for_the_secret_fails_the_start(monkeypatch) -> None:
    class DownEtcd:
        async def txn(self, *args):
            raise EtcdUnavailable("no endpoint answered")

    monkeypatch.setattr(push_forwarding, "SECRET_DEADLINE_S", 0.2)
    forwarder = PushForwarder(FakeMember(1, DownEtcd()))
    with trio.fail_after(TIMEOUT), pytest.raises(EtcdUnavailable):
        await forwarder.run()


async def test_a_secret_in_etcd_that_no_broker_wrote_turns_forwarding_off_loudly() -> None:
    # structlog's capture, not pytest's caplog: which handler the stdlib logger reaches depends
    # on what earlier tests in the same process configured.
    with capture_logs() as logs:
        async with broker(1, FakeEtcd({SECRET_KEY: b"short"})) as (a, member, forwarder):
            await wait_until(lambda: any(e["event"] == "push_secret_invalid" for e in logs), "the error logged")
            assert forwarder.secret == b"" and not forwarder.accepts_peer(b"")
            client = await RespClient.connect(a)
            await client.send(encoder.command("DUALMQ.PEER", "2", "short"))
            assert (await client.read_until_closed()).startswith(b"-TRYAGAIN")
            await client.aclose()
