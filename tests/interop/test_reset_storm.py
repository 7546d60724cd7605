"""A storm of connections reset by their peers, on both ports of a real ``dualmq serve``.

Thousands of clients that connect and reset at once (SO_LINGER {1, 0}, then close: the kernel
sends RST instead of FIN) leave the listen queue full of connections that are already dead
when the broker accepts them: ``getpeername`` then fails with ENOTCONN. That must close those
connections quietly — before the shared listener prologue, it escaped the push-mode accept
path and stopped both listeners and the broker. Afterwards redis-cli must still get PONG and
kafka-python (and a raw request) a Metadata answer.
"""

from __future__ import annotations

import socket
import struct
import subprocess

import pytest

from tests.support import KAFKA_PYTHON_NOISE, RawClient, broker_process, require_binary, require_module
from wire.kafka import codec
from wire.kafka.framing import decode_response_header, encode_request
from wire.kafka.messages.metadata import METADATA

pytestmark = [
    pytest.mark.interop,
    *KAFKA_PYTHON_NOISE,
]

STORM_CONNECTIONS = 2000
TIMEOUT = 10.0
RESET_ON_CLOSE = struct.pack("ii", 1, 0)  # SO_LINGER on, 0 s: close() sends RST


def reset_storm(address: tuple[str, int], count: int) -> None:
    """Open ``count`` connections without waiting for them, then reset them all at once."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket()
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, RESET_ON_CLOSE)
            sock.setblocking(False)
            sock.connect_ex(address)  # 0 or EINPROGRESS: either way, reset it below
    finally:
        for sock in sockets:
            sock.close()


def raw_metadata(address: tuple[str, int]) -> dict:
    """One Metadata v1 request (all topics) over a blocking socket."""
    body = codec.encode(METADATA.request, 1, {"topics": None})
    with socket.create_connection(address, timeout=TIMEOUT) as sock:
        sock.sendall(encode_request(3, 1, 7, "storm", body, flexible_header=False))
        data = b""
        while len(data) < 4 or len(data) < 4 + int.from_bytes(data[:4], "big"):
            chunk = sock.recv(65536)
            assert chunk, "connection closed"
            data += chunk
    correlation_id, at = decode_response_header(data[4:], False)
    assert correlation_id == 7
    return codec.decode(METADATA.response, 1, data[4 + at:])


def info_fields(address: tuple[str, int]) -> dict[str, str]:
    with RawClient(address, timeout=TIMEOUT) as client:
        client.send(b"INFO\r\n")
        header = b""
        while not header.endswith(b"\r\n"):
            header += client.read_exactly(1)
        text = client.read_exactly(int(header[1:-2]) + 2).decode()
    return dict(line.split(":", 1) for line in text.splitlines() if ":" in line and not line.startswith("#"))


def test_reset_storm_on_both_ports_leaves_the_broker_serving(tmp_path) -> None:
    redis_cli = require_binary("redis-cli", "redis-tools")
    kafka = require_module("kafka", "kafka-python")
    with broker_process(tmp_path) as broker:
        reset_storm(broker.resp, STORM_CONNECTIONS)
        reset_storm(broker.kafka, STORM_CONNECTIONS)

        ping = subprocess.run([redis_cli, "-h", broker.resp[0], "-p", str(broker.resp[1]), "PING"],
                              capture_output=True, text=True, timeout=TIMEOUT, stdin=subprocess.DEVNULL)
        assert ping.stdout.strip() == "PONG", (ping.stdout, ping.stderr, broker.log_path.read_text()[-2000:])
        assert broker.process.poll() is None

        metadata = raw_metadata(broker.kafka)
        assert [(b["host"], b["port"]) for b in metadata["brokers"]] == [broker.kafka]

        admin = kafka.KafkaAdminClient(bootstrap_servers=broker.kafka_address, request_timeout_ms=10000)
        try:
            admin.create_topics([kafka.admin.NewTopic("after-the-storm", 1, 1)])
            assert "after-the-storm" in admin.list_topics()
        finally:
            admin.close()

        info = info_fields(broker.resp)
        # The storm did hit the path under test: connections found already reset at accept
        # (here typically 1,300 to 1,800 of the 2,000), closed quietly and counted.
        assert int(info["connections_reset_before_served"]) > 0
        assert info["connection_failures"] == "0"
        assert broker.process.poll() is None
    lines = broker.log_lines()
    assert not [line for line in lines if line.get("event") == "connection_failed"]
