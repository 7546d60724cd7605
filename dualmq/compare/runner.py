"""Running one workload through pull mode and then push mode, recording every send and receipt.

``run_workload`` opens the broker the workload needs (``brokers``), then for each mode starts
the producers, the consumers, the timeline of events and a sampler in one nursery, waits for
the producers to finish and the consumers to drain, and returns the filled ``ModeLog`` of each
mode. The mode-specific parts (which client calls, what a crash means) are behind the ``Side``
interface (``side``), implemented by ``pull_side`` and ``push_side``; the event timeline and
pacing are in ``timeline``, the state the tasks share in ``state``; the order of things,
draining and progress are here.

Every wait is bounded: each mode's run has an overall deadline (send time estimate plus
``drain_timeout_s`` plus slack), every event action has one, and the drain stops at
``drain_timeout_s`` even if a consumer never catches up (the report then shows the shortfall).

Stopping early (Ctrl-C): the command calls ``StopRequest.request()``; the mode running then is
cancelled like at its deadline - what was recorded until then is accounted, the messages still
in flight are put down to the interruption - and the modes not started yet are skipped.

Clocks: message timestamps are ``time.time_ns()`` (they travel inside the payload); pacing and
deadlines use trio's monotonic clock.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import attrs
import trio

from dualmq.compare import payload
from dualmq.compare.accounting import ModeLog
from dualmq.compare.brokers import MIN_KILL_NODES, BrokerHandle, open_broker
from dualmq.compare.pull_side import PullSide
from dualmq.compare.push_side import PushSide
from dualmq.compare.security import ClientSecurity, refusals_named
from dualmq.compare.side import Side
from dualmq.compare.state import ConsumerState, ModeRun, Progress
from dualmq.compare.timeline import EVENT_TIMEOUT_S, Timeline
from dualmq.compare.workload import Workload

MODES = ("pull", "push")
SIDES: dict[str, Callable[[], Side]] = {"pull": PullSide, "push": PushSide}
FINISH_TIMEOUT_S = 15.0   # reading the final counters (a few INFO calls) after a mode's run
CLOSE_TIMEOUT_S = 5.0     # closing a side's own connections at the very end
INTERRUPTED = "the run was interrupted (Ctrl-C)"
DEADLINE = "the run reached its deadline"


class StopRequest:
    """A request to stop early (Ctrl-C): the mode running now stops, and no further one starts.

    ``run_mode`` runs inside ``cancel_scope()``; ``request()`` cancels every such scope, now
    and later, so the runner returns what was recorded until then.
    """

    def __init__(self) -> None:
        self.requested = False
        self._scopes: set[trio.CancelScope] = set()

    def request(self) -> None:
        self.requested = True
        for scope in self._scopes:
            scope.cancel()

    @contextmanager
    def cancel_scope(self) -> Iterator[trio.CancelScope]:
        scope = trio.CancelScope()
        if self.requested:
            scope.cancel()
        self._scopes.add(scope)
        try:
            with scope:
                yield scope
        finally:
            self._scopes.discard(scope)


# --- one mode -----------------------------------------------------------------------------------


def expected_send_seconds(workload: Workload) -> float:
    if workload.rate > 0:
        return workload.producers * workload.messages / workload.rate
    return workload.total_messages / 5000  # a pessimistic full-speed estimate


async def run_mode(mode: str, workload: Workload, broker: BrokerHandle, run_id: bytes,
                   progress: Progress | None = None, stop: StopRequest | None = None) -> ModeLog:
    """Run ``workload`` through one mode and return what was recorded (until ``stop``, if it
    is requested meanwhile)."""
    stop = stop or StopRequest()
    side = SIDES[mode]()
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
    try:
        await _drive(side, run, stop)
    finally:
        # Also after a failure (a refusal, a bug): what the side opened is closed, not leaked.
        with trio.CancelScope(shield=True), trio.move_on_after(CLOSE_TIMEOUT_S):
            await side.aclose()
    return log


async def _drive(side: Side, run: ModeRun, stop: StopRequest) -> None:
    """Prepare, run the consumers and producers until drained (or stopped), finish: into ``run.log``."""
    mode, workload, consumers, log = run.mode, run.workload, run.consumers, run.log
    address = run.broker.kafka if mode == "pull" else run.broker.resp
    # A broker refusing the clients (login, permission on the topic or channel) stops the run
    # with one line naming the mode, wherever it surfaces.
    with refusals_named(mode, address):
        await side.prepare(run)
    deadline = expected_send_seconds(workload) * 3 + workload.drain_timeout_s + 30
    log.started_ns = time.time_ns()
    with trio.move_on_after(deadline) as scope, stop.cancel_scope() as stopped, refusals_named(mode, address):
        async with trio.open_nursery() as nursery:
            timeline = Timeline(run, nursery, side.apply_event)
            nursery.start_soon(side.run_consumers, run)
            for consumer in consumers:
                if consumer.joined.is_set():
                    with trio.fail_after(EVENT_TIMEOUT_S):
                        await consumer.ready.wait()
            nursery.start_soon(_sampler, run, side)
            if run.progress is not None:
                nursery.start_soon(_progress, run, run.progress)
            async with trio.open_nursery() as producers:
                for producer in range(workload.producers):
                    producers.start_soon(side.run_producer, run, producer, timeline)
            await _drain(run)
            run.stop.set()
            nursery.cancel_scope.cancel()
    if stopped.cancelled_caught:
        log.stopped = INTERRUPTED
        run.incident(INTERRUPTED)
        log.notes.append("interrupted (Ctrl-C): the counts cover what happened until then")
    elif scope.cancelled_caught:
        log.stopped = DEADLINE
        run.incident(DEADLINE)
        log.notes.append(f"the run hit its {deadline:.0f} s deadline; counts cover what happened until then")
    log.finished_ns = time.time_ns()
    with trio.move_on_after(FINISH_TIMEOUT_S):
        await side.finish(run)


async def _drain(run: ModeRun) -> None:
    """After the producers: wait until consumers have everything, go quiet, or time runs out."""
    idle_s = 0.5 if run.mode == "push" else 3.0
    with trio.move_on_after(run.workload.drain_timeout_s):
        while True:
            if run.incidents_in_progress == 0 and all(
                    len(c.delivered) >= run.acked and c.joined.is_set() for c in run.consumers):
                return
            now = trio.current_time()
            quiet = all(now - max(c.last_receipt, run.producers_finished_at) >= idle_s and not c.down
                        for c in run.consumers)
            if quiet and run.incidents_in_progress == 0:
                return
            await trio.sleep(0.05)


async def _sampler(run: ModeRun, side: Side) -> None:
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
    interrupted: bool = False
    cluster: int = 0                  # nodes (``run_workload``'s ``cluster``); 0: one broker


def broker_kind_for(workload: Workload, requested: str, kafka: str | None, resp: str | None,
                    cluster: int = 0) -> str:
    if kafka or resp:
        return "external"
    if cluster:
        return "cluster"
    if workload.needs_broker_process:
        return "subprocess"
    return requested


async def run_workload(workload: Workload, *, broker: str = "embedded", kafka: str | None = None,
                       resp: str | None = None, modes: tuple[str, ...] = MODES,
                       progress: Progress | None = None, stop: StopRequest | None = None,
                       security: ClientSecurity | None = None,
                       dashboard: bool = False, cluster: int = 0) -> RunResult:
    """Run ``workload`` through each of ``modes`` (pull first) and return the logs.

    Args:
        workload: what to run.
        broker: "embedded" or "subprocess" when no address is given.
        kafka, resp: addresses of an external broker (then only the given modes run).
        modes: which modes to run.
        progress: called with a one-line status a few times a second (None: silent).
        stop: when requested, the mode running stops and later ones are skipped; the result
            then has ``interrupted`` set and holds what was recorded.
        security: how the clients log in to an external broker (``security.ClientSecurity``).
        cluster: run on N brokers (``brokers.open_cluster``; with ``kafka``/``resp``: the N
            comma-separated nodes given). 0: one broker.

    Raises:
        ValueError: the workload restarts the broker but it is external, or kills a node of a
            cluster too small to keep acks=all writes going without it.
    """
    check_cluster(workload, cluster)
    kind = broker_kind_for(workload, broker, kafka, resp, cluster)
    if kind == "external" and workload.needs_broker_process:
        raise ValueError(f"scenario {workload.name!r} {'kills a node' if cluster else 'restarts the broker'}; "
                         f"it needs {'a cluster' if cluster else 'a broker'} compare starts (drop --kafka/--resp)")
    stop = stop or StopRequest()
    run_id = payload.new_run_id()
    logs: dict[str, ModeLog] = {}
    skipped: dict[str, str] = {}
    async with open_broker(kind, workload.broker, kafka=kafka, resp=resp,
                           security=security, dashboard=dashboard, cluster=cluster) as handle:
        addresses = {"kafka": handle.kafka, "resp": handle.resp}
        for mode in modes:
            if (handle.kafka if mode == "pull" else handle.resp) is None:
                skipped[mode] = f"no {'--kafka' if mode == 'pull' else '--resp'} address given"
            elif stop.requested:
                skipped[mode] = "interrupted (Ctrl-C) before it started"
            else:
                logs[mode] = await run_mode(mode, workload, handle, run_id, progress, stop)
    return RunResult(workload=workload, run_id=run_id.hex(), broker_kind=kind, addresses=addresses,
                     logs=logs, skipped=skipped, interrupted=stop.requested, cluster=cluster)


def check_cluster(workload: Workload, cluster: int) -> None:
    """Refuse a cluster run that cannot mean anything.

    Raises:
        ValueError: ``cluster`` is negative, or the workload stops a node of fewer than
            ``MIN_KILL_NODES``: with acks=all and min.insync.replicas=2 the survivors of a
            smaller cluster cannot accept a write, so nothing about failover would be shown.
    """
    if cluster < 0:
        raise ValueError(f"--cluster {cluster}: the number of brokers, at least 1")
    if cluster and workload.needs_broker_process and cluster < MIN_KILL_NODES:
        raise ValueError(f"scenario {workload.name!r} stops a node: it needs --cluster {MIN_KILL_NODES} or more "
                         f"(replication factor 3, min.insync.replicas=2: the two left keep acks=all writes going)")


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


__all__ = ["MODES", "RunResult", "StopRequest", "run_workload", "terminal_progress"]
