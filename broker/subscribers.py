"""Push-mode subscribers and their bounded outboxes (Redis's pub/sub output-buffer limit).

What lives here:

* ``OutputLimits`` — the three numbers of Redis's ``client-output-buffer-limit pubsub <hard> <soft>
  <soft-seconds>`` (docs/resp.md#output-buffer-limits); 0 disables a byte limit.
* ``Outbox`` — one subscriber's queue of frames that are already encoded for its connection and not
  yet handed to its writer task, measured in bytes. It applies Redis's rule every time something
  is queued, and on demand for the periodic sweep.
* ``Subscriber`` — a connected client in pub/sub mode: its outbox and what it is subscribed to.

What does not: encoding (the front-end builds frames, the core only counts their bytes), sockets,
logging and the clock (time arrives as ``now_ms``). The registry of who listens to what is
``broker.channels``.

Redis's rule, in our words. Measure the bytes waiting to be written to the subscriber:

* at or above the *hard* limit -> disconnect at once;
* at or above the *soft* limit -> remember when that was first seen; if it is still so when MORE
  than *soft-seconds* have passed -> disconnect; seen below the soft limit -> forget the time.

Why disconnect instead of dropping messages (as tokio's mini-redis does) or blocking the publisher:
a slow subscriber must neither stall everybody else nor silently lose messages. Redis picks "you
get everything or you get cut off and notice (EOF)", and push mode copies that.

Differences from Redis, on purpose and small: we measure every queued byte (Redis does not count
its fixed 16 KiB per-client buffer), and we measure time in milliseconds where Redis uses whole
seconds, so the soft timer fires after ``soft_seconds * 1000 + 1`` ms rather than on the next
whole second beyond ``soft_seconds``.
"""

from __future__ import annotations

from typing import Callable

import attrs

from broker.config import RespConfig

__all__ = ["OutputLimits", "Outbox", "Subscriber", "HARD", "SOFT"]

# Names of the limit that cut a subscriber off (for logs and counters).
HARD = "hard"
SOFT = "soft"


@attrs.frozen(kw_only=True)
class OutputLimits:
    """Redis's ``client-output-buffer-limit pubsub`` triple. A byte limit of 0 is disabled."""

    hard_bytes: int = 0
    soft_bytes: int = 0
    soft_seconds: int = 0

    @classmethod
    def from_config(cls, resp_config: RespConfig) -> OutputLimits:
        """The limits configured in the ``[resp]`` section."""
        return cls(
            hard_bytes=resp_config.pubsub_hard_limit,
            soft_bytes=resp_config.pubsub_soft_limit,
            soft_seconds=resp_config.pubsub_soft_seconds,
        )

    @classmethod
    def unlimited(cls) -> OutputLimits:
        """No limit at all (Redis's ``normal`` client class: ``0 0 0``)."""
        return cls()


