"""SHUTDOWN through redis-cli: dualmq stops as redis-server does, where its operator allows it.

The same ``redis-cli SHUTDOWN`` is run against a real redis-server and against ``dualmq serve``
with ``[resp] enable_shutdown = true``: redis-cli must show the same thing and exit the same
way (the server closes the connection without a reply, which redis-cli takes as success),
every other client must see its connection closed, and the server process must exit 0 —
for dualmq after its clean stop (logs flushed, ``broker_stopped`` logged). Without the
setting, SHUTDOWN is refused and the broker keeps serving.
"""

from __future__ import annotations

import socket
import subprocess

import pytest

from bench._common import start_redis, stop_process
from tests.support import RawClient, broker_process, require_binary

pytestmark = pytest.mark.interop

TIMEOUT = 15


def _redis_cli(port: int, *args: str) -> subprocess.CompletedProcess:
    binary = require_binary("redis-cli", "redis-tools")
    return subprocess.run([binary, "-h", "127.0.0.1", "-p", str(port), *args], capture_output=True,
                          text=True, timeout=TIMEOUT, stdin=subprocess.DEVNULL)


def _subscriber(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
    sock.sendall(b"SUBSCRIBE bystander\r\n")
    expected = b"*3\r\n$9\r\nsubscribe\r\n$9\r\nbystander\r\n:1\r\n"
    received = b""
    while len(received) < len(expected):
        received += sock.recv(4096)
    assert received == expected
    return sock


def _closed_without_a_word(sock: socket.socket) -> bool:
    try:
        return sock.recv(4096) == b""
    except ConnectionResetError:
        return True
    finally:
        sock.close()


def _shutdown_seen_by_redis_cli(port: int, process: subprocess.Popen) -> tuple:
    bystander = _subscriber(port)
    result = _redis_cli(port, "SHUTDOWN")
    exit_status = process.wait(TIMEOUT)
    return result.returncode, result.stdout, result.stderr, exit_status, _closed_without_a_word(bystander)


def test_redis_cli_shutdown_stops_dualmq_as_it_stops_redis(tmp_path) -> None:
    require_binary("redis-server", "redis-server")
    (tmp_path / "redis").mkdir()
    redis, redis_port = start_redis(tmp_path / "redis", ["--save", "", "--appendonly", "no"])
    try:
        from_redis = _shutdown_seen_by_redis_cli(redis_port, redis)
    finally:
        stop_process(redis)
    config = tmp_path / "dualmq.toml"
    config.write_text("[resp]\nenable_shutdown = true\n")
    with broker_process(tmp_path, "--config", str(config)) as broker:
        from_dualmq = _shutdown_seen_by_redis_cli(broker.resp[1], broker.process)
        events = [line.get("event") for line in broker.log_lines()]
    assert from_redis == (0, "", "", 0, True)
    assert from_dualmq == from_redis
    assert "shutdown_requested" in events and "broker_stopped" in events


def test_shutdown_with_options_closes_the_connection_without_a_reply(tmp_path) -> None:
    config = tmp_path / "dualmq.toml"
    config.write_text("[resp]\nenable_shutdown = true\n")
    with broker_process(tmp_path, "--config", str(config)) as broker:
        with RawClient(broker.resp, timeout=TIMEOUT) as client:
            client.send(b"SHUTDOWN FOO\r\nSHUTDOWN ABORT\r\nSHUTDOWN NOSAVE NOW FORCE\r\nPING\r\n")
            # Errors for the first two; nothing for the stop, nor for what came after it.
            assert client.read_until_closed() == b"-ERR syntax error\r\n-ERR No shutdown in progress.\r\n"
        assert broker.process.wait(TIMEOUT) == 0


def test_shutdown_is_refused_by_default(tmp_path) -> None:
    with broker_process(tmp_path) as broker:
        result = _redis_cli(broker.resp[1], "SHUTDOWN")
        assert "ERR SHUTDOWN is disabled: set enable_shutdown = true" in result.stdout + result.stderr
        assert _redis_cli(broker.resp[1], "PING").stdout.strip() == "PONG"
        assert broker.running
