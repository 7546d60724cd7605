"""The role processes of a measured run: one producer, or one process of consumers, per process.

    python -P -m dualmq.compare.roles '<spec as JSON>'

``measured`` (the coordinator) starts one process per role so that producing, consuming and
the broker do not share one interpreter, and the figures are the modes' rather than one
Python process's. Each process:

1. connects, and (consumers) subscribes or joins its group, then prints ``ready`` (group
   members print ``assigned N`` after every rebalance, N = partitions they hold);
2. runs: a producer sends at once; consumers receive until told ``stop`` on standard input,
   printing ``progress RECEIVED LAST_NS`` every 100 ms so the coordinator can tell when the
   drain is over;
3. writes its record to ``spec["out"]`` (``write_record``) and prints ``done``. The record
   includes the CPU time the process used from ``ready`` on (start-up and connecting left out).

A role that the broker refuses (a wrong password, no permission on the topic or channel:
``security.denied``) prints ``denied MESSAGE``, any other SDK error ``error MESSAGE``, and exits
with status 1, so that the coordinator can report one line instead of a traceback. How the role
logs in (TLS, SASL, AUTH) comes from its environment (``security.role_options``), never its
command line, which ``ps`` shows.

What is recorded is cheap on purpose (the accounting must cost far less than the mode): a
producer keeps a checkpoint ``(time, sent)`` every ``CHECKPOINT_EVERY`` messages and the
receiver counts PUBLISH returned (push); a consumer keeps the 32-byte headers of the messages
it received as 64-bit words (``payload.words``: one join and one C-level copy per fetched
batch) and one receive time per batch. Every time is ``time.monotonic_ns()``: on Linux it is
one clock for all processes of the host, so the coordinator can merge the records.

A ``process_us`` cost makes a consumer spend that long per message (a sleep: the time a real
consumer waits on a database or a service, not CPU), which is what the ``parallelism`` sweep
measures: pull mode splits the messages between a group's members, push mode gives each
subscriber all of them.

Not here: what the records mean (``measured``); the in-process scenarios (``runner``).
"""

from __future__ import annotations

import json
import sys
import time
from array import array
from itertools import repeat
from typing import Any

import trio

from dualmq.compare import payload
from dualmq.compare.security import denied, leaves, role_options
from dualmq.errors import DualmqError

CHECKPOINT_EVERY = 1024          # messages between a producer's (time, sent) checkpoints
PROGRESS_EVERY_S = 0.1
MAX_RUN_S = 600.0                # no role runs longer than this, whatever it is told
FETCH_RECORDS = 10_000           # records per getmany: the SDK's batch-level read


def write_record(path: str, meta: dict[str, Any], arrays: dict[str, array]) -> None:
    """A record file: one JSON line (meta plus each array's typecode and length), then the arrays' bytes."""
    layout = [[name, values.typecode, len(values)] for name, values in arrays.items()]
    with open(path, "wb") as f:
        f.write(json.dumps({"meta": meta, "arrays": layout}).encode() + b"\n")
        for values in arrays.values():
            values.tofile(f)


def read_record(path: str) -> tuple[dict[str, Any], dict[str, array]]:
    """Inverse of ``write_record``."""
    with open(path, "rb") as f:
        head = json.loads(f.readline())
        arrays = {}
        for name, typecode, length in head["arrays"]:
            values = array(typecode)
            values.fromfile(f, length)
            arrays[name] = values
    return head["meta"], arrays


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


# --- producers -----------------------------------------------------------------------------------


class Pacer:
    """Sends at ``rate`` messages/s (0: as fast as possible), checked every ``step`` messages."""

    def __init__(self, rate: float, start_ns: int) -> None:
        self.interval_ns = 1e9 / rate if rate > 0 else 0.0
        self.start_ns = start_ns

    async def wait(self, sent: int) -> None:
        if self.interval_ns:
            due = self.start_ns + sent * self.interval_ns
            ahead = (due - time.monotonic_ns()) / 1e9
            if ahead > 0:
                await trio.sleep(ahead)


def _next_count(spec: dict[str, Any], sent: int, start_ns: int, now_ns: int, step: int) -> int:
    """How many messages a producer sends next (0: it is done). It sends ``messages`` *and*
    for ``min_seconds``, checking every ``step`` messages; never more than ``max_messages``."""
    elapsed = (now_ns - start_ns) / 1e9
    if elapsed >= MAX_RUN_S or sent >= spec["max_messages"]:
        return 0
    if elapsed < spec["min_seconds"]:
        return min(step, spec["max_messages"] - sent)
    return max(0, min(step, spec["messages"] - sent))


