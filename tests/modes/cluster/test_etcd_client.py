"""The etcd client (``modes.cluster.etcd``) against a real etcd, and against a fake one that
answers garbage: keys, prefixes, txn compare-and-set, leases (keepalive, expiry, revoke),
watch, and the errors a caller must be able to tell apart."""

from __future__ import annotations

import socket

import pytest
import trio

from dualmq.etcd_process import EtcdProcess
from modes.cluster.etcd import (
    Compare, EtcdClient, EtcdProtocolError, EtcdRequestFailed, EtcdUnavailable, LeaseExpired, get_op, prefix_end,
    put_op,
)

pytestmark = pytest.mark.timeout(60)


def test_prefix_end_is_etcds_rule() -> None:
    assert prefix_end(b"/dualmq/") == b"/dualmq0"
    assert prefix_end(b"a\xff") == b"b"
    assert prefix_end(b"\xff\xff") == b"\0"


async def test_put_get_range_delete(etcd: EtcdProcess) -> None:
    async with EtcdClient([etcd.endpoint]) as client:
        revision = await client.put(b"/t/a", b"1")
        await client.put(b"/t/b", b"\x00\xff binary")
        await client.put(b"/u/c", b"other prefix")
        found = await client.get(b"/t/a")
        assert found is not None and found.value == b"1" and found.create_revision == revision
        kvs, at = await client.range(b"/t/", prefix=True)
        assert [(kv.key, kv.value) for kv in kvs] == [(b"/t/a", b"1"), (b"/t/b", b"\x00\xff binary")]
        assert at >= revision + 2
        assert await client.get(b"/t/missing") is None
        assert await client.delete(b"/t/", prefix=True) == 2
        assert (await client.range(b"/t/", prefix=True))[0] == []


async def test_txn_create_if_absent_wins_once(etcd: EtcdProcess) -> None:
    async with EtcdClient([etcd.endpoint]) as client:
        key = b"/election"
        first = await client.txn([Compare.absent(key)], [put_op(key, b"node-1")], [get_op(key)])
        second = await client.txn([Compare.absent(key)], [put_op(key, b"node-2")], [get_op(key)])
        assert first.succeeded and not second.succeeded
        assert [kv.value for kv in second.ranges[0]] == [b"node-1"]  # the loser learns the winner
        # Compare on the value: only the holder may change it.
        assert not (await client.txn([Compare.value_is(key, b"node-2")], [put_op(key, b"x")])).succeeded
        assert (await client.txn([Compare.value_is(key, b"node-1")], [put_op(key, b"y")])).succeeded
        assert (await client.get(key)).value == b"y"


async def test_lease_keepalive_expiry_and_revoke(etcd: EtcdProcess) -> None:
    async with EtcdClient([etcd.endpoint]) as client:
        lease = await client.grant(1)
        await client.put(b"/leased", b"v", lease=lease)
        assert (await client.get(b"/leased")).lease == lease
        assert await client.keepalive(lease) >= 1
        # Unkept, the lease expires (etcd checks expiry about every 500 ms) and takes the key.
        with trio.fail_after(10):
            while await client.get(b"/leased") is not None:
                await trio.sleep(0.2)
        with pytest.raises(LeaseExpired):
            await client.keepalive(lease)
        other = await client.grant(30)
        await client.put(b"/leased2", b"v", lease=other)
        await client.revoke(other)
        assert await client.get(b"/leased2") is None
        with pytest.raises(LeaseExpired):
            await client.revoke(other)


async def test_put_with_an_unknown_lease_is_refused_with_etcds_reason(etcd: EtcdProcess) -> None:
    async with EtcdClient([etcd.endpoint]) as client:
        with pytest.raises(EtcdRequestFailed, match="lease not found") as failure:
            await client.put(b"/k", b"v", lease=12345)
        assert failure.value.code == 5


