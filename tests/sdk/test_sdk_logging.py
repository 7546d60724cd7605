"""The SDK is a quiet library: standard-library logging under ``dualmq``, nothing printed unless
the application configures logging, and repeated events summarised instead of logged one by one.
"""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
import textwrap

import pytest
import structlog
import trio

from dualmq.logging import configure_logging
from dualmq.process import BrokerProcess
from dualmq.pull import Consumer, Producer
from tests.support import fast_groups_config

pytestmark = pytest.mark.timeout(120)

QUIET_PROGRAM = textwrap.dedent("""
    import trio
    import dualmq.embedded
    from dualmq.pull import Consumer, Producer
    from dualmq.push import Publisher, subscribe

    async def main():
        async with dualmq.embedded.broker(kafka={"group_initial_rebalance_delay_ms": 0}) as broker:
            async with Producer(broker.kafka) as producer:
                for i in range(3):
                    await producer.send("t", b"%d" % i)
            async with Consumer(broker.kafka, group_id="g", topics=["t"],
                                auto_offset_reset="earliest") as consumer:
                for _ in range(3):
                    await consumer.__anext__()
            async with subscribe(broker.resp, "news") as subscription:
                async with Publisher(broker.resp) as publisher:
                    await publisher.publish("news", "hi")
                await subscription.__anext__()
        print("done")

    trio.run(main)
""")


def test_a_program_with_the_sdk_and_an_embedded_broker_prints_only_what_it_prints(tmp_path) -> None:
    # Neither the SDK (group_joined, offset_reset...) nor the embedded broker (broker_started,
    # connection summaries...) may write into the program's output: nobody configured logging.
    script = tmp_path / "quiet.py"
    script.write_text(QUIET_PROGRAM)
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=90,
                          stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr
    assert (done.stdout, done.stderr) == ("done\n", "")


async def test_the_sdk_logs_events_to_standard_loggers_named_after_its_modules(tmp_path, caplog) -> None:
    caplog.set_level(logging.DEBUG, logger="dualmq")
    async with BrokerProcess(tmp_path / "data", "--config", str(fast_groups_config(tmp_path))) as broker:
        async with Producer(broker.kafka_address) as producer:
            await producer.send("t", b"x")
        async with Consumer(broker.kafka_address, group_id="g", topics=["t"], auto_offset_reset="earliest") as consumer:
            await consumer.__anext__()
    [joined] = [r for r in caplog.records if getattr(r, "dualmq_event", None) == "group_joined"]
    assert joined.name == "dualmq.pull.group" and joined.levelno == logging.INFO
    assert joined.dualmq_fields["group"] == "g" and joined.dualmq_fields["assignment"] == [("t", 0)]
    assert joined.getMessage().startswith("group_joined group='g' member=")


async def test_producer_retries_are_counted_and_summarised_not_logged_per_attempt(tmp_path, caplog) -> None:
    caplog.set_level(logging.DEBUG, logger="dualmq")
    async with BrokerProcess(tmp_path / "data") as broker:
        async with Producer(broker.kafka_address, retry_backoff_ms=50, reconnect_backoff_ms=20,
                            reconnect_backoff_max_ms=100) as producer:
            await producer.send("t", b"before")
            await broker.stop_async(sig=9)
            deliveries = [await producer.enqueue("t", b"during-%d" % i) for i in range(10)]
            await trio.sleep(2)  # the sender keeps retrying against a refused port meanwhile
            await broker.start_async()
            with trio.fail_after(30):
                results = [await delivery.wait() for delivery in deliveries]
    assert [offset for _, offset in results] == list(range(1, 11))
    assert producer.retries >= 5
    lines = [r for r in caplog.records if getattr(r, "dualmq_event", None) == "produce_retried"]
    # One line when retrying began, one at close for the rest: not one per attempt.
    assert 1 <= len(lines) <= 2, [r.getMessage() for r in lines]
    assert sum(r.dualmq_fields["attempts"] for r in lines) == producer.retries


def test_configure_logging_renders_sdk_records_and_broker_events_alike() -> None:
    stream = io.StringIO()
    root = logging.getLogger()
    before = (list(root.handlers), root.level)
    try:
        configure_logging("json", "info", stream=stream)
        logging.getLogger("dualmq.pull.group").info(
            "group_joined group='g'", extra={"dualmq_event": "group_joined", "dualmq_fields": {"group": "g"}})
        structlog.get_logger("dualmq.broker.daemon").info("broker_started", kafka="127.0.0.1:1")
        logging.getLogger("dualmq.pull.fetcher").debug("below the level")
    finally:
        root.handlers[:] = before[0]
        root.setLevel(before[1])
        structlog.reset_defaults()
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [(line["event"], line["level"]) for line in lines] == [("group_joined", "info"), ("broker_started", "info")]
    assert lines[0]["group"] == "g" and lines[1]["kafka"] == "127.0.0.1:1"
    assert all("timestamp" in line for line in lines)
