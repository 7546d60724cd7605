"""Benchmark: push mode (RESP pub/sub) against redis-server, driven by the same clients.

What it measures (issue 3, "Benchmark"):

1. **PUBLISH throughput.** ``redis-benchmark -P {1,16,64} -c {1,50} -n N PUBLISH ch payload``
   against ``redis-server`` and ``dualmq serve`` started side by side, with 0, 1 and 10 raw
   counting subscribers on ``ch``. The subscribers live in one helper process (this script,
   ``--subscriber-worker``) reading plain sockets; every byte after the SUBSCRIBE confirmation
   must be an exact ``message ch payload`` frame, and each subscriber must see exactly N of them
   (``lost`` counts the shortfall, summed over subscribers and runs; ``extra``/``bad`` would flag
   duplicates or corrupt bytes). N is a multiple of every pipeline depth, so redis-benchmark
   sends exactly N commands. Each row is run 3 times, alternating which server goes first; the
   table shows the median requests/second of each server and the ratio dualmq / redis-server.
2. **Publish -> deliver latency** at 10 000 msg/s with one subscriber: one thread, one clock
   (``time.perf_counter_ns``). A publisher socket sends ``PUBLISH lat <send timestamp>`` on a
   fixed schedule (``select`` with microsecond timeouts, no busy loop); the subscriber socket on
   the same loop stamps each frame on receipt. The first 10 % of messages are warm-up and not
   counted. p50 / p99 are medians over the runs.

Both servers run with persistence off (redis) and the pub/sub output-buffer limits lifted
(``client-output-buffer-limit pubsub 0 0 0`` / ``[resp] pubsub_*_limit = 0``): a benchmark that
outruns its subscribers must not get them disconnected half-way.

The reference run is redis-server itself, measured in the same script, on the same machine, in
alternation with dualmq; the targets from the issue are checked at the end (met / NOT met).

Run::

    .venv/bin/python bench/push_vs_redis.py            # full: 18 rows x 3 runs + latency, < ~10 min
    .venv/bin/python bench/push_vs_redis.py --quick    # 1 run each, N / 4, 1 s of latency
    .venv/bin/python bench/push_vs_redis.py --rows 'P16-c50-*,P64-c50-s10' --no-latency
    .venv/bin/python bench/push_vs_redis.py --dualmq-port 6399   # attach to a broker you started
                                                                 # (e.g. under a profiler)
    .venv/bin/python bench/push_vs_redis.py --latency-only --floor  # latency of redis, dualmq and
                                                                 # the least a Python forwarder does
    .venv/bin/python bench/push_vs_redis.py --driver tasks       # push mode with one task per
                                                                 # connection instead of its event loop
    .venv/bin/python bench/push_vs_redis.py --rows 'P16-c50-s0' --py-spy /tmp/p16.folded
        # samples the broker with py-spy during the throughput rows (pip install py-spy; needs
        # ptrace rights) and prints where its time went; the file is for speedscope/flamegraph.pl

Row names are ``P<pipeline>-c<clients>-s<subscribers>``; ``--rows`` takes comma-separated globs.
The exit status is 1 if any message was lost, duplicated or corrupted or a run failed; missed
performance targets are reported, not failed.
"""

from __future__ import annotations

import argparse
import csv
import fnmatch
import json
import os
import platform
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402
    HOST,
    BenchError,
    install_sigterm_as_exit,
    median,
    percentile,
    start_dualmq,
    start_redis,
    stop_process,
    tool_version,
)
from push_floor import LOOPS, start_floor  # noqa: E402

CHANNEL = b"ch"
PAYLOAD = b"payload"
# What a subscriber must receive, byte for byte (RESP2, as raw sockets speak by default).
MESSAGE_FRAME = b"*3\r\n$7\r\nmessage\r\n$%d\r\n%b\r\n$%d\r\n%b\r\n" % (len(CHANNEL), CHANNEL, len(PAYLOAD), PAYLOAD)
SUBSCRIBE_CMD = b"*2\r\n$9\r\nSUBSCRIBE\r\n$%d\r\n%b\r\n" % (len(CHANNEL), CHANNEL)
SUBSCRIBED_REPLY = b"*3\r\n$9\r\nsubscribe\r\n$%d\r\n%b\r\n:1\r\n" % (len(CHANNEL), CHANNEL)

