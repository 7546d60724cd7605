"""redis-py (RESP3 by default since 8.0, and protocol=2) against dualmq's push mode.

redis-py is a client nobody here wrote: if it works unchanged, push mode speaks Redis.
"""

from __future__ import annotations

import time

import pytest

from tests.support import broker_process, require_module

redis = require_module("redis", "redis")

TIMEOUT = 5.0


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    with broker_process(tmp_path_factory.mktemp("redis-py")) as running:
        yield running


@pytest.fixture(params=[3, 2], ids=["resp3", "resp2"])
def connect(request, broker):
    made = []

    def make():
        client = redis.Redis(host=broker.resp[0], port=broker.resp[1], protocol=request.param,
                             socket_timeout=TIMEOUT, socket_connect_timeout=TIMEOUT)
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


def next_message(pubsub, timeout: float = TIMEOUT):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        message = pubsub.get_message(timeout=0.2)
        if message is not None:
            return message
    raise AssertionError("no message within timeout")


def test_ping_echo_hello(connect) -> None:
    client = connect()
    assert client.ping() is True
    assert client.echo(b"hi") == b"hi"


def test_publish_without_subscriber_returns_zero(connect) -> None:
    assert connect().publish("nobody-listens", "gone") == 0


def test_subscribe_publish_unsubscribe_round_trip(connect) -> None:
    publisher, subscriber = connect(), connect()
    pubsub = subscriber.pubsub()
    pubsub.subscribe("news")
    confirmation = next_message(pubsub)
    assert confirmation["type"] == "subscribe" and confirmation["channel"] == b"news"
    assert confirmation["data"] == 1
    assert publisher.publish("news", "hello") == 1
    message = next_message(pubsub)
    assert (message["type"], message["channel"], message["data"]) == ("message", b"news", b"hello")
    pubsub.unsubscribe("news")
    assert next_message(pubsub)["type"] == "unsubscribe"
    assert publisher.publish("news", "after") == 0
    pubsub.close()


def test_pattern_and_channel_receivers_are_counted_like_redis(connect) -> None:
    publisher, subscriber = connect(), connect()
    pubsub = subscriber.pubsub()
    pubsub.subscribe("ch1")
    pubsub.psubscribe("c*", "ch?")
    for _ in range(3):
        next_message(pubsub)
    # One frame for the channel and one per matching pattern: Redis counts 3.
    assert publisher.publish("ch1", "m1") == 3
    kinds = sorted((m["type"], m["pattern"]) for m in (next_message(pubsub) for _ in range(3)))
    assert kinds == [("message", None), ("pmessage", b"c*"), ("pmessage", b"ch?")]
    pubsub.close()


def test_pubsub_introspection(connect) -> None:
    admin, subscriber = connect(), connect()
    pubsub = subscriber.pubsub()
    pubsub.subscribe("intro-a", "intro-b")
    pubsub.psubscribe("intro-*")
    for _ in range(3):
        next_message(pubsub)
    channels = admin.pubsub_channels("intro-*")
    assert sorted(channels) == [b"intro-a", b"intro-b"]
    assert admin.pubsub_numsub("intro-a", "intro-zzz") == [(b"intro-a", 1), (b"intro-zzz", 0)]
    assert admin.pubsub_numpat() >= 1
    pubsub.close()


def test_messages_from_one_publisher_arrive_in_order(connect) -> None:
    publisher, subscriber = connect(), connect()
    pubsub = subscriber.pubsub()
    pubsub.subscribe("ordered")
    next_message(pubsub)
    pipe = publisher.pipeline(transaction=False)
    for i in range(2000):
        pipe.publish("ordered", str(i))
    assert pipe.execute() == [1] * 2000
    received = [int(next_message(pubsub)["data"]) for _ in range(2000)]
    assert received == list(range(2000))
    pubsub.close()


def test_keyspace_commands_are_unknown(connect) -> None:
    client = connect()
    with pytest.raises(redis.ResponseError, match="unknown command 'GET'"):
        client.get("k")


def test_client_commands(connect) -> None:
    client = connect()
    assert client.client_setname("learner") is True
    assert client.client_getname() in ("learner", b"learner")
    client_id = client.client_id()
    assert isinstance(client_id, int) and client_id > 0
    listing = client.client_list()
    assert any(entry["name"] == "learner" for entry in listing)


def test_info_has_pubsub_counters_and_dualmq_section(connect) -> None:
    info = connect().info("all")
    assert info["redis_mode"] == "standalone"
    assert "pubsub_channels" in info
    assert info["mode"] == "push"
    assert info["messages_published"] >= 0


def test_config_get_reports_real_limits(connect) -> None:
    config = connect().config_get("client-output-buffer-limit")
    assert "pubsub 33554432 8388608 60" in config["client-output-buffer-limit"]