def _step(spec: dict[str, Any]) -> int:
    """Messages sent between two checks of the clock (pacing, checkpoints, the end)."""
    if spec["rate"] > 0:
        return max(1, min(64, int(spec["rate"] / 1000)))
    return 64


async def pull_producer(spec: dict[str, Any]) -> tuple[dict, dict[str, array]]:
    from dualmq import pull

    encode = payload.Encoder(bytes.fromhex(spec["run_id"]), spec["producer"], spec["size"])
    topic = spec["target"]
    checkpoints = array("q")
    failures = 0
    acks = spec.get("acks", "all")
    settings = dict(spec.get("client", {}), **role_options())
    settings["batch_bytes"] = max(settings.get("batch_bytes", 64 * 1024), spec["size"] + 1024)
    settings["max_request_bytes"] = max(settings.get("max_request_bytes", 1024 * 1024), 2 * spec["size"] + 4096)
    async with pull.Producer(spec["address"], acks=acks if acks == "all" else int(acks),
                             compression=spec.get("compression"), client_id=f"compare-p{spec['producer']}",
                             **settings) as producer:
        await producer.partitions_for(topic)
        say("ready")
        cpu_start = time.process_time()
        deliveries = []
        keep = deliveries.append
        partitions = spec["partitions"]
        send_nowait = producer.send_nowait
        now = time.monotonic_ns
        start = now()
        pacer = Pacer(spec["rate"], start)
        step = _step(spec)
        sent = 0
        checkpoints.extend((start, 0))
        while count := _next_count(spec, sent, start, now(), step):
            await pacer.wait(sent)
            for _ in range(count):
                # The SDK's synchronous path (no coroutine per message); ``enqueue`` only when
                # the buffer is full and the producer must wait for its sender. Over several
                # partitions, records go round-robin (Kafka's RoundRobinPartitioner): the
                # sticky default would fill one partition per batch, and a group's members
                # would take turns instead of working side by side.
                partition = sent % partitions if partitions > 1 else None
                try:
                    delivery = send_nowait(topic, encode(sent, now()), partition=partition)
                except trio.WouldBlock:
                    delivery = await producer.enqueue(topic, encode(sent, now()), partition=partition)
                sent += 1
            # Only the last delivery of each step is kept: a batch fails or succeeds as one,
            # so it stands for the messages of its batch (checked after flush).
            keep(delivery)
            await trio.lowlevel.checkpoint()   # let the sender task run (and cancellation in)
            if sent % CHECKPOINT_EVERY < count:
                checkpoints.extend((now(), sent))
        checkpoints.extend((now(), sent))
        await producer.flush()
        acked_ns = now()
        for delivery in deliveries:
            try:
                delivery.result()
            except Exception as exc:  # noqa: BLE001 - any delivery error counts as a failed send
                if denied(exc):   # ... but no permission to write is a setup error, not a result
                    raise
                failures += 1
        idempotent = producer.idempotent
    meta = dict(role="producer", sent=sent, failed_batches=failures, acked_ns=acked_ns,
                idempotent=idempotent, cpu_s=time.process_time() - cpu_start)
    return meta, {"checkpoints": checkpoints}


async def push_publisher(spec: dict[str, Any]) -> tuple[dict, dict[str, array]]:
    from dualmq import push

    encode = payload.Encoder(bytes.fromhex(spec["run_id"]), spec["producer"], spec["size"])
    channel = spec["target"].encode()
    checkpoints = array("q")
    receivers = array("i")
    async with push.Publisher(spec["address"], timeout=30.0, name=f"compare-p{spec['producer']}",
                              **role_options()) as publisher:
        await publisher.execute("PING")
        say("ready")
        cpu_start = time.process_time()
        publish_many = publisher.publish_many
        now = time.monotonic_ns
        start = now()
        pacer = Pacer(spec["rate"], start)
        # At full speed a pipelined batch of PUBLISHes per write, as a real publisher would;
        # paced, the batch shrinks with the rate so that messages are not held back.
        step = spec.get("publish_batch", 100) if spec["rate"] <= 0 else _step(spec)
        sent = 0
        checkpoints.extend((start, 0))
        while count := _next_count(spec, sent, start, now(), step):
            await pacer.wait(sent)
            t = now()
            receivers.extend(await publish_many([(channel, encode(seq, t)) for seq in range(sent, sent + count)]))
            sent += count
            if sent % CHECKPOINT_EVERY < count:
                checkpoints.extend((now(), sent))
        checkpoints.extend((now(), sent))
    meta = dict(role="producer", sent=sent, failed_batches=0, acked_ns=checkpoints[-2], cpu_s=time.process_time() - cpu_start)
    return meta, {"checkpoints": checkpoints, "receivers": receivers}