REDIS_ARGS = ["--save", "", "--appendonly", "no", "--client-output-buffer-limit", "pubsub 0 0 0"]
DUALMQ_CONFIG = "[resp]\npubsub_hard_limit = 0\npubsub_soft_limit = 0\n"

RUNS = 3
PIPELINES = (1, 16, 64)
CLIENTS = (1, 50)
SUBSCRIBERS = (0, 1, 10)
# Requests per run, by (pipeline, clients). redis-server needs about 0.3–1 s a run for these on
# the 2-core dev machine and dualmq several times that; bigger N would push the full script past
# ~10 minutes, which is the budget. Each N is a multiple of its pipeline depth, so
# redis-benchmark sends exactly N commands (it issues whole pipelines while fewer than N went out).
REQUESTS = {
    (1, 1): 20_000,
    (1, 50): 48_000,
    (16, 1): 256_000,
    (16, 50): 320_000,
    (64, 1): 320_000,
    (64, 50): 512_000,
}
QUICK_DIVISOR = 4

LATENCY_RATE = 10_000  # messages per second
LATENCY_SECONDS = 3.0
LATENCY_RUNS = 3
LATENCY_WARMUP_FRACTION = 0.1
LATENCY_CHANNEL = b"lat"

# (row name, ratio dualmq/redis at least) — from the issue.
THROUGHPUT_TARGETS = [("P16-c50-s0", 0.45), ("P16-c50-s1", 0.40), ("P64-c50-s0", 0.75), ("P64-c50-s10", 1.0)]
LATENCY_P50_TARGET = 1.5  # dualmq p50 at most this times redis-server's

# py-spy: samples per second, and how long it may take to write its file once stopped.
PY_SPY_RATE = 500
PY_SPY_STOP_TIMEOUT = 60.0
PY_SPY_TOP = 20

# Bounds on every wait (seconds).
WORKER_READY_TIMEOUT = 15.0
WORKER_IDLE_GRACE = 3.0  # after the publisher finished: give up once nothing arrived for this long
WORKER_RESULT_TIMEOUT = 60.0
BENCHMARK_MIN_RATE = 500  # requests/s below which a redis-benchmark run is considered hung


@dataclass(frozen=True)
class Row:
    pipeline: int
    clients: int
    subscribers: int
    requests: int

    @property
    def name(self) -> str:
        return f"P{self.pipeline}-c{self.clients}-s{self.subscribers}"


@dataclass
class RunResult:
    rps: float  # NaN when the run failed
    lost: int = 0  # messages a subscriber never got (summed over subscribers)
    extra: int = 0  # messages beyond N (duplicates)
    bad: int = 0  # subscribers that saw bytes other than exact message frames
    error: str = ""


@dataclass
class RowResult:
    row: Row
    runs: dict[str, list[RunResult]] = field(default_factory=dict)

    def rps(self, server: str) -> float:
        return median([r.rps for r in self.runs.get(server, [])])

    def lost(self, server: str) -> int:
        return sum(r.lost for r in self.runs.get(server, []))

    def problems(self, server: str) -> int:
        return sum(r.extra + r.bad + (1 if r.error else 0) for r in self.runs.get(server, []))


# -------------------------------------------------------------------------------------------------
# Subscriber worker (a separate process: its reading must not share a GIL with anything)


