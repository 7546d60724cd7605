"""INFO's exact output-buffer peaks: kept after the subscriber is gone, where CLIENT LIST cannot show them.

``CLIENT LIST``'s ``omem`` is the buffer *now*, and a subscriber cut off at its limit vanishes
from the list, so nothing Redis-compatible tells how full its buffer got. ``INFO dualmq``'s
``subscriber_output_high_water_bytes`` (the most any subscriber's buffer held) and
``subscriber_output_at_disconnect_max_bytes`` (the buffer judged over the limit when one was
cut off) do; ``compare`` reports them. Checked with redis-py, a client nobody here wrote.
"""

from __future__ import annotations

import time

import pytest

from tests.modes.push.test_push_server import _publish_until, _subscriber_that_never_reads
from tests.support import RawClient, broker_process, require_module

HARD_LIMIT = 262_144
PAYLOAD = b"x" * 10_000


def _redis(address):
    redis = require_module("redis", "redis")
    return redis.Redis(host=address[0], port=address[1], socket_timeout=10)


def _info(address) -> dict:
    client = _redis(address)
    try:
        return client.info("dualmq")
    finally:
        client.close()


def _wait_for_subscribers(address, channel: str, count: int) -> None:
    client = _redis(address)
    try:
        deadline = time.monotonic() + 10
        while dict(client.pubsub_numsub(channel)).get(channel.encode()) != count:
            assert time.monotonic() < deadline, f"{channel} never had {count} subscriber(s)"
            time.sleep(0.02)
    finally:
        client.close()


@pytest.mark.timeout(60)
def test_high_water_of_a_cut_off_subscriber_survives_it(tmp_path) -> None:
    config = tmp_path / "limits.toml"
    config.write_text(f"[resp]\npubsub_hard_limit = {HARD_LIMIT}\npubsub_soft_limit = 0\npubsub_soft_seconds = 0\n")
    with broker_process(tmp_path, "--config", str(config)) as broker:
        before = _info(broker.resp)
        assert before["subscriber_output_high_water_bytes"] == 0
        assert before["subscriber_output_at_disconnect_max_bytes"] == 0
        slow = _subscriber_that_never_reads(broker.resp)
        try:
            slow.sendall(b"SUBSCRIBE firehose\r\n")
            _wait_for_subscribers(broker.resp, "firehose", 1)
            with RawClient(broker.resp) as pub:
                _publish_until(pub, b"firehose", PAYLOAD, lambda c: c[-1] == 0)   # cut off: 0 receivers
        finally:
            slow.close()
        deadline = time.monotonic() + 10
        while not (logged := [line for line in broker.log_lines() if line.get("event") == "subscriber_disconnected"]):
            assert time.monotonic() < deadline, "the cut-off was never logged"
            time.sleep(0.05)
        info = _info(broker.resp)
        # The subscriber is gone from CLIENT LIST, but its peaks are still known, and they are
        # the ones the broker logged when it cut it off.
        assert info["subscribers_disconnected_hard_limit"] == 1
        assert info["subscriber_output_at_disconnect_max_bytes"] == logged[0]["pending_bytes"] >= HARD_LIMIT
        # What it really held: below the limit (the message that broke it was never queued),
        # by less than one message.
        high_water = info["subscriber_output_high_water_bytes"]
        assert HARD_LIMIT - len(PAYLOAD) - 100 < high_water < HARD_LIMIT


@pytest.mark.timeout(60)
def test_high_water_counts_live_and_departed_subscribers(tmp_path) -> None:
    with broker_process(tmp_path) as broker:
        slow = _subscriber_that_never_reads(broker.resp)
        slow.sendall(b"SUBSCRIBE backlog\r\n")
        _wait_for_subscribers(broker.resp, "backlog", 1)
        with RawClient(broker.resp) as pub:
            # Far below the default limits (8 MiB soft for 60 s, 32 MiB hard): it stays connected
            # while its buffer grows (once the kernel's socket buffers are full).
            live = 0
            for _ in range(200):
                _publish_until(pub, b"backlog", PAYLOAD, lambda c: True)   # 50 messages
                live = _info(broker.resp)["subscriber_output_high_water_bytes"]
                if live > 200_000:
                    break
            assert live > 200_000
            assert _info(broker.resp)["subscriber_output_at_disconnect_max_bytes"] == 0   # nobody was cut off
        slow.close()
        _wait_for_subscribers(broker.resp, "backlog", 0)
        # Gone without being cut off: its peak is kept all the same.
        assert _info(broker.resp)["subscriber_output_high_water_bytes"] >= live
