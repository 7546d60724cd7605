"""A partition leader's view of its followers: their positions, the high watermark, the ISR.

Pure (no I/O, no clock: times come in as ``now_ms``); ``modes/cluster/replication.py`` feeds it
the followers' fetches and writes the ISR changes it proposes to etcd (docs/cluster.md).

The rules, Kafka's own:

* A follower's Fetch carries ``fetch_offset`` = its log end: the follower holds every batch
  below it, so the fetch is its acknowledgement of them.
* The **high watermark** is the lowest log end over the ISR (the leader's own included). A
  follower in the ISR that has not fetched since this broker began leading holds it back: the
  leader cannot know what it has.
* **Caught up.** A follower is caught up at the moment of a fetch that asks for the leader's
  log end; a fetch that asks for at least what the leader's log end was at the follower's
  previous fetch shows it was caught up *then* (Kafka's ``lastCaughtUpTimeMs``). A follower in
  the ISR not caught up for longer than ``replica.lag.time.max.ms`` leaves it.
* A follower outside the ISR rejoins by fetching from at least the high watermark: it then has
  every committed record.
"""

from __future__ import annotations

from collections.abc import Iterable

import attrs

UNKNOWN_OFFSET = -1


@attrs.define
class FollowerState:
    """What the leader knows of one follower."""

    # Its log end as its last fetch said (-1: it has not fetched since we began leading).
    log_end_offset: int = UNKNOWN_OFFSET
    last_fetch_ms: int = -1
    # The leader's log end when that fetch arrived.
    leader_end_at_last_fetch: int = 0
    # The last time it was known to hold everything the leader had.
    caught_up_ms: int = 0


@attrs.define
class LeaderPartition:
    """One partition this broker leads: its followers' states."""

    leader: int
    followers: dict[int, FollowerState]

    @classmethod
    def begin(cls, leader: int, replicas: Iterable[int], now_ms: int) -> LeaderPartition:
        """Start leading: every follower counts as caught up now (it gets one full lag time
        to show it is alive), none has a known position yet."""
        return cls(leader=leader, followers={r: FollowerState(caught_up_ms=now_ms) for r in replicas if r != leader})

    def record_fetch(self, replica: int, fetch_offset: int, leader_end: int, now_ms: int) -> None:
        """A follower fetched from ``fetch_offset`` while the leader's log ended at ``leader_end``."""
        state = self.followers.setdefault(replica, FollowerState(caught_up_ms=now_ms))
        if fetch_offset >= leader_end:
            state.caught_up_ms = now_ms
        elif state.last_fetch_ms >= 0 and fetch_offset >= state.leader_end_at_last_fetch:
            state.caught_up_ms = max(state.caught_up_ms, state.last_fetch_ms)
        state.log_end_offset = fetch_offset
        state.last_fetch_ms = now_ms
        state.leader_end_at_last_fetch = leader_end

    def high_watermark(self, isr: Iterable[int], leader_end: int) -> int:
        """The lowest log end over ``isr`` (-1 when a member's position is unknown)."""
        lowest = leader_end
        for replica in isr:
            if replica == self.leader:
                continue
            state = self.followers.get(replica)
            lowest = min(lowest, state.log_end_offset if state is not None else UNKNOWN_OFFSET)
        return lowest

    def lagging(self, isr: Iterable[int], now_ms: int, lag_max_ms: int) -> list[int]:
        """The ISR members that have not been caught up for longer than ``lag_max_ms``."""
        out = []
        for replica in isr:
            state = self.followers.get(replica)
            if replica != self.leader and state is not None and now_ms - state.caught_up_ms > lag_max_ms:
                out.append(replica)
        return out

    def may_rejoin(self, replica: int, isr: Iterable[int], high_watermark: int) -> bool:
        """Whether a follower outside the ISR holds every committed record (it may rejoin)."""
        state = self.followers.get(replica)
        return (replica not in tuple(isr) and state is not None
                and state.log_end_offset >= high_watermark and state.log_end_offset != UNKNOWN_OFFSET)


def shrink(isr: tuple[int, ...], leaving: Iterable[int]) -> tuple[int, ...]:
    gone = set(leaving)
    return tuple(r for r in isr if r not in gone)


def expand(isr: tuple[int, ...], joining: int, replicas: tuple[int, ...]) -> tuple[int, ...]:
    """``isr`` with ``joining`` added, in the order of ``replicas`` (as Kafka lists them)."""
    members = set(isr) | {joining}
    return tuple(r for r in replicas if r in members)