# --- consumers -----------------------------------------------------------------------------------


class Received:
    """What one consumer received: header words and one receive time per message (cheap appends).

    With ``account`` off (``bench/compare_vs_sdk.py`` measures what the accounting costs) only
    the count is kept.
    """

    def __init__(self, account: bool = True) -> None:
        self.account = account
        self.words = array("Q")
        self.received_ns = array("q")
        self.pending: list[bytes] = []   # push: headers not yet turned into words
        self.count = 0
        self.debt_s = 0.0   # processing time owed (``process_us``), slept off in slices
        self.error: str | None = None

    def add(self, records: list, now_ns: int) -> None:
        """A fetched batch of records (``.value``), all received at ``now_ns``."""
        if not self.account:
            self.count += len(records)
            return
        try:
            blob = b"".join([r.value[:32] for r in records])
        except TypeError:   # a record without a value (not ours): see below
            blob = b""
        if len(blob) != 32 * len(records):   # a foreign short message: keep only whole headers
            blob = b"".join([r.value[:32] for r in records if r.value is not None and len(r.value) >= 32])
        n = len(blob) // 32
        self.words.extend(payload.words(blob))
        self.received_ns.extend(repeat(now_ns, n))
        self.count += n

    def flush(self) -> None:
        """Turn the pending headers into words (one join and one copy for thousands)."""
        if self.pending:
            self.words.extend(payload.words(b"".join(self.pending)))
            self.pending.clear()


async def _owe(received: Received, cost_s: float, n: int) -> None:
    """Spend the per-message processing time of ``n`` messages, in sleeps of at least 1 ms."""
    if cost_s:
        received.debt_s += cost_s * n
        if received.debt_s >= 0.001:
            debt, received.debt_s = received.debt_s, 0.0
            await trio.sleep(debt)


async def pull_consume(spec: dict[str, Any], name: str, received: Received, ready: trio.Event,
                       assigned: list[int]) -> None:
    from dualmq import pull

    topic = spec["target"]
    grouped = spec["group"] is not None
    options: dict[str, Any] = dict(auto_offset_reset="earliest", client_id=f"compare-{name}", **spec.get("client", {}),
                                   **role_options())
    if grouped:
        index = len(assigned)
        assigned.append(-1)

        def on_assigned(partitions) -> None:
            assigned[index] = len(partitions)
            say(f"assigned {sum(assigned)} {min(assigned)}")

        # No commits: a measured run reads once from the beginning. A short request timeout
        # bounds the LeaveGroup on the way out (the group may be rebalancing as members leave).
        options.update(group_id=spec["group"], topics=[topic], enable_auto_commit=False, on_assigned=on_assigned,
                       session_timeout_ms=10_000, heartbeat_interval_ms=500, request_timeout_ms=5_000)
    cost_s = spec.get("process_us", 0) / 1e6
    now = time.monotonic_ns
    async with pull.Consumer(spec["address"], **options) as consumer:
        if not grouped:
            consumer.assign([(topic, p) for p in range(spec["partitions"])])
            with trio.fail_after(30):
                await consumer.wait_ready()
        ready.set()
        getmany = consumer.getmany
        add = received.add
        while True:
            records = await getmany(FETCH_RECORDS)
            add(records, now())
            if cost_s:
                await _owe(received, cost_s, len(records))


