"""Push mode's half of ``compare``: publishers, subscribers and gauges, over RESP (``dualmq.push``).

``PushSide`` implements ``side.Side``:

* A producer is a ``Publisher``; at full speed it pipelines ``publish_batch`` PUBLISHes per
  write (``publish_many``), paced it sends whatever is due. A PUBLISH that fails (broker down,
  timeout) is recorded as unacknowledged and not retried: pub/sub is at-most-once.
* A consumer is a ``subscribe(...)`` subscription. Its *windows* (periods in which messages
  were promised to it) open when the server confirms the SUBSCRIBE and close when the
  connection is lost or the consumer "crashes" (leaves the block without a word). It then
  subscribes again - at once, or, after a broker restart, when the scenario lets consumers
  reconnect (``ModeRun.reconnect_allowed``); the SDK's own reconnection is not used, so the
  scenario decides how long the subscriber is away.
* Gauges, read from the server: the largest output buffer a subscriber held and the buffer
  that got one cut off (dualmq's ``INFO dualmq`` counters, exact; on Redis, which keeps no
  such peak, ``CLIENT LIST``'s ``omem`` sampled every 100 ms, a lower bound), and the
  disconnect counters (``subscribers_disconnected_*_limit``, or Redis's
  ``client_output_buffer_limit_disconnections``), read before and after the run.
"""

from __future__ import annotations

import re
import time

import trio

from dualmq.compare import payload
from dualmq.compare.accounting import STOPPED_BEFORE_ACK, Send, Window
from dualmq.compare.side import Side
from dualmq.compare.state import ConsumerCrash, ConsumerState, ModeRun, stamp
from dualmq.compare.timeline import Pacer, Timeline, apply_common
from dualmq.compare.workload import Event
from dualmq.errors import ConnectionLost, DualmqError, ServerError, Timeout
from dualmq.push import Publisher, subscribe

CALL_TIMEOUT_S = 5.0
DOWN_RETRY_S = 0.05        # a publisher whose broker is down tries again this often
RESUBSCRIBE_S = 0.05       # a subscriber whose connection was lost subscribes again after this
SUBSCRIBE_RETRY_S = 0.1    # ... and retries this often while the broker refuses it
SAMPLE_INTERVAL_S = 0.1
SLOW_DISCONNECT = "cut off at the pubsub output-buffer limit"
COUNTERS = ("subscribers_disconnected_hard_limit", "subscribers_disconnected_soft_limit",
            "client_output_buffer_limit_disconnections")
# dualmq's exact peaks (INFO dualmq); a server without them is sampled instead.
HIGH_WATER = "subscriber_output_high_water_bytes"
AT_DISCONNECT = "subscriber_output_at_disconnect_max_bytes"
INFO_SECTIONS = ("dualmq", "stats", "clients")


def _text(reply: object) -> str:
    if isinstance(reply, bytes):
        return reply.decode("utf-8", "replace")
    return str(reply) if reply is not None else ""


def _info_numbers(text: str) -> dict[str, int]:
    """The integer fields of an INFO reply (``name:123`` lines)."""
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+):(-?\d+)\r?$", text, re.MULTILINE)}


