"""The counters behind ``/metrics``, in process: exact, bounded, and the same on every path."""

from __future__ import annotations

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

import broker.channels
import modes.http.view
from broker.channels import PubSub
from broker.config import BrokerConfig
from broker.histogram import Histogram
from broker.state import BrokerState
from broker.subscribers import Outbox, OutputLimits, Subscriber
from modes.common.listener import CLOSE_KINDS, close_kind
from modes.common.request_stats import resp_error_code
from modes.common.running import RunningServers
from modes.http.app import MetricsApp
from modes.http.view import OTHER, read_view


def frame(pattern, channel, payload, fmt) -> bytes:
    return b"%s|%s|%s" % (pattern or b"-", channel, payload)


def subscriber(client_id: int) -> Subscriber:
    return Subscriber(client_id=client_id, frame_format=2, outbox=Outbox(OutputLimits(hard_bytes=1 << 20)))


def test_histogram_buckets_are_upper_bounds_inclusive():
    histogram = Histogram(bounds=(0.001, 0.01))
    for value in (0.0005, 0.001, 0.002, 0.01, 0.5, 7.0):
        histogram.observe(value)
    snapshot = histogram.snapshot()
    assert snapshot.counts == (2, 2, 2)
    assert snapshot.cumulative() == [(0.001, 2), (0.01, 4), (float("inf"), 6)]
    assert snapshot.count == 6 and snapshot.total == pytest.approx(7.5135)


@pytest.mark.parametrize("reply, code", [
    (b"-ERR unknown command 'x'\r\n", "ERR"),
    (b"-NOPROTO sorry\r\n", "NOPROTO"),
    (b"-WRONGPASS invalid\r\n", "WRONGPASS"),
    (b"-lowercase words are not codes\r\n", "ERR"),
    (b"-A" + b"B" * 40 + b" too long to be a code\r\n", "ERR"),
    (b"-\r\n", "ERR"),
])
def test_resp_error_codes_are_a_closed_set(reply, code):
    assert resp_error_code(reply) == code


def test_close_reasons_map_to_few_kinds():
    assert close_kind("client closed") == "client_closed"
    assert close_kind("protocol error: expected '*'") == "protocol_error"
    assert close_kind("output buffer over hard limit") == "output_buffer_hard"
    assert close_kind("output buffer over soft limit") == "output_buffer_soft"
    assert close_kind("Fetch v99 is not supported") == "unsupported_version"
    assert close_kind("CLIENT KILL by client 7") == "killed"
    assert close_kind("something nobody foresaw") == "other"
    kinds = {kind for _, kind in CLOSE_KINDS}
    assert close_kind("protected mode") == "protected_mode" and close_kind("ACL user deleted") == "acl"
    assert len(kinds) <= 20


def test_channel_counters_are_exact_on_the_careful_and_the_deferred_path():
    careful, deferred = PubSub(), PubSub()
    for pubsub in (careful, deferred):
        for client_id in (1, 2):
            pubsub.subscribe(subscriber(client_id), b"news")
    for i in range(5):
        assert careful.publish(b"news", b"m%d" % i, 0, frame).receivers == 2
        assert deferred.publish_deferred(b"news", b"m%d" % i, frame) == 2
        careful.publish(b"void", b"x", 0, frame)
        assert deferred.publish_deferred(b"void", b"x", frame) == 0
    deferred.flush_deferred(0)
    for pubsub in (careful, deferred):
        counters = pubsub.channel_counters()["channel"]
        assert (counters[b"news"].published, counters[b"news"].delivered, counters[b"news"].dropped) == (5, 10, 0)
        assert (counters[b"void"].published, counters[b"void"].delivered, counters[b"void"].dropped) == (5, 0, 5)


def test_patterns_and_shard_channels_are_counted_apart():
    pubsub = PubSub()
    pubsub.psubscribe(subscriber(1), b"n*")
    pubsub.ssubscribe(subscriber(2), b"news")
    assert pubsub.publish(b"news", b"a", 0, frame).receivers == 1
    assert pubsub.spublish(b"news", b"b", 0, frame).receivers == 1
    assert pubsub.spublish(b"other", b"c", 0, frame).receivers == 0
    counters = pubsub.channel_counters()
    assert counters["pattern"][b"n*"].delivered == 1
    assert counters["channel"][b"news"].published == 1
    assert (counters["shard"][b"news"].published, counters["shard"][b"news"].delivered) == (1, 1)
    assert counters["shard"][b"other"].dropped == 1