def subscriber_worker(port: int, count: int, expected: int, deadline_s: float) -> int:
    """Subscribe ``count`` raw sockets to CHANNEL, print READY, count frames, print JSON.

    Stops when every subscriber has ``expected`` messages, or when stdin said DONE (the
    publisher finished) and nothing arrived for WORKER_IDLE_GRACE seconds, or at the deadline.
    """
    hard_deadline = time.monotonic() + deadline_s
    socks: list[socket.socket] = []
    received = [0] * count
    bad = [False] * count
    tails = [b""] * count
    frame = MESSAGE_FRAME
    flen = len(frame)
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            # A big receive buffer lets the server hand over large chunks: fewer wake-ups here.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
            sock.settimeout(10)
            sock.connect((HOST, port))
            sock.sendall(SUBSCRIBE_CMD)
            got = b""
            while len(got) < len(SUBSCRIBED_REPLY):
                chunk = sock.recv(4096)
                if not chunk:
                    raise ConnectionError("closed before the SUBSCRIBE confirmation")
                got += chunk
            if got != SUBSCRIBED_REPLY:
                raise ConnectionError(f"unexpected SUBSCRIBE reply {got[:80]!r}")
            sock.setblocking(False)
            socks.append(sock)
        print("READY", flush=True)
        by_fd = {sock.fileno(): i for i, sock in enumerate(socks)}
        stdin_fd = sys.stdin.fileno()
        done_at: float | None = None
        last_progress = time.monotonic()
        open_fds = list(by_fd)
        while True:
            now = time.monotonic()
            if all(n >= expected for n in received) or now >= hard_deadline:
                break
            if done_at is not None and now - last_progress > WORKER_IDLE_GRACE:
                break
            watch = open_fds + ([stdin_fd] if done_at is None else [])
            readable, _, _ = select.select(watch, [], [], 0.5)
            for fd in readable:
                if fd == stdin_fd:
                    line = sys.stdin.readline()
                    if not line or line.strip() == "DONE":
                        done_at = time.monotonic()
                    continue
                i = by_fd[fd]
                try:
                    chunk = socks[i].recv(4 * 1024 * 1024)
                except BlockingIOError:
                    continue
                except OSError:
                    chunk = b""
                if not chunk:
                    open_fds.remove(fd)
                    continue
                last_progress = time.monotonic()
                data = tails[i] + chunk if tails[i] else chunk
                whole = len(data) // flen
                aligned = whole * flen
                # ``whole`` non-overlapping occurrences inside exactly whole*flen bytes means the
                # bytes are the frame repeated: every message arrived intact and nothing else did.
                if data.count(frame, 0, aligned) != whole:
                    bad[i] = True
                    whole = data.count(frame, 0, aligned)
                received[i] += whole
                tails[i] = data[aligned:]
        for i, tail in enumerate(tails):
            if tail:
                bad[i] = True
        print(json.dumps({"received": received, "bad": bad}), flush=True)
        return 0
    except (OSError, ConnectionError) as exc:
        print(json.dumps({"error": f"{type(exc).__name__}: {exc}"}), flush=True)
        return 1
    finally:
        for sock in socks:
            sock.close()


def _read_line(proc: subprocess.Popen, timeout: float) -> str:
    """One line of the worker's stdout, or '' on timeout / EOF."""
    deadline = time.monotonic() + timeout
    fd = proc.stdout.fileno()
    buf = b""
    while time.monotonic() < deadline:
        readable, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
        if not readable:
            break
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        buf += chunk
        if b"\n" in buf:
            return buf.split(b"\n", 1)[0].decode(errors="replace")
    return buf.decode(errors="replace")


# -------------------------------------------------------------------------------------------------
# One redis-benchmark run


