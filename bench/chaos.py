"""Chaos benchmark: SIGKILL the broker while kafka-python produces, restart, read everything back.

What it checks: that ``fsync=always`` keeps its promise — every record the broker
acknowledged survives a crash of the broker process — and what a crash costs in recovery
time. For each fsync policy (``always``, ``interval``, ``never``) it runs N trials; one trial:

1. start ``dualmq serve --fsync POLICY`` on an empty data dir (port 0, ``--ready-file``) and
   create topic ``chaos`` (1 partition, or ``--partitions N``);
2. a kafka-python producer (``acks=all``, ``enable_idempotence=True``, up to 5 requests in
   flight) sends numbered records — the value is the sequence number as 8 big-endian bytes,
   record ``seq`` goes to partition ``seq % N`` — for a random 0.2–1.5 s, then the broker gets
   SIGKILL at that moment, between two ``send()`` calls, with requests in flight;
3. the broker is restarted on the same data dir and the same Kafka port, so the producer —
   still open, with records it never got an answer for — reconnects and retries them, as a
   real client would. The idempotent producer's sequence numbers let the restarted broker
   (which rebuilds producer state from its log) drop a retry of a batch it already has;
4. once the producer has flushed (every future resolved), a consumer reads every partition
   from its first offset to its end, and the script compares.

A record counts as *acked* only when its kafka-python future resolved successfully (the
broker answered the Produce without error); one whose future failed, or was still unresolved
when the producer was closed, is *unacked*. Per policy the table shows:

    pending at kill   records sent but not yet answered when the SIGKILL went out (some of
                      those answers may already have been on their way)
    retried and acked after restart
                      records the restarted process acknowledged: the producer's retries of
                      what the kill interrupted
    acked             records acknowledged (before the kill, or after the restart on retry)
    lost              acked but not read back — the number that must be 0 at fsync=always
    wrong offset      acked at offset X, but offset X holds another record (or garbage)
    duplicated        extra copies read back (a retry the broker did not recognise)
    reordered         records read after a higher sequence number in the same partition
    unacked present   unacked records that were read back anyway: fine (the broker wrote
                      them, the answer was lost with the process); reported, not a failure
    recovery          restart → ready file (log recovery done, both listeners accept); this
                      includes the interpreter's start-up, so compare with "first start", the
                      same figure for an empty data dir
    resume            restart → the producer's first acknowledgement from the new process

Important, so the figures are not misread: this script kills the broker *process*, not the
machine. Data a process has written with ``write()`` lives in the kernel's page cache and is
written to disk by the kernel even after the process dies, so a SIGKILL loses nothing at
``interval`` or ``never`` either: expect 0 lost at all three policies. The policies differ
only when the *machine* stops (power loss, kernel crash, VM reset): then ``always`` keeps every
acknowledged record and the others may lose what was acknowledged since their last fsync.
This script cannot simulate that; it checks the claim that matters most (``always`` loses
nothing acknowledged) and that crash recovery (torn tails, rebuilt producer state) holds up.

Exit status: 0 if no trial lost an acknowledged record at ``always``; 1 if one did (the data
dirs are kept when ``--workdir`` is given); 2 if a trial could not run (broker did not start,
read back timed out, …), since then the figures do not cover what they claim to.

Run:  .venv/bin/python bench/chaos.py [--trials N] [--policies always,interval,never]
                                      [--partitions N] [--seed S] [--workdir DIR]
Every wait is bounded: broker start 20 s, producing 1.5 s, flush 30 s, read back 60 s.
"""

from __future__ import annotations

import argparse
import logging
import random
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import BenchError, install_sigterm_as_exit, median  # noqa: E402
from dualmq.process import BrokerProcess, BrokerStartError  # noqa: E402

POLICIES = ("always", "interval", "never")
TOPIC = "chaos"
SEQ = struct.Struct(">Q")
PRODUCE_SECONDS = (0.2, 1.5)
# Records handed to send() but not yet answered, at most. Bounds the producer's memory and
# how much it has to retry after the restart (with fsync=always the broker acknowledges far
# fewer records per second than kafka-python can hand over).
MAX_OUTSTANDING = 20_000
START_TIMEOUT_S = 20.0
KILL_WAIT_S = 10.0
RESTART_ATTEMPTS = 3
REQUEST_TIMEOUT_MS = 5_000
# A batch not acknowledged within this time fails (its records count as unacked). Far longer
# than a restart takes, so a record is only unacked if the broker really never took it.
DELIVERY_TIMEOUT_MS = 20_000
FLUSH_TIMEOUT_S = DELIVERY_TIMEOUT_MS / 1000 + 10
READ_BACK_TIMEOUT_S = 60.0
READY_POLL_S = 0.005  # how often the ready file is looked for: the resolution of the start-up times


