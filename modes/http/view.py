"""``BrokerView``: one consistent reading of everything ``/metrics`` and the dashboard show.

``read_view`` walks the broker's state and the running front-ends once and returns frozen
values: per partition its log offsets, size and counters; per group its state, members and
committed offsets with lag; per channel its subscribers and counters; per subscriber its
output buffer; each front-end's requests, errors and connections. It runs in the trio thread
between two steps of the broker, so nothing changes while it reads: the two renderings
(``collector`` for Prometheus, ``dashboard`` for the live page) show the same moment.

Nothing is counted here: the counters are plain integers kept by the parts that count them
(``PartitionLog``, ``PubSub``, ``RequestStats``, ``ConnectionTable``); this only reads them.

Bounded labels (docs/observability.md#bounded-labels): at most ``SERIES_LIMIT`` partitions,
groups' partitions and channels of each kind are shown by name; the rest are folded into
one row named ``OTHER`` (summed), and ``folded`` says how many were. Subscribers' buffers are
shown for the ``SUBSCRIBER_LIMIT`` fullest only, plus totals over all of them.

The one lag definition (docs/observability.md#lag, shared with ``dualmq groups describe``): the
partition's log end offset minus the group's committed offset, never negative.
"""

from __future__ import annotations

import attrs

from broker.channels import ChannelCounters
from broker.histogram import HistogramSnapshot
from broker.state import BrokerState
from modes.common.listener import ConnectionTable, ListenerStatistics
from modes.common.request_stats import RequestStats
from modes.common.running import RunningServers

__all__ = ["BrokerView", "OTHER", "SERIES_LIMIT", "SUBSCRIBER_LIMIT", "lag", "read_view"]

# The most named series of one family (partitions, group partitions, channels of a kind).
SERIES_LIMIT = 1000
# The most subscribers whose output buffer is shown one by one (the fullest).
SUBSCRIBER_LIMIT = 50
# The name under which the rows past the limit are summed.
OTHER = "(other)"


def lag(log_end_offset: int, committed: int) -> int:
    """Records the group has not consumed yet: log end minus committed, never negative."""
    return max(0, log_end_offset - committed)


@attrs.frozen(kw_only=True)
class PartitionRow:
    topic: str
    partition: int
    log_start_offset: int
    log_end_offset: int
    size_bytes: int
    segments: int
    appends: int
    reads: int


@attrs.frozen(kw_only=True)
class GroupOffsetRow:
    topic: str
    partition: int
    committed: int
    log_end_offset: int

    @property
    def lag(self) -> int:
        return lag(self.log_end_offset, self.committed)


@attrs.frozen(kw_only=True)
class GroupRow:
    group: str
    state: str
    members: int
    offsets: tuple[GroupOffsetRow, ...]


@attrs.frozen(kw_only=True)
class ChannelRow:
    kind: str  # "channel", "pattern" or "shard"
    name: str
    subscribers: int
    published: int
    delivered: int
    dropped: int


@attrs.frozen(kw_only=True)
class SubscriberRow:
    client_id: int
    name: str
    pending_bytes: int
    high_water_bytes: int
    # Milliseconds the buffer has stayed at or over the soft limit (None: under it).
    soft_for_ms: int | None
    # Per channel subscribed to: (channel, messages published before it joined, since).
    channels: tuple[tuple[str, int, int], ...] = ()


@attrs.frozen(kw_only=True)
class CutRow:
    """A subscriber cut off at its output-buffer limit."""

    at_ms: int
    client_id: int
    name: str
    pending_bytes: int
    limit: str


@attrs.frozen(kw_only=True)
class FrontEndView:
    """One front-end's requests and connections."""

    requests: dict[str, int]
    errors: dict[str, int]
    latency: dict[str, HistogramSnapshot]
    connections: ListenerStatistics | None


@attrs.frozen(kw_only=True)
class PushLimits:
    hard_bytes: int
    soft_bytes: int
    soft_seconds: int


