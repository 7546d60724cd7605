"""Pull mode's runtime around the protocol-free core: groups, committed offsets, producers.

What lives here: ``GroupRuntime`` (the ``GroupCoordinator`` plus the trio side it cannot have:
the monotonic clock, the ``{ticket: trio.Event}`` table on which JoinGroup / SyncGroup
requests wait, and the timer task that applies session and rebalance deadlines), and
``Coordination``, what the handlers reach through ``ctx.broker.coord``: that runtime, the
``OffsetStore`` with the one lock that queues its flushes into a worker thread, and the
``ProducerRegistry``. The state itself is opened by ``broker.state.BrokerState``; this module
opens no file.

What does not: the rules. Who may join, when a rebalance ends, which sequence is a duplicate —
all of that is ``broker.groups`` / ``broker.producers``; this module only feeds them time,
wakes the waiting requests, and runs the offset store's file work off the event loop.

Clocks: the coordinator gets ``trio.current_time()`` in ms — monotonic, never backwards, and
mockable. Commit timestamps (stored with each committed offset) are wall-clock, as in Kafka.
"""

from __future__ import annotations

import attrs
import trio

from broker.groups import GroupCoordinator, Ticket
from broker.loggers import get_logger
from broker.offsets import OffsetStore
from broker.producers import ProducerRegistry
from broker.state import BrokerState

log = get_logger(__name__)

# The timer task wakes at least this often even with no deadline due (new deadlines appear
# with every request; waking 10 times a second is cheaper than re-arming on each of them).
TICK_INTERVAL_SECONDS = 0.1
# A JoinGroup / SyncGroup waits for the coordinator, whose own rebalance and sync timeouts
# bound the wait. This cap is a second, independent bound (a bug in the state machine must
# not hang a connection forever): after it the client is told to re-join.
MAX_GROUP_WAIT_SECONDS = 300.0


def monotonic_ms() -> int:
    """The coordinator's clock: trio's monotonic clock in whole milliseconds."""
    return int(trio.current_time() * 1000)


@attrs.define(eq=False)
class GroupRuntime:
    """The coordinator and the requests parked on it."""

    coordinator: GroupCoordinator
    _waiting: dict[Ticket, trio.Event] = attrs.field(factory=dict)

    def tick(self) -> None:
        """Apply deadlines and wake every request whose answer is ready.

        Called after every state-changing coordinator call and by the timer task.
        """
        for ticket in self.coordinator.tick(monotonic_ms()):
            event = self._waiting.pop(ticket, None)
            if event is not None:
                event.set()

    async def wait(self, ticket: Ticket, bound_ms: int) -> bool:
        """Wait for a pending ticket's answer; False if ``bound_ms`` (capped) ran out first.

        The event is registered *before* ``tick`` runs, so a ticket completed by that very
        tick still wakes us.
        """
        if ticket.done:
            return True
        event = self._waiting[ticket] = trio.Event()
        self.tick()
        seconds = min(max(bound_ms, 0) / 1000 + 5.0, MAX_GROUP_WAIT_SECONDS)
        with trio.move_on_after(seconds):
            await event.wait()
        self._waiting.pop(ticket, None)
        return ticket.done

    async def run_timers(self) -> None:
        """Forever: sleep until the next coordinator deadline (at most 100 ms), then tick."""
        while True:
            delay = TICK_INTERVAL_SECONDS
            deadline = self.coordinator.next_deadline_ms()
            if deadline is not None:
                delay = min(delay, max(0.0, (deadline - monotonic_ms()) / 1000))
            await trio.sleep(delay)
            self.tick()


@attrs.define(eq=False)
class Coordination:
    """The groups runtime, the committed offsets and the producers, as the handlers use them."""

    groups: GroupRuntime
    offsets: OffsetStore
    producers: ProducerRegistry
    # Flushes of the offset store must not overlap (``OffsetStore.begin_flush``): they queue here.
    _offsets_flush: trio.Lock = attrs.field(factory=trio.Lock)

    @classmethod
    def around(cls, state: BrokerState) -> Coordination:
        """The runtime for ``state``'s coordinator, offsets and producers."""
        return cls(GroupRuntime(state.groups), state.offsets, state.producers)

    async def flush_offsets(self) -> None:
        """Write and fsync every queued commit and deletion, in a worker thread.

        Returns once everything queued before the call is durable: a handler acknowledges an
        OffsetCommit only after this. Callers that arrive while a flush runs wait for it, then
        flush what queued up meanwhile (often nothing: their records rode along).

        Raises:
            OSError: the write or fsync failed; the commits it carried are not durable.
        """
        async with self._offsets_flush:
            job = self.offsets.begin_flush()
            if job is None:
                return
            try:
                # Not abandoned on cancellation: the store adopts the outcome, whatever it is.
                await trio.to_thread.run_sync(job.run)
            finally:
                self.offsets.finish_flush(job)
