"""Push mode in a three-broker cluster, driven by redis-cli and redis-py (docs/cluster.md#push-mode-in-a-cluster).

What the slice promises, as Redis Cluster's pub/sub: a PUBLISH on any broker reaches the
subscribers of every broker, once, and its reply counts the receiving broker's own; a shard
channel lives on the broker owning its slot, the others answer MOVED (which ``redis-cli -c``
and redis-py's ``RedisCluster`` follow); the commands between brokers refuse ordinary
clients; a killed broker's subscribers lose their connection while the others keep
delivering, and what is forwarded to the dead broker is dropped and counted.

The cluster runs with ``requirepass``, so forwarding is checked not to need (nor open) the
clients' password. One cluster for the module, tests in file order: the kill is last.
"""

from __future__ import annotations

import os
import select
import socket
import subprocess
import time

import pytest

from broker.cluster.slots import key_slot, owner, split_slots
from dualmq.process import BrokerCluster
from tests.interop.cluster_support import cluster_workdir, etcd  # noqa: F401  (fixtures)
from tests.support import require_binary, require_module

pytestmark = [pytest.mark.interop, pytest.mark.timeout(90)]

redis = require_module("redis", "redis")
from redis.backoff import NoBackoff  # noqa: E402
from redis.retry import Retry  # noqa: E402

LEASE_TTL_S = 2
PASSWORD = "push-cluster-pw"
TIMEOUT = 5.0


def client(broker, **options) -> redis.Redis:
    host, port = broker.resp
    return redis.Redis(host=host, port=port, password=PASSWORD, socket_timeout=TIMEOUT,
                       socket_connect_timeout=TIMEOUT, **options)


def cluster_info(broker) -> dict:
    with client(broker) as r:
        return r.info("cluster")


def wait_until(predicate, what: str, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


@pytest.fixture(scope="module")
def cluster(cluster_workdir, etcd):
    workdir = cluster_workdir
    config = workdir / "cluster.toml"
    config.write_text(f'[cluster]\nlease_ttl_seconds = {LEASE_TTL_S}\n[resp]\nrequirepass = "{PASSWORD}"\n')
    with BrokerCluster(workdir, etcd.endpoint, 3, "--config", str(config)) as running:
        for broker in running.brokers:
            wait_until(lambda: cluster_info(broker)["forward_peers_connected"] == 2,
                       f"{broker} to link to both other brokers")
        yield running


def cli(broker, *args: str, follow: bool = False) -> str:
    binary = require_binary("redis-cli", "redis-tools")
    host, port = broker.resp
    command = [binary, "-h", host, "-p", str(port), "-a", PASSWORD, "--no-auth-warning", *(["-c"] if follow else []),
               *args]
    result = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT, stdin=subprocess.DEVNULL)
    return (result.stdout + result.stderr).strip()


class Lines:
    """A subprocess's output, line by line, every wait bounded (select on the raw descriptor:
    a buffered reader would hide lines it has already read from select)."""

    def __init__(self, process: subprocess.Popen) -> None:
        self.fd = process.stdout.fileno()
        self.buffer = b""

    def next(self, deadline: float) -> str:
        while b"\n" not in self.buffer:
            ready, _, _ = select.select([self.fd], [], [], max(0.0, deadline - time.monotonic()))
            assert ready, f"redis-cli printed nothing in time (so far: {self.buffer!r})"
            chunk = os.read(self.fd, 65536)
            assert chunk, f"redis-cli ended (so far: {self.buffer!r})"
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        return line.decode().strip()


def messages(pubsub, count: int, getter: str = "get_message") -> list[dict]:
    """The next ``count`` deliveries of a redis-py PubSub (confirmations skipped)."""
    found: list[dict] = []
    deadline = time.monotonic() + TIMEOUT
    while len(found) < count and time.monotonic() < deadline:
        message = getattr(pubsub, getter)(timeout=0.2)
        if message is not None and message["type"] in ("message", "pmessage", "smessage"):
            found.append(message)
    return found


def subscribed(pubsub, getter: str = "get_message") -> None:
    """Wait for a redis-py PubSub's subscription confirmation."""
    wait_until(lambda: (m := getattr(pubsub, getter)(timeout=0.2)) is not None and "subscribe" in m["type"],
               "the subscription's confirmation")