@dataclass
class AckTracker:
    """What happened to each record sent: kafka-python calls these from its sender thread."""

    acked: dict[int, tuple[int, int]] = field(default_factory=dict)  # seq -> (partition, offset)
    failed: dict[int, str] = field(default_factory=dict)             # seq -> error name
    ack_times: list[float] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def on_ack(self, seq: int, metadata: object) -> None:
        with self.lock:
            self.acked[seq] = (metadata.partition, metadata.offset)
            self.ack_times.append(time.perf_counter())

    def on_error(self, seq: int, exc: BaseException) -> None:
        with self.lock:
            self.failed[seq] = type(exc).__name__

    def answered(self) -> int:
        with self.lock:
            return len(self.acked) + len(self.failed)


@dataclass
class TrialResult:
    policy: str
    index: int
    sent: int = 0
    pending_at_kill: int = 0  # sent but not yet answered when the SIGKILL went out
    acked_after_restart: int = 0  # of those, acknowledged by the restarted process (retried)
    acked: int = 0
    lost: int = 0
    wrong_offset: int = 0
    duplicated: int = 0
    reordered: int = 0
    unacked_present: int = 0
    unacked_absent: int = 0
    read: int = 0
    produce_s: float = float("nan")
    first_start_s: float = float("nan")
    recovery_s: float = float("nan")
    resume_s: float = float("nan")
    error: str = ""
    notes: list[str] = field(default_factory=list)


def create_topic(kafka, address: str, partitions: int) -> None:
    """Create the trial's topic (kafka-python's admin client, bounded by its request timeout)."""
    from kafka.admin import NewTopic

    admin = kafka.KafkaAdminClient(bootstrap_servers=address, request_timeout_ms=10_000)
    try:
        admin.create_topics([NewTopic(TOPIC, partitions, 1)])
    finally:
        admin.close()


def restart_broker(broker: BrokerProcess) -> tuple[float, float]:
    """Start the (killed) broker again on its data dir and the same addresses.

    The same port matters: the producer is still open and reconnects to the address it knows.
    A bind can fail if, while the broker was down, the producer's own reconnect happened to be
    given that port as its local port (TCP self-connect); then it is tried again shortly after.

    Returns:
        The seconds from (last) spawn to ready file, and the spawn time (``time.perf_counter()``).

    Raises:
        BenchError: no attempt started.
    """
    last_error: BrokerStartError | None = None
    for attempt in range(RESTART_ATTEMPTS):
        try:
            broker.start(START_TIMEOUT_S, poll_interval=READY_POLL_S)
            return broker.ready_seconds, broker.spawned_at
        except BrokerStartError as exc:
            last_error = exc
            time.sleep(0.2 * (attempt + 1))
    raise BenchError(f"restart failed {RESTART_ATTEMPTS} times; last: {last_error}")


def read_back(kafka, address: str, partitions: int) -> dict[int, list[tuple[int, bytes]]]:
    """Every record of every partition, from its first offset to its end, as (offset, value).

    Raises:
        BenchError: the end offsets were not reached within ``READ_BACK_TIMEOUT_S``.
    """
    consumer = kafka.KafkaConsumer(bootstrap_servers=address, group_id=None, enable_auto_commit=False,
                                   request_timeout_ms=10_000, max_poll_records=10_000)
    try:
        tps = [kafka.TopicPartition(TOPIC, p) for p in range(partitions)]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        end = consumer.end_offsets(tps)
        records: dict[int, list[tuple[int, bytes]]] = {p: [] for p in range(partitions)}
        deadline = time.monotonic() + READ_BACK_TIMEOUT_S
        while any(consumer.position(tp) < end[tp] for tp in tps):
            if time.monotonic() > deadline:
                positions = {tp.partition: consumer.position(tp) for tp in tps}
                raise BenchError(f"read back stopped at {positions}, end offsets {end}")
            for tp, batch in consumer.poll(timeout_ms=500).items():
                records[tp.partition].extend((r.offset, r.value) for r in batch)
        return records
    finally:
        consumer.close()


