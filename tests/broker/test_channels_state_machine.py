"""A hypothesis state machine driving ``PubSub`` against a plain model.

Four client slots (two frame formats; one with a tiny hard limit, one with a tiny soft limit) do
random SUBSCRIBE / PSUBSCRIBE / UNSUBSCRIBE / PUNSUBSCRIBE and the sharded SSUBSCRIBE /
SUNSUBSCRIBE (one or all), PUBLISH and SPUBLISH, drain their outbox, get swept, disconnect and
reconnect, while time moves on. After every step the model's
view (counts, PUBSUB answers, queued bytes) must equal the registry's; every PUBLISH must return
the modelled receiver count and cut-offs; every drain must return exactly the modelled frames in
the modelled order.

The model is deliberately naive: lists scanned linearly, the limit rule written out again from
Redis's rule (docs/resp.md#output-buffer-limits), glob answers from ``glob_match`` (tested on its own in ``test_glob.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from broker.channels import PubSub
from broker.glob import glob_match
from broker.subscribers import HARD, SOFT, Outbox, OutputLimits, Subscriber

CHANNELS = [b"a", b"ab", b"ba", b""]
PATTERNS = [b"*", b"a*", b"?", b"[ab]b", b"*a"]
PAYLOADS = [b"", b"x", b"hello", b"0123456789"]
# (frame format, hard, soft, soft seconds) per slot
SLOT_SETUP = [(2, 0, 0, 0), (3, 0, 0, 0), (2, 30, 0, 0), (3, 0, 20, 1)]
slots = st.integers(0, len(SLOT_SETUP) - 1)


def make_frame(pattern: bytes | None, channel: bytes, payload: bytes, fmt: int) -> bytes:
    kind = b"m" if pattern is None else b"p:" + pattern
    return _padded(b"%d|%s|%s|%s|" % (fmt, kind, channel, payload))


def make_shard_frame(pattern: bytes | None, channel: bytes, payload: bytes, fmt: int) -> bytes:
    assert pattern is None
    return _padded(b"%d|s|%s|%s|" % (fmt, channel, payload))


def _padded(frame: bytes) -> bytes:
    # Pad to a multiple of 10 bytes so that queues hit the limits below *exactly* (>= vs >).
    return frame.ljust(-(-len(frame) // 10) * 10, b".")


@dataclass
class ModelClient:
    fmt: int
    hard: int
    soft: int
    seconds: int
    channels: list[bytes] = field(default_factory=list)  # in subscription order
    patterns: list[bytes] = field(default_factory=list)
    shards: list[bytes] = field(default_factory=list)  # shard channels, a namespace apart
    queue: list[bytes] = field(default_factory=list)
    soft_since: int | None = None
    closed: bool = False

    def names(self, kind: str) -> list[bytes]:
        """The channels, patterns or shard channels, by kind."""
        return {"channel": self.channels, "pattern": self.patterns, "shard": self.shards}[kind]

    def verdict(self, used: int, now: int) -> str | None:
        """Redis's rule: which limit (if any) ``used`` queued bytes break at ``now``."""
        hard = self.hard > 0 and used >= self.hard
        soft = False
        if self.soft > 0 and used >= self.soft:
            if self.soft_since is None:
                self.soft_since = now
            elif now - self.soft_since > self.seconds * 1000:
                soft = True
        else:
            self.soft_since = None
        return HARD if hard else SOFT if soft else None


