"""One broker's membership of a cluster: its lease, the controller election, the watch of etcd.

``ClusterNode.run`` (started in the daemon's nursery once both listeners are bound):

1. grants a lease of ``cluster.lease_ttl_seconds`` and registers ``/dualmq/brokers/<id>``
   under it with a create-if-absent txn. A key already there belongs to a live broker with
   the same id - or to this broker's previous life, killed less than a TTL ago - so the
   registration is retried for one TTL, then refused (``DuplicateNodeId``);
2. reads everything under ``/dualmq/`` once (``ClusterView``), opens local logs for the topics
   found, and runs for controller if there is none;
3. reports itself started, then keeps the lease alive (every third of the TTL) and follows the
   watch from the revision read on: a new topic opens its local logs, a vanished controller
   key starts an election, a create request reaches the controller.

The election is a txn: "if ``/dualmq/controller`` does not exist, put it under my lease". One
broker wins; the others see the winner in the same txn's answer, and on the key's deletion
(its owner stopped: the lease is revoked at shutdown; or died: the lease expires) all run
again. Only the controller writes topics, and each of its writes is fenced by a compare on
the controller key's value, so a deposed controller cannot write.

Everything here runs in the broker's one trio thread, so the view and the topic registry are
only changed between awaits, like the rest of the broker's state (docs/layering.md).
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable

import attrs
import trio

from broker.cluster import assign_replicas
from broker.cluster.failover import elect_topic, resign
from broker.cluster.model import (
    BROKERS, CONTROLLER, PREFIX, BrokerInfo, Change, ClusterDataInvalid, ClusterView, CreateRequest,
    NotController, TopicAssignment, broker_key, controller_value, create_request_key, topic_key,
)
from broker.config import ClusterConfig
from broker.errors import BrokerError, TopicExists
from broker.loggers import get_logger
from broker.producers import ProducerRegistry
from broker.topics import TopicRegistry
from modes.cluster.etcd import (
    Compare, EtcdClient, EtcdError, EtcdRequestFailed, EtcdUnavailable, LeaseExpired, get_op, put_op,
)
from modes.cluster.producer_ids import ensure_block
from modes.cluster.replication import Replication

log = get_logger(__name__)

# How long CreateTopics waits for the controller's own watch to open the new topic's logs.
APPLY_TIMEOUT_S = 5.0
RETRY_PAUSE_S = 0.5
# How often a failover write is retried when another writer changed the topic key in between.
FAILOVER_WRITE_ATTEMPTS = 10


class DuplicateNodeId(BrokerError):
    """Another live broker is registered with this node id."""


@attrs.define(eq=False)
class ClusterNode:
    """This broker in the cluster: what it knows (``view``) and what it does about it."""

    config: ClusterConfig
    etcd: EtcdClient
    topics: TopicRegistry
    now_ms: Callable[[], int]
    view: ClusterView = attrs.field(factory=ClusterView)
    lease: int = 0
    revision: int = 0
    me: BrokerInfo | None = None
    # The idempotent producers' tables (rebuilt from the log when this broker starts leading).
    producers: ProducerRegistry | None = None
    _changed: trio.Event = attrs.field(factory=trio.Event)
    _producer_id_lock: trio.Lock = attrs.field(factory=trio.Lock)
    # Leadership is served only while the lease surely lives (trio time; 0: no lease yet)...
    _lease_valid_until: float = 0.0
    # ... and once the view has caught up with this life's registration (its revision), and
    # this broker has given up what it led in a previous life.
    _registered_revision: int = 0
    _resigned: bool = False
    # Followers' fetchers, leaders' high watermarks and ISR (modes/cluster/replication.py).
    replication: Replication = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self.replication = Replication(self)
        if self.producers is not None:
            self.producers.ids.share_blocks()

    async def ensure_producer_ids(self) -> None:
        """Before InitProducerId: a block of cluster-unique producer ids, if none is left.

        Raises:
            CoordinationError: etcd could not reserve one.
        """
        if self.producers is not None:
            await ensure_block(self.etcd, self.producers.ids, self._producer_id_lock)

    @property
    def node_id(self) -> int:
        return self.config.node_id

    @property
    def is_controller(self) -> bool:
        return self.view.controller == self.node_id

    @property
    def serving(self) -> bool:
        """Whether this broker may act as a leader now: its lease is surely alive (renewed
        less than a TTL ago - a broker paused with SIGSTOP past its TTL is not, the moment it
        resumes), and its view is up to date with its own registration (a broker that lost
        its lease learns what changed meanwhile before it serves again)."""
        return (self._resigned and trio.current_time() < self._lease_valid_until
                and self.revision >= self._registered_revision)

    def leads(self, topic: str, partition: int) -> bool:
        """Whether this broker leads the partition and may serve it as leader now."""
        return self.view.leader(topic, partition) == self.node_id and self.serving

    def leader_epoch(self, topic: str, partition: int) -> int | None:
        state = self.view.partition(topic, partition)
        return None if state is None else state.leader_epoch

    # --- joining ------------------------------------------------------------------------

    async def run(self, me: BrokerInfo, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Join, then stay a member until cancelled; leaving revokes the lease (the
        controller role and the registration go at once, not after a TTL).

        Raises:
            DuplicateNodeId: the id stays taken for a whole TTL.
            EtcdError: etcd unreachable or refusing at start.
        """
        self.me = me
        try:
            await self._join()
            await self._resync()
            log.info("cluster_joined", node_id=self.node_id, controller=self.view.controller,
                     brokers=self.view.live_broker_ids(), topics=len(self.view.topics))
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._keep_alive)
                nursery.start_soon(self._follow)
                nursery.start_soon(self.replication.run)
                task_status.started()
        finally:
            with trio.CancelScope(shield=True), trio.move_on_after(2):
                if self.lease:
                    try:
                        await self.etcd.revoke(self.lease)
                        log.info("cluster_left", node_id=self.node_id)
                    except EtcdError as exc:
                        log.warning("cluster_leave_failed", node_id=self.node_id, error=str(exc))
            with trio.CancelScope(shield=True):
                await self.etcd.aclose()

    async def _join(self) -> None:
        """Grant a lease and register under it (retrying for one TTL while the id is taken)."""
        assert self.me is not None
        ttl = self.config.lease_ttl_seconds
        self._resigned = False
        granted_at = trio.current_time()
        self.lease = await self.etcd.grant(ttl)
        self._lease_valid_until = granted_at + ttl
        key = broker_key(self.node_id)
        deadline = trio.current_time() + ttl + 1
        while True:
            done = await self.etcd.txn([Compare.absent(key)], [put_op(key, self.me.to_json(), lease=self.lease)],
                                       [get_op(key)])
            if done.succeeded:
                self._registered_revision = done.revision
                return
            holder = done.ranges[0][0].value.decode(errors="replace") if done.ranges and done.ranges[0] else "?"
            if trio.current_time() > deadline:
                raise DuplicateNodeId(
                    f"node id {self.node_id} is already registered in etcd by a live broker ({holder}); "
                    f"each broker needs its own --node-id")
            log.info("cluster_node_id_taken", node_id=self.node_id, holder=holder, retrying_for_s=ttl)
            await trio.sleep(RETRY_PAUSE_S)

    async def _resync(self) -> None:
        """Read every key under /dualmq/ and rebuild the view from them."""
        kvs, revision = await self.etcd.range(PREFIX, prefix=True)
        self.view = ClusterView()
        changes = []
        for kv in kvs:
            changes.append(self._apply(kv.key, kv.value, kv.create_revision))
        self.revision = revision
        for change in changes:
            # A full read is no news of brokers coming or going: nobody restarted because of it.
            await self._act(attrs.evolve(change, broker_gone=None, broker_joined=None))
        if self.view.controller < 0:
            await self._elect()
        elif self.is_controller:
            await self.fail_over()
        if not self._resigned:
            await self._resign()

    # --- staying alive ------------------------------------------------------------------

    async def _keep_alive(self) -> None:
        """Renew the lease every third of its TTL; when it is lost, join again."""
        ttl = self.config.lease_ttl_seconds
        while True:
            await trio.sleep(ttl / 3)
            try:
                sent_at = trio.current_time()
                await self.etcd.keepalive(self.lease)
                self._lease_valid_until = sent_at + ttl
            except LeaseExpired:
                log.error("cluster_lease_lost", node_id=self.node_id, lease=f"{self.lease:x}")
                await self._rejoin()
            except EtcdUnavailable as exc:
                log.warning("cluster_keepalive_failed", node_id=self.node_id, error=str(exc))

    async def _rejoin(self) -> None:
        while True:
            try:
                await self._join()
                if self.view.controller < 0:
                    await self._elect()
                await self._resign()
                log.info("cluster_rejoined", node_id=self.node_id)
                return
            except EtcdUnavailable as exc:
                log.warning("cluster_rejoin_failed", node_id=self.node_id, error=str(exc))
                await trio.sleep(RETRY_PAUSE_S)

    async def _follow(self) -> None:
        """Apply etcd's changes in order, for ever; re-open the watch from the last revision."""
        while True:
            try:
                async with self.etcd.watch(PREFIX, start_revision=self.revision + 1) as changes:
                    async for events in changes:
                        for event in events:
                            change = self._apply(event.kv.key, None if event.deleted else event.kv.value,
                                                 event.kv.create_revision)
                            self.revision = max(self.revision, event.kv.mod_revision)
                            await self._act(change)
            except EtcdUnavailable as exc:
                log.warning("cluster_watch_failed", node_id=self.node_id, error=str(exc))
                await trio.sleep(RETRY_PAUSE_S)
            except EtcdRequestFailed as exc:  # e.g. the revision was compacted: read it all again
                log.warning("cluster_watch_restarted", node_id=self.node_id, error=str(exc))
                await self._resync()

    def _apply(self, key: bytes, value: bytes | None, create_revision: int) -> Change:
        try:
            change = self.view.apply(key, value, create_revision=create_revision)
        except ClusterDataInvalid as exc:
            # Not written by dualmq: said loudly, and ignored (the rest of the view stands).
            log.error("cluster_value_invalid", key=key.decode(errors="replace"), error=str(exc))
            return Change()
        self._changed.set()
        self._changed = trio.Event()
        self.replication.view_changed()
        return change

    def applied_write(self, key: bytes, value: bytes, create_revision: int) -> None:
        """Apply a value this broker has just written to etcd, without waiting for the watch
        to bring it back (the watch applies it again later, which changes nothing)."""
        change = self._apply(key, value, create_revision)
        if change.topic is not None:
            self.replication.adopt(change.topic)

    async def _act(self, change: Change) -> None:
        if change.topic is not None:
            self._open_locally(change.topic)
            self.replication.adopt(change.topic)
        if change.controller_gone:
            await self._elect()
        if change.create_request is not None and self.is_controller:
            await self._serve_create_request(change.create_request)
        if self.is_controller and (change.broker_gone is not None or (
                # A topic written with a leader that has died meanwhile (a resigning broker
                # read the live brokers a moment before): elect again.
                change.topic is not None and elect_topic(change.topic, set(self.view.brokers)) is not None)):
            await self.fail_over()
        if self.is_controller and change.broker_joined is not None and change.broker_joined != self.node_id:
            await self.fail_over(restarted={change.broker_joined})

    def _open_locally(self, topic: TopicAssignment) -> None:
        """Open the topic's partition logs here, under the cluster's topic id."""
        local = self.topics.get(topic.name)
        if local is not None:
            if local.topic_id == topic.topic_id:
                return
            # A topic of that name from before (another cluster, or a single-broker past):
            # etcd is the truth; the old data belongs to no topic the cluster knows.
            log.warning("cluster_topic_replaced", topic=topic.name, old_id=local.topic_id.hex(),
                        new_id=topic.topic_id.hex())
            self.topics.delete(topic.name)
        try:
            self.topics.create(topic.name, len(topic.partitions), topic.overrides, now_ms=self.now_ms(),
                               topic_id=topic.topic_id)
        except (BrokerError, OSError) as exc:
            log.error("cluster_topic_open_failed", topic=topic.name, error=str(exc))
            return
        led = [i for i, p in enumerate(topic.partitions) if p.leader == self.node_id]
        log.info("cluster_topic_opened", topic=topic.name, partitions=len(topic.partitions), leading=led)

    # --- the controller -----------------------------------------------------------------

    async def _elect(self) -> None:
        """Run for controller: create the controller key under our lease if nobody holds it."""
        value = controller_value(self.node_id)
        try:
            done = await self.etcd.txn([Compare.absent(CONTROLLER)], [put_op(CONTROLLER, value, lease=self.lease)],
                                       [get_op(CONTROLLER)])
        except EtcdError as exc:
            log.warning("cluster_election_failed", node_id=self.node_id, error=str(exc))
            return
        if done.succeeded:
            self._apply(CONTROLLER, value, done.revision)
            log.info("cluster_controller_elected", node_id=self.node_id, epoch=done.revision)
            # Leaders that died while there was no controller (the old one among them, often).
            await self.fail_over()
            await self._serve_pending_requests()
        elif done.ranges and done.ranges[0]:
            kv = done.ranges[0][0]
            self._apply(CONTROLLER, kv.value, kv.create_revision)

    # --- failover -----------------------------------------------------------------------

    async def fail_over(self, restarted: frozenset[int] | set[int] = frozenset()) -> None:
        """The controller's failover (``broker.cluster.failover``): every partition whose
        leader is gone (or ``restarted``) gets a new leader from its live ISR and a new epoch;
        dead brokers leave every ISR. Each topic is written with a txn fenced on the controller
        key and on the topic key's revision (re-read and retried when a leader's ISR write came
        in between)."""
        live = set(self.view.brokers)
        for name, topic in sorted(self.view.topics.items()):
            if elect_topic(topic, live, restarted) is None:
                continue  # nothing to change as far as the view knows: no etcd round trip
            try:
                if not await self._rewrite_topic(name, lambda t: elect_topic(t, live, restarted), fenced=True):
                    return
            except (EtcdError, BrokerError) as exc:
                log.warning("failover_write_failed", topic=name, error=str(exc))

    async def _resign(self) -> None:
        """A broker that (re)joins gives up what it led in its previous life: its leader state
        (followers' positions, the high watermark's basis) is gone, so each partition it still
        leads in etcd gets a new leader from the live ISR, or itself again in a new epoch; and
        it leaves the ISR of partitions a live leader leads, until that leader adds it back.
        Written by the broker itself, fenced on the key's revision and on still being the
        leader, so no controller is needed (the controller does the same when it sees the
        registration; whichever comes second changes nothing)."""
        me = self.node_id
        while True:
            try:
                # Read, not from the view: after a pause the view may still list brokers that died.
                live = set(await self._live_brokers()) | {me}
                break
            except EtcdError as exc:
                log.warning("failover_write_failed", topic="*", error=str(exc))
                await trio.sleep(RETRY_PAUSE_S)

        def resign_topic(topic: TopicAssignment) -> TopicAssignment | None:
            partitions = tuple(resign(p, me, live) for p in topic.partitions)
            return None if partitions == topic.partitions else attrs.evolve(topic, partitions=partitions)

        # Only topics where the view has this broker leading or in an ISR: while it was away
        # (paused, dead) nobody made it either, so a stale view misses none of those.
        mine = sorted(name for name, topic in self.view.topics.items()
                      if any(p.leader == me or me in p.isr for p in topic.partitions))
        for name in mine:
            while True:
                try:
                    await self._rewrite_topic(name, resign_topic, fenced=False)
                    break
                except (EtcdError, BrokerError) as exc:
                    log.warning("failover_write_failed", topic=name, error=str(exc))
                    await trio.sleep(RETRY_PAUSE_S)
        self._resigned = True

    async def _rewrite_topic(self, name: str, change: Callable[[TopicAssignment], TopicAssignment | None], *,
                             fenced: bool) -> bool:
        """Read ``/dualmq/topics/<name>``, apply ``change``, write the result if any, compared
        on the key's mod revision (and on our controller key when ``fenced``); retried when
        the key changed in between. Returns False when the controller role was lost."""
        key = topic_key(name)
        for _ in range(FAILOVER_WRITE_ATTEMPTS):
            kvs, _ = await self.etcd.range(key)
            if not kvs:
                return True
            current = TopicAssignment.from_json(kvs[0].value, key.decode(errors="replace"))
            updated = change(current)
            if updated is None:
                return True
            value = updated.to_json()
            compares = [Compare(key, "MOD", kvs[0].mod_revision)]
            if fenced:
                compares.append(Compare.value_is(CONTROLLER, controller_value(self.node_id)))
            done = await self.etcd.txn(compares, [put_op(key, value)], [get_op(CONTROLLER)])
            if done.succeeded:
                for index, (old, new) in enumerate(zip(current.partitions, updated.partitions)):
                    if old != new:
                        log.info("partition_leader_elected" if old.leader != new.leader or
                                 old.leader_epoch != new.leader_epoch else "partition_isr_changed",
                                 topic=name, partition=index, old_leader=old.leader, leader=new.leader,
                                 leader_epoch=new.leader_epoch, isr=list(new.isr), by=self.node_id)
                self.applied_write(key, value, kvs[0].create_revision)
                return True
            if fenced and not (done.ranges and done.ranges[0]
                               and done.ranges[0][0].value == controller_value(self.node_id)):
                log.warning("failover_abandoned", topic=name, reason="no longer the controller")
                return False
        log.warning("failover_write_failed", topic=name, error="the topic key kept changing")
        return True

    async def _serve_pending_requests(self) -> None:
        kvs, _ = await self.etcd.range(create_request_key(""), prefix=True)
        for kv in kvs:
            try:
                await self._serve_create_request(CreateRequest.from_json(kv.value))
            except ClusterDataInvalid as exc:
                log.error("cluster_value_invalid", key=kv.key.decode(errors="replace"), error=str(exc))
                await self.etcd.delete(kv.key)

    async def _serve_create_request(self, request: CreateRequest) -> None:
        try:
            if request.name not in self.view.topics:
                await self.create_topic(request.name, request.partitions, request.replication_factor,
                                        request.overrides)
                log.info("topic_auto_created", topic=request.name, partitions=request.partitions)
        except (BrokerError, OSError) as exc:
            log.warning("cluster_create_request_refused", topic=request.name, error=str(exc))
        await self.etcd.delete(create_request_key(request.name))

    async def create_topic(self, name: str, partitions: int, replication_factor: int,
                           overrides: dict[str, str], *, validate_only: bool = False) -> TopicAssignment:
        """Assign a new topic's partitions over the live brokers and write it to etcd (the
        controller only); returns once this broker's logs for it are open.

        Raises:
            NotController: this broker is not (or no longer) the controller.
            InvalidReplicationFactor: more replicas than live brokers.
            TopicExists: the cluster has the topic already.
            EtcdError: etcd unreachable or refusing.
        """
        if not self.is_controller:
            raise NotController(f"broker {self.node_id} is not the controller (it is {self.view.controller})")
        if name in self.view.topics:
            raise TopicExists(f"topic {name!r} already exists")
        live = await self._live_brokers()
        count = len(live)
        replicas = assign_replicas(live, partitions, replication_factor,
                                   start=random.randrange(count), shift=random.randrange(count))
        topic = TopicAssignment.new(name, os.urandom(16), replicas, overrides)
        if validate_only:
            return topic
        key = topic_key(name)
        done = await self.etcd.txn(
            [Compare.value_is(CONTROLLER, controller_value(self.node_id)), Compare.absent(key)],
            [put_op(key, topic.to_json())], [get_op(CONTROLLER), get_op(key)])
        if not done.succeeded:
            if done.ranges[1]:
                raise TopicExists(f"topic {name!r} already exists")
            raise NotController(f"broker {self.node_id} lost the controller role while creating {name!r}")
        self._apply(key, topic.to_json(), done.revision)
        await self._act(Change(topic=topic))
        return topic

    async def _live_brokers(self) -> list[int]:
        """The brokers registered in etcd now: read, not taken from the watched view, which may
        not yet have seen a broker that registered a moment ago (a topic created right after
        the brokers started would otherwise leave that broker out of its assignment)."""
        kvs, _ = await self.etcd.range(BROKERS, prefix=True)
        live = []
        for kv in kvs:
            try:
                live.append(BrokerInfo.from_json(kv.value, kv.key.decode(errors="replace")).node_id)
            except ClusterDataInvalid as exc:
                # Not written by dualmq: said loudly and left out, as the watch does (_apply) -
                # never a crash of the task reading it (joining, keeping the lease alive).
                log.error("cluster_value_invalid", key=kv.key.decode(errors="replace"), error=str(exc))
        return sorted(live)

    async def request_topic(self, name: str, partitions: int, replication_factor: int = 1,
                            overrides: dict[str, str] | None = None) -> None:
        """Ask the controller to create ``name`` (Metadata's auto-creation on another broker,
        the internal ``__consumer_offsets``); the request lives under this broker's lease and
        is deleted by the controller."""
        key = create_request_key(name)
        request = CreateRequest(name=name, partitions=partitions, replication_factor=replication_factor,
                                overrides=dict(overrides or {}))
        await self.etcd.txn([Compare.absent(key), Compare.absent(topic_key(name))],
                            [put_op(key, request.to_json(), lease=self.lease)])

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = APPLY_TIMEOUT_S) -> bool:
        """Wait until ``predicate()`` holds for the view (re-checked after every change)."""
        with trio.move_on_after(timeout):
            while not predicate():
                await self._changed.wait()
            return True
        return False

