"""Push mode's half of ``compare``: publishers, subscribers and gauges, over RESP (``dualmq.push``).

``PushSide`` implements ``side.Side``:

* A producer is a ``Publisher``; at full speed it pipelines ``publish_batch`` PUBLISHes per
  write (``publish_many``), paced it sends whatever is due. A PUBLISH that fails (broker down,
  timeout) is recorded as unacknowledged and not retried: pub/sub is at-most-once.
* A consumer is a ``subscribe(..., reconnect=True)`` subscription. Its *windows* (periods in
  which messages were promised to it) open when the server confirms the SUBSCRIBE and close
  when the SDK reports a ``Gap`` or the consumer "crashes" (leaves the block without a word).
* Gauges: ``CLIENT LIST``'s ``omem`` of subscribed clients (the server-side output buffer, the
  thing ``client-output-buffer-limit pubsub`` limits), and the server's disconnect counters
  from ``INFO`` (dualmq's ``# dualmq`` section, or Redis's
  ``client_output_buffer_limit_disconnections``), read before and after the run.
"""

from __future__ import annotations

import re
import time

import trio

from dualmq.compare import payload
from dualmq.compare.accounting import Send, Window
from dualmq.compare.side import Side
from dualmq.compare.state import ConsumerCrash, ConsumerState, ModeRun, stamp
from dualmq.compare.timeline import Pacer, Timeline, apply_common
from dualmq.compare.workload import Event
from dualmq.errors import ConnectionLost, DualmqError, ServerError, Timeout
from dualmq.push import Backoff, Gap, Publisher, subscribe

CALL_TIMEOUT_S = 5.0
DOWN_RETRY_S = 0.05
SLOW_DISCONNECT = "slow-subscriber disconnect (client-output-buffer-limit pubsub)"
COUNTERS = ("subscribers_disconnected_hard_limit", "subscribers_disconnected_soft_limit",
            "client_output_buffer_limit_disconnections")


async def _admin_call(run: ModeRun, *args: str) -> object | None:
    """One command on a short-lived RESP2 connection (None if the server is unreachable)."""
    try:
        async with Publisher(run.broker.resp, protocol=2, timeout=CALL_TIMEOUT_S) as admin:
            return await admin.execute(*args)
    except (DualmqError, OSError):
        return None


def _text(reply: object) -> str:
    if isinstance(reply, bytes):
        return reply.decode("utf-8", "replace")
    return str(reply) if reply is not None else ""


async def _counters(run: ModeRun) -> dict[str, int]:
    found: dict[str, int] = {}
    for section in ("dualmq", "stats"):
        text = _text(await _admin_call(run, "INFO", section))
        for name in COUNTERS:
            match = re.search(rf"^{name}:(\d+)", text, re.MULTILINE)
            if match:
                found[name] = int(match.group(1))
    return found


