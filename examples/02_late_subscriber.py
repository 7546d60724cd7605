"""02 - The late subscriber: retention is the whole difference.

What it shows:
    Five messages are sent *before* any consumer exists. Then a consumer shows up.
    Pull mode keeps the records in its log, so the late consumer reads all five from offset 0.
    Push mode keeps nothing: "If no subscribers are connected, Redis discards the messages" -
    PUBLISH answers 0 receivers and the five messages are gone for good; the late subscriber
    only sees what is published after it subscribed.

How to run it (from the repository, once make run or make install has created .venv):
    .venv/bin/python examples/02_late_subscriber.py

What you should see:
    "push subscriber received 0 of 5 early messages" (each PUBLISH answered 0, and the
    broker's INFO counter messages_dropped_no_subscriber says 5), then
    "pull consumer received 5 of 5 early messages", then "What to remember".
"""

import trio

import dualmq.embedded
from dualmq.logging import configure_logging
from dualmq.pull import Consumer, Producer
from dualmq.push import Publisher, subscribe

EARLY = [f"early-{i}".encode() for i in range(5)]


def info_counter(info_text: str, name: str) -> int:
    """One ``name:value`` line of an INFO reply, as an int."""
    for line in info_text.splitlines():
        if line.startswith(name + ":"):
            return int(line.split(":", 1)[1])
    raise KeyError(name)


async def push_mode(resp: str) -> int:
    print("PUSH: publishing 5 messages to channel 'news' while nobody is subscribed ...")
    async with Publisher(resp) as publisher:
        answers = [await publisher.publish("news", value) for value in EARLY]
        print(f"  PUBLISH answered {answers}  (number of receivers: nobody)")
        async with subscribe(resp, "news") as subscription:
            print("  a subscriber connects now, then one more message is published")
            await publisher.publish("news", b"late-marker")
            seen = []
            with trio.fail_after(5):
                async for message in subscription:
                    seen.append(message.data)
                    if message.data == b"late-marker":
                        break
        early_seen = sum(1 for data in seen if data in EARLY)
        dropped = info_counter(str(await publisher.execute("INFO", "dualmq")), "messages_dropped_no_subscriber")
    print(f"  the subscriber received: {[d.decode() for d in seen]}")
    print(f"  broker INFO: messages_dropped_no_subscriber={dropped}")
    print(f"push subscriber received {early_seen} of {len(EARLY)} early messages")
    print(f"RESULT push_received={early_seen} push_dropped={dropped}")
    return early_seen


async def pull_mode(kafka: str) -> int:
    print("PULL: producing 5 records to topic 'news' while no consumer exists ...")
    async with Producer(kafka) as producer:
        for value in EARLY:
            await producer.send("news", value)
    print("  producer done and gone. A consumer group that never existed before starts now:")
    received = []
    async with Consumer(kafka, group_id="late-reader", topics=["news"], auto_offset_reset="earliest") as consumer:
        with trio.fail_after(15):
            async for record in consumer:
                received.append(record.value)
                print(f"  pulled offset {record.offset}: {record.value.decode()}")
                if len(received) == len(EARLY):
                    break
    early_seen = sum(1 for value in received if value in EARLY)
    print(f"pull consumer received {early_seen} of {len(EARLY)} early messages")
    print(f"RESULT pull_received={early_seen}")
    return early_seen


async def main() -> None:
    configure_logging("console", "warning")  # warnings and errors of the broker and the SDK, on stderr, for a human
    async with dualmq.embedded.broker(kafka={"group_initial_rebalance_delay_ms": 0}) as broker:
        pushed = await push_mode(broker.resp)
        print()
        pulled = await pull_mode(broker.kafka)
    print(f"""
Same situation, opposite outcomes: {pulled} of 5 versus {pushed} of 5. The log in pull mode is storage:
a record is kept until retention (time or size) removes it, whoever is or is not reading. Pub/sub
in push mode is a live broadcast: the broker's only job is to hand the message to the sockets
subscribed at that instant; with none, PUBLISH returns 0 and there is nothing left to replay.

What to remember:
  * Pull mode: consumers can come late, restart, or be added next month and still read history.
  * Push mode: subscribe first, or miss it. PUBLISH's answer (0) is the only trace of the loss.
  * If a message must not be lost while nobody listens, it belongs in a log, not a channel.""")


if __name__ == "__main__":
    trio.run(main)