def run_publish(port: int, row: Row) -> RunResult:
    """One redis-benchmark run against ``port`` with ``row.subscribers`` counting subscribers."""
    worker: subprocess.Popen | None = None
    bench_timeout = 20 + row.requests / BENCHMARK_MIN_RATE
    try:
        if row.subscribers:
            worker = subprocess.Popen(
                [sys.executable, __file__, "--subscriber-worker", str(port), str(row.subscribers),
                 str(row.requests), str(bench_timeout + WORKER_RESULT_TIMEOUT)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            )
            line = _read_line(worker, WORKER_READY_TIMEOUT)
            if line != "READY":
                return RunResult(rps=float("nan"), error=f"subscribers not ready: {line[:200]!r}")
        cmd = ["redis-benchmark", "-h", HOST, "-p", str(port), "-n", str(row.requests),
               "-P", str(row.pipeline), "-c", str(row.clients), "-q", "--csv",
               "PUBLISH", CHANNEL.decode(), PAYLOAD.decode()]
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=bench_timeout)
        except subprocess.TimeoutExpired:  # subprocess.run kills the child
            return RunResult(rps=float("nan"), error=f"redis-benchmark timed out after {bench_timeout:.0f}s")
        rps = _parse_rps(done.stdout)
        result = RunResult(rps=rps)
        if rps != rps:
            result.error = f"no rps in redis-benchmark output: {done.stdout[-300:]!r} {done.stderr[-300:]!r}"
        if worker is not None:
            try:
                worker.stdin.write(b"DONE\n")
                worker.stdin.flush()
            except BrokenPipeError:
                pass  # it had every message already, reported and exited: its report is below
            line = _read_line(worker, WORKER_RESULT_TIMEOUT)
            try:
                report = json.loads(line)
            except ValueError:
                report = {"error": f"worker said {line[:200]!r}"}
            if "error" in report:
                result.error = report["error"]
                result.lost = row.requests * row.subscribers
            else:
                for n, was_bad in zip(report["received"], report["bad"]):
                    result.lost += max(0, row.requests - n)
                    result.extra += max(0, n - row.requests)
                    result.bad += int(was_bad)
        return result
    finally:
        if worker is not None:
            try:
                worker.stdin.close()
            except OSError:  # BrokenPipeError: it exited with our DONE still unsent
                pass
            stop_process(worker, grace=2.0)
            for stream in (worker.stdout, worker.stderr):
                if stream is not None:
                    stream.close()


def _parse_rps(stdout: str) -> float:
    for record in csv.reader(stdout.splitlines()):
        if len(record) >= 2 and record[0].upper().startswith("PUBLISH"):
            try:
                return float(record[1])
            except ValueError:
                pass
    return float("nan")


# -------------------------------------------------------------------------------------------------
# Latency


@dataclass
class LatencyResult:
    p50_us: float
    p99_us: float
    sent: int
    received: int
    seconds: float  # how long the paced sending took (3.0 if the publisher kept up)
    error: str = ""