def compare(result: TrialResult, tracker: AckTracker, records: dict[int, list[tuple[int, bytes]]],
            partitions: int) -> None:
    """Fill in lost / wrong offset / duplicated / reordered / unacked counts from what was read."""
    copies: Counter[int] = Counter()
    by_offset: dict[tuple[int, int], int | None] = {}
    for partition, rows in records.items():
        highest = -1
        for offset, value in rows:
            seq = SEQ.unpack(value)[0] if value is not None and len(value) == SEQ.size else None
            by_offset[(partition, offset)] = seq
            if seq is None or seq % partitions != partition:
                result.notes.append(f"p{partition}@{offset} holds {value!r:.40}, not one of ours")
                continue
            copies[seq] += 1
            if copies[seq] > 1:
                continue  # counted as duplicated below, not as reordered too
            if seq < highest:
                result.reordered += 1
            highest = max(highest, seq)
    result.read = sum(len(rows) for rows in records.values())
    result.duplicated = sum(n - 1 for n in copies.values())
    result.acked = len(tracker.acked)
    for seq, place in tracker.acked.items():
        if copies[seq] == 0:
            result.lost += 1
        elif by_offset.get(place) != seq:
            result.wrong_offset += 1
    for seq in range(result.sent):
        if seq not in tracker.acked:
            if copies[seq]:
                result.unacked_present += 1
            else:
                result.unacked_absent += 1


