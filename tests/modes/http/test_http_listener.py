"""The HTTP listener as a listener: off by default, configured like the others, robust to bad input.

Malformed HTTP gets a clear refusal (400, 404, 405) or a closed connection, and nothing else:
a subscriber connected meanwhile keeps receiving, a Kafka client keeps producing, and
``/metrics`` keeps answering.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from broker.config import BrokerConfig
from broker.errors import ConfigError
from tests.modes.http.scraping import get, scrape, value
from tests.support import broker_process, require_binary, require_module

TIMEOUT = 5.0
ROOT = Path(__file__).resolve().parents[3]


def test_off_by_default_and_validated_like_every_key(tmp_path):
    assert BrokerConfig().http.listen == ""
    assert BrokerConfig.from_dict({"http": {"listen": "127.0.0.1:0"}}).http.listen == "127.0.0.1:0"
    with pytest.raises(ConfigError, match=r"http\.listen = 'nowhere': expected HOST:PORT"):
        BrokerConfig.from_dict({"http": {"listen": "nowhere"}})
    with pytest.raises(ConfigError, match=r"unknown config key http\.'port'"):
        BrokerConfig.from_dict({"http": {"port": 9644}})
    with broker_process(tmp_path) as broker:
        assert "http" not in broker.ready


def raw_exchange(address: str, data: bytes) -> bytes:
    """Send ``data`` on a fresh connection; return everything the server sends until it closes
    (or stops sending for a while)."""
    host, port = address.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=TIMEOUT) as sock:
        sock.sendall(data)
        received = b""
        try:
            while chunk := sock.recv(65536):
                received += chunk
        except (TimeoutError, ConnectionResetError):
            pass
    return received


MALFORMED = [
    pytest.param(b"GARBAGE\r\n\r\n", b"400", id="not-a-request-line"),
    pytest.param(b"GET /metrics HTTP/1.1\r\nHost: x\r\nBad Header Line\r\n\r\n", b"400", id="bad-header"),
    pytest.param(b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 70000 + b"\r\n\r\n", b"", id="huge-header"),
    pytest.param(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(range(256)), b"", id="tls-hello"),
    pytest.param(b"GET /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n", b"400", id="negative-length"),
    pytest.param(b"POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", b"405",
                 id="post"),
    pytest.param(b"GET /../etc/passwd HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", b"404", id="traversal"),
    pytest.param(b"GET /metrics HTTP/1.1\r\nHost: x\r\n", b"", id="unfinished"),
]


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    with broker_process(tmp_path_factory.mktemp("http-listener"), "--http", "127.0.0.1:0") as running:
        yield running


@pytest.mark.interop
@pytest.mark.timeout(60)
@pytest.mark.parametrize("data, status", MALFORMED)
def test_malformed_http_is_refused_and_disturbs_nobody(broker, data: bytes, status: bytes):
    redis = require_module("redis", "redis")
    kcat = require_binary("kcat", "kcat")
    http = broker.ready["http"]
    subscriber = redis.Redis(host=broker.resp[0], port=broker.resp[1], socket_timeout=TIMEOUT, protocol=2)
    pubsub = subscriber.pubsub()
    pubsub.subscribe("watch")
    assert pubsub.get_message(timeout=TIMEOUT)["type"] == "subscribe"
    try:
        answer = raw_exchange(http, data)
        if status:
            assert answer.split(b"\r\n", 1)[0].split(b" ")[1] == status, answer[:200]
        # The broker's clients did not notice.
        publisher = redis.Redis(host=broker.resp[0], port=broker.resp[1], socket_timeout=TIMEOUT, protocol=2)
        assert publisher.publish("watch", "still here") == 1
        publisher.close()
        deadline = time.monotonic() + TIMEOUT
        message = None
        while message is None and time.monotonic() < deadline:
            message = pubsub.get_message(timeout=0.5)
        assert message is not None and message["data"] == b"still here"
        subprocess.run([kcat, "-P", "-b", broker.kafka_address, "-t", "http-bad-input"], input=b"one\n",
                       check=True, timeout=30, capture_output=True)
        samples = scrape(http)
        assert value(samples, "dualmq_channel_subscribers", kind="channel", channel="watch") == 1
    finally:
        pubsub.close()
        subscriber.close()


def test_routes(broker):
    http = broker.ready["http"]
    assert get(http, "/").startswith(b"<!doctype html>")
    with urllib.request.urlopen(f"http://{http}/metrics", timeout=TIMEOUT) as response:
        assert response.headers["content-type"].startswith("text/plain; version=")
    with urllib.request.urlopen(urllib.request.Request(f"http://{http}/metrics", method="HEAD"),
                                timeout=TIMEOUT) as response:
        assert response.status == 200 and response.read() == b""
    with pytest.raises(urllib.error.HTTPError) as refused:
        get(http, "/nothing-here")
    assert refused.value.code == 404
    refused.value.close()


def test_events_stream_frames_and_ends_when_the_client_goes(broker):
    http = broker.ready["http"]
    host, port = http.rsplit(":", 1)
    for _ in range(3):  # streams opened and dropped leave nothing behind
        with socket.create_connection((host, int(port)), timeout=TIMEOUT) as sock:
            sock.sendall(b"GET /events HTTP/1.1\r\nHost: x\r\n\r\n")
            received = b""
            deadline = time.monotonic() + 10
            while received.count(b"data: {") < 2:  # two frames, a second apart
                assert time.monotonic() < deadline, received
                chunk = sock.recv(65536)
                assert chunk, received
                received += chunk
        assert b"content-type: text/event-stream" in received.lower()
    assert value(scrape(http), "dualmq_connections", mode="push") is not None


# A page that opens /events and then never reads: frames pile up until the kernel's buffers
# are full and hypercorn's (cancellation-shielded) send waits for that peer. Run in a child
# process, so that if the listener cannot stop, this test fails at its timeout instead of
# hanging the suite.
STALLED_READER = """
import socket, sys, tempfile, time
from pathlib import Path
import trio
from broker.config import BrokerConfig, HttpConfig
from broker.state import BrokerState
from modes.common.running import RunningServers
from modes.http.server import serve_http