@attrs.define(slots=True, eq=False)
class Outbox:
    """A subscriber's queue of encoded frames waiting for its writer task, bounded like Redis.

    The front-end's writer task sleeps until ``wakeup`` is called, then ``take_all()`` s the frames
    and writes them in one go. Once a limit has cut the subscriber off (``cut_reason`` is set), the
    outbox refuses everything: Redis likewise queues nothing more for a client it is closing.
    """

    limits: OutputLimits
    # Called (with no arguments) when the queue goes from empty to non-empty. The front-end sets
    # it to wake its writer task; it runs on the publisher's hot path, so keep it cheap.
    wakeup: Callable[[], None] | None = None
    pending_bytes: int = attrs.field(default=0, init=False)
    # The most ever pending, as of the last take or put_back (see ``high_water_bytes``).
    _high_water: int = attrs.field(default=0, init=False)
    # When the soft limit was first seen reached (None: not reached at the last check).
    soft_since_ms: int | None = attrs.field(default=None, init=False)
    # Set once a limit was exceeded: HARD or SOFT, and the byte count that was judged.
    cut_reason: str | None = attrs.field(default=None, init=False)
    cut_bytes: int = attrs.field(default=0, init=False)
    _frames: list[bytes] = attrs.field(factory=list, init=False)
    # Below this many pending bytes no limit can fire, so ``put`` skips the full test: the
    # smallest enabled limit (hard or soft), or "infinity" when both are disabled.
    _fast_below: float = attrs.field(default=0, init=False)

    def __attrs_post_init__(self) -> None:
        self.set_limits(self.limits)

    def set_limits(self, limits: OutputLimits) -> None:
        """Change the limits (a client becomes pub/sub class when it first subscribes)."""
        self.limits = limits
        enabled = [limit for limit in (limits.hard_bytes, limits.soft_bytes) if limit]
        self._fast_below = min(enabled) if enabled else float("inf")

    def put(self, frame: bytes, now_ms: int) -> bool:
        """Queue one encoded frame, unless that would break the output-buffer limit.

        The limit is judged on the bytes that *would* be queued with this frame, as Redis judges
        its reply list after appending to it.

        Args:
            frame: bytes ready for the socket.
            now_ms: the current time, for the soft-limit timer.

        Returns:
            True when queued. False when the subscriber must be disconnected (nothing is queued,
            then or ever after; ``cut_reason`` says which limit).
        """
        size = self.pending_bytes + len(frame)
        # Fast path (nearly every call): under every limit and no soft-limit timer running.
        # A cut-off outbox has _fast_below forced to 0, so it always takes the full path.
        if size >= self._fast_below or self.soft_since_ms is not None:
            if self.cut_reason is not None or not self._within_limits(size, now_ms):
                return False
        self.pending_bytes = size
        frames = self._frames
        frames.append(frame)
        # The high-water mark is not updated here: pending bytes only grow between takes, so
        # the takes (and the property) see every maximum.
        if len(frames) == 1 and self.wakeup is not None:
            self.wakeup()
        return True

    def headroom(self) -> float:
        """How many more bytes ``put`` will accept on its fast path, i.e. with no limit test
        at all (0 while a soft-limit timer runs or once cut off; infinite with no limits)."""
        if self.soft_since_ms is not None or self.cut_reason is not None:
            return 0
        return self._fast_below - self.pending_bytes

    @property
    def high_water_bytes(self) -> int:
        """The most bytes ever pending at once."""
        pending = self.pending_bytes
        return pending if pending > self._high_water else self._high_water

    def check(self, now_ms: int) -> bool:
        """Apply the limit test to what is queued now (the periodic sweep: a soft-limit timer
        must expire even when no new message arrives).

        Returns:
            True if the subscriber may stay; False if it must be disconnected.
        """
        if self.cut_reason is not None:
            return False
        return self._within_limits(self.pending_bytes, now_ms)

    def take_all(self) -> list[bytes]:
        """Remove and return every queued frame, oldest first (the writer joins and sends them).

        The queue is empty afterwards, which is below any soft limit, so the soft timer is
        forgotten here rather than at the next check; Redis's once-a-second cron would forget it
        a moment later anyway.
        """
        frames = self._frames
        self._frames = []
        if self.pending_bytes > self._high_water:
            self._high_water = self.pending_bytes
        self.pending_bytes = 0
        self.soft_since_ms = None
        return frames

    def take_bytes(self) -> bytes:
        """Remove everything queued, joined into one bytes object for one socket write.

        Unlike ``take_all`` the soft-limit timer is left alone: what the socket does not
        accept comes back through ``put_back`` and still counts, and the next check resets
        the timer if the queue really dropped below the soft limit.
        """
        frames = self._frames
        if not frames:
            return b""
        self._frames = []
        if self.pending_bytes > self._high_water:
            self._high_water = self.pending_bytes
        self.pending_bytes = 0
        return frames[0] if len(frames) == 1 else b"".join(frames)

    def put_back(self, rest: bytes) -> None:
        """Return the unsent tail of a write to the front of the queue.

        Redis counts every byte it has not yet written to the socket; so do we. No limit
        test here: the bytes were already accepted once, and the next ``put`` or sweep judges.
        """
        self._frames.insert(0, rest)
        self.pending_bytes += len(rest)
        if self.pending_bytes > self._high_water:
            self._high_water = self.pending_bytes

    def __len__(self) -> int:
        """Number of queued frames."""
        return len(self._frames)

    def _within_limits(self, used: int, now_ms: int) -> bool:
        # Redis's checkClientOutputBufferLimits: both tests run (the soft timer is maintained
        # even when the hard limit is what fires).
        limits = self.limits
        hard = limits.hard_bytes != 0 and used >= limits.hard_bytes
        soft = False
        if limits.soft_bytes != 0 and used >= limits.soft_bytes:
            if self.soft_since_ms is None:
                self.soft_since_ms = now_ms  # first time seen: start the clock, do not cut yet
            elif now_ms - self.soft_since_ms > limits.soft_seconds * 1000:
                soft = True
        else:
            self.soft_since_ms = None
        if hard or soft:
            self.cut_reason = HARD if hard else SOFT
            self.cut_bytes = used
            self._fast_below = 0  # refuse everything from now on, via the full path
            return False
        return True


@attrs.define(slots=True, eq=False)
class Subscriber:
    """A client in pub/sub mode, as the core sees it.

    ``eq=False`` keeps identity equality and hashing: two clients subscribed to the same things
    are still two subscribers, and the registry keys dicts by them.

    ``frame_format`` is opaque to the core. The registry encodes each message once per distinct
    format among the receivers (push mode stores the RESP protocol version, 2 or 3, here).
    ``channels``, ``patterns`` and ``shard_channels`` are maintained by
    ``broker.channels.PubSub``; treat them as read-only. ``closed`` is set when the registry
    cut the subscriber off.
    """

    client_id: int
    frame_format: int
    outbox: Outbox
    channels: set[bytes] = attrs.field(factory=set)
    patterns: set[bytes] = attrs.field(factory=set)
    # Shard channels (SSUBSCRIBE): a namespace of their own, counted apart.
    shard_channels: set[bytes] = attrs.field(factory=set)
    closed: bool = False
    name: bytes = b""
    # channel -> how many messages had been published to it when this subscriber joined
    # (kept by ``PubSub``): what a late subscriber never sees, shown by the dashboard.
    joined_at: dict[bytes, int] = attrs.field(factory=dict)

    @property
    def subscription_count(self) -> int:
        """Channels plus patterns: the count Redis puts in (un)subscribe replies."""
        return len(self.channels) + len(self.patterns)

    @property
    def has_subscriptions(self) -> bool:
        """Subscribed to anything, shard channels included: Redis's "pub/sub mode"."""
        return bool(self.channels or self.patterns or self.shard_channels)
