"""A measured run: one workload through one mode with every role in its own process.

``measure_mode`` is the coordinator. It starts the consumers (``roles``), waits until each is
subscribed or holds its partitions, starts the producers, waits for them to finish, lets the
consumers drain (until they have everything, go quiet, or ``drain_timeout_s``), tells them to
stop, and reads every role's record. ``analyse`` then merges the records - all timestamps are
``time.monotonic_ns()``, one clock for every process of a Linux host - into a
``Measurement``:

* **steady window**: the middle ``1 - 2 x WARM_UP_SHARE`` of the sending period. The first
  ``WARM_UP_SHARE`` (connections warming up, the first fetches, batches filling) and the last
  (producers finishing) are left out, and so is the drain after the producers stopped. Rates
  are counted inside it: sends from the producers' checkpoints, receipts from the consumers'
  receive times. The report says so beside the figures.
* **delivered/s**: first receipts inside the window over all consumers, per second; per
  consumer it is that divided by the consumers; **distinct/s** counts each message once however
  many consumers got it (what a consumer *group* does, or a set of push subscribers, as work
  done).
* **latency**: receive time minus the send time in the message header, of the messages received
  inside the window (a stride sample of at most ``LATENCY_SAMPLE`` per consumer).
* **delivered / duplicated / not delivered**: from the sequence numbers in the headers (per
  consumer; a group's members count as one consumer).

A role that fails fails the measurement: with the one line it printed when the SDK raised (a
broker refusing its login or its permission on the topic or channel: ``AccessDenied``, naming
the mode), else with its log quoted.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import tempfile
import time
from array import array
from bisect import bisect_left
from pathlib import Path
from typing import Any

import attrs
import trio

from dualmq.compare import payload
from dualmq.compare.accounting import percentile
from dualmq.compare.brokers import BrokerHandle
from dualmq.compare.roles import read_record
from dualmq.compare.security import AccessDenied, refusal, refusals_named
from dualmq.compare.workload import Workload

WARM_UP_SHARE = 0.1          # of the sending period, left out at each end of the steady window
LATENCY_SAMPLE = 50_000      # latencies kept per consumer (a stride sample)
MAX_CONSUMER_PROCESSES = 8   # more consumers than this share processes (fan-out to 50)
READY_TIMEOUT_S = 60.0       # a role connecting and subscribing / joining its group
STOP_TIMEOUT_S = 30.0
IDLE_S = {"pull": 3.0, "push": 0.5}   # no new receipt for this long after the producers: drained
GROUP_SETTLE_S = 0.5         # a group's assignment unchanged this long counts as settled

# The pull clients' settings in measured runs (``dualmq.pull.Producer`` / ``Consumer`` arguments),
# printed with the results. Batches of up to 512 KiB (Kafka's producer default is 16 KiB) are a
# throughput setting, as a Kafka user tuning for throughput would choose: at full speed they
# cut the broker's work per message by half; at a paced rate batches close on ``linger_ms``
# long before they are full, so latency is unchanged. The consumer keeps Kafka's defaults
# (fetch.min.bytes 1) and a 100 ms long poll.
PULL_PRODUCER_SETTINGS = {"linger_ms": 5, "batch_bytes": 512 * 1024}
PULL_CONSUMER_SETTINGS = {"max_wait_ms": 100}
CLIENT_NOTE = ("pull clients: producer linger 5 ms, batches up to 512 KiB, acks=all; consumer fetch.min.bytes 1, "
               "100 ms long poll, no commits. push: PUBLISH pipelined 100 per write at full speed")

ROLE_COMMAND = [sys.executable, "-P", "-m", "dualmq.compare.roles"]


class RoleError(RuntimeError):
    """A role process failed or did not get ready; the message quotes its log."""


@attrs.define
class Role:
    """One role process as the coordinator sees it."""

    name: str
    spec: dict[str, Any]
    log_path: Path
    # Added to the process's environment (credentials: never on a command line, which ps shows).
    env: dict[str, str] = attrs.field(factory=dict)
    process: Any = None
    ready: trio.Event = attrs.field(factory=trio.Event)
    exited: trio.Event = attrs.field(factory=trio.Event)
    received: int = 0
    last_ns: int = 0
    assigned: tuple[int, int] = (0, 0)
    assigned_at: float = 0.0
    lost: list[str] = attrs.field(factory=list)
    error: str = ""          # the SDK error the role ended with ("error ..." / "denied ..." line)
    refused: bool = False    # ... and it was the broker refusing it (``security.denied``)

    def failure(self, what: str) -> RoleError | AccessDenied:
        if self.refused:
            return refusal(self.spec["role"].split("-")[0], self.spec["address"], self.error)
        if self.error:
            return RoleError(f"compare role {self.name} {what}: {self.error}")
        try:
            tail = self.log_path.read_text(errors="replace")[-2000:]
        except OSError:
            tail = ""
        return RoleError(f"compare role {self.name} {what}" + (f"; its log ends:\n{tail}" if tail.strip() else ""))


async def _read_lines(role: Role) -> None:
    buffer = b""
    async for chunk in role.process.stdout:
        buffer += chunk
        *lines, buffer = buffer.split(b"\n")
        for line in lines:
            word, _, rest = line.decode(errors="replace").partition(" ")
            if word == "ready":
                role.ready.set()
            elif word == "progress":
                count, last = rest.split()
                role.received, role.last_ns = int(count), int(last)
            elif word == "assigned":
                total, least = rest.split()
                role.assigned = (int(total), int(least))
                role.assigned_at = trio.current_time()
            elif word == "lost":
                role.lost.append(rest)
            elif word in ("error", "denied"):
                role.error, role.refused = rest, word == "denied"


async def _run_role(role: Role, task_status=trio.TASK_STATUS_IGNORED) -> None:
    with open(role.log_path, "ab") as log:
        process = await trio.lowlevel.open_process(
            [*ROLE_COMMAND, json.dumps(role.spec)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=log, env={**os.environ, "PYTHONUNBUFFERED": "1", **role.env})
    role.process = process
    task_status.started()
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_read_lines, role)
            await process.wait()
    finally:
        if process.returncode is None:
            process.kill()
            with trio.CancelScope(shield=True), trio.move_on_after(5):
                await process.wait()
        role.exited.set()


async def _wait(event: trio.Event, role: Role, timeout: float, what: str) -> None:
    with trio.move_on_after(timeout) as scope:
        async with trio.open_nursery() as nursery:
            async def watch_exit() -> None:
                await role.exited.wait()
                nursery.cancel_scope.cancel()
            nursery.start_soon(watch_exit)
            await event.wait()
            nursery.cancel_scope.cancel()
    if not event.is_set():
        raise role.failure(f"did not {what} within {timeout:.0f} s" if scope.cancelled_caught
                           else f"exited (status {role.process.returncode}) before it could {what}")


def consumer_names(workload: Workload, mode: str) -> list[str]:
    prefix = "m" if mode == "pull" and workload.pull_consumers == "group" else "c"
    return [f"{prefix}{i}" for i in range(workload.consumers)]


def _pack(names: list[str]) -> list[list[str]]:
    """Consumers per process: one each, up to ``MAX_CONSUMER_PROCESSES`` processes."""
    count = min(len(names), MAX_CONSUMER_PROCESSES)
    return [names[i::count] for i in range(count)]


async def measure_mode(mode: str, workload: Workload, broker: BrokerHandle, run_id: bytes, *,
                       compression: str | None = None, account: bool = True) -> Measurement:
    """Run ``workload`` through ``mode`` with separate role processes and return what was measured.

    Args:
        compression: pull mode's codec (None: none).
        account: False keeps only counts in the consumers (to measure what accounting costs:
            the figures that need the records are then 0 / NaN).

    Raises:
        RoleError: a role failed or did not get ready in time (its error or its log is quoted).
        AccessDenied: the broker refused a role's login, or its permission on the topic or channel.
    """
    address = broker.kafka if mode == "pull" else broker.resp
    target = f"compare-{workload.name}-{run_id.hex()[:8]}-{os.urandom(2).hex()}"
    grouped = mode == "pull" and workload.pull_consumers == "group"
    if mode == "pull":
        from dualmq import pull

        async with pull.Admin(address, **broker.security.options(mode)) as admin:
            with refusals_named(mode, address):
                await admin.create_topics(target, partitions=workload.partitions, exist_ok=True)
    common = dict(address=address, target=target, run_id=run_id.hex(), size=workload.message_size,
                  partitions=workload.partitions, process_us=workload.process_us)
    env = broker.security.environment(mode)
    names = consumer_names(workload, mode)
    with tempfile.TemporaryDirectory(prefix="dualmq-compare-roles-") as scratch_dir:
        scratch = Path(scratch_dir)
        consumers = [Role(f"{mode}-consumers-{i}", dict(common, role=f"{mode}-consumers", mode=mode, names=group,
                                                        group=f"{target}-group" if grouped else None,
                                                        account=account,
                                                        client=PULL_CONSUMER_SETTINGS if mode == "pull" else {},
                                                        out=str(scratch / f"consumers-{i}.rec")),
                          scratch / f"consumers-{i}.log", env)
                     for i, group in enumerate(_pack(names))]
        producers = [Role(f"{mode}-producer-{p}", dict(common, role=f"{mode}-producer", producer=p,
                                                       messages=workload.messages, min_seconds=workload.min_seconds,
                                                       max_messages=10_000_000, rate=workload.rate / workload.producers,
                                                       compression=compression, acks=workload.acks,
                                                       publish_batch=workload.publish_batch,
                                                       client=PULL_PRODUCER_SETTINGS if mode == "pull" else {},
                                                       out=str(scratch / f"producer-{p}.rec")),
                          scratch / f"producer-{p}.log", env)
                     for p in range(workload.producers)]
        try:
            producer_records = await _run_roles(mode, workload, consumers, producers, names, grouped)
        except BaseExceptionGroup as group:
            # One role failing cancels the others: report the failure itself, not the group.
            # Anything else in the group (a cancellation: Ctrl-C) goes on as it came.
            failures, rest = group.split((RoleError, AccessDenied))
            if failures is None or rest is not None:
                raise
            raise _first_leaf(failures) from None
        received: dict[str, tuple[array, array]] = {}
        errors: dict[str, str] = {}
        cpu = {"producers": sum(meta["cpu_s"] for meta, _ in producer_records), "consumers": 0.0}
        counted = 0
        for role in consumers:
            meta, arrays = read_record(role.spec["out"])
            cpu["consumers"] += meta["cpu_s"]
            counted += meta["received"]
            for name in meta["names"]:
                received[name] = (arrays[f"{name}.words"], arrays[f"{name}.received_ns"])
                if meta["errors"].get(name):
                    errors[name] = meta["errors"][name]
    if grouped:
        received = {"group": _merge(list(received.values()))}
    measurement = analyse(mode, workload, producer_records, received, run_id, errors=errors)
    sent = measurement.sent
    return attrs.evolve(measurement, producer_cpu_us=cpu["producers"] / max(sent, 1) * 1e6,
                        consumer_cpu_us=cpu["consumers"] / max(counted, 1) * 1e6, received=counted)


def _first_leaf(group: BaseException) -> BaseException:
    while isinstance(group, BaseExceptionGroup):
        group = group.exceptions[0]
    return group


async def _run_roles(mode: str, workload: Workload, consumers: list[Role], producers: list[Role],
                     names: list[str], grouped: bool) -> list[tuple[dict, dict[str, array]]]:
    """Consumers first (until each is ready), then the producers, the drain, and the stop."""
    async with trio.open_nursery() as nursery:
        try:
            for role in consumers:
                await nursery.start(_run_role, role)
            for role in consumers:
                await _wait(role.ready, role, READY_TIMEOUT_S, "subscribe")
            if grouped:
                await _settle_group(consumers, workload)
            for role in producers:
                await nursery.start(_run_role, role)
            limit = _send_limit_s(workload)
            for role in producers:
                await _wait(role.exited, role, limit, "finish sending")
                if role.process.returncode != 0:
                    raise role.failure(f"failed (status {role.process.returncode})")
            producer_records = [read_record(role.spec["out"]) for role in producers]
            sent = sum(meta["sent"] for meta, _ in producer_records)
            await _drain(mode, workload, consumers, names, sent)
            for role in consumers:
                try:
                    await role.process.stdin.send_all(b"stop\n")
                except trio.BrokenResourceError:   # it ended on its own (refused by the broker ...): say why
                    with trio.move_on_after(STOP_TIMEOUT_S):
                        await role.exited.wait()
                    what = f"exited (status {role.process.returncode}) before it was told to stop"
                    raise role.failure(what) from None
            for role in consumers:
                await _wait(role.exited, role, STOP_TIMEOUT_S, "stop")
                if role.process.returncode != 0:
                    raise role.failure(f"failed (status {role.process.returncode})")
        finally:
            nursery.cancel_scope.cancel()
    return producer_records


def _send_limit_s(workload: Workload) -> float:
    if workload.rate > 0:
        seconds = workload.producers * workload.messages / workload.rate
    else:
        seconds = workload.producers * workload.messages / 2000   # a pessimistic full speed
    return max(seconds, workload.min_seconds) * 2 + 60


async def _settle_group(consumers: list[Role], workload: Workload) -> None:
    """Wait until the group's members hold every partition (each at least one when they can),
    unchanged for ``GROUP_SETTLE_S``: a rebalance during the measurement would measure it."""
    want_least = 1 if workload.consumers <= workload.partitions else 0
    with trio.move_on_after(READY_TIMEOUT_S):
        while True:
            total = sum(role.assigned[0] for role in consumers)
            least = min(role.assigned[1] for role in consumers)
            last = max(role.assigned_at for role in consumers)
            if total == workload.partitions and least >= want_least \
                    and trio.current_time() - last >= GROUP_SETTLE_S:
                return
            await trio.sleep(0.05)
    raise consumers[0].failure(f"group assignment did not settle within {READY_TIMEOUT_S:.0f} s")


async def _drain(mode: str, workload: Workload, consumers: list[Role], names: list[str], sent: int) -> None:
    """Until every consumer has everything, they all went quiet, or ``drain_timeout_s``."""
    grouped = mode == "pull" and workload.pull_consumers == "group"
    finished_ns = time.monotonic_ns()
    with trio.move_on_after(workload.drain_timeout_s):
        while True:
            if grouped:
                complete = sum(role.received for role in consumers) >= sent
            else:
                complete = all(role.received >= sent * len(role.spec["names"]) for role in consumers)
            now = time.monotonic_ns()
            quiet = all((now - max(role.last_ns, finished_ns)) / 1e9 >= IDLE_S[mode] for role in consumers)
            if complete or quiet:
                return
            await trio.sleep(0.05)


def _merge(parts: list[tuple[array, array]]) -> tuple[array, array]:
    """The receipts of a group's members as one consumer's, in receive-time order."""
    order = sorted(((t, part, i) for part, (_, times) in enumerate(parts) for i, t in enumerate(times)))
    words, times = array("Q"), array("q")
    for t, part, i in order:
        words.extend(parts[part][0][i * 4:i * 4 + 4])
        times.append(t)
    return words, times


# --- turning the records into figures ----------------------------------------------------------


@attrs.frozen(kw_only=True)
class Measurement:
    """One mode's measured run (see the module docstring for each figure's definition)."""

    mode: str
    consumers: int
    sent: int
    failed_sends: int
    window_s: float                  # length of the steady window
    sending_s: float                 # the whole sending period
    send_per_s: float
    delivered_per_s: float           # all consumers together
    per_consumer_per_s: float
    distinct_per_s: float
    delivered_mb_per_s: float        # delivered/s x message size
    delivered: int                   # distinct messages, summed over consumers
    duplicated: int
    not_delivered: int               # expected (sent x consumers) minus delivered
    p50_ms: float
    p99_ms: float
    p999_ms: float
    max_ms: float
    cut_off: dict[str, str] = attrs.field(factory=dict)   # consumer -> why its connection ended
    received: int = 0                # messages the consumer processes counted (copies included)
    # CPU time of the role processes per message, from the moment each was ready:
    producer_cpu_us: float = math.nan    # all producers' CPU / messages sent
    consumer_cpu_us: float = math.nan    # all consumers' CPU / messages received

    def as_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)


def _sent_at(checkpoints: array, t_ns: float) -> float:
    """Messages one producer had sent at ``t_ns``, interpolated between its checkpoints."""
    times, counts = checkpoints[0::2], checkpoints[1::2]
    i = bisect_left(times, t_ns)
    if i <= 0:
        return 0.0
    if i >= len(times):
        return float(counts[-1])
    t0, t1, c0, c1 = times[i - 1], times[i], counts[i - 1], counts[i]
    return c0 + (c1 - c0) * (t_ns - t0) / max(t1 - t0, 1)


def analyse(mode: str, workload: Workload, producer_records: list[tuple[dict, dict[str, array]]],
            received: dict[str, tuple[array, array]], run_id: bytes,
            errors: dict[str, str] | None = None) -> Measurement:
    """Merge the role records of one mode's run into a ``Measurement`` (pure; no I/O)."""
    checkpoints = [arrays["checkpoints"] for _, arrays in producer_records]
    start = min(c[0] for c in checkpoints)
    end = max(c[-2] for c in checkpoints)
    span = max(end - start, 1)
    w0, w1 = start + WARM_UP_SHARE * span, end - WARM_UP_SHARE * span
    window_s = max(w1 - w0, 1) / 1e9
    sent = sum(meta["sent"] for meta, _ in producer_records)
    failed = sum(meta.get("failed_batches", 0) for meta, _ in producer_records)
    send_in_window = sum(_sent_at(c, w1) - _sent_at(c, w0) for c in checkpoints)
    run = payload.run_word(run_id)
    in_window = 0
    delivered = duplicated = 0
    latencies: list[float] = []
    union: set[int] = set()
    for name, (words, times) in received.items():
        if words[1::4].count(run) != len(times):   # foreign traffic on a shared broker: keep ours
            keep = [i for i in range(len(times)) if words[4 * i + 1] == run]
            words = array("Q", [w for i in keep for w in words[4 * i:4 * i + 4]])
            times = array("q", [times[i] for i in keep])
        ids = _ids(words)
        distinct = len(set(ids))
        delivered += distinct
        duplicated += len(ids) - distinct
        lo, hi = bisect_left(times, w0), bisect_left(times, w1)
        in_window += hi - lo
        union.update(ids[lo:hi])
        stride = max(1, (hi - lo) // LATENCY_SAMPLE)
        sent_ns = words[3::4]
        latencies.extend((times[i] - sent_ns[i]) / 1e6 for i in range(lo, hi, stride))
    latencies.sort()
    consumers = max(1, len(received))
    return Measurement(
        mode=mode, consumers=len(received), sent=sent, failed_sends=failed, window_s=window_s,
        sending_s=span / 1e9, send_per_s=send_in_window / window_s, delivered_per_s=in_window / window_s,
        per_consumer_per_s=in_window / window_s / consumers, distinct_per_s=len(union) / window_s,
        delivered_mb_per_s=in_window / window_s * workload.message_size / 1e6,
        delivered=delivered, duplicated=duplicated, not_delivered=max(0, sent * len(received) - delivered),
        p50_ms=percentile(latencies, 0.5), p99_ms=percentile(latencies, 0.99),
        p999_ms=percentile(latencies, 0.999), max_ms=latencies[-1] if latencies else math.nan,
        cut_off=dict(errors or {}))


def _ids(words: array) -> list[int]:
    """One integer per message: sequence number and producer (word 0's low 32 bits)."""
    seqs = words[2::4]
    producers = words[0::4]
    if producers.count(producers[0] if producers else 0) == len(producers):
        return seqs.tolist()
    return [(s << 6) | (p & 0x3F) for s, p in zip(seqs, producers)]
