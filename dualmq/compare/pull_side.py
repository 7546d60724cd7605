"""Pull mode's half of ``compare``: producers, consumers and lag, over the Kafka protocol (``dualmq.pull``).

``PullSide`` implements ``side.Side``:

* A producer is a ``Producer`` (``acks`` from the workload, idempotence on when the broker
  offers it). ``enqueue`` hands records over without waiting; a collector task awaits each
  ``Delivery`` in order and records when it was acknowledged (or why it failed after the
  producer's own retries).
* A consumer reads every partition from the beginning. ``independent`` consumers each have
  their own group id, used only to commit offsets (manual assignment, like push mode's
  fan-out: every consumer gets every message); ``group`` consumers share one group and split
  the partitions (the group is the receiver). Offsets are committed after processing every
  ``commit_every`` records: at-least-once. A crash leaves without committing; the restarted
  consumer resumes from the last commit, so what it had processed since is delivered again.
* Lag is sampled from the consumers (high watermark minus committed offset, summed over
  partitions).

Features the broker may not serve (OffsetCommit/OffsetFetch, groups) are probed with
ApiVersions; without them commits are skipped and the receipt says so.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import trio

from dualmq import pull
from dualmq.compare import payload
from dualmq.compare.accounting import STOPPED_BEFORE_ACK, Send
from dualmq.compare.side import Side
from dualmq.compare.state import ConsumerCrash, ConsumerState, ModeRun, stamp
from dualmq.compare.timeline import Pacer, Timeline, apply_common
from dualmq.compare.workload import Event
from dualmq.errors import ConnectionLost, DualmqError, KafkaError, Timeout
from wire.kafka.errors import ErrorCode

OFFSET_COMMIT, OFFSET_FETCH, FIND_COORDINATOR, JOIN_GROUP, SYNC_GROUP, HEARTBEAT = 8, 9, 10, 11, 14, 12
COMMIT_APIS = frozenset({OFFSET_COMMIT, OFFSET_FETCH, FIND_COORDINATOR})
GROUP_APIS = COMMIT_APIS | {JOIN_GROUP, SYNC_GROUP, HEARTBEAT}
ACK_QUEUE = 100_000   # Delivery handles awaiting their ack: bounded so a stalled broker stalls the producer
PROBE_TIMEOUT_S = 10.0
RECONNECT_BACKOFF_S = 0.2   # between a lost connection and the next consumer (no busy loop while down)
CLUSTER_JOIN_S = 10.0       # a cluster just started: how long its controller may take to see every broker


async def broker_api_keys(address: str) -> frozenset[int]:
    """The API keys a Kafka broker advertises (ApiVersions).

    Raises:
        ConnectionLost, Timeout: the broker is unreachable.
    """
    async with pull.Admin(address, request_timeout_ms=PROBE_TIMEOUT_S * 1000, client_id="dualmq-compare") as admin:
        return frozenset(await admin.api_versions())


def _acks(workload_acks: str) -> int | str:
    return "all" if workload_acks == "all" else int(workload_acks)


class PullSide(Side):
    """Pull mode's half of a compare run, over ``dualmq.pull``."""

    def __init__(self) -> None:
        self.commits = False   # the broker serves OffsetCommit/OffsetFetch/FindCoordinator
        self.live: dict[tuple[str, int], pull.Consumer] = {}   # (consumer, member) -> open Consumer, for lag

    async def prepare(self, run: ModeRun) -> None:
        workload = run.workload
        async with pull.Admin(run.broker.kafka, **run.client_options) as admin:
            keys = frozenset(await admin.api_versions())
            self.commits = COMMIT_APIS <= keys
            if workload.pull_consumers == "group" and not GROUP_APIS <= keys:
                raise DualmqError("pull_consumers = 'group' needs consumer groups, which this broker does not serve")
            await _create_topic(run, admin)
            if run.broker.cluster_size:
                # A kill/restart event stops the broker that leads partition 0.
                (topic,) = await admin.describe_topics(run.target)
                run.broker.victim = topic.partitions[0].leader
        if workload.pull_consumers == "group":
            # Only a group has rebalances; independent consumers assign partitions themselves.
            run.log.metrics["group_assignments"] = 0
        run.log.metrics["producer_retries_hidden_by_idempotence"] = "n/a"
        fsync = run.broker.setting("log", "fsync", "interval") if run.broker.kind != "external" else "unknown (external broker)"
        retention_ms = run.broker.setting("log", "retention_ms", 7 * 24 * 3600 * 1000)
        commit = (f"manual, after processing every {workload.commit_every} records (at-least-once)"
                  if self.commits else "none: the broker does not serve OffsetCommit; a restart re-reads everything")
        run.log.guarantees.update({
            "delivery": "at-least-once: records stay in the log; consumers resume from their commit",
            "acks": f"{workload.acks}" + ("" if workload.acks != "all" else
                                          " (in every in-sync replica's log before the reply)" if run.broker.cluster_size
                                          else " (durable on the leader before the reply)"),
            "fsync": str(fsync),
            "commit": commit,
            "consumers": f"{workload.pull_consumers}, from the beginning (auto_offset_reset=earliest)",
            "retention": ("unknown (external broker)" if run.broker.kind == "external"
                          else f"{retention_ms / 3600000:g} h" if retention_ms >= 0 else "forever"),
            "topic": f"{run.target}, {workload.partitions} partition(s)",
            "broker": f"{run.broker.kind} at {run.broker.kafka}",
            "security": ("unknown (external broker)" if run.broker.kind == "external" else
                         f"{run.broker.setting('kafka', 'security_protocol', 'PLAINTEXT')}, authorizer "
                         f"{'on' if run.broker.setting('kafka', 'authorizer', False) else 'off'}"),
            "authentication": run.broker.security.describe("pull"),
        })
        if run.broker.cluster_size:
            run.log.guarantees["replication"] = (
                f"factor {run.broker.replication_factor}, min.insync.replicas="
                f"{run.broker.topic_config['min.insync.replicas']}, over {run.broker.cluster_size} brokers"
                + (f"; a kill stops node {run.broker.victim}, partition 0's leader" if run.broker.victim else ""))
        if not self.commits:
            run.log.notes.append("broker lacks OffsetCommit/OffsetFetch: pull consumers did not commit")

    async def apply_event(self, run: ModeRun, event: Event, nursery: trio.Nursery) -> None:
        await apply_common(run, event, nursery)

    # --- producers ------------------------------------------------------------------------------

    async def run_producer(self, run: ModeRun, producer: int, timeline: Timeline) -> None:
        workload = run.workload
        pacer = Pacer(workload.rate / workload.producers)
        send_channel, receive_channel = trio.open_memory_channel(ACK_QUEUE)
        seq = 0
        async with (pull.Producer(run.broker.kafka, acks=_acks(workload.acks), delivery_timeout_ms=30_000,
                                  request_timeout_ms=5_000, retry_backoff_ms=100, client_id=f"compare-p{producer}",
                                  **run.client_options) as kafka_producer,
                    trio.open_nursery() as nursery):
            run.log.guarantees["idempotent producer"] = "yes" if kafka_producer.idempotent else "no"
            nursery.start_soon(_collect_acks, run, producer, receive_channel)

            async def send_one() -> None:
                nonlocal seq
                body, sent_ns = stamp(run, producer, seq)
                key = run.key_of(seq)
                delivery = await kafka_producer.enqueue(run.target, body, None if key < 0 else str(key).encode())
                await send_channel.send((seq, sent_ns, delivery))
                seq += 1
                run.sent += 1

            async def send_burst(count: int) -> None:
                for _ in range(count):
                    await send_one()

            async with send_channel:
                for index in range(workload.messages):
                    if index in timeline.points:
                        await timeline.checkpoint(producer, index, send_burst)
                    await pacer.wait(index)
                    await send_one()
                if workload.messages in timeline.points:
                    await timeline.checkpoint(producer, workload.messages, send_burst)
                await kafka_producer.flush()
        run.note_producer_finished()

    # --- consumers ------------------------------------------------------------------------------

    async def run_consumers(self, run: ModeRun) -> None:
        async with trio.open_nursery() as nursery:
            if run.workload.pull_consumers == "group":
                for member in range(run.workload.consumers):
                    nursery.start_soon(self._consume, run, run.consumers[0], member)
            else:
                for consumer in run.consumers:
                    nursery.start_soon(self._consume, run, consumer, 0)

    async def _consume(self, run: ModeRun, consumer: ConsumerState, member: int) -> None:
        workload = run.workload
        await consumer.joined.wait()
        grouped = workload.pull_consumers == "group"
        group_id = f"{run.target}-{consumer.name}" if self.commits else None
        partitions = [(run.target, p) for p in range(workload.partitions)]
        while True:
            options = dict(group_id=group_id, enable_auto_commit=False, auto_offset_reset="earliest",
                           max_wait_ms=100, request_timeout_ms=5_000, client_id=f"compare-{consumer.name}-{member}")
            if grouped:
                options.update(topics=[run.target], on_assigned=lambda _: run.bump("group_assignments"),
                               session_timeout_ms=6000, heartbeat_interval_ms=500)
            positions: dict[tuple[str, int], int] = {}
            try:
                async with (pull.Consumer(run.broker.kafka, **options, **run.client_options) as kafka_consumer,
                            self._sampled((consumer.name, member), kafka_consumer)):
                    if not grouped:
                        kafka_consumer.assign(partitions)
                    consumer.down = False
                    consumer.ready.set()
                    while True:
                        if not run.reconnect_allowed.is_set():
                            # A broker restart/kill: the client would reconnect by itself, but
                            # the scenario says when consumers come back - the same moment as
                            # push mode's subscribers. Until then this consumer fetches nothing.
                            consumer.down = True
                            await run.reconnect_allowed.wait()
                            consumer.down = False
                        records = await kafka_consumer.getmany(500)
                        received_ns = time.time_ns()
                        for record in records:
                            decoded = payload.decode(record.value, run.run_id)
                            positions[(record.topic, record.partition)] = record.offset + 1
                            if decoded is None:
                                continue
                            if consumer.delay_s:
                                await trio.sleep(consumer.delay_s)
                                received_ns = time.time_ns()
                            consumer.record(decoded[0], decoded[1], decoded[2], received_ns)
                            if group_id is not None and consumer.processed % workload.commit_every == 0:
                                await _commit(run, kafka_consumer, positions)
                            if consumer.crash_after is not None and not consumer.crashed \
                                    and consumer.processed >= consumer.crash_after:
                                raise ConsumerCrash
            except ConsumerCrash:
                consumer.crashed = True
                consumer.down = True
                run.incident(f"consumer {consumer.name} crashed (uncommitted records will be redelivered)", cause=True)
                await trio.sleep(consumer.crash_down_s)
                run.bump("consumer_restarts")
                continue
            except (ConnectionLost, Timeout, KafkaError) as exc:
                run.check_access(exc)   # no permission to read: stop, do not reconnect forever
                # The broker went away under the consumer (restart/kill scenarios): start a fresh
                # consumer, which resumes from the last commit - once the scenario lets it.
                consumer.down = True
                if "consumer_reconnects" not in run.log.metrics:
                    run.log.notes.append(f"pull consumer {consumer.name} reconnected after {type(exc).__name__}")
                run.bump("consumer_reconnects")
                await run.reconnect_allowed.wait()
                await trio.sleep(RECONNECT_BACKOFF_S)
                continue

    # --- gauges and the end of the run -----------------------------------------------------

    @asynccontextmanager
    async def _sampled(self, key: tuple[str, int], kafka_consumer: pull.Consumer) -> AsyncIterator[None]:
        """``kafka_consumer`` is in ``live`` (sampled for lag) while the block runs: out of it
        before the consumer closes, so the sampler stops calling a consumer being closed."""
        self.live[key] = kafka_consumer
        try:
            yield
        finally:
            self.live.pop(key, None)

    async def sample(self, run: ModeRun) -> None:
        """Record the consumers' lag: log-end offset minus committed offset, per partition, never
        negative (dualmq's one definition, the one ``dualmq groups describe`` prints). A
        partition with no commit yet counts from offset 0: all of it is still to be processed."""
        for key, kafka_consumer in list(self.live.items()):
            lag = 0
            assignment = kafka_consumer.assignment()
            try:
                committed = await kafka_consumer.committed(*assignment) if assignment else {}
            except (DualmqError, trio.TooSlowError):
                continue
            except RuntimeError:
                # Its consumer task closed it under this call (it lost its broker: restart/kill
                # scenarios; ``_sampled`` took it out of ``live`` first); the client's nursery
                # is gone. Nothing to sample.
                if self.live.get(key) is kafka_consumer:
                    raise
                continue
            for tp in assignment:
                high = kafka_consumer.high_watermark(tp)
                if high >= 0:
                    lag += max(0, high - (committed.get(tp) or 0))
            run.high_water("consumer_lag_high_water", lag)

    async def finish(self, run: ModeRun) -> None:
        run.log.metrics.pop("producer_retries_hidden_by_idempotence", None)


