"""Running one workload through pull mode and then push mode, recording every send and receipt.

``run_workload`` opens the broker the workload needs (``brokers``), then for each mode starts
the producers, the consumers, the timeline of events and a sampler in one nursery, waits for
the producers to finish and the consumers to drain, and returns the filled ``ModeLog`` of each
mode. The mode-specific parts (which client calls, what a crash means) are in ``pull_side``
and ``push_side``; what is shared - pacing, the event barrier, draining, progress - is here.

Every wait is bounded: each mode's run has an overall deadline (send time estimate plus
``drain_timeout_s`` plus slack), every event action has one, and the drain stops at
``drain_timeout_s`` even if a consumer never catches up (the report then shows the shortfall).

Clocks: message timestamps are ``time.time_ns()`` (they travel inside the payload); pacing and
deadlines use trio's monotonic clock.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any

import attrs
import trio

from dualmq.compare import payload
from dualmq.compare.accounting import ModeLog, Receipt
from dualmq.compare.brokers import BrokerHandle, open_broker
from dualmq.compare.workload import Event, Workload

MODES = ("pull", "push")
EVENT_TIMEOUT_S = 20.0
Progress = Callable[[str], None]


class ConsumerCrash(Exception):
    """Raised inside a consumer loop to simulate the process dying (caught by the side)."""


@attrs.define
class ConsumerState:
    """Live state of one consumer task, shared with the timeline and the drain logic."""

    name: str
    index: int
    receipts: list[Receipt]
    joined: trio.Event = attrs.field(factory=trio.Event)    # set when it may start
    ready: trio.Event = attrs.field(factory=trio.Event)     # set once it is subscribed / assigned
    delay_s: float = 0.0
    crash_after: int | None = None                          # processed count at which it dies
    crash_down_s: float = 0.0
    crashed: bool = False
    down: bool = False
    processed: int = 0
    delivered: set[tuple[int, int]] = attrs.field(factory=set)
    last_receipt: float = 0.0                               # trio time

    def record(self, producer: int, seq: int, sent_ns: int, received_ns: int) -> None:
        self.receipts.append(Receipt(producer, seq, sent_ns, received_ns))
        self.delivered.add((producer, seq))
        self.processed += 1
        self.last_receipt = trio.current_time()


@attrs.define(slots=False)  # each side hangs its own state on it (``run._gaps``, ``run._live`` ...)
class ModeRun:
    """Everything one mode's run shares between its tasks."""

    mode: str
    workload: Workload
    broker: BrokerHandle
    run_id: bytes
    target: str                       # topic (pull) or channel (push)
    log: ModeLog
    consumers: list[ConsumerState]
    progress: Progress | None = None
    stop: trio.Event = attrs.field(factory=trio.Event)
    acked: int = 0
    sent: int = 0
    producers_done: int = 0
    incidents_in_progress: int = 0

    def key_of(self, seq: int) -> int:
        return seq % self.workload.keys if self.workload.keys else -1

    def incident(self, reason: str, *, cause: bool = False) -> None:
        """Note what happened; ``cause``: it can explain later losses (a crash, not a recovery)."""
        (self.log.incidents if cause else self.log.events).append((time.time_ns(), reason))

    def bump(self, name: str, amount: int = 1) -> None:
        self.log.metrics[name] = self.log.metrics.get(name, 0) + amount

    def high_water(self, name: str, value: float) -> None:
        self.log.metrics[name] = max(value, self.log.metrics.get(name, 0))


# --- the event timeline -----------------------------------------------------------------------


class Timeline:
    """Applies producer-driven events when every producer has reached the event's position.

    Producers call ``checkpoint(seq)`` before sending each paced message; at an event's
    position the last producer to arrive applies the event while the others wait, then all
    continue. So "sent before the event" is an exact set, whatever the machine's speed.
    """

    def __init__(self, run: ModeRun, nursery: trio.Nursery, apply: Callable[[ModeRun, Event, trio.Nursery], Any]):
        self.run = run
        self.nursery = nursery
        self.apply = apply
        workload = run.workload
        self.points: dict[int, list[Event]] = {}
        for event in workload.events:
            if event.kind == "crash":
                consumer = run.consumers[0 if workload.pull_consumers == "group" and run.mode == "pull"
                                         else event.consumer]
                consumer.crash_after = max(1, int(event.at * workload.producers * workload.messages))
                consumer.crash_down_s = event.down_s
                continue
            position = min(int(event.at * workload.messages), workload.messages)
            self.points.setdefault(position, []).append(event)
        self.arrived: dict[int, int] = {}
        self.done: dict[int, trio.Event] = {p: trio.Event() for p in self.points}

    async def checkpoint(self, producer: int, position: int, send_burst: Callable[[int], Any]) -> None:
        events = self.points.get(position)
        if not events:
            return
        self.arrived[position] = self.arrived.get(position, 0) + 1
        if self.arrived[position] < self.run.workload.producers:
            with trio.fail_after(EVENT_TIMEOUT_S * 2):
                await self.done[position].wait()
        else:
            with trio.fail_after(EVENT_TIMEOUT_S):
                for event in events:
                    await self.apply(self.run, event, self.nursery)
            self.done[position].set()
        if producer == 0:
            for event in events:
                if event.kind == "burst":
                    await send_burst(event.count)