def measure_latency(port: int, rate: int, seconds: float) -> LatencyResult:
    """Publish ``rate`` msg/s for ``seconds`` with one subscriber; latencies on one clock.

    Single-threaded on purpose: publisher and subscriber sockets share one ``select`` loop,
    so no GIL hand-off (5 ms switch interval) pollutes the figures. ``select`` takes
    microsecond timeouts (epoll and poll round up to milliseconds and would send in bursts).
    """
    total = int(rate * seconds)
    interval_ns = 1_000_000_000 // rate
    stamp_len = 20
    publish_head = b"*3\r\n$7\r\nPUBLISH\r\n$%d\r\n%b\r\n$%d\r\n" % (
        len(LATENCY_CHANNEL), LATENCY_CHANNEL, stamp_len)
    frame_head = b"*3\r\n$7\r\nmessage\r\n$%d\r\n%b\r\n$%d\r\n" % (
        len(LATENCY_CHANNEL), LATENCY_CHANNEL, stamp_len)
    flen = len(frame_head) + stamp_len + 2
    subscribed = b"*3\r\n$9\r\nsubscribe\r\n$%d\r\n%b\r\n:1\r\n" % (len(LATENCY_CHANNEL), LATENCY_CHANNEL)
    latencies: list[int] = []
    sub = socket.create_connection((HOST, port), timeout=10)
    pub = socket.create_connection((HOST, port), timeout=10)
    try:
        for sock in (sub, pub):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sub.sendall(b"*2\r\n$9\r\nSUBSCRIBE\r\n$%d\r\n%b\r\n" % (len(LATENCY_CHANNEL), LATENCY_CHANNEL))
        got = b""
        while len(got) < len(subscribed):
            chunk = sub.recv(4096)
            if not chunk:
                return LatencyResult(float("nan"), float("nan"), 0, 0, 0.0, "subscriber closed")
            got += chunk
        if got != subscribed:
            return LatencyResult(float("nan"), float("nan"), 0, 0, 0.0, f"bad SUBSCRIBE reply {got!r}")
        sub.setblocking(False)
        pub.setblocking(False)
        sub_fd, pub_fd = sub.fileno(), pub.fileno()
        clock = time.perf_counter_ns
        sent = received = 0
        tail = b""
        outgoing = bytearray()
        bad = False
        start = clock() + 1_000_000
        next_send = start
        sending_done_at = 0
        hard_deadline = start + int((seconds * 3 + 10) * 1e9)
        drain_deadline = 0
        while True:
            now = clock()
            if now >= hard_deadline:
                break
            if sent < total and now >= next_send:
                outgoing += publish_head + b"%020d\r\n" % clock()
                try:
                    del outgoing[: pub.send(outgoing)]
                except BlockingIOError:  # the server is not reading: keep it for later
                    pass
                sent += 1
                next_send = start + sent * interval_ns
                if sent == total:
                    sending_done_at = clock()
                    drain_deadline = sending_done_at + 2_000_000_000
                # Do not starve the reader when behind schedule: fall through to a zero-wait poll.
            if sent == total and (received >= total or now >= drain_deadline):
                break
            wait = max(0, next_send - clock()) / 1e9 if sent < total else 0.05
            readable, writable, _ = select.select([sub_fd, pub_fd], [pub_fd] if outgoing else [], [], wait)
            if writable:
                try:
                    del outgoing[: pub.send(outgoing)]
                except BlockingIOError:
                    pass
            for fd in readable:
                if fd == pub_fd:
                    if not pub.recv(1 << 20):  # the ":1\r\n" replies; nothing to check
                        return LatencyResult(float("nan"), float("nan"), sent, received, 0.0, "publisher closed")
                    continue
                chunk = sub.recv(1 << 20)
                arrived = clock()
                if not chunk:
                    return LatencyResult(float("nan"), float("nan"), sent, received, 0.0, "subscriber closed")
                data = tail + chunk if tail else chunk
                whole = len(data) // flen
                for k in range(whole):
                    base = k * flen
                    if data[base : base + len(frame_head)] != frame_head:
                        bad = True
                        continue
                    stamp = int(data[base + len(frame_head) : base + len(frame_head) + stamp_len])
                    latencies.append(arrived - stamp)
                received += whole
                tail = data[whole * flen :]
        paced = (sending_done_at - start) / 1e9 if sending_done_at else float("nan")
        warm = int(len(latencies) * LATENCY_WARMUP_FRACTION)
        measured = sorted(latencies[warm:])
        return LatencyResult(
            p50_us=percentile(measured, 0.50) / 1000,
            p99_us=percentile(measured, 0.99) / 1000,
            sent=sent,
            received=received,
            seconds=paced,
            error="corrupt frames" if bad or tail else "",
        )
    finally:
        sub.close()
        pub.close()


# -------------------------------------------------------------------------------------------------
# Profiling (--py-spy)