async def test_watch_sees_puts_and_deletes_in_order_from_a_revision(etcd: EtcdProcess) -> None:
    async with EtcdClient([etcd.endpoint]) as client:
        _, revision = await client.range(b"/w/", prefix=True)
        await client.put(b"/w/a", b"1")  # before the watch is open, after its start revision
        seen = []
        with trio.fail_after(10):
            async with client.watch(b"/w/", start_revision=revision + 1) as changes:
                await client.put(b"/w/b", b"2")
                await client.put(b"/elsewhere", b"not watched")
                await client.delete(b"/w/a")
                async for events in changes:
                    seen += [(e.deleted, e.kv.key, e.kv.value) for e in events]
                    if len(seen) >= 3:
                        break
        assert seen == [(False, b"/w/a", b"1"), (False, b"/w/b", b"2"), (True, b"/w/a", b"")]


async def test_a_quiet_watch_ends_cleanly_after_its_idle_timeout(etcd: EtcdProcess) -> None:
    async with EtcdClient([etcd.endpoint], watch_idle_timeout=0.3) as client:
        with trio.fail_after(10):
            async with client.watch(b"/quiet/", start_revision=1) as changes:
                assert [events async for events in changes] == []


def _unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def test_etcd_down_is_a_clear_error_naming_the_endpoint() -> None:
    endpoint = f"127.0.0.1:{_unused_port()}"
    async with EtcdClient([endpoint], request_timeout=2) as client:
        with trio.fail_after(10):
            with pytest.raises(EtcdUnavailable, match=f"etcd unreachable for /v3/kv/range .*{endpoint}"):
                await client.get(b"/k")
            with pytest.raises(EtcdUnavailable):
                async with client.watch(b"/", start_revision=1):
                    pass


async def test_a_dead_endpoint_is_skipped_for_a_live_one(etcd: EtcdProcess) -> None:
    async with EtcdClient([f"127.0.0.1:{_unused_port()}", etcd.endpoint]) as client:
        await client.put(b"/k", b"v")
        assert (await client.get(b"/k")).value == b"v"


async def _fake_gateway(body: bytes, task_status=trio.TASK_STATUS_IGNORED) -> None:
    """An HTTP server answering every request with ``body`` (status 200), then closing."""

    async def answer(stream: trio.SocketStream) -> None:
        async with stream:
            received = b""
            with trio.move_on_after(5):
                while b"\r\n\r\n" not in received:
                    received += await stream.receive_some(65536)
            await stream.send_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                                  b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body))

    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    task_status.started(listeners[0].socket.getsockname()[1])
    await trio.serve_listeners(answer, listeners)


@pytest.mark.parametrize("body, message", [
    (b"{not json", "not JSON"),
    (b"[1, 2]", "not an object"),
    (b'{"kvs": [{"key": "!!!", "value": ""}]}', "not valid base64"),
    (b'{"kvs": {"key": "YQ=="}}', "expected a JSON list"),
    (b'{"header": {"revision": "twelve"}}', "expected an integer"),
])
async def test_malformed_json_from_the_gateway_is_a_clear_error(body: bytes, message: str) -> None:
    async with trio.open_nursery() as nursery:
        port = await nursery.start(_fake_gateway, body)
        async with EtcdClient([f"127.0.0.1:{port}"], request_timeout=2) as client:
            with trio.fail_after(10), pytest.raises(EtcdProtocolError, match=message):
                await client.range(b"/k")
        nursery.cancel_scope.cancel()


async def test_a_malformed_watch_message_is_a_clear_error() -> None:
    async with trio.open_nursery() as nursery:
        port = await nursery.start(_fake_gateway, b'{"result": {"created": true}}\n{"result": oops}\n')
        async with EtcdClient([f"127.0.0.1:{port}"], request_timeout=2) as client:
            with trio.fail_after(10), pytest.raises(EtcdProtocolError, match="watch message that is not JSON"):
                async with client.watch(b"/", start_revision=1) as changes:
                    async for _ in changes:
                        pass
        nursery.cancel_scope.cancel()
