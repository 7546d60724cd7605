"""08 - Retries and dead letters: one poison message must not block (or vanish from) the stream.

What it shows:
    A pull consumer reads a partition in order. If one record makes the handler fail every
    time (a "poison pill"), retrying it forever blocks everything behind it, and skipping it
    silently loses it. ``dualmq.pull.consume`` retries a failing record a few times (a
    transient error recovers), then parks it in a dead-letter topic - with the error, the
    number of attempts and where it came from recorded in its headers - commits, and moves on.
    The dead-letter topic is an ordinary topic: inspect it, fix the bug, replay it.

How to run it (from the repository, once make run or make install has created .venv):
    .venv/bin/python examples/08_retries_and_dead_letters.py

What you should see:
    10 orders; order-3 fails once and succeeds on retry; order-7 fails 3 times and lands in
    "orders.dlq" with dlq.error="ValueError: order-7 has no price" and dlq.attempts=3; the
    other orders are processed: processed=9 dead_lettered=1. Then "What to remember".
"""

import collections

import trio

import dualmq.embedded
from dualmq.logging import configure_logging
from dualmq.pull import Consumer, Producer, consume

attempts = collections.Counter()


async def handle(record) -> None:
    """The application's handler: order-7 is malformed, order-3 hits a transient error once."""
    name = record.value.decode()
    attempts[name] += 1
    if name == "order-7":
        raise ValueError(f"{name} has no price")
    if name == "order-3" and attempts[name] == 1:
        raise ConnectionError("payment service timed out")
    print(f"  processed {name} (attempt {attempts[name]})")


async def main() -> None:
    configure_logging("console", "warning")  # warnings and errors of the broker and the SDK, on stderr, for a human
    async with dualmq.embedded.broker(kafka={"group_initial_rebalance_delay_ms": 0}) as broker:
        async with Producer(broker.kafka) as producer:
            for i in range(10):
                await producer.send("orders", f"order-{i}".encode(), key=f"customer-{i}".encode())
        print("10 orders produced; consuming with retries=2 (3 attempts), dead-letter topic 'orders.dlq'")
        async with Consumer(broker.kafka, group_id="shipping", topics=["orders"],
                            auto_offset_reset="earliest") as consumer:
            with trio.fail_after(20):
                stats = await consume(consumer, handle, retries=2, backoff=0.05,
                                      dead_letter_topic="orders.dlq", max_records=10)
        print(f"processed={stats.processed} retries={stats.retries} dead_lettered={stats.dead_lettered}")

        # The dead letters are plain Kafka records: any consumer (or kcat) can read them.
        async with Consumer(broker.kafka, group_id="ops", topics=["orders.dlq"],
                            auto_offset_reset="earliest") as dlq:
            with trio.fail_after(15):
                letter = await dlq.__anext__()
        print(f"\ndead letter in 'orders.dlq': value={letter.value.decode()!r} key={letter.key.decode()!r}")
        for name, value in letter.headers:
            print(f"  header {name:22} = {value.decode()}")
        tries = letter.header("dlq.attempts").decode()
        origin = letter.header("dlq.origin.offset").decode()
        print(f"RESULT processed={stats.processed} retries={stats.retries} dead_lettered={stats.dead_lettered} "
              f"dlq_attempts={tries} dlq_origin_offset={origin}")
    print("""
The transient error cost one retry and nothing else. The poison message cost three attempts,
then it was moved aside with everything needed to diagnose it, its offset was committed, and
order-8 and order-9 were not held hostage. Because the dead letter is produced (and
acknowledged) *before* the commit, a crash in between re-delivers order-7 rather than losing it.

In push mode there is nothing to retry from: a subscriber whose handler fails has already
received the message once, and the broker has forgotten it. Retrying, parking and replaying
need the message to be stored - i.e. a log.

What to remember:
  * Bounded retries with backoff handle transient failures; a poison pill needs a way out.
  * Dead-letter topic = an ordinary topic + headers saying why (error, attempts, origin).
  * Produce the dead letter, then commit: nothing lost, nothing blocking forever.""")


if __name__ == "__main__":
    trio.run(main)