class PubSubMachine(RuleBasedStateMachine):
    @initialize()
    def start(self) -> None:
        self.ps = PubSub()
        self.now = 0
        self.subs: list[Subscriber] = []
        self.model: list[ModelClient] = []
        for slot in range(len(SLOT_SETUP)):
            self.subs.append(self._fresh_subscriber(slot))
            self.model.append(self._fresh_model(slot))
        self.published = 0
        self.delivered = 0
        self.dropped = 0
        self.cut = {HARD: 0, SOFT: 0}
        # Order bookkeeping (see _order_of): a sequence number per new subscription, and for
        # each pattern the number at which it last went from no subscriber to one.
        self._clock = 0
        self._seq: dict[tuple[int, str, bytes], int] = {}
        self._pattern_born: dict[bytes, int] = {}

    def _fresh_subscriber(self, slot: int) -> Subscriber:
        fmt, hard, soft, seconds = SLOT_SETUP[slot]
        limits = OutputLimits(hard_bytes=hard, soft_bytes=soft, soft_seconds=seconds)
        return Subscriber(client_id=slot, frame_format=fmt, outbox=Outbox(limits))

    def _fresh_model(self, slot: int) -> ModelClient:
        return ModelClient(*SLOT_SETUP[slot])

    def _note_new_subscription(self, slot: int, name: bytes, kind: str) -> None:
        self._clock += 1
        self._seq[(slot, kind, name)] = self._clock
        if kind == "pattern" and not any(name in m.patterns for m in self.model if not m.closed):
            self._pattern_born[name] = self._clock

    def _cut(self, slot: int, reason: str) -> None:
        m = self.model[slot]
        m.closed = True
        m.channels.clear()
        m.patterns.clear()
        m.shards.clear()
        self.cut[reason] += 1

    # -- subscriptions ---------------------------------------------------------------------

    def _join(self, slot: int, name: bytes, kind: str) -> ModelClient:
        m = self.model[slot]
        if not m.closed and name not in m.names(kind):
            self._note_new_subscription(slot, name, kind)
            m.names(kind).append(name)
        return m

    def _leave(self, slot: int, name: bytes, kind: str) -> ModelClient:
        m = self.model[slot]
        if name in m.names(kind):
            m.names(kind).remove(name)
        return m

    @rule(slot=slots, channel=st.sampled_from(CHANNELS))
    def subscribe(self, slot: int, channel: bytes) -> None:
        m = self._join(slot, channel, "channel")
        assert self.ps.subscribe(self.subs[slot], channel) == len(m.channels) + len(m.patterns)

    @rule(slot=slots, pattern=st.sampled_from(PATTERNS))
    def psubscribe(self, slot: int, pattern: bytes) -> None:
        m = self._join(slot, pattern, "pattern")
        assert self.ps.psubscribe(self.subs[slot], pattern) == len(m.channels) + len(m.patterns)

    @rule(slot=slots, channel=st.sampled_from(CHANNELS))
    def unsubscribe(self, slot: int, channel: bytes) -> None:
        m = self._leave(slot, channel, "channel")
        assert self.ps.unsubscribe(self.subs[slot], channel) == len(m.channels) + len(m.patterns)

    @rule(slot=slots, pattern=st.sampled_from(PATTERNS))
    def punsubscribe(self, slot: int, pattern: bytes) -> None:
        m = self._leave(slot, pattern, "pattern")
        assert self.ps.punsubscribe(self.subs[slot], pattern) == len(m.channels) + len(m.patterns)

    @rule(slot=slots)
    def unsubscribe_all(self, slot: int) -> None:
        m = self.model[slot]
        expected, m.channels = m.channels, []
        assert self.ps.unsubscribe_all(self.subs[slot]) == expected

    @rule(slot=slots)
    def punsubscribe_all(self, slot: int) -> None:
        m = self.model[slot]
        expected, m.patterns = m.patterns, []
        assert self.ps.punsubscribe_all(self.subs[slot]) == expected

    @rule(slot=slots, channel=st.sampled_from(CHANNELS))
    def ssubscribe(self, slot: int, channel: bytes) -> None:
        m = self._join(slot, channel, "shard")
        # The shard count is its own: channels and patterns do not add to it.
        assert self.ps.ssubscribe(self.subs[slot], channel) == len(m.shards)

    @rule(slot=slots, channel=st.sampled_from(CHANNELS))
    def sunsubscribe(self, slot: int, channel: bytes) -> None:
        m = self._leave(slot, channel, "shard")
        assert self.ps.sunsubscribe(self.subs[slot], channel) == len(m.shards)

    @rule(slot=slots)
    def sunsubscribe_all(self, slot: int) -> None:
        m = self.model[slot]
        expected, m.shards = m.shards, []
        assert self.ps.sunsubscribe_all(self.subs[slot]) == expected

    @rule(slot=slots)
    def reconnect(self, slot: int) -> None:
        # The old connection goes away (remove), a new client takes the slot.
        self.ps.remove(self.subs[slot])
        self.subs[slot] = self._fresh_subscriber(slot)
        self.model[slot] = self._fresh_model(slot)

    # -- delivery ----------------------------------------------------------------------------

    @rule(channel=st.sampled_from(CHANNELS), payload=st.sampled_from(PAYLOADS))
    def publish(self, channel: bytes, payload: bytes) -> None:
        expected_receivers, expected_cut = self._model_publish(channel, payload)
        result = self.ps.publish(channel, payload, self.now, make_frame)
        got_cut = [(self.subs.index(sub), used, reason) for sub, used, reason in result.disconnected]
        assert result.receivers == expected_receivers
        assert got_cut == expected_cut
        for slot, _, _ in expected_cut:
            assert self.subs[slot].closed

    @rule(messages=st.lists(st.tuples(st.sampled_from(CHANNELS), st.sampled_from(PAYLOADS)),
                            min_size=1, max_size=6))
    def publish_batch(self, messages: list[tuple[bytes, bytes]]) -> None:
        """A batch of pipelined PUBLISHes as push mode runs them: publish_deferred where it
        can, publish where it cannot, flush_deferred at the end. Observably as one by one."""
        for channel, payload in messages:
            expected_receivers, expected_cut = self._model_publish(channel, payload)
            receivers = self.ps.publish_deferred(channel, payload, make_frame)
            if receivers >= 0:
                assert receivers == expected_receivers
                assert expected_cut == []
                continue
            result = self.ps.publish(channel, payload, self.now, make_frame)
            got_cut = [(self.subs.index(sub), used, reason) for sub, used, reason in result.disconnected]
            assert result.receivers == expected_receivers
            assert got_cut == expected_cut
        assert self.ps.flush_deferred(self.now) == ()

    @rule(channel=st.sampled_from(CHANNELS), payloads=st.lists(st.sampled_from(PAYLOADS), min_size=1, max_size=8),
          deferred_first=st.sampled_from([None, *CHANNELS]))
    def publish_many(self, channel: bytes, payloads: list[bytes], deferred_first: bytes | None) -> None:
        """A run of PUBLISHes to one channel as push mode runs it: publish_many where it can
        (the same receiver count for each, as one by one), else publish one by one. A
        deferred publish of another channel may come first, as in a batch that mixes them."""
        if deferred_first is not None:
            expected_receivers, expected_cut = self._model_publish(deferred_first, b"x")
            receivers = self.ps.publish_deferred(deferred_first, b"x", make_frame)
            if receivers < 0:
                result = self.ps.publish(deferred_first, b"x", self.now, make_frame)
                receivers = result.receivers
                assert [(self.subs.index(sub), used, reason) for sub, used, reason in result.disconnected] \
                    == expected_cut
            assert receivers == expected_receivers
        before = self.ps.statistics()
        receivers = self.ps.publish_many(channel, payloads, make_frame)
        if receivers < 0:
            assert self.ps.statistics() == before, "declined, yet something was done"
            for payload in payloads:
                self.publish(channel, payload)
        else:
            for payload in payloads:
                expected_receivers, expected_cut = self._model_publish(channel, payload)
                assert receivers == expected_receivers
                assert expected_cut == []
        assert self.ps.flush_deferred(self.now) == ()

    @rule(channel=st.sampled_from(CHANNELS), payload=st.sampled_from(PAYLOADS))
    def spublish(self, channel: bytes, payload: bytes) -> None:
        expected_receivers, expected_cut = self._model_publish(channel, payload, shard=True)
        result = self.ps.spublish(channel, payload, self.now, make_shard_frame)
        got_cut = [(self.subs.index(sub), used, reason) for sub, used, reason in result.disconnected]
        assert result.receivers == expected_receivers
        assert got_cut == expected_cut

    def _model_publish(self, channel: bytes, payload: bytes,
                       shard: bool = False) -> tuple[int, list[tuple[int, int, str]]]:
        expected_receivers = 0
        expected_cut: list[tuple[int, int, str]] = []

        def deliver(slot: int, frame: bytes) -> None:
            nonlocal expected_receivers
            m = self.model[slot]
            used = sum(map(len, m.queue)) + len(frame)
            reason = m.verdict(used, self.now)
            if reason is None:
                m.queue.append(frame)
                expected_receivers += 1
            else:
                m.closed = True
                expected_cut.append((slot, used, reason))

        if shard:
            # Only the shard channel's own subscribers: no pattern, no plain subscriber.
            for slot in self._order_of(channel, "shard"):
                deliver(slot, make_shard_frame(None, channel, payload, self.model[slot].fmt))
        else:
            for slot in self._order_of(channel, "channel"):
                deliver(slot, make_frame(None, channel, payload, self.model[slot].fmt))
        for pattern in [] if shard else self._patterns_in_order():
            if glob_match(pattern, channel):
                for slot in self._order_of(pattern, "pattern"):
                    if not self.model[slot].closed:
                        deliver(slot, make_frame(pattern, channel, payload, self.model[slot].fmt))
        for slot, _, reason in expected_cut:
            self._cut(slot, reason)
        self.published += 1
        self.delivered += expected_receivers
        self.dropped += expected_receivers == 0
        return expected_receivers, expected_cut

    @rule(slot=slots)
    def drain(self, slot: int) -> None:
        m = self.model[slot]
        expected, m.queue = m.queue, []
        m.soft_since = None
        # Compared as bytes: publish_batch may queue a batch's frames for a subscriber as one
        # joined piece (what reaches the socket is the same).
        assert b"".join(self.subs[slot].outbox.take_all()) == b"".join(expected)

    # Steps chosen so that the 1 s soft window is hit exactly, and 1 ms past it.
    @rule(ms=st.sampled_from([0, 1, 500, 1000]))
    def advance(self, ms: int) -> None:
        self.now += ms

    @rule()
    def sweep(self) -> None:
        expected = []
        for slot, m in enumerate(self.model):
            if m.closed or not (m.channels or m.patterns or m.shards):
                continue  # only attached subscribers are swept
            reason = m.verdict(sum(map(len, m.queue)), self.now)
            if reason is not None:
                expected.append((slot, sum(map(len, m.queue)), reason))
        for slot, _, reason in expected:
            self._cut(slot, reason)
        got = [(self.subs.index(sub), used, reason) for sub, used, reason in self.ps.sweep(self.now)]
        assert sorted(got) == sorted(expected)

    # -- order bookkeeping for the model --------------------------------------------------------
    #
    # Subscription order per channel is "who subscribed first among those still subscribed";
    # patterns go in the order they last gained a first subscriber. Both come from the sequence
    # numbers noted at subscription time, not from peeking into the registry.

    def _order_of(self, name: bytes, kind: str) -> list[int]:
        members = [
            slot
            for slot, m in enumerate(self.model)
            if not m.closed and name in m.names(kind)
        ]
        return sorted(members, key=lambda slot: self._seq[(slot, kind, name)])

    def _patterns_in_order(self) -> list[bytes]:
        live = {p for m in self.model if not m.closed for p in m.patterns}
        return sorted(live, key=lambda p: self._pattern_born[p])

    # -- invariants ----------------------------------------------------------------------------

    @invariant()
    def registry_matches_model(self) -> None:
        if not hasattr(self, "ps"):
            return
        live = [m for m in self.model if not m.closed]
        channels = {c for m in live for c in m.channels}
        patterns = {p for m in live for p in m.patterns}
        assert set(self.ps.channels()) == channels
        assert self.ps.numpat() == len(patterns)
        for channel in CHANNELS:
            assert self.ps.numsub(channel) == sum(channel in m.channels for m in live)
        assert set(self.ps.channels(b"a*")) == {c for c in channels if glob_match(b"a*", c)}
        shards = {c for m in live for c in m.shards}
        assert set(self.ps.shard_channel_names()) == shards
        assert set(self.ps.shard_channel_names(b"a*")) == {c for c in shards if glob_match(b"a*", c)}
        for channel in CHANNELS:
            assert self.ps.shard_numsub(channel) == sum(channel in m.shards for m in live)
        assert self.ps.subscriber_count == sum(bool(m.channels or m.patterns or m.shards) for m in live)
        for sub, m in zip(self.subs, self.model):
            assert sub.closed == m.closed
            assert sub.subscription_count == len(m.channels) + len(m.patterns)
            assert sub.has_subscriptions == bool(m.channels or m.patterns or m.shards)
            assert sub.outbox.pending_bytes == sum(map(len, m.queue))
        stats = self.ps.statistics()
        assert stats.shard_channels == len(shards)
        assert stats.messages_published == self.published
        assert stats.frames_delivered == self.delivered
        assert stats.messages_dropped_no_subscriber == self.dropped
        assert stats.subscribers_disconnected_hard == self.cut[HARD]
        assert stats.subscribers_disconnected_soft == self.cut[SOFT]


TestPubSubStateMachine = PubSubMachine.TestCase
TestPubSubStateMachine.settings = settings(max_examples=150, stateful_step_count=50, deadline=None)