def start_py_spy(pid: int, output: Path) -> subprocess.Popen:
    """Sample process ``pid`` with py-spy (collapsed stacks into ``output``) until stopped."""
    exe = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(exe).exists() and shutil.which(exe) is None:
        raise BenchError("py-spy not found (pip install py-spy)")
    proc = subprocess.Popen([exe, "record", "--pid", str(pid), "--rate", str(PY_SPY_RATE), "--format", "raw",
                             "--output", str(output), "--nonblocking"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    time.sleep(1.0)  # let it attach before the load starts
    if proc.poll() is not None:
        raise BenchError(f"py-spy exited: {proc.stdout.read().decode(errors='replace')[-300:]}")
    return proc


def stop_py_spy(proc: subprocess.Popen) -> None:
    """Stop sampling (SIGINT makes py-spy write its file), bounded in time."""
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=PY_SPY_STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        stop_process(proc)
    if proc.stdout is not None:
        proc.stdout.close()


def print_profile(folded: Path, top: int = PY_SPY_TOP) -> None:
    """The functions the sampled process spent its time in: own time and time below them."""
    own: Counter[str] = Counter()
    below: Counter[str] = Counter()
    total = 0
    for line in folded.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        samples = int(count)
        total += samples
        # "function (path/file.py:line)" -> "function (file.py)"; the first frame is the thread.
        names = [frame.split(" (")[0] + " (" + frame.split(" (")[1].split(":")[0].rsplit("/", 1)[-1] + ")"
                 if " (" in frame else frame for frame in stack.split(";")[1:]]
        if not names:
            continue
        own[names[-1]] += samples
        for name in set(names):
            below[name] += samples
    if not total:
        print(f"\npy-spy: no samples in {folded}")
        return
    print(f"\npy-spy profile of the broker during the throughput rows ({total} samples at {PY_SPY_RATE}/s; "
          f"{folded}); own time, and time in and below the function:")
    for name, samples in own.most_common(top):
        print(f"  {100 * samples / total:5.1f}% own  {100 * below[name] / total:5.1f}% total  {name}")


# -------------------------------------------------------------------------------------------------
# Driver


def build_rows(quick: bool, patterns: list[str] | None) -> list[Row]:
    rows = []
    for pipeline in PIPELINES:
        for clients in CLIENTS:
            for subscribers in SUBSCRIBERS:
                n = REQUESTS[(pipeline, clients)]
                if quick:
                    n = max(pipeline, (n // QUICK_DIVISOR) // pipeline * pipeline)
                row = Row(pipeline, clients, subscribers, n)
                if patterns is None or any(fnmatch.fnmatchcase(row.name, p) for p in patterns):
                    rows.append(row)
    return rows


def _fmt_rps(value: float) -> str:
    return "failed" if value != value else f"{value:,.0f}"


def _fmt_ratio(a: float, b: float) -> str:
    return "-" if a != a or b != b or b == 0 else f"{a / b:.2f}x"


def print_table(results: list[RowResult], servers: list[str], runs: int) -> None:
    redis, dualmq = servers
    print()
    print(f"PUBLISH throughput, requests/s (median of {runs} run{'s' if runs > 1 else ''}); "
          "lost = messages missing at the subscribers, all runs and subscribers summed")
    header = (f"{'row':<12} {'N':>8} {'redis-server':>13} {'dualmq':>10} {'ratio':>7}  "
              f"{'lost r/d':>11}  {'runs redis | dualmq':<40}")
    print(header)
    print("-" * len(header))
    for res in results:
        row = res.row
        r, d = res.rps(redis), res.rps(dualmq)
        lost = f"{res.lost(redis)}/{res.lost(dualmq)}" if row.subscribers else "-"
        spread = " ".join(_fmt_rps(x.rps) for x in res.runs.get(redis, [])) + " | " + " ".join(
            _fmt_rps(x.rps) for x in res.runs.get(dualmq, []))
        flags = []
        for server in servers:
            if res.problems(server):
                errors = {x.error for x in res.runs.get(server, []) if x.error}
                flags.append(f"{server}: {res.problems(server)} problem(s) {sorted(errors)}")
        print(f"{row.name:<12} {row.requests:>8} {_fmt_rps(r):>13} {_fmt_rps(d):>10} {_fmt_ratio(d, r):>7}  "
              f"{lost:>11}  {spread}" + (("  !! " + "; ".join(flags)) if flags else ""))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="1 run per row, N / 4, 1 s of latency")
    parser.add_argument("--runs", type=int, help=f"runs per row (default {RUNS}, 1 with --quick)")
    parser.add_argument("--rows", help="comma-separated globs over row names P<p>-c<c>-s<subs>, "
                                       "e.g. 'P16-c50-*,P64-c50-s10'")
    parser.add_argument("--no-latency", action="store_true", help="skip the latency measurement")
    parser.add_argument("--latency-only", action="store_true", help="only the latency measurement")
    parser.add_argument("--dualmq-port", type=int,
                        help="use a dualmq already listening on 127.0.0.1:PORT (its config is yours: "
                             "lift the pubsub limits) instead of starting one")
    parser.add_argument("--driver", choices=("auto", "epoll", "tasks"),
                        help="push mode's connection driver for the dualmq this script starts "
                             "(sets DUALMQ_PUSH_DRIVER; default: the broker's choice)")
    parser.add_argument("--floor", action="store_true",
                        help="also measure the latency of the least a Python forwarder does "
                             "(bench/push_floor.py, blocking and trio loops): the floor under dualmq's")
    parser.add_argument("--py-spy", type=Path, metavar="FILE",
                        help="sample the dualmq this script starts with py-spy during the throughput "
                             "rows; write collapsed stacks to FILE and print the top functions")
    parser.add_argument("--subscriber-worker", nargs=4, metavar=("PORT", "COUNT", "EXPECTED", "DEADLINE"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.subscriber_worker:
        port, count, expected, deadline = args.subscriber_worker
        return subscriber_worker(int(port), int(count), int(expected), float(deadline))

    if shutil.which("redis-benchmark") is None:
        print("redis-benchmark not found (Debian package redis-tools)", file=sys.stderr)
        return 2
    runs = args.runs or (1 if args.quick else RUNS)
    rows = [] if args.latency_only else build_rows(args.quick, args.rows.split(",") if args.rows else None)
    if args.rows and not rows:
        print(f"--rows {args.rows!r} matches no row", file=sys.stderr)
        return 2
    latency_runs = 0 if args.no_latency else (1 if args.quick else LATENCY_RUNS)
    latency_seconds = 1.0 if args.quick else LATENCY_SECONDS

    if args.py_spy and args.dualmq_port:
        print("--py-spy samples the dualmq this script starts; not with --dualmq-port", file=sys.stderr)
        return 2
    if args.driver:
        os.environ["DUALMQ_PUSH_DRIVER"] = args.driver  # inherited by the broker process

    install_sigterm_as_exit()
    workdir = Path(tempfile.mkdtemp(prefix="dualmq-bench-push-"))
    redis_proc = dualmq_proc = profiler = None
    floor_procs: list[subprocess.Popen] = []
    started = time.monotonic()
    failed = False
    try:
        redis_proc, redis_port = start_redis(workdir, REDIS_ARGS)
        if args.dualmq_port:
            dualmq_port = args.dualmq_port
        else:
            dualmq_proc, dualmq_port = start_dualmq(workdir, DUALMQ_CONFIG)
        ports = {"redis-server": redis_port, "dualmq": dualmq_port}
        servers = list(ports)
        latency_servers = list(servers)
        if args.floor and latency_runs:
            for loop in LOOPS:
                proc, ports[f"py-floor-{loop}"] = start_floor(loop)
                floor_procs.append(proc)
                latency_servers.append(f"py-floor-{loop}")

        print("push mode vs redis-server — PUBLISH via redis-benchmark, raw counting subscribers")
        print(f"  {tool_version(['redis-server', '--version'])}")
        print(f"  {tool_version(['redis-benchmark', '--version'])}")
        print(f"  python {platform.python_version()} ({sys.executable}), {os.cpu_count()} CPUs, "
              f"{platform.platform()}")
        print(f"  redis-server {' '.join(REDIS_ARGS[:4])} --client-output-buffer-limit 'pubsub 0 0 0' "
              f"(port {redis_port}); dualmq serve [resp] pubsub_hard_limit = 0, pubsub_soft_limit = 0 "
              f"(port {dualmq_port}{', attached' if args.dualmq_port else ''})")
        print(f"  {runs} run(s) per row, servers alternate going first; payload {PAYLOAD!r} on {CHANNEL!r}"
              + (f"; DUALMQ_PUSH_DRIVER={args.driver}" if args.driver else ""))
        print(flush=True)

        if args.py_spy and rows:
            profiler = start_py_spy(dualmq_proc.pid, args.py_spy)

        results: list[RowResult] = []
        for row in rows:
            res = RowResult(row)
            for run in range(runs):
                order = servers if run % 2 == 0 else servers[::-1]
                for server in order:
                    outcome = run_publish(ports[server], row)
                    res.runs.setdefault(server, []).append(outcome)
            results.append(res)
            r, d = res.rps("redis-server"), res.rps("dualmq")
            print(f"  {row.name:<12} N={row.requests:<7} redis {_fmt_rps(r):>10}  dualmq {_fmt_rps(d):>10}  "
                  f"{_fmt_ratio(d, r):>6}  lost {res.lost('redis-server')}/{res.lost('dualmq')}  "
                  f"[{time.monotonic() - started:.0f}s]", flush=True)
            for server in servers:
                if res.problems(server) or res.lost(server):
                    failed = True
        if profiler is not None:
            stop_py_spy(profiler)
            profiler = None

        latency: dict[str, list[LatencyResult]] = {}
        for run in range(latency_runs):
            order = latency_servers if run % 2 == 0 else latency_servers[::-1]
            for server in order:
                outcome = measure_latency(ports[server], LATENCY_RATE, latency_seconds)
                latency.setdefault(server, []).append(outcome)
                if outcome.error or outcome.received != outcome.sent:
                    failed = True

        if results:
            print_table(results, servers, runs)
        if args.py_spy and rows:
            print_profile(args.py_spy)
        lat_p50: dict[str, float] = {}
        if latency:
            print()
            print(f"publish -> deliver latency, {LATENCY_RATE:,} msg/s for {latency_seconds:g} s, one subscriber "
                  f"(median of {latency_runs} run(s); first {LATENCY_WARMUP_FRACTION:.0%} discarded)")
            print(f"{'server':<17} {'p50 us':>8} {'p99 us':>8} {'sent':>7} {'lost':>6}  runs p50/p99 us")
            for server in latency_servers:
                outs = latency[server]
                p50 = median([o.p50_us for o in outs])
                p99 = median([o.p99_us for o in outs])
                lat_p50[server] = p50
                lost = sum(o.sent - o.received for o in outs)
                detail = " ".join(f"{o.p50_us:.0f}/{o.p99_us:.0f}" for o in outs)
                errors = sorted({o.error for o in outs if o.error})
                behind = [o.seconds for o in outs if o.seconds == o.seconds and o.seconds > latency_seconds * 1.05]
                note = (f"  !! {errors}" if errors else "") + (
                    f"  (publisher fell behind: {max(behind):.2f} s)" if behind else "")
                print(f"{server:<17} {p50:>8.0f} {p99:>8.0f} {sum(o.sent for o in outs):>7} {lost:>6}  {detail}{note}")
                if server != "redis-server":
                    r50 = median([o.p50_us for o in latency['redis-server']])
                    r99 = median([o.p99_us for o in latency['redis-server']])
                    print(f"{'  / redis-server':<17} {_fmt_ratio(p50, r50):>8} {_fmt_ratio(p99, r99):>8}")

        print()
        print("targets (dualmq / redis-server):")
        by_name = {res.row.name: res for res in results}
        for name, minimum in THROUGHPUT_TARGETS:
            res = by_name.get(name)
            if res is None:
                print(f"  {name:<12} >= {minimum:.2f}x   not measured")
                continue
            r, d = res.rps("redis-server"), res.rps("dualmq")
            ratio = d / r if r == r and d == d and r else float("nan")
            verdict = "met" if ratio >= minimum else "NOT met"
            print(f"  {name:<12} >= {minimum:.2f}x   {ratio:.2f}x   {verdict}")
        if lat_p50:
            ratio = lat_p50["dualmq"] / lat_p50["redis-server"]
            verdict = "met" if ratio <= LATENCY_P50_TARGET else "NOT met"
            print(f"  {'latency p50':<12} <= {LATENCY_P50_TARGET:.2f}x   {ratio:.2f}x   {verdict}")
        else:
            print(f"  {'latency p50':<12} <= {LATENCY_P50_TARGET:.2f}x   not measured")
        print(f"\ntotal {time.monotonic() - started:.0f} s"
              + ("; DELIVERY PROBLEMS above (lost / duplicated / corrupt / failed runs)" if failed else ""))
        return 1 if failed else 0
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        if profiler is not None:
            stop_process(profiler)
        for proc in floor_procs:
            stop_process(proc)
        stop_process(dualmq_proc)
        stop_process(redis_proc)
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
