"""``/metrics`` after a known workload driven by real clients, asserted exactly.

The workload: kafka-python's (idempotent) producer sends 10 records one at a time, a
kafka-python consumer group reads and commits them, kcat appends 5 more, kafka-python's admin
client creates a topic that exists; redis-py subscribes, redis-cli publishes 3 messages to the
subscribed channel, redis-py publishes 2 to a channel nobody listens to, redis-cli sends an
unknown command. The metrics are parsed by ``prometheus_client.parser`` and compared with
what that workload must produce, under both push-mode connection drivers.
"""

from __future__ import annotations

import subprocess
import time

import pytest

from tests.modes.http.scraping import scrape, series, value, wait_until
from tests.support import KAFKA_PYTHON_NOISE, broker_process, fast_groups_config, require_binary, require_module

pytestmark = [
    pytest.mark.interop,
    *KAFKA_PYTHON_NOISE,
]

TIMEOUT = 10.0


@pytest.mark.timeout(120)
@pytest.mark.parametrize("push_driver", ["epoll", "tasks"])
def test_metrics_are_exact_after_a_known_workload(tmp_path, monkeypatch, push_driver):
    kafka = require_module("kafka", "kafka-python")
    redis = require_module("redis", "redis")
    kcat = require_binary("kcat", "kcat")
    redis_cli = require_binary("redis-cli", "redis-tools")
    redis_benchmark = require_binary("redis-benchmark", "redis-tools")
    monkeypatch.setenv("DUALMQ_PUSH_DRIVER", push_driver)  # inherited by the broker process
    config = fast_groups_config(tmp_path)
    with broker_process(tmp_path, "--config", str(config), "--http", "127.0.0.1:0", "--fsync", "always") as broker:
        http = broker.ready["http"]
        kafka_address = broker.kafka_address
        host, port = broker.resp

        # -- pull mode -------------------------------------------------------------------------
        producer = kafka.KafkaProducer(bootstrap_servers=kafka_address, linger_ms=0, request_timeout_ms=10000)
        for i in range(10):
            producer.send("orders", f"order-{i}".encode()).get(timeout=TIMEOUT)  # one batch each
        producer.close()
        consumer = kafka.KafkaConsumer("orders", bootstrap_servers=kafka_address, group_id="billing",
                                       auto_offset_reset="earliest", enable_auto_commit=False,
                                       session_timeout_ms=6000, heartbeat_interval_ms=1000, request_timeout_ms=10000)
        records = []
        deadline = time.monotonic() + 30
        while len(records) < 10 and time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=500, max_records=10 - len(records)).values():
                records.extend(batch)
        assert len(records) == 10
        consumer.commit()
        consumer.close()
        subprocess.run([kcat, "-P", "-b", kafka_address, "-t", "orders"], input=b"a\nb\nc\nd\ne\n",
                       check=True, timeout=TIMEOUT, capture_output=True)
        admin = kafka.KafkaAdminClient(bootstrap_servers=kafka_address, request_timeout_ms=10000)
        with pytest.raises(kafka.errors.TopicAlreadyExistsError):
            admin.create_topics([kafka.admin.NewTopic("orders", 1, 1)])
        admin.close()

        # -- push mode -------------------------------------------------------------------------
        # RESP2: no HELLO handshake (redis-py's RESP3 handshake also tries an optional command
        # push mode does not have, an error reply it swallows), so every error here is ours.
        subscriber = redis.Redis(host=host, port=port, socket_timeout=TIMEOUT, protocol=2)
        pubsub = subscriber.pubsub()
        pubsub.subscribe("news")
        assert pubsub.get_message(timeout=TIMEOUT)["type"] == "subscribe"
        for i in range(3):
            subprocess.run([redis_cli, "-h", host, "-p", str(port), "PUBLISH", "news", f"item-{i}"],
                           check=True, timeout=TIMEOUT, capture_output=True)
        got = []
        deadline = time.monotonic() + TIMEOUT
        while len(got) < 3 and time.monotonic() < deadline:
            message = pubsub.get_message(timeout=0.5)
            if message is not None:
                got.append(message["data"])
        assert got == [b"item-0", b"item-1", b"item-2"]
        publisher = redis.Redis(host=host, port=port, socket_timeout=TIMEOUT, protocol=2)
        assert [publisher.publish("nobody", "x"), publisher.publish("nobody", "y")] == [0, 0]
        publisher.close()
        unknown = subprocess.run([redis_cli, "-h", host, "-p", str(port), "NOSUCHCOMMAND"], timeout=TIMEOUT,
                                 capture_output=True, text=True)
        assert "unknown command" in unknown.stdout + unknown.stderr
        # Pipelines of 16 PUBLISHes to one channel: push mode's run-of-publishes path.
        subprocess.run([redis_benchmark, "-h", host, "-p", str(port), "-P", "16", "-c", "2", "-n", "320", "-q",
                        "PUBLISH", "bench", "payload"], check=True, timeout=60, capture_output=True)

        # Four redis-cli connections, redis-py's publisher and redis-benchmark's have closed (how
        # many connections redis-benchmark opens is its business); the subscriber is open.
        samples = wait_until(http, lambda s: value(s, "dualmq_connections", mode="push") == 1
                             and value(s, "dualmq_group_members", group="billing") == 0)
        pubsub.close()
        subscriber.close()

    part = {"topic": "orders", "partition": "0"}
    assert value(samples, "dualmq_partition_log_start_offset", **part) == 0
    assert value(samples, "dualmq_partition_log_end_offset", **part) == 15
    assert value(samples, "dualmq_partition_segments", **part) == 1
    # Ten one-record batches from kafka-python, then kcat's five lines in however many batches it
    # chose: each Produce request carries one batch for this one partition, and each was fsynced.
    appends = value(samples, "dualmq_partition_appends_total", **part)
    assert appends == value(samples, "dualmq_kafka_requests_total", api="Produce") >= 11
    assert value(samples, "dualmq_fsync_duration_seconds_count") == appends
    assert value(samples, "dualmq_kafka_request_duration_seconds_count", api="Produce") == appends
    assert value(samples, "dualmq_partition_fetch_reads_total", **part) >= 1
    assert value(samples, "dualmq_partition_size_bytes", **part) > 0
    # The group read and committed 10; kcat's 5 came after: lag = 15 - 10.
    assert value(samples, "dualmq_group_committed_offset", group="billing", **part) == 10
    assert value(samples, "dualmq_group_lag", group="billing", **part) == 5
    assert value(samples, "dualmq_group_state", group="billing", state="Empty") == 1
    assert value(samples, "dualmq_idempotent_producers") == 1  # kafka-python's default producer
    # MEMBER_ID_REQUIRED is step one of a JoinGroup (v4+): the broker hands the new member its id.
    assert series(samples, "dualmq_errors_total") == {(("code", "ERR"), ("mode", "push")): 1,
                                                       (("code", "MEMBER_ID_REQUIRED"), ("mode", "pull")): 1,
                                                       (("code", "TOPIC_ALREADY_EXISTS"), ("mode", "pull")): 1}
    assert value(samples, "dualmq_kafka_requests_total", api="CreateTopics") == 1
    assert value(samples, "dualmq_connections", mode="pull") == 0
    assert value(samples, "dualmq_connections_accepted_total", mode="pull") == sum(
        v for labels, v in series(samples, "dualmq_connections_closed_total").items() if ("mode", "pull") in labels)

    news = {"kind": "channel", "channel": "news"}
    nobody = {"kind": "channel", "channel": "nobody"}
    assert value(samples, "dualmq_channel_subscribers", **news) == 1
    assert value(samples, "dualmq_channel_published_total", **news) == 3
    assert value(samples, "dualmq_channel_delivered_total", **news) == 3
    assert value(samples, "dualmq_channel_dropped_no_subscriber_total", **news) == 0
    assert value(samples, "dualmq_channel_subscribers", **nobody) == 0
    assert value(samples, "dualmq_channel_published_total", **nobody) == 2
    assert value(samples, "dualmq_channel_delivered_total", **nobody) == 0
    assert value(samples, "dualmq_channel_dropped_no_subscriber_total", **nobody) == 2
    assert value(samples, "dualmq_subscribers") == 1
    assert value(samples, "dualmq_subscribers_output_buffer_bytes") == 0
    bench = {"kind": "channel", "channel": "bench"}
    assert value(samples, "dualmq_channel_published_total", **bench) == 320
    assert value(samples, "dualmq_channel_dropped_no_subscriber_total", **bench) == 320
    assert value(samples, "dualmq_resp_commands_total", command="publish") == 5 + 320
    assert value(samples, "dualmq_resp_commands_total", command="subscribe") == 1
    assert value(samples, "dualmq_connections", mode="push") == 1
    push_closed = {dict(labels)["reason"]: v for labels, v in series(samples, "dualmq_connections_closed_total").items()
                   if ("mode", "push") in labels}
    assert set(push_closed) == {"client_closed"} and push_closed["client_closed"] >= 5 + 1
    assert value(samples, "dualmq_connections_accepted_total", mode="push") == push_closed["client_closed"] + 1
    assert value(samples, "dualmq_subscriber_output_buffer_limit_bytes", limit="hard") == 32 * 1024 * 1024
    assert value(samples, "process_open_fds") > 0 and value(samples, "process_resident_memory_bytes") > 0
    assert value(samples, "dualmq_io_errors_total") == 0


@pytest.mark.timeout(60)
def test_config_resetstat_leaves_prometheus_counters_alone(tmp_path):
    """INFO's counters go back to 0 after CONFIG RESETSTAT; the _total metrics must not."""
    redis = require_module("redis", "redis")
    with broker_process(tmp_path, "--http", "127.0.0.1:0") as broker:
        client = redis.Redis(host=broker.resp[0], port=broker.resp[1], socket_timeout=TIMEOUT)
        for _ in range(4):
            client.publish("quiet", "x")
        assert client.info("dualmq")["messages_dropped_no_subscriber"] == 4
        client.config_resetstat()
        assert client.info("dualmq")["messages_dropped_no_subscriber"] == 0
        samples = scrape(broker.ready["http"])
        client.close()
    channel = {"kind": "channel", "channel": "quiet"}
    assert value(samples, "dualmq_channel_published_total", **channel) == 4
    assert value(samples, "dualmq_channel_dropped_no_subscriber_total", **channel) == 4
    assert value(samples, "dualmq_resp_commands_total", command="publish") == 4
    assert value(samples, "dualmq_resp_commands_total", command="config|resetstat") == 1