class PushSide(Side):
    """Push mode's half of a compare run, over ``dualmq.push``."""

    def __init__(self) -> None:
        # Per consumer: ("open" | "gap" | "crash", time_ns, reason), in order; finish() turns
        # them into the windows in which messages were promised to it.
        self.gaps: dict[str, list[tuple[str, int, str]]] = {}
        self.counters_before: dict[str, int] = {}   # the server's disconnect counters at the start
        self.next_client_list = 0.0                 # trio time of the next CLIENT LIST sample

    async def prepare(self, run: ModeRun) -> None:
        run.log.metrics["disconnects_seen_by_subscribers"] = 0
        self.gaps = {c.name: [] for c in run.consumers}
        self.counters_before = await _counters(run)
        limits = ""
        reply = await _admin_call(run, "CONFIG", "GET", "client-output-buffer-limit")
        if isinstance(reply, list):
            values = [_text(v) for v in reply]
            limits = dict(zip(values[::2], values[1::2])).get("client-output-buffer-limit", "")
        pubsub = re.search(r"pubsub (\d+) (\d+) (\d+)", limits)
        guarantee = (f"hard {int(pubsub.group(1)):,} B, soft {int(pubsub.group(2)):,} B for {pubsub.group(3)} s"
                     if pubsub else "unknown (server did not say)")
        run.log.guarantees.update({
            "delivery": "at-most-once, to subscribers connected at publish time",
            "acknowledgement": "PUBLISH reply (receiver count); no retry on failure",
            "persistence": "none: nothing is written anywhere",
            "retention": "none: a message with no subscriber is dropped",
            "output-buffer limit (pubsub)": guarantee,
            "publisher pipelining": f"{run.workload.publish_batch} PUBLISH per write at full speed",
            "broker": f"{run.broker.kind} at {run.broker.resp}",
        })

    async def apply_event(self, run: ModeRun, event: Event, nursery: trio.Nursery) -> None:
        await apply_common(run, event, nursery)

    # --- producers ------------------------------------------------------------------------

    async def run_producer(self, run: ModeRun, producer: int, timeline: Timeline) -> None:
        workload = run.workload
        batch_limit = workload.publish_batch
        pacer = Pacer(workload.rate / workload.producers)
        seq = 0
        pending: list[tuple[int, int, bytes]] = []   # (seq, sent_ns, payload)
        failing = False   # the last flush failed: send one message per due time, no catch-up bursts

        async with Publisher(run.broker.resp, timeout=CALL_TIMEOUT_S, name=f"compare-p{producer}") as publisher:

            async def flush() -> None:
                nonlocal failing
                if not pending:
                    return
                batch = list(pending)
                pending.clear()
                try:
                    counts = await publisher.publish_many([(run.target, body) for _, _, body in batch])
                except (ConnectionLost, Timeout, ServerError) as exc:
                    error = f"{type(exc).__name__}: {exc}"
                    for s, sent_ns, _ in batch:
                        run.log.sends.append(Send(producer, s, run.key_of(s), sent_ns, None, None, error))
                    run.bump("publish_failures", len(batch))
                    failing = True
                    await trio.sleep(DOWN_RETRY_S)  # the broker is down: do not spin
                    return
                failing = False
                acked_ns = time.time_ns()
                for (s, sent_ns, _), receivers in zip(batch, counts):
                    run.log.sends.append(Send(producer, s, run.key_of(s), sent_ns, acked_ns, receivers))
                run.acked += len(batch)

            async def send_burst(count: int) -> None:
                nonlocal seq
                await flush()
                for _ in range(count):
                    body, sent_ns = stamp(run, producer, seq)
                    pending.append((seq, sent_ns, body))
                    seq += 1
                    run.sent += 1
                    if len(pending) >= batch_limit:
                        await flush()
                await flush()

            for index in range(workload.messages):
                if index in timeline.points:
                    await flush()
                    await timeline.checkpoint(producer, index, send_burst)
                if pacer.interval and trio.current_time() < pacer.due(index):
                    await flush()
                    await pacer.wait(index)
                body, sent_ns = stamp(run, producer, seq)
                pending.append((seq, sent_ns, body))
                seq += 1
                run.sent += 1
                if len(pending) >= batch_limit or failing:
                    await flush()
                    if failing and pacer.interval:
                        # Do not catch up after an outage: the schedule restarts from now.
                        pacer.start = trio.current_time() - index * pacer.interval
            await flush()
            if workload.messages in timeline.points:
                await timeline.checkpoint(producer, workload.messages, send_burst)
        run.note_producer_finished()

    # --- consumers ------------------------------------------------------------------------

    async def run_consumers(self, run: ModeRun) -> None:
        async with trio.open_nursery() as nursery:
            for consumer in run.consumers:
                nursery.start_soon(self._consume, run, consumer)

    async def _consume(self, run: ModeRun, consumer: ConsumerState) -> None:
        await consumer.joined.wait()
        gaps = self.gaps[consumer.name]
        backoff = Backoff(initial=0.05, maximum=0.5)
        while True:
            try:
                async with subscribe(run.broker.resp, run.target, reconnect=True, backoff=backoff,
                                     timeout=CALL_TIMEOUT_S, health_check_interval=2.0,
                                     name=f"compare-{consumer.name}") as sub:
                    gaps.append(("open", time.time_ns(), ""))
                    consumer.down = False
                    consumer.ready.set()
                    async for event in sub:
                        if isinstance(event, Gap):
                            gaps.append(("gap", int(event.started_at * 1e9), event.reason))
                            gaps.append(("open", int(event.ended_at * 1e9), ""))
                            run.bump("disconnects_seen_by_subscribers")
                            continue
                        decoded = payload.decode(event.data, run.run_id)
                        if decoded is None:
                            continue
                        consumer.record(decoded[0], decoded[1], decoded[2], time.time_ns())
                        if consumer.delay_s:
                            await trio.sleep(consumer.delay_s)
                        if consumer.crash_after is not None and not consumer.crashed \
                                and consumer.processed >= consumer.crash_after:
                            raise ConsumerCrash
            except ConsumerCrash:
                consumer.crashed = True
                consumer.down = True
                gaps.append(("crash", time.time_ns(), "consumer crashed"))
                run.incident(f"consumer {consumer.name} crashed", cause=True)
                await trio.sleep(consumer.crash_down_s)
                continue
            except (ConnectionLost, Timeout):
                # Could not (re)subscribe on entry - the broker is down. Try again shortly.
                consumer.down = True
                await trio.sleep(0.1)
                continue

    # --- gauges and the end of the run ----------------------------------------------------

    async def sample(self, run: ModeRun) -> None:
        now = trio.current_time()
        if now < self.next_client_list:
            return
        self.next_client_list = now + 0.1
        reply = _text(await _admin_call(run, "CLIENT", "LIST"))
        for line in reply.splitlines():
            fields = dict(part.split("=", 1) for part in line.split() if "=" in part)
            if fields.get("sub", "0") != "0" or fields.get("psub", "0") != "0":
                try:
                    run.high_water("subscriber_buffer_high_water_bytes", int(fields.get("omem", "0")))
                except ValueError:
                    pass

    async def finish(self, run: ModeRun) -> None:
        before = self.counters_before
        after = await _counters(run)
        # dualmq's own counters when it has them, else Redis's (dualmq also mirrors Redis's name).
        names = COUNTERS[:2] if COUNTERS[0] in after else COUNTERS[2:]
        slow = sum(max(0, after.get(n, 0) - before.get(n, 0)) for n in names)
        run.log.metrics["server_disconnects_output_buffer_limit"] = slow
        if run.broker.restartable:
            run.log.notes.append("server disconnect counters reset when the broker restarts")
        for consumer in run.consumers:
            windows: list[Window] = []
            start: int | None = None
            for kind, at, reason in self.gaps[consumer.name]:
                if kind == "open":
                    start = at
                elif start is not None:
                    why = reason if kind == "crash" else _classify(run, at, reason, slow)
                    windows.append(Window(start, at, why))
                    start = None
            if start is not None:
                windows.append(Window(start))
            run.log.windows[consumer.name] = windows


def _classify(run: ModeRun, started_ns: int, sdk_reason: str, slow_disconnects: int) -> str:
    for at, reason in run.log.incidents:
        if reason.startswith("broker") and at - 500_000_000 <= started_ns <= at + 5_000_000_000 \
                and "back" not in reason:
            return reason
    if slow_disconnects:
        return SLOW_DISCONNECT
    return f"connection lost ({sdk_reason})"
