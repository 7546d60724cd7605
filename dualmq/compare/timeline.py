"""When things happen during a compare run: the event timeline and the producers' pacing.

``Timeline`` applies a workload's events (a consumer joins, slows down, the broker restarts or
is killed, a burst) at exact positions in the producers' streams; ``apply_common`` is how both
modes apply the events they share. ``Pacer`` spaces one producer's sends at the workload's rate.

Used by the runner and by both sides; depends on neither.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import trio

from dualmq.compare.state import ModeRun
from dualmq.compare.workload import Event

__all__ = ["EVENT_TIMEOUT_S", "Pacer", "Timeline", "apply_common"]

EVENT_TIMEOUT_S = 20.0

ApplyEvent = Callable[[ModeRun, Event, trio.Nursery], Awaitable[Any]]


class Timeline:
    """Applies producer-driven events when every producer has reached the event's position.

    Producers call ``checkpoint(seq)`` before sending each paced message; at an event's
    position the last producer to arrive applies the event while the others wait, then all
    continue. So "sent before the event" is an exact set, whatever the machine's speed.
    """

    def __init__(self, run: ModeRun, nursery: trio.Nursery, apply: ApplyEvent):
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
        # Consumers that lose the broker wait for this gate before reconnecting: it opens
        # ``reconnect_after_s`` after the broker is back (producers do not wait for it). In a
        # cluster they do not wait: they fail over to the nodes still up at once.
        gate = trio.Event()
        if not run.broker.cluster_size:
            run.reconnect_allowed = gate

        async def bounce() -> None:
            try:
                await run.broker.bounce(kill=kill, down_s=event.down_s)
                run.incident(f"{run.broker.stopped_name} back after {'SIGKILL' if kill else 'SIGTERM'}")
                if event.reconnect_after_s and not run.broker.cluster_size:
                    await trio.sleep(event.reconnect_after_s)
                    run.incident(f"consumers reconnect ({event.reconnect_after_s:g} s after the broker is back)")
            finally:
                gate.set()
                run.incidents_in_progress -= 1

        run.bump("broker_restarts")
        run.incident(broker_incident_reason(run, kill), cause=True)
        nursery.start_soon(bounce)
        await trio.sleep(0)  # let the stop signal go out before producers continue
        return True
    if event.kind == "burst":
        return True  # producer 0 sends it (see Timeline.checkpoint)
    return False


def broker_incident_reason(run: ModeRun, kill: bool) -> str:
    """What a broker restart or kill is called in the report (and in the reasons of losses)."""
    what = run.broker.describe_stop(kill)
    if run.mode == "pull" and run.broker.cluster_size:
        # In a cluster, replication decides whether an acknowledged record survives.
        return (f"{what} (leader of partition 0), replication factor {run.broker.replication_factor}, "
                f"min.insync.replicas={run.broker.topic_config['min.insync.replicas']}")
    if run.mode == "pull":
        # Whether a kill can lose acknowledged records depends on fsync: say which was in force.
        return f"{what}, fsync={run.broker.setting('log', 'fsync', 'interval')}"
    return what


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
