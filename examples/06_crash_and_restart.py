"""06 - Crash and restart: what survives a SIGKILL of the broker, in each mode.

What it shows:
    The broker runs as a separate process (``python -m dualmq serve``) and is killed with
    SIGKILL mid-stream - no flush, no goodbye, like a crash - then restarted on the same data
    directory and ports. Pull mode with ``fsync=always`` writes every batch to disk *before*
    acknowledging it, so every acknowledged record is there after the restart. Push mode keeps
    nothing anywhere: what was in flight is gone, publishes during the outage fail, and a
    reconnecting subscriber is told about the hole (a Gap) but can never fill it. Finally,
    ``fsync=never``: acknowledged means "handed to the operating system", which survives a
    process crash but not a power cut or kernel crash.

How to run it (from the repository, once make run or make install has created .venv):
    .venv/bin/python examples/06_crash_and_restart.py

What you should see:
    "fsync=always: N acknowledged before the kill, N found after restart, 0 lost"; push: a
    Gap, publishes that failed while the broker was down, and 0 messages recovered after the
    restart; "fsync=never: ... 0 lost" with the explanation of the power-cut window.
"""

import tempfile
from pathlib import Path

import trio

from dualmq.logging import configure_logging
from dualmq.errors import DualmqError
from dualmq.process import BrokerProcess
from dualmq.pull import Admin, Consumer, Producer
from dualmq.push import Backoff, Gap, Publisher, subscribe


def broker_process(data_dir: Path, fsync: str) -> BrokerProcess:
    """``dualmq serve`` as a child process that we can kill and start again.

    ``dualmq.process`` starts it on free ports and waits for its ready file; after a kill,
    ``start_async()`` brings it back on the same data directory and the same ports, so the
    clients find it where they left it.
    """
    return BrokerProcess(data_dir, "--fsync", fsync, log_level="warning")


async def produce_until_killed(broker: BrokerProcess, acked: list, run_for: float) -> None:
    """Send records one by one (acks="all"); after ``run_for`` seconds, kill the broker."""
    with trio.CancelScope() as everything:
        async with Producer(broker.kafka_address, acks="all", linger_ms=0, delivery_timeout_ms=3000,
                            request_timeout_ms=1000) as producer:
            async def sender():
                for i in range(1_000_000):
                    await producer.send("payments", f"payment-{i}".encode())
                    acked.append(f"payment-{i}".encode())  # only after the broker said "stored"
            async with trio.open_nursery() as nursery:
                nursery.start_soon(sender)
                await trio.sleep(run_for)
                broker.kill()
                # The send in flight at the kill stays unacknowledged; cancelling the whole
                # producer (not just the sender) also skips its final flush of that record.
                everything.cancel()


async def read_all(kafka: str) -> set:
    async with Admin(kafka) as admin:
        (topic,) = await admin.describe_topics("payments")
    end = topic.partitions[0].log_end_offset
    found = set()
    async with Consumer(kafka, auto_offset_reset="earliest") as consumer:
        consumer.assign([("payments", 0)])
        with trio.fail_after(15):
            async for record in consumer:
                found.add(record.value)
                if record.offset + 1 >= end:
                    break
    return found


async def pull_crash(workdir: Path, fsync: str) -> int:
    broker = broker_process(workdir / f"data-{fsync}", fsync)
    await broker.start_async()
    try:
        acked: list = []
        await produce_until_killed(broker, acked, run_for=0.5)
        await broker.start_async()  # same data directory: recovery scans the log's tail
        found = await read_all(broker.kafka_address)
    finally:
        broker.stop()
    lost = len([value for value in acked if value not in found])
    extra = len(found) - (len(acked) - lost)  # the send in flight may have been stored, unacknowledged
    print(f"fsync={fsync}: {len(acked)} acknowledged before the kill, {len(found)} found after restart, {lost} lost"
          + (f" ({extra} stored but never acknowledged: its reply died with the broker)" if extra else ""))
    print(f"RESULT fsync={fsync} acked={len(acked)} found={len(found)} lost={lost}")
    return lost


async def push_crash(workdir: Path) -> None:
    broker = broker_process(workdir / "data-push", "always")
    await broker.start_async()
    sent = failed = 0
    received, gaps = [], []
    try:
        async with subscribe(broker.resp_address, "alerts", reconnect=True,
                             backoff=Backoff(initial=0.05, maximum=0.2, give_up_after=10)) as sub, \
                Publisher(broker.resp_address, timeout=1) as publisher:
            async def listen():
                async for event in sub:
                    (gaps if isinstance(event, Gap) else received).append(event)
            async with trio.open_nursery() as nursery:
                nursery.start_soon(listen)
                async def publish_for(seconds):
                    nonlocal sent, failed
                    with trio.move_on_after(seconds):
                        while True:
                            try:
                                await publisher.publish("alerts", f"alert-{sent + failed}")
                                sent += 1
                            except DualmqError:
                                failed += 1  # broker down: this message goes nowhere
                            await trio.sleep(0.005)
                await publish_for(0.4)
                before_kill = len(received)
                broker.kill()
                await publish_for(0.3)  # the broker is down
                await broker.start_async()
                with trio.fail_after(10):
                    while not gaps:
                        await trio.sleep(0.02)
                after_restart_before_new = len(received) - before_kill
                await trio.sleep(0.3)
                nursery.cancel_scope.cancel()
    finally:
        broker.stop()
    gap = gaps[0]
    print(f"push: {sent} published OK before the kill, subscriber had {before_kill}; "
          f"{failed} publishes failed while the broker was down")
    print(f"push: subscriber got a Gap of {gap.duration:.2f} s ({gap.reason}); messages recovered after the "
          f"restart: {after_restart_before_new}")
    print(f"RESULT push_failed_during_outage={failed} push_gap={len(gaps)} push_recovered={after_restart_before_new}")


async def main() -> None:
    configure_logging("console", "warning")  # warnings and errors of the broker and the SDK, on stderr, for a human
    with tempfile.TemporaryDirectory(prefix="dualmq-lesson-06-") as tmp:
        workdir = Path(tmp)
        print("PULL, fsync=always: producing with acks=all, then SIGKILL the broker mid-stream ...")
        await pull_crash(workdir, "always")
        print("\nPUSH: a subscriber and a publisher, then SIGKILL the broker mid-stream ...")
        await push_crash(workdir)
        print("\nPULL, fsync=never: the same crash with the OS deciding when data reaches the disk ...")
        await pull_crash(workdir, "never")
    expire = Path("/proc/sys/vm/dirty_expire_centisecs")
    window = f"{int(expire.read_text()) / 100:.0f} s on this machine" if expire.exists() else "tens of seconds"
    print(f"""
Why: with fsync=always the broker calls fsync() before it acknowledges, so an acknowledged record
is on the disk. With fsync=never it only write()s to the operating system's page cache: a killed
*process* loses nothing (the kernel still has the pages - hence 0 lost above too), but a power cut
or kernel crash loses what the kernel had not yet written back (Linux writes dirty pages after
about {window}). Push mode has no disk at all: a crash loses whatever was in flight, a
publisher gets errors while the broker is down, and the restarted broker has nothing to give.

What to remember:
  * Pull + fsync=always: acknowledged = durable. Slower per write, the price of the guarantee.
  * Pull + fsync=never/interval: survives process crashes, not power cuts (bounded window).
  * Push: nothing survives a crash; the SDK reports the hole (Gap) but cannot fill it.
  * A send that was not acknowledged may or may not have been stored: retry it (see lesson 07).""")


if __name__ == "__main__":
    trio.run(main)
