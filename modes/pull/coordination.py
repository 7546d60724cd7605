"""Pull mode's runtime around the protocol-free core: groups, committed offsets, producers.

What lives here: ``GroupRuntime`` (the ``GroupCoordinator`` plus the trio side it cannot have:
the monotonic clock, the ``{ticket: trio.Event}`` table on which JoinGroup / SyncGroup
requests wait, and the timer task that applies session and rebalance deadlines) and
``ProducerRegistry`` (the ``ProducerIdManager`` plus one ``ProducerStateTable`` per
partition, rebuilt from the partition's log). ``open_coordination`` builds both and the
``OffsetStore`` under the data directory, inside the pull front-end (the daemon knows none
of it).

What does not: the rules. Who may join, when a rebalance ends, which sequence is a duplicate —
all of that is ``broker.groups`` / ``broker.producers``; this module only feeds them time and
wakes the waiting requests.

Files under ``data_dir``: ``__consumer_offsets/`` (the offset store's snapshot + journal) and
``__producer_ids/`` (the producer-id block file). Neither is a topic: ``topics.json`` never
names them, so the topic registry ignores them.

Clocks: the coordinator gets ``trio.current_time()`` in ms — monotonic, never backwards, and
mockable. Commit timestamps (stored with each committed offset) are wall-clock, as in Kafka.
"""

from __future__ import annotations

from pathlib import Path

import attrs
import trio

from broker.groups import GroupCoordinator, Ticket
from broker.loggers import get_logger
from broker.offsets import OffsetStore
from broker.producers import ProducerIdManager, ProducerStateTable
from broker.topics import Topic, TopicRegistry

log = get_logger(__name__)

OFFSETS_DIR = "__consumer_offsets"
PRODUCER_IDS_DIR = "__producer_ids"
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
class ProducerRegistry:
    """Producer ids and every partition's idempotence table (keyed by topic id, partition).

    Keyed by the topic *id*, not its name: a topic deleted and created again under the same
    name is a new topic with an empty log, and must not inherit the old producers' state.
    """

    ids: ProducerIdManager
    _tables: dict[tuple[bytes, int], ProducerStateTable] = attrs.field(factory=dict)

    def table(self, topic: Topic, partition: int) -> ProducerStateTable:
        """The partition's table, rebuilt from its log's batch headers on first use."""
        key = (bytes(topic.topic_id), partition)
        table = self._tables.get(key)
        if table is None:
            table = self._tables[key] = ProducerStateTable.rebuilt(topic.partitions[partition].batches())
            for producer_id, epoch in table.producers().items():
                self.ids.observe(producer_id, epoch)
        return table

    def rebuild_all(self, topics: TopicRegistry) -> int:
        """Rebuild every partition's table now (start-up); returns how many producers."""
        for topic in topics.topics():
            for index in range(len(topic.partitions)):
                self.table(topic, index)
        return sum(len(t.producers()) for t in self._tables.values())

    def forget_topic(self, topic_id: bytes) -> None:
        for key in [k for k in self._tables if k[0] == bytes(topic_id)]:
            del self._tables[key]


@attrs.define(eq=False)
class Coordination:
    groups: GroupRuntime
    offsets: OffsetStore
    producers: ProducerRegistry

    def close(self) -> None:
        self.offsets.close()


def open_coordination(data_dir: Path, kafka_config, topics: TopicRegistry) -> Coordination:
    """Open the offset store and producer ids under ``data_dir``, rebuild producer state.

    Blocking (file reads, one fsync at most): called once at start-up.
    """
    offsets = OffsetStore.open(Path(data_dir) / OFFSETS_DIR)
    coordinator = GroupCoordinator.from_config(kafka_config, existing_groups=offsets.groups())
    producers = ProducerRegistry(ProducerIdManager.open(Path(data_dir) / PRODUCER_IDS_DIR))
    count = producers.rebuild_all(topics)
    log.info("coordination_opened", groups=len(offsets.groups()), producers=count)
    return Coordination(GroupRuntime(coordinator), offsets, producers)