def test_publish_on_one_broker_reaches_subscribers_of_every_broker_once(cluster):
    binary = require_binary("redis-cli", "redis-tools")
    subscribers = []
    for node in (1, 2, 3):
        pubsub = client(cluster.node(node)).pubsub()
        pubsub.subscribe("news")
        subscribed(pubsub)
        subscribers.append(pubsub)
    patterns = client(cluster.node(1)).pubsub()
    patterns.psubscribe("ne*")
    subscribed(patterns)
    host, port = cluster.node(3).resp
    cli_subscriber = subprocess.Popen(
        ["stdbuf", "-oL", binary, "-h", host, "-p", str(port), "-a", PASSWORD, "--no-auth-warning", "SUBSCRIBE",
         "news"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    output = Lines(cli_subscriber)
    try:
        deadline = time.monotonic() + TIMEOUT
        lines = [output.next(deadline) for _ in range(3)]
        assert lines == ["subscribe", "news", "1"]
        # Redis Cluster's PUBLISH answers the receiving node's own receivers: one on node 2.
        assert cli(cluster.node(2), "PUBLISH", "news", "first") == "1"
        with client(cluster.node(2)) as publisher:
            assert [publisher.publish("news", f"m{i}") for i in range(4)] == [1, 1, 1, 1]
        expected = [b"first", b"m0", b"m1", b"m2", b"m3"]
        for pubsub in [*subscribers, patterns]:
            assert [m["data"] for m in messages(pubsub, 5)] == expected
            assert pubsub.get_message(timeout=0.3) is None  # once: nothing more comes
        printed = [output.next(deadline) for _ in range(3 * len(expected))]
        assert printed[2::3] == [m.decode() for m in expected]
        assert printed[0::3] == ["message"] * len(expected)
    finally:
        cli_subscriber.kill()
        cli_subscriber.communicate(timeout=TIMEOUT)
        for pubsub in [*subscribers, patterns]:
            pubsub.close()
    stats = cluster_info(cluster.node(2))
    assert stats["forwarded_out"] >= 5 and stats["forward_dropped"] == 0
    assert cluster_info(cluster.node(3))["forwarded_in"] >= 5


def shard_owner(cluster, channel: str):
    holder = owner(key_slot(channel.encode()), split_slots([1, 2, 3]))
    others = [cluster.node(n) for n in (1, 2, 3) if n != holder]
    return cluster.node(holder), others


def test_spublish_to_another_broker_answers_moved_and_redis_cli_c_follows(cluster):
    channel = "orders"
    slot = key_slot(channel.encode())
    home, (wrong, _) = shard_owner(cluster, channel)
    assert cli(wrong, "SPUBLISH", channel, "x") == f"MOVED {slot} {home.resp_address}"
    with client(wrong) as r, pytest.raises(redis.exceptions.ResponseError) as refused:
        r.execute_command("SSUBSCRIBE", channel)
    assert f"{slot} {home.resp_address}" in str(refused.value)
    with client(home) as r, pytest.raises(redis.exceptions.ResponseError, match="don't hash to the same slot"):
        r.execute_command("SSUBSCRIBE", channel, "{other}tag")
    subscriber = client(home).pubsub()
    try:
        subscriber.ssubscribe(channel)
        subscribed(subscriber, "get_sharded_message")
        # Followed to the owner: one receiver there. Nothing goes to other brokers' subscribers.
        assert cli(wrong, "SPUBLISH", channel, "followed", follow=True) == "1"
        [message] = messages(subscriber, 1, "get_sharded_message")
        assert (message["type"], message["data"]) == ("smessage", b"followed")
    finally:
        subscriber.close()


def test_redis_py_redis_cluster_ssubscribes_and_spublishes_through_the_slot_map(cluster):
    rc = redis.RedisCluster(host=cluster.node(1).resp[0], port=cluster.node(1).resp[1], password=PASSWORD,
                            socket_timeout=TIMEOUT, socket_connect_timeout=TIMEOUT)
    try:
        slots = rc.cluster_slots()
        assert sorted((start, end) for start, end in slots) == [(0, 5460), (5461, 10922), (10923, 16383)]
        channels = ["alpha", "beta", "gamma", "{user1000}.feed"]
        for channel in channels:
            home, _ = shard_owner(cluster, channel)
            assert rc.get_node_from_key(channel).port == home.resp[1]
            assert rc.keyslot(channel) == key_slot(channel.encode())
            pubsub = rc.pubsub()
            try:
                pubsub.ssubscribe(channel)
                subscribed(pubsub, "get_sharded_message")
                assert rc.spublish(channel, f"to-{channel}") == 1
                [message] = messages(pubsub, 1, "get_sharded_message")
                assert message["data"] == f"to-{channel}".encode()
            finally:
                pubsub.close()
    finally:
        rc.close()
    with client(cluster.node(2)) as r:
        assert r.execute_command("CLUSTER", "MYID") == f"{2:040x}".encode()
        assert r.execute_command("CLUSTER", "KEYSLOT", "foo") == 12182
        info = r.execute_command("CLUSTER", "INFO")
        assert b"cluster_state:ok" in info and b"cluster_known_nodes:3" in info
        nodes = r.execute_command("CLUSTER", "NODES")
        assert b"myself,master" in nodes and nodes.count(b"master") == 3
    # CLUSTER SHARDS as redis-cli prints it: each shard's slot range and its one node.
    shards = cli(cluster.node(3), "CLUSTER", "SHARDS").splitlines()
    assert shards.count("slots") == 3 and shards.count("master") == 3
    for node in (1, 2, 3):
        assert f"{node:040x}" in shards and str(cluster.node(node).resp[1]) in shards
    assert ["0", "5460"] == shards[shards.index("slots") + 1:shards.index("slots") + 3]


def test_internal_forwarding_commands_refuse_ordinary_clients_and_disturb_nobody(cluster):
    target = cluster.node(1)
    subscriber = client(target).pubsub()
    subscriber.subscribe("guarded")
    subscribed(subscriber)
    try:
        with client(target) as r:
            with pytest.raises(redis.exceptions.ResponseError, match="for the cluster's brokers only"):
                r.execute_command("DUALMQ.FORWARD", "guarded", "forged")
            with pytest.raises(redis.exceptions.ResponseError, match="wrong number of arguments"):
                r.execute_command("DUALMQ.FORWARD", "guarded")
        # Without the password: refused the same way (nothing delivered), and PUBLISH needs AUTH.
        host, port = target.resp
        with socket.create_connection((host, port), timeout=TIMEOUT) as raw:
            raw.sendall(b"DUALMQ.FORWARD guarded forged\r\nPUBLISH guarded forged\r\n")
            answer = b""
            while answer.count(b"\r\n") < 2:
                chunk = raw.recv(4096)
                assert chunk, answer
                answer += chunk
            assert answer == (b"-ERR DUALMQ.FORWARD is for the cluster's brokers only (see DUALMQ.PEER)\r\n"
                              b"-NOAUTH Authentication required.\r\n")
        # A wrong secret: refused, and that connection is closed.
        with socket.create_connection((host, port), timeout=TIMEOUT) as raw:
            raw.sendall(b"*3\r\n$11\r\nDUALMQ.PEER\r\n$1\r\n9\r\n$5\r\nguess\r\n")
            raw.sendall(b"*3\r\n$14\r\nDUALMQ.FORWARD\r\n$7\r\nguarded\r\n$6\r\nforged\r\n")
            answer = b""
            while chunk := raw.recv(4096):
                answer += chunk
            assert answer == b"-ERR DUALMQ.PEER: wrong cluster secret\r\n"
        # A malformed frame: a protocol error for that connection alone.
        with socket.create_connection((host, port), timeout=TIMEOUT) as raw:
            raw.sendall(b"*3\r\n$14\r\nDUALMQ.FORWARD\r\n$-7\r\n")
            assert raw.recv(4096).startswith(b"-ERR Protocol error")
        assert subscriber.get_message(timeout=0.3) is None
        assert cli(cluster.node(3), "PUBLISH", "guarded", "genuine") == "0"
        assert [m["data"] for m in messages(subscriber, 1)] == [b"genuine"]
    finally:
        subscriber.close()


def test_a_killed_broker_drops_its_subscribers_and_the_others_keep_delivering(cluster):
    survivors = [client(cluster.node(n)).pubsub() for n in (1, 2)]
    # No retries: redis-py would otherwise try to reconnect to the dead broker for a while.
    doomed = client(cluster.node(3), retry=Retry(NoBackoff(), 0)).pubsub()
    for pubsub in [*survivors, doomed]:
        pubsub.subscribe("after")
        subscribed(pubsub)
    try:
        cluster.node(3).kill()
        with client(cluster.node(1)) as publisher:
            # Until its lease expires the dead broker is still in the view: what is forwarded
            # to it is dropped, and counted.
            sent = []

            def dropped() -> bool:
                sent.append(f"m{len(sent)}")
                assert publisher.publish("after", sent[-1]) == 1
                return cluster_info(cluster.node(1))["forward_dropped"] > 0

            wait_until(dropped, "a forward to the dead broker to be dropped")
            for pubsub in survivors:
                assert [m["data"].decode() for m in messages(pubsub, len(sent))] == sent
        with pytest.raises(redis.exceptions.ConnectionError):
            doomed.get_message(timeout=TIMEOUT)
        # Once its lease has expired it leaves the view: the link goes, the count stays, and
        # the slots are split over the two survivors.
        wait_until(lambda: cluster_info(cluster.node(1))["forward_peers"] == 1, "the dead peer to leave")
        assert cluster_info(cluster.node(1))["forward_dropped"] > 0
        with client(cluster.node(1)) as r:
            assert sorted((s[0], s[1]) for s in r.execute_command("CLUSTER", "SLOTS")) == [(0, 8191), (8192, 16383)]
    finally:
        for pubsub in [*survivors, doomed]:
            pubsub.close()
