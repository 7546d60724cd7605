"""redis-cli and redis-benchmark (Debian redis-tools) against dualmq's push mode."""

from __future__ import annotations

import subprocess
import time

import pytest

from tests.support import RawClient, broker_process, require_binary

TIMEOUT = 30


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    with broker_process(tmp_path_factory.mktemp("redis-tools")) as running:
        yield running


def cli(broker, *args: str) -> subprocess.CompletedProcess:
    binary = require_binary("redis-cli", "redis-tools")
    return subprocess.run([binary, "-h", broker.resp[0], "-p", str(broker.resp[1]), *args],
                          capture_output=True, text=True, timeout=TIMEOUT, stdin=subprocess.DEVNULL)


def test_redis_cli_publish_with_no_subscriber(broker) -> None:
    result = cli(broker, "--no-raw", "PUBLISH", "ch", "hi")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "(integer) 0"


def test_redis_cli_ping_and_resp3_hello(broker) -> None:
    assert cli(broker, "PING").stdout.strip() == "PONG"
    result = cli(broker, "-3", "--no-raw", "HELLO", "3")
    assert result.returncode == 0, result.stderr
    assert "proto" in result.stdout


def test_redis_cli_unknown_command_error_text(broker) -> None:
    result = cli(broker, "SET", "k", "v")
    assert "unknown command 'SET', with args beginning with: 'k' 'v'" in result.stdout + result.stderr


@pytest.mark.parametrize("resp3", [False, True], ids=["resp2", "resp3"])
def test_redis_cli_subscribe_receives_a_published_message(broker, resp3: bool) -> None:
    binary = require_binary("redis-cli", "redis-tools")
    # redis-cli block-buffers stdout into a pipe; stdbuf makes it line-buffered so we can
    # watch the subscription arrive.
    args = ["stdbuf", "-oL", binary, "-h", broker.resp[0], "-p", str(broker.resp[1])]
    if resp3:
        args.append("-3")
    subscriber = subprocess.Popen([*args, "SUBSCRIBE", "cli-ch"], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
    lines: list[str] = []
    try:
        deadline = time.monotonic() + TIMEOUT
        # redis-cli prints the confirmation: subscribe / cli-ch / 1
        while "1" not in lines:
            assert time.monotonic() < deadline, f"redis-cli never subscribed: {lines}"
            lines.append(subscriber.stdout.readline().strip())
        with RawClient(broker.resp) as publisher:
            publisher.send(b"PUBLISH cli-ch hello-from-dualmq\r\n")
            publisher.expect(b":1\r\n")
        while "hello-from-dualmq" not in lines:
            assert time.monotonic() < deadline, f"message never printed: {lines}"
            lines.append(subscriber.stdout.readline().strip())
    finally:
        subscriber.kill()
        subscriber.communicate(timeout=TIMEOUT)
    assert lines[-3:] == ["message", "cli-ch", "hello-from-dualmq"]


def test_redis_benchmark_publish_pipelined(broker) -> None:
    binary = require_binary("redis-benchmark", "redis-tools")
    result = subprocess.run(
        [binary, "-h", broker.resp[0], "-p", str(broker.resp[1]), "-n", "100000", "-P", "16",
         "-c", "50", "-q", "PUBLISH", "ch", "payload"],
        capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Error" not in result.stdout + result.stderr
    assert "requests per second" in result.stdout


def test_redis_benchmark_ping(broker) -> None:
    binary = require_binary("redis-benchmark", "redis-tools")
    result = subprocess.run(
        [binary, "-h", broker.resp[0], "-p", str(broker.resp[1]), "-n", "20000", "-c", "10", "-q",
         "-t", "ping"],
        capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "PING_INLINE" in result.stdout and "PING_MBULK" in result.stdout
