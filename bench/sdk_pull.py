"""Pull-mode SDK throughput against kafka-python and aiokafka, same dualmq broker.

    .venv/bin/python bench/sdk_pull.py [--records 400000] [--runs 3]

What it measures: records/s for one producer process sending ``--records`` 100-byte values
(null keys, acks=all, linger 5 ms, 64 KiB batches, no compression) and flushing; and for one
consumer process reading them all from offset 0 (manual assignment, no group). Each client runs
in its own fresh process (``--role``), against one ``dualmq serve`` started here. Every
measurement is repeated ``--runs`` times; the table prints medians and each client's ratio to
the dualmq SDK (the reference run, measured in the same script on the same machine).

Targets from the SDK issue: SDK producer >= 300,000 records/s, SDK consumer >= 500,000 records/s,
each ahead of kafka-python and aiokafka. aiokafka is in the ``bench`` extra: when it is missing,
this script installs it into the running interpreter's environment first
(``python -m pip install -e '.[bench]'``, i.e. ``.venv`` when run as ``.venv/bin/python``), so
the aiokafka column is always there; ``--no-install`` skips that (its rows are then left out,
and the script says how to add them).

Each run also prints the machine's speed at that moment (``cpu_speed_ms`` in ``_common``: one
fixed pure-Python loop; lower is faster). On the shared 2-core VM it swings by up to 2x within
seconds, which moves every absolute figure; the ratios compare clients run back to back.
"""

from __future__ import annotations

import argparse
import importlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

VALUE = b"x" * 100
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._common import cpu_speed_ms  # noqa: E402
from dualmq.process import BrokerProcess  # noqa: E402


# --- roles (each runs in its own process) ------------------------------------------------------------

def sdk_produce(address: str, topic: str, count: int) -> float:
    import trio

    from dualmq.pull import Producer

    async def main() -> float:
        async with Producer(address, linger_ms=5, batch_bytes=64 * 1024) as producer:
            await producer.partitions_for(topic)
            start = time.perf_counter()
            enqueue = producer.enqueue
            for _ in range(count):
                await enqueue(topic, VALUE)
            await producer.flush()
            return time.perf_counter() - start

    return trio.run(main)


def sdk_consume(address: str, topic: str, count: int) -> float:
    import trio

    from dualmq.pull import Consumer

    async def main() -> float:
        async with Consumer(address, auto_offset_reset="earliest") as consumer:
            consumer.assign([(topic, 0)])
            start = time.perf_counter()
            seen = 0
            async for _record in consumer:
                seen += 1
                if seen == count:
                    break
            return time.perf_counter() - start

    return trio.run(main)


def kafka_python_produce(address: str, topic: str, count: int) -> float:
    import warnings

    warnings.simplefilter("ignore", DeprecationWarning)
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=address, acks="all", linger_ms=5, batch_size=64 * 1024,
                             enable_idempotence=False)
    producer.partitions_for(topic)
    start = time.perf_counter()
    for _ in range(count):
        producer.send(topic, VALUE)
    producer.flush()
    elapsed = time.perf_counter() - start
    producer.close()
    return elapsed


def kafka_python_consume(address: str, topic: str, count: int) -> float:
    import warnings

    warnings.simplefilter("ignore", DeprecationWarning)
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=address, auto_offset_reset="earliest", enable_auto_commit=False)
    consumer.assign([TopicPartition(topic, 0)])
    start = time.perf_counter()
    seen = 0
    for _message in consumer:
        seen += 1
        if seen == count:
            break
    elapsed = time.perf_counter() - start
    consumer.close()
    return elapsed


def aiokafka_produce(address: str, topic: str, count: int) -> float:
    import asyncio

    from aiokafka import AIOKafkaProducer

    async def main() -> float:
        producer = AIOKafkaProducer(bootstrap_servers=address, acks="all", linger_ms=5, max_batch_size=64 * 1024)
        await producer.start()
        try:
            await producer.partitions_for(topic)
            start = time.perf_counter()
            for _ in range(count):
                await producer.send(topic, VALUE)
            await producer.flush()
            return time.perf_counter() - start
        finally:
            await producer.stop()

    return asyncio.run(main())


def aiokafka_consume(address: str, topic: str, count: int) -> float:
    import asyncio

    from aiokafka import AIOKafkaConsumer, TopicPartition

    async def main() -> float:
        consumer = AIOKafkaConsumer(bootstrap_servers=address, auto_offset_reset="earliest",
                                    enable_auto_commit=False)
        await consumer.start()
        try:
            consumer.assign([TopicPartition(topic, 0)])
            start = time.perf_counter()
            seen = 0
            async for _message in consumer:
                seen += 1
                if seen == count:
                    break
            return time.perf_counter() - start
        finally:
            await consumer.stop()

    return asyncio.run(main())


