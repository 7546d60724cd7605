"""01 - Hello, both modes: the same three messages through pull mode and push mode.

What it shows:
    dualmq is one broker with two front-ends. Pull mode speaks the Kafka protocol: a producer
    appends records to a topic's log and gets back (partition, offset); a consumer pulls them
    by offset, whenever it likes. Push mode speaks the Redis protocol: a publisher PUBLISHes to
    a channel, the broker pushes the message to every connected subscriber, and PUBLISH
    answers how many received it. Same three messages, two delivery models.

How to run it (from the repository, once make run or make install has created .venv):
    .venv/bin/python examples/01_hello_both_modes.py

What you should see:
    Pull: three records with offsets 0, 1, 2 - the broker numbered and kept them.
    Push: PUBLISH answering 1 three times - one subscriber got each message; nothing has an
    offset, nothing is kept. Then "What to remember".
"""

import trio

import dualmq.embedded
from dualmq.logging import configure_logging
from dualmq.pull import Consumer, Producer
from dualmq.push import Publisher, subscribe

MESSAGES = [b"order-1: 2 coffees", b"order-2: 1 tea", b"order-3: 3 croissants"]


async def pull_mode(kafka: str) -> int:
    print("PULL MODE (Kafka-like): producer -> topic 'orders' (a log on disk) <- consumer")
    async with Producer(kafka) as producer:
        for value in MESSAGES:
            partition, offset = await producer.send("orders", value)
            print(f"  producer: sent {value.decode()!r:26} -> stored at partition {partition}, offset {offset}")
    # The consumer starts *after* the producer is gone: the log kept the records for it.
    received = 0
    async with Consumer(kafka, group_id="kitchen", topics=["orders"], auto_offset_reset="earliest") as consumer:
        with trio.fail_after(15):
            async for record in consumer:
                print(f"  consumer: pulled offset {record.offset}: {record.value.decode()!r}")
                received += 1
                if received == len(MESSAGES):
                    break
        await consumer.commit()  # "kitchen has read up to here", stored by the broker
    print(f"RESULT pull_received={received}")
    return received


async def push_mode(resp: str) -> int:
    print("PUSH MODE (Redis-like): publisher -> channel 'orders' -> every subscriber connected right now")
    received = 0
    async with subscribe(resp, "orders") as subscription:  # returns once SUBSCRIBE is confirmed
        async with Publisher(resp) as publisher:
            for value in MESSAGES:
                receivers = await publisher.publish("orders", value)
                print(f"  publisher: PUBLISH {value.decode()!r:26} -> delivered to {receivers} subscriber(s)")
        with trio.fail_after(5):
            async for message in subscription:
                print(f"  subscriber: pushed on {message.channel.decode()!r}: {message.data.decode()!r} (no offset)")
                received += 1
                if received == len(MESSAGES):
                    break
    print(f"RESULT push_received={received}")
    return received


async def main() -> None:
    configure_logging("console", "warning")  # warnings and errors of the broker and the SDK, on stderr, for a human
    # A real broker in this process, on free loopback ports, with a throw-away data dir.
    async with dualmq.embedded.broker(kafka={"group_initial_rebalance_delay_ms": 0}) as broker:
        print(f"broker: Kafka protocol on {broker.kafka}, RESP (Redis protocol) on {broker.resp}\n")
        pulled = await pull_mode(broker.kafka)
        print()
        pushed = await push_mode(broker.resp)
    print(f"""
Both consumers saw all {len(MESSAGES)} messages ({pulled} pulled, {pushed} pushed), in order. The difference is
who drives and what is left afterwards: the pull consumer asked for records by offset after the
producer had finished, and they are still in the log for the next reader; the push subscriber
had to be connected *before* PUBLISH, and the broker forgot each message once it was pushed.

What to remember:
  * Pull mode = a log. Records get offsets, stay on disk, consumers read at their own pace.
  * Push mode = a broadcast. Messages go to whoever is subscribed at that instant, then vanish.
  * PUBLISH returns the number of receivers; 0 means the message is already gone.""")


if __name__ == "__main__":
    trio.run(main)