@attrs.frozen(kw_only=True)
class BrokerView:
    """Everything shown, read at one moment (see the module docstring)."""

    now_ms: int
    partitions: tuple[PartitionRow, ...]
    groups: tuple[GroupRow, ...]
    idempotent_producers: int
    channels: tuple[ChannelRow, ...]
    subscribers: tuple[SubscriberRow, ...]
    subscriber_count: int
    subscriber_pending_bytes: int
    recent_cuts: tuple[CutRow, ...]
    limits: PushLimits
    pull: FrontEndView
    push: FrontEndView
    open_segment_files: int
    io_errors: int
    fsync_seconds: HistogramSnapshot
    folded: dict[str, int]


def read_view(state: BrokerState, running: RunningServers, now_ms: int) -> BrokerView:
    """Read everything shown now.

    Args:
        state: the broker's core state.
        running: the front-ends (either may be None: not started, or a test without it).
        now_ms: the time of the reading (for soft-limit ages).
    """
    folded: dict[str, int] = {}
    partitions, ends = _partitions(state, folded)
    storage = state.topics.storage.statistics()
    push = running.push
    limits = push.limits if push is not None else None
    published = {name: c.published for name, c in state.pubsub.channel_counters()["channel"].items() if name}
    subscribers, subscriber_count, pending = _subscribers(push, now_ms, published)
    return BrokerView(
        now_ms=now_ms,
        partitions=partitions,
        groups=_groups(state, ends, folded),
        idempotent_producers=len(state.producers.producer_ids()),
        channels=_channels(state, folded),
        subscribers=subscribers,
        subscriber_count=subscriber_count,
        subscriber_pending_bytes=pending,
        recent_cuts=tuple(CutRow(at_ms=at, client_id=client_id, name=name, pending_bytes=pending_bytes, limit=limit)
                          for at, client_id, name, pending_bytes, limit in (push.recent_cuts if push else ())),
        limits=PushLimits(hard_bytes=limits.hard_bytes if limits else 0, soft_bytes=limits.soft_bytes if limits else 0,
                          soft_seconds=limits.soft_seconds if limits else 0),
        pull=_front_end(running.pull.broker.requests if running.pull else None,
                        running.pull.table if running.pull else None),
        push=_front_end(push.requests if push else None, push.connections if push else None),
        open_segment_files=storage.files.open_files,
        io_errors=storage.io_errors,
        fsync_seconds=storage.fsync_seconds,
        folded=folded,
    )


def _front_end(stats: RequestStats | None, table: ConnectionTable | None) -> FrontEndView:
    """One front-end's counters (empty when it is not running)."""
    return FrontEndView(requests=dict(stats.requests) if stats else {}, errors=dict(stats.errors) if stats else {},
                        latency={name: h.snapshot() for name, h in stats.latency.items()} if stats else {},
                        connections=table.statistics() if table is not None else None)


def _partitions(state: BrokerState, folded: dict[str, int]) -> tuple[tuple[PartitionRow, ...], dict]:
    rows: list[PartitionRow] = []
    ends: dict[tuple[str, int], int] = {}
    for topic in state.topics.topics():
        for index, log in enumerate(topic.partitions):
            stats = log.statistics()
            ends[(topic.name, index)] = stats.high_watermark
            rows.append(PartitionRow(
                topic=topic.name, partition=index, log_start_offset=stats.log_start_offset,
                log_end_offset=stats.high_watermark, size_bytes=stats.size_bytes, segments=stats.segment_count,
                appends=stats.appends, reads=stats.reads))
    if len(rows) > SERIES_LIMIT:
        rest = rows[SERIES_LIMIT:]
        folded["partition"] = len(rest)
        rows = rows[:SERIES_LIMIT] + [PartitionRow(
            topic=OTHER, partition=-1, log_start_offset=0, log_end_offset=0,
            size_bytes=sum(r.size_bytes for r in rest), segments=sum(r.segments for r in rest),
            appends=sum(r.appends for r in rest), reads=sum(r.reads for r in rest))]
    return tuple(rows), ends


