"""The push-mode registry: who listens to which channel or pattern, and PUBLISH's fan-out.

What lives here: ``PubSub``, the state behind SUBSCRIBE / PSUBSCRIBE / UNSUBSCRIBE / PUNSUBSCRIBE /
PUBLISH / PUBSUB, the sharded SSUBSCRIBE / SUNSUBSCRIBE / SPUBLISH, plus the periodic
output-buffer sweep, and the ``PublishResult`` / ``PubSubStatistics`` values it returns.

What does not: RESP. A message frame is built by a callback the front-end passes to ``publish``;
the core only decides who gets which frame, in which order, and counts. No clock either: time
arrives as ``now_ms``. Outboxes and limits are in ``broker.subscribers``, glob rules in
``broker.glob``.

Behaviour copied from Redis (``src/pubsub.c``), in our words:

* A PUBLISH first queues a ``message`` for every subscriber of exactly that channel, then, for
  every distinct pattern matching the channel, a ``pmessage`` for each subscriber of that pattern.
  Its reply counts *frames*: a client on the channel and on k matching patterns counts k + 1.
* Subscribing twice to the same channel changes nothing (the count stays); unsubscribing from
  something one is not subscribed to is harmless.
* Shard channels (Redis 7's sharded pub/sub) are a namespace of their own: SPUBLISH reaches
  the SSUBSCRIBErs of exactly that name and nobody else (no patterns, no plain subscribers),
  PUBLISH never reaches them, and their subscription count is kept apart from the count of
  channels plus patterns. In a Redis cluster a shard channel lives on the node owning its hash
  slot; a single node owns every slot, so here it is simply a second dictionary.
* A subscriber whose outbox breaks the output-buffer limit is cut off: marked closed, removed from
  every channel and pattern before ``publish`` returns, and reported so the front-end closes the
  socket and logs. It is not counted in the reply (Redis may count a client it is about to close;
  dualmq counts attached subscribers only: docs/resp.md#publishs-receiver-count).

Iteration orders, where Redis leaves them unspecified (hash-table order), are made predictable:
subscribers of a channel or pattern in the order they subscribed, patterns in the order they first
got a subscriber.

Why a callback that is memoized per publish: encoding is the expensive part of fan-out. Calling
``make_frame`` once per (pattern, frame format) instead of once per subscriber means 10 000
subscribers of one channel share one bytes object.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

import attrs

from broker.glob import glob_match
from broker.subscribers import HARD, Subscriber

__all__ = ["CHANNEL_COUNTERS_LIMIT", "ChannelCounters", "PubSub", "PublishResult", "PubSubStatistics", "MakeFrame",
           "Disconnected"]

# make_frame(pattern or None, channel, payload, frame_format) -> encoded frame.
MakeFrame = Callable[[bytes | None, bytes, bytes, int], bytes]
# (the subscriber, bytes that broke the limit, "hard" or "soft")
Disconnected = tuple[Subscriber, int, str]


class PublishResult(NamedTuple):
    """What one PUBLISH did. A named tuple: built once per publish on the hot path, and a
    tuple is the cheapest object Python builds."""

    receivers: int
    disconnected: list[Disconnected] | tuple[()]


# The most channels (and, apart, patterns and shard channels) counted one by one; publishes to
# further names are counted together under the name None ("other"), so that a client
# publishing to a million different channels cannot grow the counters (or the metrics
# exposing them) without bound. docs/observability.md#bounded-labels
CHANNEL_COUNTERS_LIMIT = 1000


@attrs.define(slots=True, eq=False)
class ChannelCounters:
    """What happened to the messages of one channel (or pattern, or shard channel) so far.

    Only ever grows: CONFIG RESETSTAT zeroes INFO's totals, not these (they feed Prometheus
    counters, which must not go back).
    """

    published: int = 0  # PUBLISHes to the channel (not counted for a pattern)
    # A channel: frames its publishes queued, the sum of PUBLISH's replies (pattern
    # subscribers' pmessages included). A pattern: the pmessages it queued.
    delivered: int = 0
    dropped: int = 0  # publishes that reached nobody at all


def _counters(index: dict[bytes | None, ChannelCounters], name: bytes) -> ChannelCounters:
    """The counters of ``name`` in ``index``, created while under the limit, else "other"."""
    counters = index.get(name)
    if counters is None:
        key = name if len(index) < CHANNEL_COUNTERS_LIMIT else None
        counters = index.get(key)
        if counters is None:
            counters = index[key] = ChannelCounters()
    return counters


# The answer for a publish that reached nobody and cut nobody off: shared, since it is immutable.
_NOBODY = PublishResult(0, ())
# Likewise for small receiver counts with nobody cut off: the usual result of a publish.
_SHARED_RESULTS = 1024
_RESULTS = [_NOBODY] + [PublishResult(n, ()) for n in range(1, _SHARED_RESULTS)]


@attrs.frozen(kw_only=True)
class PubSubStatistics:
    """A snapshot for INFO, the CLI and ``compare``."""

    channels: int  # channels with at least one subscriber
    patterns: int  # distinct patterns with at least one subscriber (PUBSUB NUMPAT)
    shard_channels: int  # shard channels with at least one subscriber
    subscribers: int  # subscribers with at least one subscription
    messages_published: int
    frames_delivered: int  # frames queued into outboxes (the sum of PUBLISH replies)
    messages_dropped_no_subscriber: int  # publishes that reached nobody
    subscribers_disconnected_hard: int
    subscribers_disconnected_soft: int


@attrs.define(slots=True)
class PubSub:
    """The channel and pattern registry of push mode. See the module docstring."""

    # channel -> {subscriber: None}. A dict used as an insertion-ordered set, so fan-out follows
    # subscription order. An entry exists only while it has a subscriber.
    _channels: dict[bytes, dict[Subscriber, None]] = attrs.field(factory=dict, init=False)
    # pattern -> {subscriber: None}; same shape, patterns in order of first subscriber.
    _patterns: dict[bytes, dict[Subscriber, None]] = attrs.field(factory=dict, init=False)
    # Every subscriber with at least one subscription, for the sweep and the counts.
    _subscribers: dict[Subscriber, None] = attrs.field(factory=dict, init=False)
    # Each subscriber's channels and patterns in subscription order (its ``channels`` /
    # ``patterns`` sets answer "am I in?"; these answer "in which order?", for UNSUBSCRIBE with
    # no argument).
    _channel_order: dict[Subscriber, dict[bytes, None]] = attrs.field(factory=dict, init=False)
    _pattern_order: dict[Subscriber, dict[bytes, None]] = attrs.field(factory=dict, init=False)
    # Shard channels: shard channel -> {subscriber: None}, and each subscriber's in order.
    _shard_channels: dict[bytes, dict[Subscriber, None]] = attrs.field(factory=dict, init=False)
    _shard_order: dict[Subscriber, dict[bytes, None]] = attrs.field(factory=dict, init=False)
    # channel -> [(subscriber, its outbox's bound put)], in subscription order: what the
    # fan-out loop walks, built on the first publish after the channel's subscribers changed
    # (every change drops the entry), so a publish does no per-subscriber attribute lookups.
    _targets: dict[bytes, list[tuple[Subscriber, Callable[[bytes, int], bool]]]] = attrs.field(
        factory=dict, init=False)
    # The per-name counters' totals when CONFIG RESETSTAT last ran: INFO shows the counts since
    # then (the totals are sums of the per-name counters, which themselves never go back).
    _reset_at: tuple[int, int, int] = attrs.field(default=(0, 0, 0), init=False)
    _disconnected_hard: int = attrs.field(default=0, init=False)
    _disconnected_soft: int = attrs.field(default=0, init=False)
    # Deliveries held back by publish_deferred until flush_deferred: channel -> its batch.
    _deferred: dict[bytes, _DeferredBatch] = attrs.field(factory=dict, init=False)
    # Channels found not deferrable since the last flush (not re-examined on every publish).
    _not_deferrable: set[bytes] = attrs.field(factory=set, init=False)
    # Subscribers cut off while delivering deferred frames outside flush_deferred (cannot
    # happen, see publish_deferred; kept for safety): reported by the next flush or sweep.
    _late_cuts: list[Subscriber] = attrs.field(factory=list, init=False)
    # Per-name counters (see ``ChannelCounters``), bounded by CHANNEL_COUNTERS_LIMIT each.
    _channel_counters: dict[bytes | None, ChannelCounters] = attrs.field(factory=dict, init=False)
    _pattern_counters: dict[bytes | None, ChannelCounters] = attrs.field(factory=dict, init=False)
    _shard_counters: dict[bytes | None, ChannelCounters] = attrs.field(factory=dict, init=False)

    # -- subscriptions -------------------------------------------------------------------------

    def subscribe(self, sub: Subscriber, channel: bytes) -> int:
        """SUBSCRIBE one channel.

        Returns:
            The subscriber's channel + pattern count afterwards (unchanged if already subscribed,
            or if the subscriber was already cut off: a late SUBSCRIBE racing a disconnect must
            not bring it back).
        """
        if self._join(sub, channel, sub.channels, self._channels, self._channel_order):
            self._targets.pop(channel, None)
            sub.joined_at[channel] = _counters(self._channel_counters, channel).published
        return sub.subscription_count

    def psubscribe(self, sub: Subscriber, pattern: bytes) -> int:
        """PSUBSCRIBE one pattern. Returns the count afterwards (see ``subscribe``)."""
        self._join(sub, pattern, sub.patterns, self._patterns, self._pattern_order)
        return sub.subscription_count

    def unsubscribe(self, sub: Subscriber, channel: bytes) -> int:
        """UNSUBSCRIBE one channel (harmless if not subscribed). Returns the count afterwards."""
        if self._leave(sub, channel, sub.channels, self._channels, self._channel_order):
            self._targets.pop(channel, None)
            sub.joined_at.pop(channel, None)
        return sub.subscription_count

    def punsubscribe(self, sub: Subscriber, pattern: bytes) -> int:
        """PUNSUBSCRIBE one pattern (harmless if not subscribed). Returns the count afterwards."""
        self._leave(sub, pattern, sub.patterns, self._patterns, self._pattern_order)
        return sub.subscription_count

    def _join(self, sub: Subscriber, name: bytes, names: set[bytes], index: dict[bytes, dict[Subscriber, None]],
              order: dict[Subscriber, dict[bytes, None]]) -> bool:
        """Add ``sub`` to ``name`` in one namespace (its set, the registry's index and order).

        Returns:
            Whether anything changed (not when already there, nor for a subscriber cut off).
        """
        if self._deferred:
            self._deliver_deferred()
        if sub.closed or name in names:
            return False
        names.add(name)
        index.setdefault(name, {})[sub] = None
        order.setdefault(sub, {})[name] = None
        self._subscribers[sub] = None
        return True

    def _leave(self, sub: Subscriber, name: bytes, names: set[bytes], index: dict[bytes, dict[Subscriber, None]],
               order: dict[Subscriber, dict[bytes, None]]) -> bool:
        """Remove ``sub`` from ``name`` in one namespace. Returns whether it was there."""
        if self._deferred:
            self._deliver_deferred()
        if name not in names:
            return False
        names.discard(name)
        _drop(index, name, sub)
        _drop(order, sub, name)
        self._forget_if_idle(sub)
        return True

    def unsubscribe_all(self, sub: Subscriber) -> list[bytes]:
        """UNSUBSCRIBE with no argument.

        Returns:
            The channels the subscriber was in, in subscription order (empty if none: the
            front-end then sends Redis's single ``unsubscribe <nil> 0`` frame). Take the count
            for each reply frame from the position: after the i-th, ``len(result) - i - 1``
            channels plus the patterns remain.
        """
        channels = list(self._channel_order.get(sub, ()))
        for channel in channels:
            self.unsubscribe(sub, channel)
        return channels

    def punsubscribe_all(self, sub: Subscriber) -> list[bytes]:
        """PUNSUBSCRIBE with no argument: the patterns it was in, in subscription order."""
        patterns = list(self._pattern_order.get(sub, ()))
        for pattern in patterns:
            self.punsubscribe(sub, pattern)
        return patterns

    def ssubscribe(self, sub: Subscriber, channel: bytes) -> int:
        """SSUBSCRIBE one shard channel.

        Returns:
            The subscriber's shard channel count afterwards (Redis counts shard channels
            apart from channels and patterns); unchanged if already subscribed or cut off.
        """
        self._join(sub, channel, sub.shard_channels, self._shard_channels, self._shard_order)
        return len(sub.shard_channels)

    def sunsubscribe(self, sub: Subscriber, channel: bytes) -> int:
        """SUNSUBSCRIBE one shard channel (harmless if not subscribed). Returns the shard count."""
        self._leave(sub, channel, sub.shard_channels, self._shard_channels, self._shard_order)
        return len(sub.shard_channels)

    def sunsubscribe_all(self, sub: Subscriber) -> list[bytes]:
        """SUNSUBSCRIBE with no argument: the shard channels it was in, in subscription order."""
        channels = list(self._shard_order.get(sub, ()))
        for channel in channels:
            self.sunsubscribe(sub, channel)
        return channels

    def remove(self, sub: Subscriber) -> None:
        """Forget the subscriber entirely (its connection closed). Safe to call twice."""
        if self._deferred:
            self._deliver_deferred()
        for channel in sub.channels:
            _drop(self._channels, channel, sub)
            self._targets.pop(channel, None)
        for pattern in sub.patterns:
            _drop(self._patterns, pattern, sub)
        for channel in sub.shard_channels:
            _drop(self._shard_channels, channel, sub)
        sub.channels.clear()
        sub.patterns.clear()
        sub.shard_channels.clear()
        self._channel_order.pop(sub, None)
        self._pattern_order.pop(sub, None)
        self._shard_order.pop(sub, None)
        self._subscribers.pop(sub, None)

    # -- fan-out -------------------------------------------------------------------------------

    def publish(self, channel: bytes, payload: bytes, now_ms: int, make_frame: MakeFrame) -> PublishResult:
        """PUBLISH: queue the message for every subscriber of the channel and matching patterns.

        Args:
            channel: the channel published to.
            payload: the message.
            now_ms: current time, for the output-buffer soft-limit timers.
            make_frame: ``make_frame(pattern or None, channel, payload, frame_format)`` builds the
                frame for a ``message`` (pattern None) or ``pmessage``. Called at most once per
                (pattern, frame_format) during this call.

        Returns:
            The number of frames queued (PUBLISH's reply) and the subscribers cut off meanwhile,
            already closed and removed from the registry.
        """
        counters = self._channel_counters.get(channel) or _counters(self._channel_counters, channel)
        counters.published += 1
        subscribers = self._channels.get(channel)
        if not subscribers and not self._patterns:
            # The common "nobody listens" case: no frame built, nothing allocated.
            counters.dropped += 1
            return _NOBODY
        receivers = 0
        cut: list[Subscriber] | None = None  # allocated only if someone is cut off

        if subscribers:
            targets = self._targets.get(channel)
            if targets is None:
                targets = self._targets[channel] = [(sub, sub.outbox.put) for sub in subscribers]
            # Frames for this channel, by frame format: usually one or two entries. Runs of
            # subscribers with the same format reuse the frame without a dict lookup.
            frames: dict[int, bytes] = {}
            fmt = frame = None
            for sub, put in targets:
                if sub.frame_format != fmt:
                    fmt = sub.frame_format
                    frame = frames.get(fmt)
                    if frame is None:
                        frame = frames[fmt] = make_frame(None, channel, payload, fmt)
                if put(frame, now_ms):
                    receivers += 1
                else:
                    # Mark now, remove after the loops: we are iterating the very dicts that
                    # removal would change. ``closed`` makes the pattern loop skip it meanwhile.
                    sub.closed = True
                    if cut is None:
                        cut = []
                    cut.append(sub)

        # Redis walks every pattern: O(patterns) per publish.
        for pattern, subscribers in self._patterns.items():
            if glob_match(pattern, channel):
                if cut is None:
                    cut = []
                reached = _deliver_each(subscribers, pattern, channel, payload, now_ms, make_frame, cut)
                _counters(self._pattern_counters, pattern).delivered += reached
                receivers += reached
        return self._published(receivers, cut, counters)

    def spublish(self, channel: bytes, payload: bytes, now_ms: int, make_frame: MakeFrame) -> PublishResult:
        """SPUBLISH: queue the message for every subscriber of the shard channel, and nobody else.

        Args and Returns as ``publish``; ``make_frame`` is called with ``None`` for the pattern
        and builds the shard frame (``smessage``).
        """
        counters = _counters(self._shard_counters, channel)
        counters.published += 1
        subscribers = self._shard_channels.get(channel)
        if not subscribers:
            counters.dropped += 1
            return _NOBODY
        cut: list[Subscriber] = []
        receivers = _deliver_each(subscribers, None, channel, payload, now_ms, make_frame, cut)
        return self._published(receivers, cut, counters)

    def _published(self, receivers: int, cut: list[Subscriber] | None, counters: ChannelCounters) -> PublishResult:
        """Count a publish that reached ``receivers`` and report the subscribers it cut off."""
        counters.delivered += receivers
        if receivers == 0:
            counters.dropped += 1
        if not cut and receivers < _SHARED_RESULTS:
            return _RESULTS[receivers]
        return PublishResult(receivers, self._cut_off(cut) if cut else ())

    def publish_deferred(self, channel: bytes, payload: bytes, make_frame: MakeFrame) -> int:
        """PUBLISH whose deliveries are held back until ``flush_deferred``, when possible.

        The front-end's fast path for a batch of pipelined PUBLISHes: instead of one outbox
        ``put`` per subscriber per message, each subscriber gets one ``put`` per batch with
        all the batch's frames for the channel joined. Observably the same as ``publish``,
        because it is used only when nothing can tell the difference:

        * no pattern subscription exists (no ``pmessage`` to interleave) and every subscriber
          of the channel has exactly this one subscription, so nothing else can be queued
          for them between this publish and the flush (their own replies are produced only
          by their own batches; the caller flushes before running anything but a PUBLISH,
          and must not use this for a publisher that is itself subscribed);
        * one frame format among them, and no output-buffer limit can fire: the frames held
          back stay below every subscriber's fast-path headroom (``Outbox.headroom``), so each
          ``put`` would have succeeded, and the receiver count is exact.

        A channel nobody listens to (and no pattern anywhere) is answered here too: 0.

        Returns:
            The receiver count (PUBLISH's reply), or -1 when the publish must go through
            ``publish`` instead (nothing was done then; deferred frames of this channel are
            delivered first if it was the headroom that ran out).
        """
        batch = self._deferred.get(channel)
        if batch is None:
            if self._patterns or channel in self._not_deferrable:
                return -1
            if channel not in self._channels:
                # Nobody listens: what publish does then, without its call.
                counters = self._channel_counters.get(channel) or _counters(self._channel_counters, channel)
                counters.published += 1
                counters.dropped += 1
                return 0
            batch = self._start_deferral(channel)
            if batch is None:
                self._not_deferrable.add(channel)
                return -1
        frame = make_frame(None, channel, payload, batch.frame_format)
        size = batch.size + len(frame)
        if size >= batch.headroom:
            # Deliver what is held back; this publish (and the next) take the careful path.
            self._deliver_deferred()
            self._not_deferrable.add(channel)
            return -1
        batch.size = size
        batch.frames.append(frame)
        receivers = len(batch.targets)
        counters = batch.counters
        counters.published += 1
        counters.delivered += receivers
        return receivers

    def publish_many(self, channel: bytes, payloads: Sequence[bytes], make_frame: MakeFrame) -> int:
        """Several PUBLISHes to one channel, one after the other, as one fan-out, when possible.

        The front-end's fast path for a read that brought nothing but PUBLISHes to one
        channel (``redis-benchmark -P 64 PUBLISH``): the subscribers are looked up once, each
        gets the frames of every payload joined in one ``put``, and each publish reaches the
        same number of subscribers. Observably the same as calling ``publish`` for each
        payload in turn, because it is used only when nothing can tell the difference:

        * no pattern subscription exists (a ``pmessage`` would go between two messages);
        * no output-buffer limit can fire during the run: every subscriber's share of the
          run stays below its fast-path headroom (``Outbox.headroom``), so each of the
          ``put`` calls one by one would have succeeded and the receiver counts are exact.

        Nothing else can come between the frames: the whole run is delivered here, before
        any other command runs. Deliveries ``publish_deferred`` still holds are queued first.

        Args:
            channel: the channel of every publish.
            payloads: the messages, in publish order.
            make_frame: as for ``publish`` (pattern None); called once per distinct
                (payload, frame format), usually once.

        Returns:
            The receiver count of each publish (PUBLISH's reply, the same for all), or -1
            when the run must go through ``publish`` one by one (nothing was done then).
        """
        if self._patterns:
            return -1
        if self._deferred:
            self._deliver_deferred()
        count = len(payloads)
        subscribers = self._channels.get(channel)
        if not subscribers:
            counters = self._channel_counters.get(channel) or _counters(self._channel_counters, channel)
            counters.published += count
            counters.dropped += count
            return 0
        targets = self._targets.get(channel)
        if targets is None:
            targets = self._targets[channel] = [(sub, sub.outbox.put) for sub in subscribers]
        # The run's bytes, joined once per frame format (a benchmark repeats one payload:
        # then one frame, repeated).
        runs: dict[int, bytes] = {}
        first = payloads[0]
        same = payloads.count(first) == count
        for sub, _ in targets:
            fmt = sub.frame_format
            data = runs.get(fmt)
            if data is None:
                if same:
                    data = make_frame(None, channel, first, fmt) * count
                else:
                    data = b"".join([make_frame(None, channel, payload, fmt) for payload in payloads])
                runs[fmt] = data
            if len(data) >= sub.outbox.headroom():
                return -1
        for sub, put in targets:
            put(runs[sub.frame_format], 0)  # within the headroom: cannot fail, no timer starts
        receivers = len(targets)
        counters = self._channel_counters.get(channel) or _counters(self._channel_counters, channel)
        counters.published += count
        counters.delivered += receivers * count
        return receivers

    def _start_deferral(self, channel: bytes) -> _DeferredBatch | None:
        subscribers = self._channels.get(channel)
        if not subscribers:
            return None
        targets = self._targets.get(channel)
        if targets is None:
            targets = self._targets[channel] = [(sub, sub.outbox.put) for sub in subscribers]
        frame_format = None
        headroom = float("inf")
        for sub, _ in targets:
            # A shard subscription could put an smessage between two held frames.
            if len(sub.channels) != 1 or sub.patterns or sub.shard_channels:
                return None
            if sub.frame_format != frame_format:
                if frame_format is not None:
                    return None
                frame_format = sub.frame_format
            room = sub.outbox.headroom()
            if room < headroom:
                headroom = room
        if headroom <= 0:
            return None
        batch = self._deferred[channel] = _DeferredBatch(targets, frame_format, headroom,
                                                         _counters(self._channel_counters, channel))
        return batch

    def flush_deferred(self, now_ms: int) -> list[Disconnected] | tuple[()]:
        """Queue every frame ``publish_deferred`` held back, one ``put`` per subscriber.

        Call it at the end of each batch of commands, and before running any command other
        than a deferred PUBLISH.

        Returns:
            Subscribers cut off meanwhile, as ``publish`` reports them (never any in
            practice: deferred frames are within every subscriber's headroom).
        """
        self._not_deferrable.clear()
        if self._deferred:
            self._deliver_deferred(now_ms)
        if self._late_cuts:
            cut, self._late_cuts = self._late_cuts, []
            return self._cut_off(cut)
        return ()

    def _deliver_deferred(self, now_ms: int = 0) -> None:
        # now_ms only feeds soft-limit timers, which cannot start within the headroom.
        deferred = self._deferred
        self._deferred = {}
        for batch in deferred.values():
            frames = batch.frames
            data = frames[0] if len(frames) == 1 else b"".join(frames)
            for sub, put in batch.targets:
                if not sub.closed and not put(data, now_ms):
                    sub.closed = True
                    self._late_cuts.append(sub)

    def sweep(self, now_ms: int) -> list[Disconnected]:
        """Apply the output-buffer limits to every subscriber, even those receiving nothing new.

        A soft-limit timer must expire for a subscriber whose channel went quiet; Redis checks in
        its once-a-second ``clientsCron``. Call this about once a second.

        Returns:
            The subscribers cut off, already closed and removed (see ``publish``).
        """
        if self._deferred:
            self._deliver_deferred()
        cut, self._late_cuts = self._late_cuts, []
        for sub in self._subscribers:
            if not sub.closed and not sub.outbox.check(now_ms):
                sub.closed = True
                cut.append(sub)
        return self._cut_off(cut)

    def _cut_off(self, subs: list[Subscriber]) -> list[Disconnected]:
        result = []
        for sub in subs:
            self.remove(sub)
            reason = sub.outbox.cut_reason or HARD
            if reason == HARD:
                self._disconnected_hard += 1
            else:
                self._disconnected_soft += 1
            result.append((sub, sub.outbox.cut_bytes, reason))
        return result

    # -- introspection (PUBSUB) ----------------------------------------------------------------

    def channels(self, pattern: bytes | None = None) -> list[bytes]:
        """PUBSUB CHANNELS: channels with at least one subscriber, optionally glob-filtered."""
        return _names(self._channels, pattern)

    def numsub(self, channel: bytes) -> int:
        """PUBSUB NUMSUB for one channel: its exact subscribers (patterns do not count)."""
        return len(self._channels.get(channel, ()))

    def numpat(self) -> int:
        """PUBSUB NUMPAT: distinct patterns with at least one subscriber (Redis >= 6.2)."""
        return len(self._patterns)

    def shard_channel_names(self, pattern: bytes | None = None) -> list[bytes]:
        """PUBSUB SHARDCHANNELS: shard channels with at least one subscriber, optionally filtered."""
        return _names(self._shard_channels, pattern)

    def shard_subscribers(self, channel: bytes) -> list[Subscriber]:
        """Who SSUBSCRIBEd ``channel``, in subscription order (a cluster unsubscribes them all
        when the channel's slot moves to another broker)."""
        return list(self._shard_channels.get(channel, ()))

    def shard_numsub(self, channel: bytes) -> int:
        """PUBSUB SHARDNUMSUB for one shard channel: its subscribers."""
        return len(self._shard_channels.get(channel, ()))

    def reset_statistics(self) -> None:
        """Zero the counters INFO shows (CONFIG RESETSTAT); sizes (channels, subscribers) are not
        counters, and the per-name counters (``channel_counters``, for Prometheus) never go back."""
        self._reset_at = self._totals()
        self._disconnected_hard = 0
        self._disconnected_soft = 0

    def channel_counters(self) -> dict[str, dict[bytes | None, ChannelCounters]]:
        """Copies of the per-name counters, by namespace (``channel``, ``pattern``, ``shard``);
        the name None holds the names counted together past ``CHANNEL_COUNTERS_LIMIT``."""
        return {kind: {name: attrs.evolve(c) for name, c in index.items()}
                for kind, index in (("channel", self._channel_counters), ("pattern", self._pattern_counters),
                                    ("shard", self._shard_counters))}

    def subscriber_counts(self) -> dict[str, dict[bytes, int]]:
        """Subscribers per channel, pattern and shard channel, as now (PUBSUB NUMSUB for all)."""
        return {"channel": {name: len(subs) for name, subs in self._channels.items()},
                "pattern": {name: len(subs) for name, subs in self._patterns.items()},
                "shard": {name: len(subs) for name, subs in self._shard_channels.items()}}

    @property
    def subscriber_count(self) -> int:
        """Subscribers with at least one subscription."""
        return len(self._subscribers)

    def _totals(self) -> tuple[int, int, int]:
        """Messages published, frames delivered, messages dropped: sums of the channels' and
        shard channels' counters (a channel's ``delivered`` is the sum of its PUBLISH replies,
        pattern subscribers' pmessages included; the patterns' own counters split those out)."""
        published = delivered = dropped = 0
        for index in (self._channel_counters, self._shard_counters):
            for counters in index.values():
                published += counters.published
                delivered += counters.delivered
                dropped += counters.dropped
        return published, delivered, dropped

    def statistics(self) -> PubSubStatistics:
        """A frozen snapshot of sizes and counters (counters since the last CONFIG RESETSTAT)."""
        published, delivered, dropped = self._totals()
        return PubSubStatistics(
            channels=len(self._channels),
            patterns=len(self._patterns),
            shard_channels=len(self._shard_channels),
            subscribers=len(self._subscribers),
            messages_published=published - self._reset_at[0],
            frames_delivered=delivered - self._reset_at[1],
            messages_dropped_no_subscriber=dropped - self._reset_at[2],
            subscribers_disconnected_hard=self._disconnected_hard,
            subscribers_disconnected_soft=self._disconnected_soft,
        )

    def _forget_if_idle(self, sub: Subscriber) -> None:
        # Redis: with no subscription left the client leaves pub/sub mode (and the pubsub
        # output-buffer class); we stop sweeping it.
        if not sub.channels and not sub.patterns and not sub.shard_channels:
            self._subscribers.pop(sub, None)


@attrs.define(slots=True, eq=False)
class _DeferredBatch:
    """Frames ``publish_deferred`` holds back for one channel until ``flush_deferred``."""

    targets: list[tuple[Subscriber, Callable[[bytes, int], bool]]]
    frame_format: int
    headroom: float  # the frames held back must stay below this many bytes
    counters: ChannelCounters  # the channel's, counted as each publish is held
    size: int = 0
    frames: list[bytes] = attrs.field(factory=list)


def _deliver_each(subscribers: dict[Subscriber, None], pattern: bytes | None, channel: bytes, payload: bytes,
                  now_ms: int, make_frame: MakeFrame, cut: list[Subscriber]) -> int:
    """Queue the delivery for each subscriber still open, encoded once per frame format.

    A subscriber whose outbox refuses it is marked closed and appended to ``cut`` (removed from
    the registry by the caller, after the loops over the registry's dicts).

    Returns:
        How many subscribers it was queued for.
    """
    receivers = 0
    frames: dict[int, bytes] = {}
    for sub in subscribers:
        if sub.closed:
            continue
        fmt = sub.frame_format
        frame = frames.get(fmt)
        if frame is None:
            frame = frames[fmt] = make_frame(pattern, channel, payload, fmt)
        if sub.outbox.put(frame, now_ms):
            receivers += 1
        else:
            sub.closed = True
            cut.append(sub)
    return receivers


def _names(index: dict[bytes, dict], pattern: bytes | None) -> list[bytes]:
    """The names in ``index`` (each has a subscriber), those matching ``pattern`` if one is given."""
    if pattern is None:
        return list(index)
    return [name for name in index if glob_match(pattern, name)]


def _drop(index: dict, key: object, member: object) -> None:
    """Remove ``member`` from ``index[key]`` and drop the entry once it is empty, so that
    ``PUBSUB CHANNELS`` / ``NUMPAT`` and the fan-out loop never see empty entries."""
    members = index.get(key)
    if members is None:
        return
    members.pop(member, None)
    if not members:
        del index[key]