async def apply_common(run: ModeRun, event: Event, nursery: trio.Nursery) -> bool:
    """Events both modes apply the same way; returns False for one the side must handle."""
    if event.kind == "join":
        consumer = run.consumers[event.consumer]
        consumer.joined.set()
        await consumer.ready.wait()
        run.incident(f"consumer c{event.consumer} joined")
        return True
    if event.kind == "slow":
        run.consumers[event.consumer].delay_s = event.delay_ms / 1000
        return True
    if event.kind in ("restart", "kill"):
        kill = event.kind == "kill"
        run.incidents_in_progress += 1

        async def bounce() -> None:
            try:
                await run.broker.bounce(kill=kill, down_s=event.down_s)
            finally:
                run.incidents_in_progress -= 1
            run.incident(f"broker back after {'SIGKILL' if kill else 'SIGTERM'}")

        run.incident(broker_incident_reason(run, kill), cause=True)
        nursery.start_soon(bounce)
        await trio.sleep(0)  # let the stop signal go out before producers continue
        return True
    if event.kind == "burst":
        return True  # producer 0 sends it (see Timeline.checkpoint)
    return False


def broker_incident_reason(run: ModeRun, kill: bool) -> str:
    if run.mode == "push":
        return ("broker killed: pushes in flight lost" if kill
                else "broker restarted: pushes in flight lost")
    fsync = run.broker.setting("log", "fsync", "interval")
    if kill:
        return f"broker killed: crash before fsync (fsync={fsync})"
    return "broker restarted gracefully"


# --- pacing -----------------------------------------------------------------------------------


class Pacer:
    """Spaces one producer's messages at ``rate`` per second (0 = no pacing)."""

    def __init__(self, rate: float) -> None:
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self.start = trio.current_time()

    def due(self, index: int) -> float:
        return self.start + index * self.interval

    async def wait(self, index: int) -> None:
        if self.interval:
            await trio.sleep_until(self.due(index))


# --- one mode -----------------------------------------------------------------------------------


def expected_send_seconds(workload: Workload) -> float:
    if workload.rate > 0:
        return workload.producers * workload.messages / workload.rate
    return workload.total_messages / 5000  # a pessimistic full-speed estimate


async def run_mode(mode: str, workload: Workload, broker: BrokerHandle, run_id: bytes,
                   progress: Progress | None = None) -> ModeLog:
    """Run ``workload`` through one mode and return what was recorded."""
    from dualmq.compare import pull_side, push_side  # the sides import this module

    side = pull_side if mode == "pull" else push_side
    target = f"compare-{workload.name}-{run_id.hex()[:8]}"
    log = ModeLog(mode=mode)
    if mode == "pull" and workload.pull_consumers == "group":
        names = ["group"]
    else:
        names = [f"c{i}" for i in range(workload.consumers)]
    consumers = []
    for index, name in enumerate(names):
        receipts = log.receipts.setdefault(name, [])
        consumers.append(ConsumerState(name=name, index=index, receipts=receipts))
    for index, consumer in enumerate(consumers):
        if workload.joins_late(index) is None or len(consumers) != workload.consumers:
            consumer.joined.set()
    run = ModeRun(mode=mode, workload=workload, broker=broker, run_id=run_id, target=target, log=log,
                  consumers=consumers, progress=progress)
    await side.prepare(run)
    deadline = expected_send_seconds(workload) * 3 + workload.drain_timeout_s + 30
    log.started_ns = time.time_ns()
    with trio.move_on_after(deadline) as scope:
        async with trio.open_nursery() as nursery:
            timeline = Timeline(run, nursery, side.apply_event)
            nursery.start_soon(side.run_consumers, run)
            for consumer in consumers:
                if consumer.joined.is_set():
                    with trio.fail_after(EVENT_TIMEOUT_S):
                        await consumer.ready.wait()
            nursery.start_soon(_sampler, run, side)
            if progress is not None:
                nursery.start_soon(_progress, run, progress)
            async with trio.open_nursery() as producers:
                for producer in range(workload.producers):
                    producers.start_soon(side.run_producer, run, producer, timeline)
            await _drain(run)
            run.stop.set()
            nursery.cancel_scope.cancel()
    if scope.cancelled_caught:
        log.notes.append(f"the run hit its {deadline:.0f} s deadline; counts cover what happened until then")
    log.finished_ns = time.time_ns()
    await side.finish(run)
    return log