ROLES = {
    "sdk-produce": sdk_produce, "sdk-consume": sdk_consume,
    "kafka-python-produce": kafka_python_produce, "kafka-python-consume": kafka_python_consume,
    "aiokafka-produce": aiokafka_produce, "aiokafka-consume": aiokafka_consume,
}


# --- driver ---------------------------------------------------------------------------------------------

def run_role(role: str, address: str, topic: str, count: int) -> float:
    """Run one measurement in a fresh process; returns records/s."""
    result = subprocess.run([sys.executable, __file__, "--role", role, "--address", address, "--topic", topic,
                             "--records", str(count)], capture_output=True, text=True, timeout=900,
                            cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    if result.returncode != 0:
        raise RuntimeError(f"{role} failed:\n{result.stderr[-3000:]}")
    elapsed = float(result.stdout.strip().splitlines()[-1])
    return count / elapsed


def available(module: str) -> bool:
    try:
        __import__(module)
    except ImportError:
        return False
    return True


INSTALL_BENCH_EXTRA = [sys.executable, "-m", "pip", "install", "--quiet", "-e", f"{ROOT}[bench]"]


def ensure_bench_extra(install: bool) -> bool:
    """Whether aiokafka can be imported, installing the ``bench`` extra first if allowed."""
    if available("aiokafka"):
        return True
    how = " ".join(INSTALL_BENCH_EXTRA)
    if not install:
        print(f"aiokafka is not installed: its rows are left out (add them with: {how})", flush=True)
        return False
    print(f"aiokafka (the bench extra) is not installed; installing it: {how}", flush=True)
    if subprocess.call(INSTALL_BENCH_EXTRA) != 0:
        print("installing aiokafka failed: its rows are left out", flush=True)
        return False
    importlib.invalidate_caches()
    return available("aiokafka")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=400_000, help="records produced, then consumed, per run")
    parser.add_argument("--runs", type=int, default=3, help="runs per measurement (medians are printed)")
    parser.add_argument("--no-install", action="store_true", help="do not install aiokafka if it is missing")
    parser.add_argument("--role", choices=sorted(ROLES), help=argparse.SUPPRESS)
    parser.add_argument("--address", help=argparse.SUPPRESS)
    parser.add_argument("--topic", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.role:  # one measurement, in this fresh process; the SDK logs nothing unless configured
        print(ROLES[args.role](args.address, args.topic, args.records))
        return

    clients = ["sdk", "kafka-python"] + (["aiokafka"] if ensure_bench_extra(not args.no_install) else [])
    with tempfile.TemporaryDirectory(prefix="dualmq-bench-") as tmp:
        broker = BrokerProcess(Path(tmp) / "data", log_level="warning").start(timeout=30)
        address = broker.kafka_address
        try:
            results: dict[tuple[str, str], list[float]] = {}
            speeds = []
            for run in range(args.runs):
                speeds.append(cpu_speed_ms())
                print(f"run {run + 1}: machine speed {speeds[-1]:.0f} ms per loop", flush=True)
                for client in clients:
                    topic = f"bench-{client}-{run}"
                    results.setdefault((client, "produce"), []).append(
                        run_role(f"{client}-produce", address, topic, args.records))
                    # Every consumer reads the same kind of log: the one its own producer wrote.
                    results.setdefault((client, "consume"), []).append(
                        run_role(f"{client}-consume", address, topic, args.records))
                    print(f"run {run + 1}: {client}: produce {results[(client, 'produce')][-1]:,.0f}/s, "
                          f"consume {results[(client, 'consume')][-1]:,.0f}/s", flush=True)
        finally:
            broker.stop(timeout=30)
    print(f"\n{args.records:,} records of {len(VALUE)} bytes, {args.runs} runs, medians "
          f"(fsync policy: broker default); machine speed per run (ms, lower is faster): "
          f"{', '.join(f'{s:.0f}' for s in speeds)}")
    print(f"{'client':<14}{'produce rec/s':>16}{'ratio':>8}{'consume rec/s':>16}{'ratio':>8}")
    reference = {kind: statistics.median(results[("sdk", kind)]) for kind in ("produce", "consume")}
    for client in clients:
        produce = statistics.median(results[(client, "produce")])
        consume = statistics.median(results[(client, "consume")])
        print(f"{client:<14}{produce:>16,.0f}{produce / reference['produce']:>8.2f}"
              f"{consume:>16,.0f}{consume / reference['consume']:>8.2f}")
    print(f"targets: SDK produce >= 300,000/s ({'met' if reference['produce'] >= 300_000 else 'NOT met'}), "
          f"SDK consume >= 500,000/s ({'met' if reference['consume'] >= 500_000 else 'NOT met'})")


if __name__ == "__main__":
    main()
