"""11 - Message size: where each model draws the line, and what crossing it costs.

What it shows:
    Pull mode has a per-topic limit on a record batch (Kafka's max.message.bytes). A record
    over it is refused at produce time with MESSAGE_TOO_LARGE: the producer hears about it,
    nothing half-written lands in the log, and smaller records flow on.
    Push mode has no practical per-message limit (Redis accepts arguments up to 512 MiB), but
    every subscriber has an output-buffer limit. One message bigger than that limit does not
    fail the PUBLISH: it silently disconnects every subscriber it was meant for, and PUBLISH
    answers 0 receivers.

How to run it (from the repository, once make run or make install has created .venv):
    .venv/bin/python examples/11_message_size.py

What you should see:
    "pull: 50 KB record stored at offset 0", "pull: 200 KB record refused: MESSAGE_TOO_LARGE",
    "push: 100 KB message reached 1 subscriber(s)", "push: 2 MB message reached 0 subscriber(s)
    - the subscriber was disconnected", then "What to remember".
"""

import trio

import dualmq.embedded
from dualmq.logging import configure_logging
from dualmq.errors import ConnectionLost, KafkaError
from dualmq.pull import Admin, Consumer, Producer
from dualmq.push import Publisher, subscribe

KB = 1024


async def pull_mode(kafka: str) -> tuple[int, str]:
    async with Admin(kafka) as admin:
        await admin.create_topics("uploads", partitions=1, config={"max.message.bytes": str(100 * KB)})
    print("PULL: topic 'uploads' accepts record batches up to 100 KB (max.message.bytes)")
    async with Producer(kafka, linger_ms=0) as producer:
        _, offset = await producer.send("uploads", b"a" * (50 * KB))
        print(f"pull: 50 KB record stored at offset {offset}")
        try:
            await producer.send("uploads", b"b" * (200 * KB))
            refused = "nothing"
        except KafkaError as exc:
            refused = exc.code.name
        print(f"pull: 200 KB record refused: {refused}")
    async with Consumer(kafka, auto_offset_reset="earliest") as consumer:
        consumer.assign([("uploads", 0)])
        with trio.fail_after(10):
            record = await consumer.__anext__()
        end = consumer.high_watermark(("uploads", 0))
    print(f"pull: the log holds {end} record(s); the first is {len(record.value) // KB} KB")
    return end, refused


async def push_mode(resp: str) -> tuple[int, int, bool]:
    print("\nPUSH: each subscriber may have at most 1 MB waiting for it (client-output-buffer-limit)")
    async with subscribe(resp, "uploads") as subscription, Publisher(resp) as publisher:
        small = await publisher.publish("uploads", b"c" * (100 * KB))
        print(f"push: 100 KB message reached {small} subscriber(s)")
        big = await publisher.publish("uploads", b"d" * (2048 * KB))
        print(f"push: 2 MB message reached {big} subscriber(s) - the subscriber was disconnected")
        received, cut_off = [], False
        try:
            with trio.fail_after(10):
                async for message in subscription:
                    received.append(len(message.data))
        except ConnectionLost:
            cut_off = True
    print(f"push: the subscriber received {[n // KB for n in received]} KB, then its connection ended")
    return small, big, cut_off


async def main() -> None:
    configure_logging("console", "error")
    async with dualmq.embedded.broker(resp={"pubsub_hard_limit": 1024 * KB, "pubsub_soft_limit": 0}) as b:
        stored, refused = await pull_mode(b.kafka)
        small, big, cut_off = await push_mode(b.resp)
    print(f"RESULT pull_stored={stored} pull_refused={refused} push_small={small} push_big={big} "
          f"push_cut_off={int(cut_off)}")
    print("""
What to remember:
  - Pull mode checks size where the data enters: the producer gets MESSAGE_TOO_LARGE and can
    split, compress or dead-letter the record. Nothing oversized ever reaches a consumer.
  - Push mode checks size where the data leaves: a message larger than a subscriber's output
    buffer limit costs that subscriber its connection, and the publisher only learns it from
    a receiver count of 0. Keep push messages small, or raise the pubsub limit knowingly.""")


if __name__ == "__main__":
    trio.run(main)
