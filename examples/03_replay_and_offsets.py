"""03 - Replay and offsets: a pull consumer can go back in time, and remembers where it was.

What it shows:
    Every record in pull mode has an offset (its position in the partition's log) and a
    timestamp. A consumer chooses where to read: from any offset (``seek``), or from the first
    record at or after a point in time (``seek_to_timestamp``, Kafka's ListOffsets). A consumer
    *group* also stores how far it got (its committed offset) in the broker, so a consumer that
    stops and starts again resumes exactly there. Push mode has none of this: no offsets, no
    timestamps to search, nothing to resume from.

How to run it (from the repository, once make run or make install has created .venv):
    .venv/bin/python examples/03_replay_and_offsets.py

What you should see:
    Ten records written "two minutes ago" (0-4) and "one minute ago" (5-9); a re-read from
    offset 7 (7, 8, 9); a re-read from 90 seconds ago (starting at offset 5); a group consumer
    that commits after 4 records, stops, and restarts at offset 4. Then "What to remember".
"""

import time

import trio

import dualmq.embedded
from dualmq.logging import configure_logging
from dualmq.pull import Consumer, Producer

TOPIC, PARTITION = "events", ("events", 0)


async def take(consumer: Consumer, count: int) -> list:
    """The next ``count`` records, within a deadline."""
    records = []
    with trio.fail_after(15):
        async for record in consumer:
            records.append(record)
            if len(records) == count:
                return records
    return records


async def main() -> None:
    configure_logging("console", "warning")  # warnings and errors of the broker and the SDK, on stderr, for a human
    async with dualmq.embedded.broker(kafka={"group_initial_rebalance_delay_ms": 0}) as broker:
        now_ms = int(time.time() * 1000)
        async with Producer(broker.kafka) as producer:
            for i in range(10):
                # Records carry a timestamp (CreateTime); we back-date them to make the point.
                written_at = now_ms - (120_000 if i < 5 else 60_000)
                await producer.send(TOPIC, f"event-{i}".encode(), timestamp_ms=written_at)
        print("wrote event-0..4 two minutes ago and event-5..9 one minute ago (offsets 0-9)\n")

        # 1. Replay from an offset. No group: we pick the partition and the position ourselves.
        async with Consumer(broker.kafka) as reader:
            reader.assign([PARTITION])
            reader.seek(PARTITION, 7)
            replay = await take(reader, 3)
            print("seek to offset 7:          ", [f"{r.offset}:{r.value.decode()}" for r in replay])
            # 2. Replay from a point in time: the first record at or after 90 seconds ago.
            await reader.seek_to_timestamp(now_ms - 90_000, PARTITION)
            from_time = await take(reader, 5)
            print("seek to 90 seconds ago:    ", [f"{r.offset}:{r.value.decode()}" for r in from_time])
            # 3. And again from the very beginning: reading does not consume anything.
            reader.seek_to_beginning(PARTITION)
            again = await take(reader, 10)
            print(f"seek to beginning: re-read all {len(again)} records, offsets {again[0].offset}..{again[-1].offset}")
        print(f"RESULT seek_offset_first={replay[0].offset} seek_time_first={from_time[0].offset} reread={len(again)}\n")

        # 4. Committed offsets: the group "reports" reads 4 records, commits, and stops.
        async with Consumer(broker.kafka, group_id="reports", topics=[TOPIC], auto_offset_reset="earliest",
                            enable_auto_commit=False) as first:
            done = await take(first, 4)
            await first.commit()  # stores "next offset to read = 4" in the broker
            committed = (await first.committed(PARTITION))[PARTITION]
        print(f"group 'reports' processed offsets {done[0].offset}..{done[-1].offset}, committed {committed}, "
              "and the consumer stopped")
        # A new process of the same group (think: after a deploy) asks the broker where to resume.
        async with Consumer(broker.kafka, group_id="reports", topics=[TOPIC], auto_offset_reset="earliest",
                            enable_auto_commit=False) as restarted:
            rest = await take(restarted, 6)
        print(f"restarted consumer began at offset {rest[0].offset} and read {len(rest)} records "
              f"(offsets {rest[0].offset}..{rest[-1].offset}): nothing re-processed, nothing skipped")
        print(f"RESULT committed={committed} resumed_at={rest[0].offset} resumed_count={len(rest)}")
    print("""
The log is not a queue that empties as you read: reading moves only *your* position. That is why
pull mode can replay (a bug fix re-run over last week's data, a new service back-filling), and
why a consumer's progress is just a number the broker keeps for its group.

What to remember:
  * offset = position in a partition's log; seek() moves the reader, the data stays.
  * seek_to_timestamp() asks the broker which offset was current at a time (ListOffsets).
  * A group's committed offset survives consumer restarts: commit after processing, resume there.
  * Push mode has no equivalent: a message exists only while it is being delivered.""")


if __name__ == "__main__":
    trio.run(main)