async def main():
    now_ms = int(time.time() * 1000)
    state = BrokerState.open(BrokerConfig(data_dir=Path(tempfile.mkdtemp()) / "data"), now_ms=now_ms)
    for i in range(200):  # big frames fill the buffers sooner
        state.topics.create(f"topic-{i:04d}", 1, now_ms=now_ms)
    async with trio.open_nursery() as nursery:
        address = await nursery.start(lambda task_status: serve_http(
            HttpConfig(listen="127.0.0.1:0"), state, RunningServers(), interval=0.0, task_status=task_status))
        host, port = address.rsplit(":", 1)
        reader = socket.socket()
        reader.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        reader.connect((host, int(port)))
        reader.sendall(b"GET /events HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n")
        await trio.sleep(2)  # the reader never reads
        cancelled = time.monotonic()
        nursery.cancel_scope.cancel()
    print(f"stopped {time.monotonic() - cancelled:.2f}")

trio.run(main)
"""


def test_a_dashboard_that_stops_reading_cannot_keep_the_listener_from_stopping(tmp_path):
    from modes.http.server import STALLED_PEER_TIMEOUT_MS
    try:
        done = subprocess.run([sys.executable, "-c", STALLED_READER], capture_output=True, text=True, timeout=30,
                              cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT)})
    except subprocess.TimeoutExpired:
        pytest.fail("serve_http was still sending to a peer that does not read 30 s after it was cancelled")
    assert done.returncode == 0, done.stderr
    stopped = float(done.stdout.split()[-1])
    assert stopped < STALLED_PEER_TIMEOUT_MS / 1000 + 5, done.stdout