def test_channel_counters_stop_growing_at_the_limit(monkeypatch):
    monkeypatch.setattr(broker.channels, "CHANNEL_COUNTERS_LIMIT", 3)
    pubsub = PubSub()
    for name in (b"a", b"b", b"c", b"d", b"e", b"a"):
        pubsub.publish(name, b"x", 0, frame)
    counters = pubsub.channel_counters()["channel"]
    # Three names counted by name, the others together under None.
    assert set(counters) == {b"a", b"b", b"c", None}
    assert counters[b"a"].published == 2
    assert counters[None].published == 2  # d and e
    assert sum(c.published for c in counters.values()) == 6


def test_a_late_subscriber_knows_what_it_missed():
    pubsub = PubSub()
    for _ in range(7):
        pubsub.publish(b"news", b"x", 0, frame)
    late = subscriber(1)
    pubsub.subscribe(late, b"news")
    assert late.joined_at == {b"news": 7}
    pubsub.unsubscribe(late, b"news")
    assert late.joined_at == {}


@pytest.fixture
def state(tmp_path):
    opened = BrokerState.open(BrokerConfig(data_dir=tmp_path / "data"), now_ms=1_000)
    yield opened
    opened.close()


def parse(app: MetricsApp) -> dict:
    samples = {}
    for family in text_string_to_metric_families(generate_latest(app.registry).decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def test_series_past_the_limit_are_folded_into_other(state, monkeypatch):
    monkeypatch.setattr(modes.http.view, "SERIES_LIMIT", 2)
    listener = subscriber(9)
    state.pubsub.subscribe(listener, b"busy")
    for name, count in ((b"busy", 4), (b"quiet-1", 1), (b"quiet-2", 2), (b"quiet-3", 3)):
        for _ in range(count):
            state.pubsub.publish(name, b"x", 0, frame)
    for topic in ("t1", "t2", "t3"):
        state.topics.create(topic, 1, now_ms=1_000)
    app = MetricsApp(lambda: read_view(state, RunningServers(), 2_000))
    samples = parse(app)
    published = {dict(labels)["channel"]: v for (name, labels), v in samples.items()
                 if name == "dualmq_channel_published_total"}
    # The subscribed channel first, then the busiest; the rest summed, nothing lost.
    assert published == {"busy": 4, "quiet-3": 3, OTHER: 3}
    assert samples[("dualmq_metrics_series_folded", (("family", "channel"),))] == 2
    assert samples[("dualmq_metrics_series_folded", (("family", "partition"),))] == 1
    partitions = {dict(labels)["topic"] for (name, labels), v in samples.items()
                  if name == "dualmq_partition_segments"}
    assert partitions == {"t1", "t2", OTHER}
    # Without front-ends running there is nothing to say about connections, and no error.
    assert not any(name == "dualmq_connections" for name, _ in samples)


def test_event_streams_are_capped(state, monkeypatch):
    """Past MAX_EVENT_STREAMS open streams, another is refused with 503 at once."""
    import trio

    import modes.http.app

    monkeypatch.setattr(modes.http.app, "MAX_EVENT_STREAMS", 1)
    app = MetricsApp(lambda: read_view(state, RunningServers(), 2_000), interval=0.01)
    scope = {"type": "http", "method": "GET", "path": "/events"}

    async def main() -> list[dict]:
        sent: list[dict] = []
        first_frames: list[dict] = []
        gone = trio.Event()

        async def disconnect_later() -> dict:
            await gone.wait()
            return {"type": "http.disconnect"}

        async def first_send(message: dict) -> None:
            first_frames.append(message)

        async def second_send(message: dict) -> None:
            sent.append(message)

        async def never() -> dict:
            await trio.sleep_forever()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(app, scope, disconnect_later, first_send)
            await trio.sleep(0.05)
            with trio.fail_after(5):
                await app(scope, never, second_send)
            gone.set()
        assert first_frames[0]["status"] == 200 and len(first_frames) > 2
        return sent

    sent = trio.run(main)
    assert sent[0]["status"] == 503
    assert sent[1]["body"] == b"too many open dashboards\n"


def test_a_run_of_publishes_is_counted_like_publishes_one_by_one():
    one_by_one, run = PubSub(), PubSub()
    for pubsub in (one_by_one, run):
        pubsub.subscribe(subscriber(1), b"news")
    payloads = [b"a", b"b", b"c"]
    for payload in payloads:
        one_by_one.publish(b"news", payload, 0, frame)
        one_by_one.publish(b"void", payload, 0, frame)
    assert run.publish_many(b"news", payloads, frame) == 1
    assert run.publish_many(b"void", payloads, frame) == 0
    for pubsub in (one_by_one, run):
        counters = pubsub.channel_counters()["channel"]
        assert [(c.published, c.delivered, c.dropped) for c in (counters[b"news"], counters[b"void"])] == [
            (3, 3, 0), (3, 0, 3)]
        stats = pubsub.statistics()
        assert (stats.messages_published, stats.frames_delivered, stats.messages_dropped_no_subscriber) == (6, 3, 3)
