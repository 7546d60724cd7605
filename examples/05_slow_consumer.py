"""05 - The slow consumer: push mode cuts it off, pull mode lets it fall behind and catch up.

What it shows:
    A consumer that cannot keep up with the producer. In push mode the broker must hold every
    message it could not yet write to the subscriber's socket in an output buffer; Redis caps
    that buffer (``client-output-buffer-limit pubsub``, 32 MiB hard by default; 256 KiB here so
    the lesson is quick) and, when it is exceeded, simply closes the connection. Everything
    queued and everything published afterwards is lost for that subscriber, and the broker
    counts it (INFO: subscribers_disconnected_hard_limit). In pull mode nothing is pushed:
    the records wait in the log, the consumer's *lag* (log end offset - committed offset)
    grows while it is slow and shrinks when it speeds up, and nothing is lost.

How to run it (from the repository, once make run or make install has created .venv):
    .venv/bin/python examples/05_slow_consumer.py

What you should see:
    Push: the slow subscriber disconnected, having received only part of the messages, and
    subscribers_disconnected_hard_limit=1. Pull: lag samples that rise then fall back to 0,
    and "pull consumer received 3000 of 3000". Then "What to remember".
"""

import trio

import dualmq.embedded
from dualmq.logging import configure_logging
from dualmq.errors import ConnectionLost
from dualmq.pull import Admin, Consumer, Producer
from dualmq.push import Publisher, subscribe

HARD_LIMIT = 256 * 1024
PUSH_MESSAGES, PULL_MESSAGES = 20_000, 3_000
PAYLOAD = b"x" * 1024


async def push_mode(resp: str) -> int:
    received = 0

    async def slow_subscriber(subscription, done: trio.Event) -> None:
        nonlocal received
        try:
            async for _ in subscription:
                received += 1
                await trio.sleep(0.002)  # "processing" takes 2 ms: about 500 messages/s
        except ConnectionLost as exc:
            print(f"  subscriber: connection lost after {received} messages ({exc})")
        done.set()

    async with Publisher(resp) as publisher, subscribe(resp, "ticks", health_check_interval=None) as subscription:
        done = trio.Event()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(slow_subscriber, subscription, done)
            delivered = 0
            for _ in range(0, PUSH_MESSAGES, 500):  # pipelined PUBLISHes, 500 per write
                counts = await publisher.publish_many([("ticks", PAYLOAD)] * 500)
                delivered += sum(counts)
            print(f"  publisher: {PUSH_MESSAGES} x 1 KiB published in a burst; PUBLISH counted "
                  f"{delivered} deliveries (it answers 0 once the subscriber is gone)")
            with trio.fail_after(30):
                await done.wait()
        info = str(await publisher.execute("INFO", "dualmq"))
    cut = next(int(l.split(":")[1]) for l in info.splitlines() if l.startswith("subscribers_disconnected_hard_limit:"))
    print(f"  broker INFO: subscribers_disconnected_hard_limit={cut}")
    print(f"push subscriber received {received} of {PUSH_MESSAGES}, lost {PUSH_MESSAGES - received}")
    print(f"RESULT push_received={received} push_sent={PUSH_MESSAGES} push_disconnected={cut}")
    return received


async def pull_mode(kafka: str) -> int:
    received, slow, samples = 0, True, []
    async with Producer(kafka) as producer, Admin(kafka) as admin, \
            Consumer(kafka, group_id="slow", topics=["ticks"], auto_offset_reset="earliest",
                     enable_auto_commit=False) as consumer:

        async def consume_all() -> None:
            nonlocal received
            async for _ in consumer:
                received += 1
                if received % 100 == 0:
                    await consumer.commit()  # lag is measured against the committed offset
                if slow:
                    await trio.sleep(0.002)
                if received == PULL_MESSAGES:
                    await consumer.commit()
                    return

        async def sample_lag() -> None:
            while True:
                group = await admin.describe_group("slow")
                samples.append(group.total_lag)
                await trio.sleep(0.1)

        with trio.fail_after(30):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(consume_all)
                nursery.start_soon(sample_lag)
                for _ in range(PULL_MESSAGES):
                    await producer.enqueue("ticks", PAYLOAD)  # no wait for each ack: a burst
                await producer.flush()
                print(f"  producer: {PULL_MESSAGES} x 1 KiB sent in a burst; consumer has read {received} so far")
                await trio.sleep(0.5)  # still slow for a moment: lag is visible
                slow = False  # the consumer speeds up (say, the database it writes to recovered)
                print("  consumer: speeding up")
                while received < PULL_MESSAGES:
                    await trio.sleep(0.05)
                await trio.sleep(0.15)  # one more lag sample after the final commit
                nursery.cancel_scope.cancel()
    peak = max(samples)
    print(f"  lag samples every 0.1 s (records behind): {samples}")
    print(f"pull consumer received {received} of {PULL_MESSAGES}, lost {PULL_MESSAGES - received}; "
          f"peak lag {peak}, final lag {samples[-1]}")
    print(f"RESULT pull_received={received} pull_sent={PULL_MESSAGES} peak_lag={peak} final_lag={samples[-1]}")
    return received


async def main() -> None:
    configure_logging("console", "warning")  # the broker's warning "subscriber_disconnected" shows on stderr
    async with dualmq.embedded.broker(resp={"pubsub_hard_limit": HARD_LIMIT, "pubsub_soft_limit": 0},
                                      kafka={"group_initial_rebalance_delay_ms": 0}) as broker:
        print(f"PUSH: a subscriber handling 500 msg/s, a publisher bursting; output-buffer limit {HARD_LIMIT // 1024} KiB")
        await push_mode(broker.resp)
        print("\nPULL: the same kind of consumer and burst, through the log")
        await pull_mode(broker.kafka)
    print("""
In push mode the broker has only two choices for a subscriber that falls behind: buffer without
limit (and let one slow client exhaust the server's memory) or cut it off. Redis, and dualmq,
cut it off at the output-buffer limit; the client sees its connection close and the messages in
between are simply gone. In pull mode the consumer asks for data when it is ready; the gap is
just a number - lag - and the log holds the records until retention removes them.

What to remember:
  * Push mode: a slow subscriber is disconnected (client-output-buffer-limit), and loses messages.
  * Pull mode: a slow consumer accumulates lag; when it speeds up, lag drains to 0, nothing lost.
  * Watch lag (pull) and disconnection counters (push): they are how each model reports trouble.""")


if __name__ == "__main__":
    trio.run(main)