class PushSide(Side):
    """Push mode's half of a compare run, over ``dualmq.push``."""

    def __init__(self) -> None:
        # Per consumer: ("open" | "gap" | "crash", time_ns, reason), in order; finish() turns
        # them into the windows in which messages were promised to it.
        self.gaps: dict[str, list[tuple[str, int, str]]] = {}
        self.info_before: dict[str, int] = {}       # the server's INFO numbers at the start
        self.exact_peaks = False                    # the server keeps HIGH_WATER / AT_DISCONNECT
        self.peaks: dict[str, int] = {}             # the largest of each seen so far
        self.admin: Publisher | None = None         # one connection for INFO / CLIENT LIST
        self.next_sample = 0.0                      # trio time of the next gauge sample

    async def _admin_call(self, run: ModeRun, *args: str) -> object | None:
        """One command on the side's admin connection (None if the server is unreachable;
        the next call reconnects)."""
        if self.admin is None:
            self.admin = Publisher(run.broker.publisher_resp, protocol=2, timeout=CALL_TIMEOUT_S, name="compare-admin",
                                   **run.client_options)
        try:
            return await self.admin.execute(*args)
        except (DualmqError, OSError):
            return None

    async def _info(self, run: ModeRun) -> dict[str, int]:
        numbers: dict[str, int] = {}
        for section in INFO_SECTIONS:
            numbers.update(_info_numbers(_text(await self._admin_call(run, "INFO", section))))
        return numbers

    async def prepare(self, run: ModeRun) -> None:
        run.log.metrics["disconnects_seen_by_subscribers"] = 0
        if run.broker.cluster_size:
            run.broker.victim = 1   # a kill/restart event stops the first subscriber's node
        self.gaps = {c.name: [] for c in run.consumers}
        self.info_before = await self._info(run)
        self.exact_peaks = HIGH_WATER in self.info_before
        limits = ""
        reply = await self._admin_call(run, "CONFIG", "GET", "client-output-buffer-limit")
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
            **({"cluster": f"publisher on node {len(run.broker.resp_nodes)}, subscriber i on node i+1 (of "
                           f"{len(run.broker.resp_nodes)}), moving to the next node when cut off; PUBLISH's reply "
                           f"counts that node's subscribers only, so it is not used"} if run.broker.cluster_size else {}),
            "security": ("unknown (external server)" if run.broker.kind == "external" else
                         "TLS" if run.broker.setting("resp", "tls", False) else "plaintext, no TLS"),
            "authentication": run.broker.security.describe("push"),
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

        async with Publisher(run.broker.publisher_resp, timeout=CALL_TIMEOUT_S, name=f"compare-p{producer}",
                             **run.client_options) as publisher:

            async def flush() -> None:
                nonlocal failing
                if not pending:
                    return
                # Left in ``pending`` until answered: if the run is stopped meanwhile, the
                # ``finally`` below still records them as sent.
                batch = list(pending)
                try:
                    counts = await publisher.publish_many([(run.target, body) for _, _, body in batch])
                except (ConnectionLost, Timeout, ServerError) as exc:
                    run.check_access(exc)   # NOPERM on the channel: stop, not "send failed"
                    pending.clear()
                    error = f"{type(exc).__name__}: {exc}"
                    for s, sent_ns, _ in batch:
                        run.log.sends.append(Send(producer, s, run.key_of(s), sent_ns, None, None, error))
                    run.bump("publish_failures", len(batch))
                    failing = True
                    await trio.sleep(DOWN_RETRY_S)  # the broker is down: do not spin
                    return
                pending.clear()
                failing = False
                acked_ns = time.time_ns()
                for (s, sent_ns, _), receivers in zip(batch, counts):
                    # A cluster node counts only its own subscribers (as Redis Cluster): unknown.
                    receivers = None if run.broker.cluster_size else receivers
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

            try:
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
            finally:
                # Stopped early (Ctrl-C, deadline): messages not answered yet were still sent.
                for s, sent_ns, _ in pending:
                    run.log.sends.append(Send(producer, s, run.key_of(s), sent_ns, None, None, STOPPED_BEFORE_ACK))
        run.note_producer_finished()

    # --- consumers ------------------------------------------------------------------------

    async def run_consumers(self, run: ModeRun) -> None:
        async with trio.open_nursery() as nursery:
            for consumer in run.consumers:
                nursery.start_soon(self._consume, run, consumer)

    async def _consume(self, run: ModeRun, consumer: ConsumerState) -> None:
        await consumer.joined.wait()
        gaps = self.gaps[consumer.name]
        nodes = run.broker.resp_nodes
        moves = 0   # connections lost: on a cluster, each one moves the subscriber to the next node
        while True:
            subscribed = False
            address = nodes[(consumer.index + moves) % len(nodes)]
            try:
                async with subscribe(address, run.target, timeout=CALL_TIMEOUT_S, health_check_interval=2.0,
                                     name=f"compare-{consumer.name}", **run.client_options) as sub:
                    subscribed = True
                    gaps.append(("open", time.time_ns(), ""))
                    consumer.down = False
                    consumer.ready.set()
                    async for message in sub:
                        decoded = payload.decode(message.data, run.run_id)
                        if decoded is None:
                            continue
                        consumer.record(decoded[0], decoded[1], decoded[2], time.time_ns())
                        if consumer.delay_s:
                            await trio.sleep(consumer.delay_s)
                        if consumer.crash_after is not None and not consumer.crashed \
                                and consumer.processed >= consumer.crash_after:
                            raise ConsumerCrash
                    raise ConnectionLost("the subscription ended")
            except ConsumerCrash:
                consumer.crashed = True
                consumer.down = True
                gaps.append(("crash", time.time_ns(), "consumer crashed"))
                run.incident(f"consumer {consumer.name} crashed", cause=True)
                await trio.sleep(consumer.crash_down_s)
                run.bump("consumer_restarts")
            except (ConnectionLost, Timeout) as exc:
                consumer.down = True
                moves += 1
                if subscribed:
                    # Lost while subscribed (cut off, broker gone): the window closes now.
                    gaps.append(("gap", time.time_ns(), str(exc)))
                    run.bump("disconnects_seen_by_subscribers")
                    await run.reconnect_allowed.wait()
                    await trio.sleep(RESUBSCRIBE_S)
                else:
                    # Could not subscribe: the broker is down. Try again shortly.
                    await run.reconnect_allowed.wait()
                    await trio.sleep(SUBSCRIBE_RETRY_S)

    # --- gauges and the end of the run ----------------------------------------------------

    async def sample(self, run: ModeRun) -> None:
        now = trio.current_time()
        if now < self.next_sample:
            return
        self.next_sample = now + SAMPLE_INTERVAL_S
        if self.exact_peaks:
            # Read often only because a broker restart resets the counters: what the old
            # process had seen is kept from its last sample.
            self._keep_peaks(_info_numbers(_text(await self._admin_call(run, "INFO", "dualmq"))))
            return
        reply = _text(await self._admin_call(run, "CLIENT", "LIST"))
        for line in reply.splitlines():
            fields = dict(part.split("=", 1) for part in line.split() if "=" in part)
            if fields.get("sub", "0") != "0" or fields.get("psub", "0") != "0":
                try:
                    self.peaks["sampled_omem"] = max(self.peaks.get("sampled_omem", 0), int(fields.get("omem", "0")))
                except ValueError:
                    pass

    def _keep_peaks(self, numbers: dict[str, int]) -> None:
        for name in (HIGH_WATER, AT_DISCONNECT):
            if name in numbers:
                self.peaks[name] = max(self.peaks.get(name, 0), numbers[name])

    async def finish(self, run: ModeRun) -> None:
        before = self.info_before
        after = await self._info(run)
        # The counters are read on the publisher's node (the last, on a cluster).
        restarted = bool(run.log.metrics.get("broker_restarts")) and (
            not run.broker.cluster_size or run.broker.victim == len(run.broker.resp_nodes))
        # dualmq's own counters when it has them, else Redis's (dualmq also mirrors Redis's name).
        names = COUNTERS[:2] if COUNTERS[0] in after else COUNTERS[2:]
        slow = sum(max(0, after.get(n, 0) - before.get(n, 0)) for n in names)
        if restarted:
            run.log.notes.append("the broker's counters restart from zero with the broker: the disconnects it "
                                 "counted before the restart are not in the figure")
        run.log.metrics["counters_restarted"] = restarted
        run.log.metrics["server_disconnects_output_buffer_limit"] = slow
        self._buffer_metrics(run, after, slow)
        for consumer in run.consumers:
            run.log.windows[consumer.name] = self._windows(run, self.gaps[consumer.name], slow)

    async def aclose(self) -> None:
        if self.admin is not None:
            await self.admin.aclose()
            self.admin = None

    def _buffer_metrics(self, run: ModeRun, after: dict[str, int], slow_disconnects: int) -> None:
        """The subscribers' output-buffer peak, and the buffer that got one cut off, with where
        each number comes from. Unknown stays absent (the report says n/a), never 0."""
        metrics = run.log.metrics
        if self.exact_peaks:
            self._keep_peaks(after)
            # A counter kept over the server's life: it describes this run only if it grew
            # during it (always so on a broker compare started itself).
            if self.peaks.get(HIGH_WATER, 0) > self.info_before.get(HIGH_WATER, 0) or run.broker.kind != "external":
                metrics["subscriber_buffer_high_water_bytes"] = self.peaks.get(HIGH_WATER, 0)
                metrics["subscriber_buffer_high_water_source"] = "broker counter"
            if slow_disconnects and self.peaks.get(AT_DISCONNECT, 0) > self.info_before.get(AT_DISCONNECT, 0):
                metrics["subscriber_buffer_at_cut_off_bytes"] = self.peaks[AT_DISCONNECT]
            return
        # Redis keeps no peak per subscriber: the samples are a lower bound, and its own
        # "largest output buffer of the last seconds" (INFO clients) may have seen more.
        sampled = max(self.peaks.get("sampled_omem", 0), after.get("client_recent_max_output_buffer", 0))
        if sampled:
            metrics["subscriber_buffer_high_water_bytes"] = sampled
            metrics["subscriber_buffer_high_water_source"] = "sampled"

    def _windows(self, run: ModeRun, gaps: list[tuple[str, int, str]], slow_disconnects: int) -> list[Window]:
        windows: list[Window] = []
        start: int | None = None
        for kind, at, reason in gaps:
            if kind == "open":
                start = at
            elif start is not None:
                end, why = (at, reason) if kind == "crash" else _disconnect_cause(run, start, at, reason,
                                                                                  slow_disconnects)
                windows.append(Window(start, end, why))
                start = None
        if start is not None:
            windows.append(Window(start))
        return windows


def _disconnect_cause(run: ModeRun, opened_ns: int, noticed_ns: int, message: str,
                      slow_disconnects: int) -> tuple[int, str]:
    """When a subscriber's window really ended and why: a broker restart/kill between the
    subscribe and the moment the loss was noticed (the subscriber may first have worked
    through messages it had already received), else the server's slow-subscriber cut-off,
    else the connection error itself."""
    broker = [(at, reason) for at, reason in run.log.incidents
              if reason.startswith("broker") and opened_ns <= at <= noticed_ns]
    if broker:
        return max(broker)
    if slow_disconnects:
        return noticed_ns, SLOW_DISCONNECT
    return noticed_ns, f"connection lost: {message}"