def cut_newest_segment_in_half(data_dir: Path) -> str:
    """Destroy acknowledged data on purpose (``--sabotage``): halve partition 0's newest segment.

    This is what a lying disk would do, and what the script must then report as lost; it is
    how the check itself is tested (a checker that cannot fail proves nothing).

    Returns:
        A note saying what was cut.
    """
    segment = sorted((data_dir / f"{TOPIC}-0").glob("*.log"))[-1]
    size = segment.stat().st_size
    with open(segment, "r+b") as file:
        file.truncate(size // 2)
    return f"sabotage: cut {segment.name} from {size:,} to {size // 2:,} bytes"


def run_trial(kafka, policy: str, index: int, rng: random.Random, workdir: Path, partitions: int,
              sabotage: bool = False, idempotent: bool = True) -> TrialResult:
    """One produce / SIGKILL / restart / read-back cycle on a fresh data dir. Never raises
    BenchError: a trial that could not run is returned with ``error`` set.

    Args:
        sabotage: halve the newest segment after the kill (to prove lost records are seen).
        idempotent: ``enable_idempotence`` of the producer; without it, batches retried after
            the restart can be stored out of order, or twice if the broker had written them.
    """
    result = TrialResult(policy, index)
    trial_dir = workdir / f"{policy}-{index:03d}"
    trial_dir.mkdir(parents=True)
    data_dir = trial_dir / "data"
    broker = BrokerProcess(data_dir, "--fsync", policy, ready_file=trial_dir / "ready.json",
                           log_path=trial_dir / "broker.log", log_level="warning")
    producer = None
    tracker = AckTracker()
    try:
        broker.start(START_TIMEOUT_S, poll_interval=READY_POLL_S)
        result.first_start_s = broker.ready_seconds
        address = broker.kafka_address
        create_topic(kafka, address, partitions)
        producer = kafka.KafkaProducer(
            bootstrap_servers=address, acks="all", enable_idempotence=idempotent,
            max_in_flight_requests_per_connection=5, linger_ms=1,
            request_timeout_ms=REQUEST_TIMEOUT_MS, delivery_timeout_ms=DELIVERY_TIMEOUT_MS,
            # Reconnect quickly while the broker restarts (the default backs off up to 30 s,
            # which would measure kafka-python's patience, not the broker's recovery).
            reconnect_backoff_ms=20, reconnect_backoff_max_ms=200, retry_backoff_ms=20,
        )

        def send(seq: int) -> object:
            future = producer.send(TOPIC, value=SEQ.pack(seq), partition=seq % partitions)
            future.add_callback(tracker.on_ack, seq).add_errback(tracker.on_error, seq)
            return future

        # Record 0 is waited for, so the clock below starts with a producer id and metadata in
        # hand: the kill then lands in the middle of steady producing, not in the handshake.
        send(0).get(timeout=REQUEST_TIMEOUT_MS / 1000)
        seq = 1
        produce_for = rng.uniform(*PRODUCE_SECONDS)
        started = time.perf_counter()
        stop_at = started + produce_for
        while time.perf_counter() < stop_at:
            if seq - tracker.answered() >= MAX_OUTSTANDING:
                time.sleep(0.001)
                continue
            send(seq)
            seq += 1
        result.pending_at_kill = seq - tracker.answered()
        broker.stop(signal.SIGKILL, KILL_WAIT_S)  # no handler runs, nothing is flushed or closed by the broker
        result.sent = seq
        result.produce_s = time.perf_counter() - started
        if sabotage:
            result.notes.append(cut_newest_segment_in_half(data_dir))

        result.recovery_s, spawned_at = restart_broker(broker)
        try:
            producer.flush(timeout=FLUSH_TIMEOUT_S)
        except kafka.errors.KafkaTimeoutError:
            result.notes.append(f"producer flush timed out after {FLUSH_TIMEOUT_S:.0f} s")
        # Only acks after the new process was ready count: a response the old process had sent
        # just before the kill may still be read from the socket after the respawn.
        ready_at = spawned_at + result.recovery_s - READY_POLL_S
        with tracker.lock:
            after_restart = [t for t in tracker.ack_times if t >= ready_at]
        result.acked_after_restart = len(after_restart)
        if after_restart:
            result.resume_s = min(after_restart) - spawned_at
        try:
            producer.close(timeout=5)
        except kafka.errors.KafkaTimeoutError:
            result.notes.append("producer close timed out; its unanswered records count as unacked")
        producer = None
        if tracker.failed:
            kinds = Counter(tracker.failed.values())
            result.notes.append("failed futures: " + ", ".join(f"{k} x{n}" for k, n in kinds.most_common()))

        # Snapshot the tracker: a (timed-out) producer thread must not change it while comparing.
        with tracker.lock:
            frozen = AckTracker(dict(tracker.acked), dict(tracker.failed))
        compare(result, frozen, read_back(kafka, address, partitions), partitions)
    except (BenchError, BrokerStartError, kafka.errors.KafkaError, subprocess.TimeoutExpired, OSError) as exc:
        result.error = f"{type(exc).__name__}: {str(exc)[-300:]}"
    finally:
        if producer is not None:
            try:
                producer.close(timeout=0)
            except kafka.errors.KafkaTimeoutError:
                pass  # only its daemon threads remain; the broker is stopped below
        broker.stop()
    return result


def filesystem_type(path: Path) -> str:
    """The type of the file system holding ``path`` (Linux /proc/mounts), or '?'.

    Printed with the results because on tmpfs an fsync costs nothing and proves nothing.
    """
    try:
        mounts = [line.split()[1:3] for line in Path("/proc/mounts").read_text().splitlines()]
    except OSError:
        return "?"
    target = str(path.resolve())
    best = max((m for m in mounts if target == m[0] or target.startswith(m[0].rstrip("/") + "/")),
               key=lambda m: len(m[0]), default=None)
    return best[1] if best else "?"


def fmt_seconds(values: list[float]) -> str:
    clean = [v for v in values if v == v]
    if not clean:
        return "–"
    return f"{median(clean):.2f} / {max(clean):.2f}"


def table(results: list[TrialResult], policies: list[str]) -> str:
    """The summary as a markdown table, one row per policy (errored trials are not summed)."""
    header = ("| fsync | trials | errors | pending at kill | retried and acked after restart | acked | lost | wrong offset | duplicated | reordered "
              "| unacked present | unacked absent | first start s (median / max) "
              "| recovery s (median / max) | resume s (median / max) |")
    lines = [header, "|" + "---|" * (header.count("|") - 1)]
    for policy in policies:
        rows = [r for r in results if r.policy == policy]
        ok = [r for r in rows if not r.error]
        total = lambda name: sum(getattr(r, name) for r in ok)  # noqa: E731
        lines.append(
            f"| {policy} | {len(ok)} | {len(rows) - len(ok)} | {total('pending_at_kill'):,} "
            f"| {total('acked_after_restart'):,} "
            f"| {total('acked'):,} | {total('lost'):,} "
            f"| {total('wrong_offset'):,} | {total('duplicated'):,} | {total('reordered'):,} "
            f"| {total('unacked_present'):,} | {total('unacked_absent'):,} "
            f"| {fmt_seconds([r.first_start_s for r in ok])} | {fmt_seconds([r.recovery_s for r in ok])} "
            f"| {fmt_seconds([r.resume_s for r in ok])} |"
        )
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=10, help="trials per policy (default 10)")
    parser.add_argument("--policies", default=",".join(POLICIES),
                        help="comma-separated fsync policies (default always,interval,never)")
    parser.add_argument("--partitions", type=int, default=1, help="partitions of the topic (default 1)")
    parser.add_argument("--seed", type=int, default=None, help="seed for the kill moments (default: random, printed)")
    parser.add_argument("--workdir", type=Path, default=None,
                        help="keep every trial's data dir and broker log here (default: a temp dir, removed)")
    parser.add_argument("--verbose", action="store_true", help="print kafka-python's warnings too")
    parser.add_argument("--no-idempotence", dest="idempotent", action="store_false",
                        help="producer without idempotence, to see what it prevents: batches retried "
                             "after the restart stored out of order (reordered) or twice (duplicated)")
    parser.add_argument("--sabotage", action="store_true",
                        help="test the checker: halve the newest segment after each kill, so acknowledged "
                             "records are lost and the run must fail")
    args = parser.parse_args(argv)
    args.policies = [p.strip() for p in args.policies.split(",") if p.strip()]
    unknown = sorted(set(args.policies) - set(POLICIES))
    if unknown:
        parser.error(f"unknown fsync policy {', '.join(unknown)}; choose from {', '.join(POLICIES)}")
    if not 1 <= args.trials <= 10_000:
        parser.error("--trials must be between 1 and 10000")
    if not 1 <= args.partitions <= 64:
        parser.error("--partitions must be between 1 and 64")
    if args.seed is None:
        args.seed = random.randrange(2**32)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    install_sigterm_as_exit()
    # kafka-python logs every refused reconnect while the broker is down, as it should; here
    # that is the expected noise of the experiment, so only its critical messages show.
    logging.getLogger("kafka").setLevel(logging.DEBUG if args.verbose else logging.CRITICAL)
    import kafka
    import kafka.errors  # noqa: F401  (used as kafka.errors.*)

    rng = random.Random(args.seed)
    print(f"# chaos: SIGKILL of dualmq serve while kafka-python {kafka.__version__} produces "
          f"(acks=all, {'idempotent' if args.idempotent else 'NOT idempotent'}); {args.trials} trial(s) per policy, {args.partitions} partition(s), "
          f"seed {args.seed}", flush=True)
    began = time.perf_counter()
    results: list[TrialResult] = []
    keep = args.workdir is not None
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="dualmq-chaos-"))
    workdir.mkdir(parents=True, exist_ok=True)
    print(f"# data dirs under {workdir} ({filesystem_type(workdir)})"
          + ("; SABOTAGE: the newest segment is halved after each kill" if args.sabotage else ""), flush=True)
    try:
        for policy in args.policies:
            for index in range(args.trials):
                result = run_trial(kafka, policy, index, rng, workdir, args.partitions, args.sabotage,
                                   args.idempotent)
                results.append(result)
                status = result.error or (
                    f"sent {result.sent:,} pending at kill {result.pending_at_kill:,} acked after restart {result.acked_after_restart:,} acked {result.acked:,} read {result.read:,} lost {result.lost} "
                    f"dup {result.duplicated} reord {result.reordered} wrong {result.wrong_offset} "
                    f"unacked present {result.unacked_present} | killed after {result.produce_s:.2f} s, "
                    f"recovery {result.recovery_s:.2f} s, resume {result.resume_s:.2f} s")
                print(f"{policy:>8} #{index:<3} {status}", flush=True)
                for note in result.notes[:5]:
                    print(f"{'':>13}{note}", flush=True)
    finally:
        if not keep:
            shutil.rmtree(workdir, ignore_errors=True)
    elapsed = time.perf_counter() - began
    print()
    print(table(results, args.policies))
    print()
    print(f"{len(results)} trials in {elapsed:.0f} s. A SIGKILL of the process leaves the page cache "
          "intact, so 0 lost is expected at every policy; only a machine crash separates them.")
    lost_always = sum(r.lost + r.wrong_offset for r in results if r.policy == "always" and not r.error)
    errors = [r for r in results if r.error]
    if lost_always:
        print(f"FAIL: fsync=always lost {lost_always} acknowledged record(s) "
              f"(replay with --seed {args.seed} --workdir DIR to keep the data dirs)", file=sys.stderr)
        return 1
    if errors:
        print(f"ERROR: {len(errors)} trial(s) could not run; the table does not cover them", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
