"""The push SDK's ``username=`` / ``password=`` (named as redis-py's) against dualmq and redis-server.

Both servers get the same users at run time through ACL SETUSER: ``default`` with a password,
and ``alice`` who may publish and subscribe to ``news.*`` only. Every test runs against both,
in RESP3 (credentials ride on HELLO) and RESP2 (a separate AUTH). Also ``dualmq publish`` /
``dualmq subscribe`` with ``--user`` / ``--password``.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest
import trio

from bench._common import BenchError, start_redis, stop_process
from dualmq.errors import AuthenticationError, ServerError
from dualmq.push import Message, Publisher, subscribe
from tests.support import broker_process, require_binary

TEST_TIMEOUT = 15.0
DEFAULT_PASSWORD = "sdk-default-pw"
ALICE_PASSWORD = "sdk-alice-pw"
PROTOCOLS = pytest.mark.parametrize("protocol", [3, 2], ids=["resp3", "resp2"])
SETUP = [
    ["ACL", "SETUSER", "alice", "on", ">" + ALICE_PASSWORD, "+@pubsub", "&news.*"],
    ["ACL", "SETUSER", "default", ">" + DEFAULT_PASSWORD],
]


def _configure(address: tuple[str, int]) -> None:
    with socket.create_connection(address, timeout=5) as sock:
        for words in SETUP:
            sock.sendall(b"*%d\r\n" % len(words) + b"".join(b"$%d\r\n%b\r\n" % (len(w), w.encode()) for w in words))
            assert sock.recv(100) == b"+OK\r\n"


@pytest.fixture(scope="module", params=["dualmq", "redis"])
def address(request, tmp_path_factory):
    workdir = tmp_path_factory.mktemp(request.param)
    if request.param == "dualmq":
        with broker_process(workdir) as broker:
            _configure(broker.resp)
            yield f"{broker.resp[0]}:{broker.resp[1]}"
        return
    require_binary("redis-server", "redis-server")
    try:
        process, port = start_redis(workdir, ["--save", "", "--appendonly", "no"])
    except BenchError as exc:
        pytest.fail(str(exc))
    try:
        _configure(("127.0.0.1", port))
        yield f"127.0.0.1:{port}"
    finally:
        stop_process(process)


@PROTOCOLS
async def test_user_publishes_and_subscribes_within_its_channels(address: str, protocol: int) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        async with subscribe(address, "news.today", protocol=protocol, username="alice",
                             password=ALICE_PASSWORD) as subscription:
            async with Publisher(address, protocol=protocol, username="alice", password=ALICE_PASSWORD) as pub:
                assert await pub.publish("news.today", "hello") == 1
                with pytest.raises(ServerError, match="NOPERM") as caught:
                    await pub.publish("sports", "x")
                assert not isinstance(caught.value, AuthenticationError)
            message = await subscription.receive()
            assert isinstance(message, Message) and message.data == b"hello"


@PROTOCOLS
async def test_default_password_alone(address: str, protocol: int) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        async with Publisher(address, protocol=protocol, password=DEFAULT_PASSWORD) as pub:
            assert await pub.publish("anything", "x") == 0
            assert await pub.execute("ACL", "WHOAMI") == b"default"


@PROTOCOLS
async def test_wrong_password_is_an_authentication_error(address: str, protocol: int) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        with pytest.raises(AuthenticationError, match="refused user 'alice'") as caught:
            async with Publisher(address, protocol=protocol, username="alice", password="nope"):
                pass
        assert "nope" not in str(caught.value)
        with pytest.raises(AuthenticationError):
            async with subscribe(address, "news.x", protocol=protocol, username="alice", password="nope"):
                pass


@PROTOCOLS
async def test_missing_credentials_are_an_authentication_error(address: str, protocol: int) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        with pytest.raises(AuthenticationError, match="requires a password"):
            async with Publisher(address, protocol=protocol) as pub:
                await pub.publish("news.x", "y")


def test_a_username_needs_a_password() -> None:
    with pytest.raises(ValueError, match="needs a password"):
        Publisher("127.0.0.1:6379", username="alice")


def _dualmq(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dualmq", *args], capture_output=True, text=True, timeout=30,
                          stdin=subprocess.DEVNULL)


def test_cli_publish_with_user_and_password(address: str) -> None:
    allowed = _dualmq("publish", "--resp", address, "--user", "alice", "--password", ALICE_PASSWORD, "news.a", "x")
    assert allowed.returncode == 0 and "delivered to 0 subscribers" in allowed.stdout, allowed.stderr
    denied = _dualmq("publish", "--resp", address, "--user", "alice", "--password", ALICE_PASSWORD, "sport", "x")
    assert denied.returncode == 1 and "NOPERM" in denied.stderr
    wrong = _dualmq("publish", "--resp", address, "--user", "alice", "--password", "nope", "news.a", "x")
    assert wrong.returncode == 1 and "refused user 'alice'" in wrong.stderr and "nope" not in wrong.stderr
    missing = _dualmq("publish", "--resp", address, "news.a", "x")
    assert missing.returncode == 1 and "requires a password" in missing.stderr


def test_cli_password_from_the_environment(address: str) -> None:
    result = subprocess.run([sys.executable, "-m", "dualmq", "publish", "--resp", address, "any", "x"],
                            capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL,
                            env={**os.environ, "REDISCLI_AUTH": DEFAULT_PASSWORD})
    assert result.returncode == 0, result.stderr
