"""redis-py's Redis 7 commands against dualmq and redis-server: the same calls, the same results.

redis-py is a client nobody here wrote. Each test runs one script of its API calls against a
real redis-server and against dualmq, in RESP2 and RESP3, and requires equal results: what
redis-py parsed (sharded pub/sub messages, CONFIG maps, COMMAND's introspection dicts) or
the error it raised. A result that differs only in where Redis's order is random is sorted.
"""

from __future__ import annotations

import time

import pytest

from tests.interop.differential import reset_servers, servers_for
from tests.support import require_module

redis = require_module("redis", "redis")

pytestmark = pytest.mark.interop

TIMEOUT = 5.0
PROTOCOLS = pytest.mark.parametrize("protocol", [2, 3], ids=["resp2", "resp3"])


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    with servers_for(tmp_path_factory.mktemp("redis-py-commands")) as running:
        yield running


@pytest.fixture
def on_both(servers):
    """Run ``script(connect)`` against each server; returns {"redis": result, "dualmq": result}."""
    made = []

    def run(script, protocol: int) -> dict:
        results = {}
        for side, (host, port) in (("redis", servers.redis), ("dualmq", servers.dualmq)):
            def connect() -> redis.Redis:
                client = redis.Redis(host=host, port=port, protocol=protocol, socket_timeout=TIMEOUT,
                                     socket_connect_timeout=TIMEOUT)
                made.append(client)
                return client
            results[side] = script(connect)
        return results

    yield run
    for client in made:
        client.close()
    reset_servers(servers)


def _outcome(call):
    """A call's result, or the text of the error redis-py raised for it."""
    try:
        return call()
    except redis.RedisError as exc:
        return f"{type(exc).__name__}: {exc}"


@PROTOCOLS
def test_keyspace_and_select(on_both, protocol) -> None:
    def script(connect):
        r = connect()
        return [
            r.flushall(), r.flushall(asynchronous=True), r.flushdb(), r.flushdb(asynchronous=True), r.dbsize(),
            r.execute_command("SELECT", 15), _outcome(lambda: r.execute_command("SELECT", 16)), r.dbsize(),
        ]

    results = on_both(script, protocol)
    assert results["dualmq"] == results["redis"]
    assert results["dualmq"][4] == 0


@PROTOCOLS
def test_config_get_set_resetstat(on_both, protocol) -> None:
    def script(connect):
        r = connect()
        return [
            r.config_get("timeout"), r.config_set("timeout", 7, "maxclients", 100), r.config_get("timeout"),
            r.config_get("maxclients"), r.config_get("client-output-buffer-limit"),
            r.config_set("client-output-buffer-limit", "pubsub 1mb 256kb 10"),
            r.config_get("client-output-buffer-limit"), r.config_get("no-such-setting"),
            _outcome(lambda: r.config_set("no-such-setting", 1)), _outcome(lambda: r.config_set("timeout", -1)),
            r.config_resetstat(), r.config_set("timeout", 0, "maxclients", 10000),
        ]

    results = on_both(script, protocol)
    assert results["dualmq"] == results["redis"]
    assert results["dualmq"][6] == {"client-output-buffer-limit":
                                    "normal 0 0 0 slave 268435456 67108864 60 pubsub 1048576 262144 10"}


@PROTOCOLS
def test_client_switches_and_pause(on_both, protocol) -> None:
    def script(connect):
        r, other = connect(), connect()
        r.ping()
        other.ping()
        before = time.monotonic()
        paused = r.client_pause(300, all=False)
        # A write waits for the pause to end; a read does not.
        read = other.pubsub_numpat()
        write = other.publish("nobody", "x")
        waited = time.monotonic() - before >= 0.25
        return [r.client_no_evict("on"), r.client_no_evict("off"), paused, read, write, waited,
                r.client_pause(100000, all=False), r.client_unpause(), r.client_unblock(other.client_id()),
                _outcome(lambda: r.execute_command("CLIENT", "PAUSE", "x"))]

    results = on_both(script, protocol)
    assert results["dualmq"] == results["redis"]
    assert results["dualmq"][5] is True


@PROTOCOLS
def test_sharded_pubsub(on_both, protocol) -> None:
    def script(connect):
        r, publisher = connect(), connect()
        pubsub = r.pubsub()
        pubsub.ssubscribe("shard-a", "shard-b")
        confirmations = [pubsub.get_sharded_message(timeout=TIMEOUT) for _ in range(2)]
        counts = [publisher.spublish("shard-a", "one"), publisher.publish("shard-a", "plain"),
                  publisher.spublish("shard-c", "nobody")]
        message = pubsub.get_sharded_message(ignore_subscribe_messages=True, timeout=TIMEOUT)
        shardnumsub = publisher.pubsub_shardnumsub("shard-a", "shard-b", "shard-c")
        shardchannels = sorted(publisher.pubsub_shardchannels("shard-*"))
        pubsub.sunsubscribe("shard-b")
        left = pubsub.get_sharded_message(timeout=TIMEOUT)
        pubsub.close()
        return [confirmations, counts, message, shardnumsub, shardchannels, left]

    results = on_both(script, protocol)
    assert results["dualmq"] == results["redis"]
    assert results["dualmq"][2] == {"type": "smessage", "pattern": None, "channel": b"shard-a", "data": b"one"}
    assert results["dualmq"][1] == [1, 0, 0]


# The commands whose COMMAND INFO entries are Redis's own (the CLIENT container lists fewer
# subcommands than Redis's, see test_redis_differential.py).
INTROSPECTED = ["ping", "echo", "hello", "select", "publish", "spublish", "subscribe", "ssubscribe",
                "sunsubscribe", "pubsub", "flushall", "flushdb", "dbsize", "config", "command", "shutdown", "info"]


@PROTOCOLS
def test_command_introspection(on_both, protocol) -> None:
    def script(connect):
        r = connect()
        table = r.command()
        return [
            {name: table[name] for name in INTROSPECTED},
            sorted(r.command_list(pattern="pubsub*")), sorted(r.command_list(category="pubsub")),
            _outcome(lambda: r.command_getkeys("publish", "a", "b")),
            _outcome(lambda: r.command_getkeys("nosuch", "a")),
        ]

    results = on_both(script, protocol)
    # redis-py keeps subcommands as Redis lists them (in random hash order): compare them sorted.
    for result in results.values():
        for entry in result[0].values():
            if entry.get("subcommands"):
                entry["subcommands"] = sorted(entry["subcommands"], key=repr)
    assert results["dualmq"] == results["redis"]
    assert results["dualmq"][0]["publish"]["arity"] == 3