async def _drain(run: ModeRun) -> None:
    """After the producers: wait until consumers have everything, go quiet, or time runs out."""
    idle_s = 0.5 if run.mode == "push" else 3.0
    with trio.move_on_after(run.workload.drain_timeout_s):
        while True:
            if run.incidents_in_progress == 0 and all(
                    len(c.delivered) >= run.acked and c.joined.is_set() for c in run.consumers):
                return
            now = trio.current_time()
            quiet = all(now - max(c.last_receipt, run_started_at(run)) >= idle_s and not c.down
                        for c in run.consumers)
            if quiet and run.incidents_in_progress == 0:
                return
            await trio.sleep(0.05)


def run_started_at(run: ModeRun) -> float:
    return getattr(run, "_producers_finished_at", 0.0)


async def _sampler(run: ModeRun, side: Any) -> None:
    """Backlog high-water for both modes, plus the side's own gauges, every 50 ms."""
    while True:
        for consumer in run.consumers:
            run.high_water("backlog_high_water", max(0, run.acked - len(consumer.delivered)))
        await side.sample(run)
        await trio.sleep(0.05)


async def _progress(run: ModeRun, progress: Progress) -> None:
    total = run.workload.total_messages
    while True:
        delivered = min((len(c.delivered) for c in run.consumers), default=0)
        progress(f"{run.workload.name:>14} {run.mode}: sent {run.sent}/{total}  acked {run.acked}  "
                 f"delivered {delivered}")
        await trio.sleep(0.25)


def note_producers_finished(run: ModeRun) -> None:
    run.producers_done += 1
    if run.producers_done == run.workload.producers:
        run._producers_finished_at = trio.current_time()  # type: ignore[attr-defined]


def stamp(run: ModeRun, producer: int, seq: int) -> tuple[bytes, int]:
    """A message's payload and its send timestamp."""
    sent_ns = time.time_ns()
    return payload.encode(run.run_id, producer, seq, sent_ns, run.workload.message_size), sent_ns


# --- both modes --------------------------------------------------------------------------------


@attrs.frozen
class RunResult:
    """The logs of one workload run, per mode, plus what the report needs to label them."""

    workload: Workload
    run_id: str
    broker_kind: str
    addresses: dict[str, str | None]
    logs: dict[str, ModeLog]
    skipped: dict[str, str]


def broker_kind_for(workload: Workload, requested: str, kafka: str | None, resp: str | None) -> str:
    if kafka or resp:
        return "external"
    if workload.needs_broker_process:
        return "subprocess"
    return requested


async def run_workload(workload: Workload, *, broker: str = "embedded", kafka: str | None = None,
                       resp: str | None = None, modes: tuple[str, ...] = MODES,
                       progress: Progress | None = None) -> RunResult:
    """Run ``workload`` through each of ``modes`` (pull first) and return the logs.

    Args:
        workload: what to run.
        broker: "embedded" or "subprocess" when no address is given.
        kafka, resp: addresses of an external broker (then only the given modes run).
        modes: which modes to run.
        progress: called with a one-line status a few times a second (None: silent).

    Raises:
        ValueError: the workload restarts the broker but it is external.
    """
    kind = broker_kind_for(workload, broker, kafka, resp)
    if kind == "external" and workload.needs_broker_process:
        raise ValueError(f"scenario {workload.name!r} restarts the broker; it needs a broker compare starts "
                         f"(drop --kafka/--resp)")
    run_id = payload.new_run_id()
    logs: dict[str, ModeLog] = {}
    skipped: dict[str, str] = {}
    async with open_broker(kind, workload.broker, kafka=kafka, resp=resp) as handle:
        addresses = {"kafka": handle.kafka, "resp": handle.resp}
        for mode in modes:
            if (handle.kafka if mode == "pull" else handle.resp) is None:
                skipped[mode] = f"no {'--kafka' if mode == 'pull' else '--resp'} address given"
                continue
            logs[mode] = await run_mode(mode, workload, handle, run_id, progress)
    return RunResult(workload=workload, run_id=run_id.hex(), broker_kind=kind, addresses=addresses,
                     logs=logs, skipped=skipped)


def terminal_progress(stream=None) -> Progress:
    """A progress callback that rewrites one line on a terminal (and stays silent otherwise)."""
    stream = stream or sys.stderr
    is_tty = stream.isatty()
    last = [0.0]

    def show(line: str) -> None:
        if not is_tty:
            return
        now = time.monotonic()
        if now - last[0] < 0.2:
            return
        last[0] = now
        stream.write("\r\x1b[2K" + line[:150])
        stream.flush()

    return show


def clear_progress(stream=None) -> None:
    stream = stream or sys.stderr
    if stream.isatty():
        stream.write("\r\x1b[2K")
        stream.flush()


__all__ = ["MODES", "RunResult", "run_workload", "terminal_progress"]
