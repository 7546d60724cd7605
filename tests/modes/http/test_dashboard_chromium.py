"""The dashboard rendered by headless Chromium while real clients run a workload.

What the page must make visible without reading any numbers:

* pull mode: a consumer group that joins late replays the log (its lag shrinks as it reads
  records written before it existed); a slow consumer's lag grows and nothing is lost;
* push mode: a subscriber that joins late never sees what was published before; a subscriber
  that does not read fills its output buffer past the soft limit and is cut off at the hard one.

Chromium loads ``/?frames=N`` (the page closes its event stream after N frames) and dumps the
DOM; the page's ``data-history`` attribute carries each frame's totals, so the test can see
that live values changed from frame to frame.
"""

from __future__ import annotations

import html
import json
import re
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

from tests.modes.http.scraping import state
from tests.support import KAFKA_PYTHON_NOISE, broker_process, require_binary, require_module

pytestmark = [
    pytest.mark.interop,
    *KAFKA_PYTHON_NOISE,
]

FRAMES = 16
# Small pub/sub limits so that a subscriber that never reads is cut off within seconds.
CONFIG = """
[kafka]
group_initial_rebalance_delay_ms = 0
[resp]
pubsub_soft_limit = 262144
pubsub_hard_limit = 4194304
pubsub_soft_seconds = 60
"""
PAYLOAD = b"x" * 4096


class Workload:
    """Background clients, each a thread bounded in time, stopped together."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.threads: list[threading.Thread] = []
        self.errors: list[BaseException] = []

    def start(self, target, *args) -> None:
        def run() -> None:
            try:
                target(self.stop, *args)
            except BaseException as exc:  # reported by the test, not lost in a thread
                self.errors.append(exc)
        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        self.threads.append(thread)

    def finish(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=20)
        assert self.errors == []


def produce(stop, kafka, address: str) -> None:
    producer = kafka.KafkaProducer(bootstrap_servers=address, linger_ms=20, request_timeout_ms=10000)
    deadline = time.monotonic() + 90
    try:
        while not stop.is_set() and time.monotonic() < deadline:
            for _ in range(60):
                producer.send("events", b"record")
            producer.flush(timeout=10)
            time.sleep(0.2)
    finally:
        producer.close(timeout=5)


def consume(stop, kafka, address: str, group: str, per_poll: int, pause: float) -> None:
    consumer = kafka.KafkaConsumer("events", bootstrap_servers=address, group_id=group, auto_offset_reset="earliest",
                                   enable_auto_commit=False, session_timeout_ms=6000, heartbeat_interval_ms=1000,
                                   request_timeout_ms=10000, max_poll_records=per_poll)
    deadline = time.monotonic() + 90
    try:
        while not stop.is_set() and time.monotonic() < deadline:
            if consumer.poll(timeout_ms=200, max_records=per_poll):
                consumer.commit()
            time.sleep(pause)
    finally:
        consumer.close()


def publish(stop, redis, host: str, port: int) -> None:
    client = redis.Redis(host=host, port=port, socket_timeout=10, protocol=2)
    deadline = time.monotonic() + 90
    try:
        while not stop.is_set() and time.monotonic() < deadline:
            pipe = client.pipeline(transaction=False)
            for _ in range(40):
                pipe.publish("news", PAYLOAD)
            pipe.execute()
            time.sleep(0.1)
    finally:
        client.close()


def read_late(stop, redis, host: str, port: int) -> None:
    client = redis.Redis(host=host, port=port, socket_timeout=10, protocol=2)
    pubsub = client.pubsub()
    pubsub.subscribe("news")
    deadline = time.monotonic() + 90
    try:
        while not stop.is_set() and time.monotonic() < deadline:
            pubsub.get_message(timeout=0.1)
    finally:
        pubsub.close()
        client.close()


def never_read(host: str, port: int) -> socket.socket:
    """A subscriber that never reads: a small receive buffer, SUBSCRIBE, then silence."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(5)
    sock.connect((host, port))
    sock.sendall(b"*2\r\n$9\r\nSUBSCRIBE\r\n$4\r\nnews\r\n")
    return sock


def wait_for(condition, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the workload did not get going in time"
        time.sleep(0.1)


@pytest.mark.timeout(120)
def test_dashboard_shows_both_models_live(tmp_path: Path):
    chromium = require_binary("chromium", "chromium")
    kafka = require_module("kafka", "kafka-python")
    redis = require_module("redis", "redis")
    config = tmp_path / "broker.toml"
    config.write_text(CONFIG)
    workload = Workload()
    with broker_process(tmp_path, "--config", str(config), "--http", "127.0.0.1:0") as broker:
        http = broker.ready["http"]
        host, port = broker.resp
        slow = None
        try:
            workload.start(produce, kafka, broker.kafka_address)
            workload.start(consume, kafka, broker.kafka_address, "slow-consumer", 5, 0.5)
            workload.start(publish, redis, host, port)
            wait_for(lambda: state(http)["pull"]["records"] >= 1500 and state(http)["push"]["published"] >= 200)
            page = subprocess.Popen(
                [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1400,1000",
                 "--virtual-time-budget=60000", "--dump-dom", f"http://{http}/?frames={FRAMES}"],
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            try:
                time.sleep(2)  # the page has drawn a frame or two: now the late joiners come
                slow = never_read(host, port)
                workload.start(consume, kafka, broker.kafka_address, "late-group", 300, 0.2)
                workload.start(read_late, redis, host, port)
                dom, _ = page.communicate(timeout=60)
            finally:
                if page.poll() is None:
                    page.kill()
                    page.wait()
        finally:
            workload.finish()
            if slow is not None:
                slow.close()

    found = re.search(r'data-history="([^"]*)"', dom)
    assert found, "the page drew no frame"
    history = json.loads(html.unescape(found.group(1)))
    assert len(history) == FRAMES
    # Live: the log grew and messages were published while the page watched.
    assert history[-1][1] > history[0][1] and history[-1][2] > history[0][2]
    assert len({frame[0] for frame in history}) == FRAMES

    text = " ".join(html.unescape(re.sub(r"<[^>]+>", " ", dom.split("<script>")[0])).split())
    print(text)  # shown when an assertion below fails
    # Pull mode: the late group replays, the slow one falls behind.
    assert "group late-group replays the log" in text
    assert "group slow-consumer falls behind: its lag grows" in text
    # Push mode: the late subscriber missed what came before; the silent one was cut off.
    assert re.search(r"subscriber #\d+ joined news late: the [\d,]+ messages published before are gone", text)
    assert re.search(r"subscriber #\d+ reads too slowly: its output buffer passed the (soft|hard) limit", text)
    assert re.search(r"subscriber #\d+ cut off at the hard limit", text)
