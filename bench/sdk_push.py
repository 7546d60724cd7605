"""Benchmark: the push SDK's subscriber against redis-py (+ hiredis) on the same dualmq broker.

What it measures (issue 6, push half): how many 100-byte messages per second one subscriber
process decodes and hands to application code. Two subscribers, each in its own process so
neither shares the GIL with anything:

    sdk       ``async with dualmq.push.subscribe(...) as sub: async for m in sub``
    redis-py  ``redis.Redis(...).pubsub()`` + ``listen()``, hiredis parser (the reference)

A publisher (a raw socket in this process, 64-command pipelined writes, replies read by a
second thread) sends N ``PUBLISH bench <100 bytes>`` to ``dualmq serve``, whose pub/sub output
buffer limits are lifted (0 = off, as in Redis) so a subscriber that falls behind is not cut
off. Two modes, both reported:

    drain   the subscriber is subscribed but told to start only after every PUBLISH was
            answered: the broker holds all N messages for it, so the figure is the
            subscriber's own decode rate, not the broker's fan-out rate. (Until then the SDK
            child blocks its whole event loop, so its background reader cannot read ahead.)
    live    the clock starts, then the publisher starts: end-to-end rate, usually bounded by
            the broker (one Python process) rather than by either client.

Three runs per (client, mode), medians, and the ratio SDK / redis-py. Target: ratio >= 1 in
drain mode.

Run:  .venv/bin/python bench/sdk_push.py [--messages N] [--runs R]
"""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import HOST, REPO, BenchError, install_sigterm_as_exit, median, start_dualmq, stop_process  # noqa: E402

CHANNEL = b"bench"
PAYLOAD = b"x" * 100
PIPELINE = 64
CHILD_TIMEOUT = 300.0
CONFIG = "[resp]\npubsub_hard_limit = 0\npubsub_soft_limit = 0\n"


# --- subscriber children --------------------------------------------------------------------


def child_sdk(port: int, count: int) -> dict:
    import trio

    from dualmq.push import subscribe

    async def main() -> dict:
        async with subscribe((HOST, port), CHANNEL, timeout=10, health_check_interval=None) as sub:
            print("ready", flush=True)
            # Blocking the whole event loop on purpose: the SDK's background reader must not
            # read ahead before the clock starts (redis-py cannot either).
            sys.stdin.readline()
            started = time.perf_counter()
            received = 0
            with trio.fail_after(CHILD_TIMEOUT):
                async for _message in sub:
                    received += 1
                    if received == count:
                        break
            return {"seconds": time.perf_counter() - started, "received": received}

    return trio.run(main)


def child_redis_py(port: int, count: int) -> dict:
    import redis

    client = redis.Redis(host=HOST, port=port, socket_timeout=CHILD_TIMEOUT)
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(CHANNEL)
    while pubsub.get_message(timeout=5.0) is None and not pubsub.subscribed:  # wait for the confirmation
        pass
    parser = type(pubsub.connection._parser).__name__
    print("ready", flush=True)
    sys.stdin.readline()
    started = time.perf_counter()
    received = 0
    for message in pubsub.listen():
        if message["type"] == "message":
            received += 1
            if received == count:
                break
    seconds = time.perf_counter() - started
    pubsub.close()
    client.close()
    return {"seconds": seconds, "received": received, "parser": parser}


# --- publisher ------------------------------------------------------------------------------


def publish(port: int, count: int) -> float:
    """Send ``count`` pipelined PUBLISH; return once every reply arrived. Returns seconds."""
    command = b"*3\r\n$7\r\nPUBLISH\r\n$%d\r\n%b\r\n$%d\r\n%b\r\n" % (len(CHANNEL), CHANNEL, len(PAYLOAD), PAYLOAD)
    chunk = command * PIPELINE
    sock = socket.create_connection((HOST, port), timeout=CHILD_TIMEOUT)
    failure: list[BaseException] = []

    def read_replies() -> None:
        # Every reply is one line (":1\r\n"): count line ends.
        seen = 0
        try:
            while seen < count:
                data = sock.recv(1 << 16)
                if not data:
                    raise BenchError("broker closed the publisher connection")
                seen += data.count(b"\n")
        except BaseException as exc:  # reported by the main thread
            failure.append(exc)

    started = time.perf_counter()
    reader = threading.Thread(target=read_replies, daemon=True)
    reader.start()
    sent = 0
    while sent < count:
        n = min(PIPELINE, count - sent)
        sock.sendall(chunk if n == PIPELINE else command * n)
        sent += n
    reader.join(CHILD_TIMEOUT)
    sock.close()
    if failure or reader.is_alive():
        raise BenchError(f"publisher failed: {failure or 'timed out'}")
    return time.perf_counter() - started


def one_run(client: str, port: int, count: int, mode: str) -> dict:
    proc = subprocess.Popen(
        [sys.executable, __file__, "--child", client, "--port", str(port), "--messages", str(count)],
        cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    try:
        line = proc.stdout.readline()
        if line.strip() != "ready":
            raise BenchError(f"{client} subscriber did not start: {line!r}")
        if mode == "live":
            proc.stdin.write("go\n")
            proc.stdin.flush()
            publish(port, count)
        else:
            publish(port, count)
            proc.stdin.write("go\n")
            proc.stdin.flush()
        out, _ = proc.communicate(timeout=CHILD_TIMEOUT)
        result = json.loads(out.strip().splitlines()[-1])
        if result["received"] != count:
            raise BenchError(f"{client} received {result['received']} of {count}")
        result["rate"] = count / result["seconds"]
        return result
    finally:
        stop_process(proc)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--child", choices=["sdk", "redis-py"])
    parser.add_argument("--port", type=int)
    args = parser.parse_args()
    if args.child:
        run = child_sdk if args.child == "sdk" else child_redis_py
        print(json.dumps(run(args.port, args.messages)), flush=True)
        return

    install_sigterm_as_exit()
    import hiredis
    import redis

    print(f"push subscriber benchmark: {args.messages} x {len(PAYLOAD)}-byte messages, {args.runs} runs, "
          f"pipeline {PIPELINE}; redis-py {redis.__version__}, hiredis {hiredis.__version__}")
    rates: dict[tuple[str, str], list[float]] = {}
    parser_name = "?"
    with tempfile.TemporaryDirectory(prefix="dualmq-bench-sdk-push-") as tmp:
        broker, port = start_dualmq(Path(tmp), CONFIG)
        try:
            for mode in ("drain", "live"):
                for run in range(args.runs):
                    for client in ("sdk", "redis-py"):  # interleaved: drift hits both alike
                        result = one_run(client, port, args.messages, mode)
                        parser_name = result.get("parser", parser_name)
                        rates.setdefault((client, mode), []).append(result["rate"])
                        print(f"  {mode:5} run {run + 1}  {client:8}  {result['rate']:>10,.0f} msg/s", flush=True)
        finally:
            stop_process(broker)
    print(f"\nredis-py parser: {parser_name}")
    print(f"{'mode':6} {'SDK msg/s':>12} {'redis-py msg/s':>15} {'ratio':>7}")
    for mode in ("drain", "live"):
        sdk, ref = median(rates[("sdk", mode)]), median(rates[("redis-py", mode)])
        print(f"{mode:6} {sdk:>12,.0f} {ref:>15,.0f} {sdk / ref:>7.2f}")


if __name__ == "__main__":
    main()