def _groups(state: BrokerState, ends: dict[tuple[str, int], int], folded: dict[str, int]) -> tuple[GroupRow, ...]:
    # Groups the coordinator knows (members now), then those only known by their commits.
    names = [listing.group_id for listing in state.groups.list_groups()]
    known = set(names)
    names += [name for name in state.offsets.groups() if name not in known]
    rows = []
    budget = SERIES_LIMIT
    skipped = 0
    for name in names:
        description = state.groups.describe(name)
        offsets = []
        for (topic, partition), committed in sorted(state.offsets.fetch_all(name).items()):
            if (topic, partition) not in ends:
                continue  # a deleted topic's commit
            if budget == 0:
                skipped += 1
                continue
            budget -= 1
            offsets.append(GroupOffsetRow(topic=topic, partition=partition, committed=committed.offset,
                                          log_end_offset=ends[(topic, partition)]))
        rows.append(GroupRow(group=name, state=description.state_name, members=len(description.members),
                             offsets=tuple(offsets)))
    if skipped:
        folded["group_partition"] = skipped
    if len(rows) > SERIES_LIMIT:
        folded["group"] = len(rows) - SERIES_LIMIT
        rows = rows[:SERIES_LIMIT]
    return tuple(rows)


def _channels(state: BrokerState, folded: dict[str, int]) -> tuple[ChannelRow, ...]:
    pubsub = state.pubsub
    counters = pubsub.channel_counters()
    subscribers = pubsub.subscriber_counts()
    rows: list[ChannelRow] = []
    for kind in ("channel", "pattern", "shard"):
        named = counters[kind]
        other = named.pop(None, None) or ChannelCounters()
        listening = subscribers[kind]
        names = list(dict.fromkeys([*listening, *named]))
        # The busiest first, so the ones shown by name are those worth looking at.
        names.sort(key=lambda n: (-listening.get(n, 0), -(named[n].published if n in named else 0)))
        shown, rest = names[:SERIES_LIMIT], names[SERIES_LIMIT:]
        for name in shown:
            c = named.get(name) or ChannelCounters()
            rows.append(ChannelRow(kind=kind, name=_text(name), subscribers=listening.get(name, 0),
                                   published=c.published, delivered=c.delivered, dropped=c.dropped))
        if rest or other.published or other.delivered:
            if rest:
                folded[kind] = len(rest)
            rest_counters = [named[n] for n in rest if n in named] + [other]
            rows.append(ChannelRow(kind=kind, name=OTHER, subscribers=sum(listening.get(n, 0) for n in rest),
                                   published=sum(c.published for c in rest_counters),
                                   delivered=sum(c.delivered for c in rest_counters),
                                   dropped=sum(c.dropped for c in rest_counters)))
    return tuple(rows)


def _subscribers(push, now_ms: int, published: dict[bytes, int]) -> tuple[tuple[SubscriberRow, ...], int, int]:
    """The fullest subscribers' rows, how many subscribers there are, and their pending bytes.

    ``push`` is the running ``modes.push.server.PushServer`` (None: push mode not running).
    """
    if push is None:
        return (), 0, 0
    subscribed = [client for client in push.clients.values() if client.subscribed]
    pending = sum(client.outbox.pending_bytes for client in subscribed)
    subscribed.sort(key=lambda client: (-client.outbox.pending_bytes, client.id))
    rows = tuple(
        SubscriberRow(client_id=client.id, name=_text(client.name), pending_bytes=client.outbox.pending_bytes,
                      high_water_bytes=client.outbox.high_water_bytes,
                      soft_for_ms=None if client.outbox.soft_since_ms is None
                      else max(0, now_ms - client.outbox.soft_since_ms),
                      channels=tuple((_text(channel), before, max(0, published.get(channel, before) - before))
                                     for channel, before in client.subscriber.joined_at.items()))
        for client in subscribed[:SUBSCRIBER_LIMIT])
    return rows, len(subscribed), pending


def _text(name: bytes) -> str:
    """A channel or client name as a label value: bytes that are not UTF-8 are escaped."""
    return name.decode("utf-8", errors="backslashreplace")
