"""``/metrics``: the broker's state as Prometheus metric families, built at scrape time.

``BrokerCollector`` is a ``prometheus_client`` custom collector: on each scrape it takes one
``view.BrokerView`` and turns it into metric families, which the library's own exposition
writes in the Prometheus text format. No Prometheus object lives on a hot path: the broker
counts with plain integers (``PartitionLog``, ``PubSub``, ``RequestStats``,
``ConnectionTable``) and this reads them once per scrape.

Names follow Prometheus's conventions: ``dualmq_`` prefix, ``_total`` for counters (added by
``CounterMetricFamily``), ``_bytes`` and ``_seconds`` units. The full list with the meaning of
each and the label bounds is docs/observability.md; the process's own figures (open file
descriptors, resident memory, CPU seconds) are ``prometheus_client``'s standard
``process_*`` metrics (``ProcessCollector``, registered beside this one).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from broker.histogram import HistogramSnapshot
from modes.http.view import BrokerView, FrontEndView

__all__ = ["BrokerCollector"]


class BrokerCollector(Collector):
    """Reads a fresh ``BrokerView`` on every scrape (``read`` returns it)."""

    def __init__(self, read: Callable[[], BrokerView]) -> None:
        self._read = read

    def collect(self) -> Iterator[Metric]:
        view = self._read()
        yield from _pull(view)
        yield from _push(view)
        yield from _front_ends(view)
        yield from _storage(view)
        folded = GaugeMetricFamily("dualmq_metrics_series_folded",
                                   "Rows past the per-family series limit, summed into the '(other)' row",
                                   labels=["family"])
        for family, count in sorted(view.folded.items()):
            folded.add_metric([family], count)
        yield folded


def _gauge(name: str, doc: str, labels: list[str]) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, labels=labels)


def _counter(name: str, doc: str, labels: list[str]) -> CounterMetricFamily:
    return CounterMetricFamily(name, doc, labels=labels)


def _pull(view: BrokerView) -> Iterator[Metric]:
    part = ["topic", "partition"]
    start = _gauge("dualmq_partition_log_start_offset", "First offset still in the log (retention moves it)", part)
    end = _gauge("dualmq_partition_log_end_offset", "Next offset to be written (the high watermark)", part)
    size = _gauge("dualmq_partition_size_bytes", "Bytes of the partition's log segments", part)
    segments = _gauge("dualmq_partition_segments", "Segments of the partition's log", part)
    appends = _counter("dualmq_partition_appends", "Record batches appended to the partition", part)
    reads = _counter("dualmq_partition_fetch_reads", "Reads of the partition by Fetch requests", part)
    for row in view.partitions:
        labels = [row.topic, str(row.partition)]
        start.add_metric(labels, row.log_start_offset)
        end.add_metric(labels, row.log_end_offset)
        size.add_metric(labels, row.size_bytes)
        segments.add_metric(labels, row.segments)
        appends.add_metric(labels, row.appends)
        reads.add_metric(labels, row.reads)
    yield from (start, end, size, segments, appends, reads)

    state = _gauge("dualmq_group_state", "1 for the consumer group's current state", ["group", "state"])
    members = _gauge("dualmq_group_members", "Members of the consumer group", ["group"])
    committed = _gauge("dualmq_group_committed_offset", "The group's committed offset (next to consume)",
                       ["group", "topic", "partition"])
    lag = _gauge("dualmq_group_lag", "Log end offset minus committed offset, never negative",
                 ["group", "topic", "partition"])
    for group in view.groups:
        state.add_metric([group.group, group.state], 1)
        members.add_metric([group.group], group.members)
        for row in group.offsets:
            labels = [group.group, row.topic, str(row.partition)]
            committed.add_metric(labels, row.committed)
            lag.add_metric(labels, row.lag)
    yield from (state, members, committed, lag)
    producers = _gauge("dualmq_idempotent_producers", "Idempotent producers with state in some partition", [])
    producers.add_metric([], view.idempotent_producers)
    yield producers


def _push(view: BrokerView) -> Iterator[Metric]:
    labels = ["kind", "channel"]
    subscribers = _gauge("dualmq_channel_subscribers",
                         "Subscribers of the channel, pattern or shard channel now", labels)
    published = _counter("dualmq_channel_published", "Messages published to the channel", labels)
    delivered = _counter("dualmq_channel_delivered",
                         "Frames queued by publishes to the channel (PUBLISH replies), or by the pattern", labels)
    dropped = _counter("dualmq_channel_dropped_no_subscriber",
                       "Messages published to the channel that reached nobody", labels)
    for row in view.channels:
        key = [row.kind, row.name]
        subscribers.add_metric(key, row.subscribers)
        if row.kind != "pattern":
            published.add_metric(key, row.published)
            dropped.add_metric(key, row.dropped)
        delivered.add_metric(key, row.delivered)
    yield from (subscribers, published, delivered, dropped)

    buffer = _gauge("dualmq_subscriber_output_buffer_bytes",
                    "Bytes waiting to be written to the subscriber (the fullest ones)", ["client_id", "name"])
    for row in view.subscribers:
        buffer.add_metric([str(row.client_id), row.name], row.pending_bytes)
    yield buffer
    count = _gauge("dualmq_subscribers", "Push-mode clients with at least one subscription", [])
    count.add_metric([], view.subscriber_count)
    total = _gauge("dualmq_subscribers_output_buffer_bytes", "Bytes waiting for all subscribers together", [])
    total.add_metric([], view.subscriber_pending_bytes)
    limit = _gauge("dualmq_subscriber_output_buffer_limit_bytes",
                   "client-output-buffer-limit pubsub: the hard and soft limits (0: none)", ["limit"])
    limit.add_metric(["hard"], view.limits.hard_bytes)
    limit.add_metric(["soft"], view.limits.soft_bytes)
    yield from (count, total, limit)


def _front_ends(view: BrokerView) -> Iterator[Metric]:
    requests = _counter("dualmq_kafka_requests", "Kafka requests served, by API", ["api"])
    for api, count in sorted(view.pull.requests.items()):
        requests.add_metric([api], count)
    commands = _counter("dualmq_resp_commands", "RESP commands run, by command", ["command"])
    for command, count in sorted(view.push.requests.items()):
        commands.add_metric([command], count)
    latency = HistogramMetricFamily("dualmq_kafka_request_duration_seconds",
                                    "Time a Kafka request's handler took (a long-polling Fetch's wait included)",
                                    labels=["api"])
    for api, snapshot in sorted(view.pull.latency.items()):
        latency.add_metric([api], _buckets(snapshot), snapshot.total)
    yield from (requests, commands, latency)

    errors = _counter("dualmq_errors", "Error replies: Kafka error codes in responses, RESP error codes",
                      ["mode", "code"])
    opened = _gauge("dualmq_connections", "Open client connections", ["mode"])
    accepted = _counter("dualmq_connections_accepted", "Connections admitted", ["mode"])
    closed = _counter("dualmq_connections_closed", "Connections that ended, by kind of reason", ["mode", "reason"])
    rejected = _counter("dualmq_connections_rejected", "Connections refused at a cap, by setting",
                        ["mode", "setting"])
    for mode, front_end in (("pull", view.pull), ("push", view.push)):
        _add_front_end(mode, front_end, errors, opened, accepted, closed, rejected)
    yield from (errors, opened, accepted, closed, rejected)


def _add_front_end(mode: str, front_end: FrontEndView, errors, opened, accepted, closed, rejected) -> None:
    for code, count in sorted(front_end.errors.items()):
        errors.add_metric([mode, code], count)
    connections = front_end.connections
    if connections is None:
        return
    opened.add_metric([mode], connections.connections_open)
    # Not reset by CONFIG RESETSTAT: accepted = open + closed, always.
    accepted.add_metric([mode], connections.connections_open + sum(connections.closed.values()))
    for reason, count in sorted(connections.closed.items()):
        closed.add_metric([mode, reason], count)
    for setting, count in sorted(connections.rejected.items()):
        rejected.add_metric([mode, setting], count)


def _storage(view: BrokerView) -> Iterator[Metric]:
    files = _gauge("dualmq_open_segment_files", "Sealed segments' files held open by the shared cache", [])
    files.add_metric([], view.open_segment_files)
    io_errors = _counter("dualmq_io_errors", "I/O errors met by the partition logs", [])
    io_errors.add_metric([], view.io_errors)
    fsync = HistogramMetricFamily("dualmq_fsync_duration_seconds", "Time each fsync of a partition log took",
                                  labels=[])
    fsync.add_metric([], _buckets(view.fsync_seconds), view.fsync_seconds.total)
    yield from (files, io_errors, fsync)


def _buckets(snapshot: HistogramSnapshot) -> list[tuple[str, float]]:
    return [(floatToGoString(bound), count) for bound, count in snapshot.cumulative()]