# --- helpers ------------------------------------------------------------------------------------


async def _collect_acks(run: ModeRun, producer: int, receive_channel) -> None:
    awaiting = None   # the (seq, sent_ns, delivery) whose acknowledgement is being awaited
    async with receive_channel:
        try:
            async for awaiting in receive_channel:
                seq, sent_ns, delivery = awaiting
                try:
                    await delivery.wait()
                    send = Send(producer, seq, run.key_of(seq), sent_ns, time.time_ns())
                    run.acked += 1
                except (KafkaError, Timeout, ConnectionLost, DualmqError) as exc:
                    run.check_access(exc)   # no permission to write: stop, not "lost"
                    send = Send(producer, seq, run.key_of(seq), sent_ns, None, None, f"{type(exc).__name__}: {exc}")
                    run.bump("produce_failures")
                run.log.sends.append(send)
                awaiting = None
        finally:
            # Stopped early (Ctrl-C, deadline): what was handed over and not acknowledged yet
            # is still a message sent - keep it, so a receipt of it is never "more than sent".
            pending = [awaiting] if awaiting is not None else []
            while True:
                try:
                    pending.append(receive_channel.receive_nowait())
                except (trio.WouldBlock, trio.EndOfChannel):
                    break
            for seq, sent_ns, _ in pending:
                run.log.sends.append(Send(producer, seq, run.key_of(seq), sent_ns, None, None, STOPPED_BEFORE_ACK))


async def _create_topic(run: ModeRun, admin: pull.Admin) -> None:
    """Create the run's topic; on a cluster (one just started, say), retry while the controller
    does not see every broker yet (INVALID_REPLICATION_FACTOR), for ``CLUSTER_JOIN_S`` at most."""
    broker = run.broker
    deadline = trio.current_time() + (CLUSTER_JOIN_S if broker.cluster_size else 0)
    while True:
        try:
            await admin.create_topics(run.target, partitions=run.workload.partitions, exist_ok=True,
                                      replication_factor=broker.replication_factor, config=broker.topic_config)
            return
        except KafkaError as exc:
            if exc.code != ErrorCode.INVALID_REPLICATION_FACTOR or trio.current_time() > deadline:
                raise
        await trio.sleep(0.1)


async def _commit(run: ModeRun, kafka_consumer, positions: dict[tuple[str, int], int]) -> None:
    try:
        await kafka_consumer.commit(dict(positions))
        run.bump("commits")
    except (KafkaError, Timeout, ConnectionLost, DualmqError):
        run.bump("commit_failures")