async def push_consume(spec: dict[str, Any], name: str, received: Received, ready: trio.Event,
                       assigned: list[int]) -> None:
    from dualmq import push

    cost_s = spec.get("process_us", 0) / 1e6
    now = time.monotonic_ns
    heads = received.pending
    keep_head = heads.append
    keep_time = received.received_ns.append
    async with push.subscribe(spec["address"], spec["target"], timeout=30.0, name=f"compare-{name}",
                              health_check_interval=None, **role_options()) as subscription:
        ready.set()
        try:
            if not received.account:
                async for message in subscription:
                    received.count += 1
            else:
                async for message in subscription:
                    data = message.data
                    if len(data) >= 32:
                        keep_head(data[:32])
                        keep_time(now())
                        received.count += 1
                        if len(heads) >= 4096:
                            received.flush()
                        if cost_s:
                            await _owe(received, cost_s, 1)
        except Exception as exc:  # noqa: BLE001 - a cut-off subscriber is a result, reported by the coordinator
            received.error = f"{type(exc).__name__}: {exc}"
            say(f"lost {received.error}")
            await trio.sleep_forever()


CONSUMERS = {"pull": pull_consume, "push": push_consume}


async def consumers(spec: dict[str, Any]) -> tuple[dict, dict[str, array]]:
    """Run ``spec["names"]`` consumers of ``spec["mode"]`` in this process until ``stop``."""
    names = spec["names"]
    received = {name: Received(spec.get("account", True)) for name in names}
    assigned: list[int] = []
    consume = CONSUMERS[spec["mode"]]
    async with trio.open_nursery() as nursery:
        readies = []
        for name in names:
            ready = trio.Event()
            readies.append(ready)
            nursery.start_soon(consume, spec, name, received[name], ready, assigned)
        with trio.fail_after(60):
            for ready in readies:
                await ready.wait()
        say("ready")
        cpu_start = time.process_time()
        nursery.start_soon(_progress, received)
        await _wait_for_stop()
        nursery.cancel_scope.cancel()
    for r in received.values():
        r.flush()
    meta = dict(role="consumers", names=names, errors={name: r.error for name, r in received.items()},
                received=sum(r.count for r in received.values()), cpu_s=time.process_time() - cpu_start)
    arrays: dict[str, array] = {}
    for name, r in received.items():
        arrays[f"{name}.words"] = r.words
        arrays[f"{name}.received_ns"] = r.received_ns
    return meta, arrays


async def _progress(received: dict[str, Received]) -> None:
    """``progress COUNT LAST_NS`` every ``PROGRESS_EVERY_S``: LAST_NS is when the count last grew
    (to this resolution: enough to tell a drained consumer, and no clock read per message)."""
    last_count, last_ns = 0, 0
    while True:
        count = sum(r.count for r in received.values())
        if count != last_count:
            last_count, last_ns = count, time.monotonic_ns()
        say(f"progress {count} {last_ns}")
        await trio.sleep(PROGRESS_EVERY_S)


async def _wait_for_stop() -> None:
    """Until ``stop`` (or end of file) on standard input, or ``MAX_RUN_S``."""
    stdin = trio.lowlevel.FdStream(sys.stdin.fileno())
    buffer = b""
    with trio.move_on_after(MAX_RUN_S):
        while b"stop" not in buffer:
            chunk = await stdin.receive_some(1024)
            if not chunk:
                return
            buffer += chunk


ROLES = {"pull-producer": pull_producer, "push-producer": push_publisher,
         "pull-consumers": consumers, "push-consumers": consumers}


def main(argv: list[str] | None = None) -> int:
    spec = json.loads((argv if argv is not None else sys.argv[1:])[0])

    async def run() -> None:
        meta, arrays = await ROLES[spec["role"]](spec)
        write_record(spec["out"], meta, arrays)

    try:
        trio.run(run)
    except BaseException as exc:  # sorted here: a refusal or an SDK error is one line; anything else a bug
        expected = _expected(exc)
        if expected is None:
            raise
        say(f"denied {expected}" if denied(expected) else f"error {type(expected).__name__}: {expected}")
        return 1
    say("done")
    return 0


def _expected(exc: BaseException) -> DualmqError | None:
    """The ``DualmqError`` that ended the role, a refusal first (trio's nurseries wrap errors in
    groups: one consumer refused may end its siblings), else None."""
    found = list(leaves(exc))
    if any(not isinstance(leaf, (DualmqError, trio.Cancelled)) for leaf in found):
        return None   # a bug among them: let its traceback out
    errors = [leaf for leaf in found if isinstance(leaf, DualmqError)]
    return next((e for e in errors if denied(e)), errors[0] if errors else None)


if __name__ == "__main__":
    sys.exit(main())
