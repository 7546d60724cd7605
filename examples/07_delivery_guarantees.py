"""07 - Delivery guarantees: at-most-once, at-least-once, and the idempotent producer.

What it shows:
    Where a consumer commits decides what a crash costs. Commit *before* processing: a crash
    loses the records committed but not yet processed (at-most-once). Commit *after*
    processing: a crash re-delivers the records processed but not yet committed
    (at-least-once: duplicates, never losses). On the producer side, a lost acknowledgement
    makes the producer retry a write that already succeeded: without idempotence that is a
    duplicate in the log; with it, the broker recognises the (producer id, sequence) and
    keeps one copy. (Push mode has only at-most-once: nothing to commit, nothing to retry.)

How to run it (from the repository, once make run or make install has created .venv):
    .venv/bin/python examples/07_delivery_guarantees.py

What you should see:
    A table: at-most-once lost 5 / duplicated 0; at-least-once lost 0 / duplicated 5;
    producer retry without idempotence: 1 duplicate in the log; with idempotence: 0.
"""

import socket
import struct

import trio

import dualmq.embedded
from dualmq.logging import configure_logging
from dualmq.pull import Admin, Consumer, Producer

RECORDS, CRASH_AT = 100, 45  # the consumer "crashes" while handling the record at offset 45


class Crash(Exception):
    pass


async def consume_with_crash(kafka: str, topic: str, commit_first: bool) -> tuple[int, int]:
    """Process ``topic`` in chunks, crash once mid-chunk, restart; return (lost, duplicated)."""
    processed: list[int] = []
    group = f"{topic}-{'amo' if commit_first else 'alo'}"
    for attempt in ("first run", "after restart"):
        try:
            async with Consumer(kafka, group_id=group, topics=[topic], auto_offset_reset="earliest",
                                enable_auto_commit=False) as consumer:
                with trio.fail_after(15):
                    while True:
                        chunk = await consumer.getmany(max_records=10)
                        next_offset = {(topic, 0): chunk[-1].offset + 1}
                        if commit_first:
                            await consumer.commit(next_offset)  # at-most-once: "done" before doing
                        for record in chunk:
                            if attempt == "first run" and record.offset == CRASH_AT:
                                raise Crash  # the process dies here: no further commit
                            processed.append(record.offset)
                        if not commit_first:
                            await consumer.commit(next_offset)  # at-least-once: "done" after doing
                        if chunk[-1].offset == RECORDS - 1:
                            break
        except Crash:
            pass
    lost = RECORDS - len(set(processed))
    duplicated = len(processed) - len(set(processed))
    return lost, duplicated


async def proxy(kafka: str, port: int, armed: list, task_status=trio.TASK_STATUS_IGNORED) -> None:
    """A TCP relay in front of the broker that can swallow the reply to one Produce request.

    The broker stores the batch, but the producer never hears back: exactly what a network
    failure after the write looks like. Then the connection is closed, and the producer retries.
    """
    host, broker_port = kafka.rsplit(":", 1)

    async def handle(client: trio.SocketStream) -> None:
        upstream = await trio.open_tcp_stream(host, int(broker_port))
        blackhole = False
        async with client, upstream, trio.open_nursery() as nursery:
            async def to_client():
                while data := await upstream.receive_some(65536):
                    if not blackhole:
                        await client.send_all(data)
            nursery.start_soon(to_client)
            buffer = b""
            while data := await client.receive_some(65536):
                buffer += data
                while len(buffer) >= 6 and len(buffer) >= 4 + struct.unpack(">i", buffer[:4])[0]:
                    size, api_key = struct.unpack(">ih", buffer[:6])
                    frame, buffer = buffer[:4 + size], buffer[4 + size:]
                    if api_key == 0 and armed:  # Produce (api key 0), and a fault is armed
                        armed.pop()
                        blackhole = True
                    await upstream.send_all(frame)
                    if blackhole:
                        await trio.sleep(0.2)  # the broker appends it meanwhile
                        nursery.cancel_scope.cancel()
                        return
            nursery.cancel_scope.cancel()

    listeners = await trio.open_tcp_listeners(port, host="127.0.0.1")
    task_status.started()
    await trio.serve_listeners(handle, listeners)


async def produce_through_flaky_network(kafka: str, topic: str, idempotence: bool, armed: list) -> int:
    async with Producer(kafka, acks="all", idempotence=idempotence, linger_ms=0) as producer:
        for i in range(10):
            if i == 5:
                armed.append("drop the next Produce reply")
            await producer.send(topic, f"transfer-{i}".encode())
    async with Admin(kafka) as admin:
        (described,) = await admin.describe_topics(topic)
    return described.messages - 10  # extra copies in the log


async def main() -> None:
    configure_logging("console", "warning")  # warnings and errors of the broker and the SDK, on stderr, for a human
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        proxy_port = s.getsockname()[1]
    # Metadata points every client at the proxy (the broker advertises the proxy's address),
    # so all Kafka traffic below goes through it; only the producer test arms a fault.
    async with dualmq.embedded.broker(kafka={"group_initial_rebalance_delay_ms": 0,
                                             "advertised": f"127.0.0.1:{proxy_port}"}) as broker, \
            trio.open_nursery() as nursery:
        armed: list = []  # append to it = swallow the reply to the next Produce request
        await nursery.start(proxy, broker.kafka, proxy_port, armed)
        async with Producer(broker.kafka) as producer:
            for topic in ("amo", "alo"):
                for i in range(RECORDS):
                    await producer.enqueue(topic, f"job-{i}".encode())
        amo = await consume_with_crash(broker.kafka, "amo", commit_first=True)
        alo = await consume_with_crash(broker.kafka, "alo", commit_first=False)
        plain = await produce_through_flaky_network(broker.kafka, "plain", False, armed)
        idem = await produce_through_flaky_network(broker.kafka, "idem", True, armed)
        nursery.cancel_scope.cancel()
    print(f"Consumer: {RECORDS} records in chunks of up to 10, crash at offset {CRASH_AT}, restart.")
    print("Producer: 10 sends; the reply to the 6th is lost on the network, the producer retries.\n")
    rows = [("consumer commits BEFORE processing (at-most-once)", *amo),
            ("consumer commits AFTER processing (at-least-once)", *alo),
            ("producer retry, idempotence off", 0, plain),
            ("producer retry, idempotence on", 0, idem)]
    width = max(len(policy) for policy, _, _ in rows)  # the column fits its longest entry
    print(f"  {'policy':<{width}}  {'lost':>4}  {'duplicated':>10}")
    for policy, lost, duplicated in rows:
        print(f"  {policy:<{width}}  {lost:>4}  {duplicated:>10}")
    print(f"RESULT amo_lost={amo[0]} amo_dup={amo[1]} alo_lost={alo[0]} alo_dup={alo[1]} "
          f"plain_dup={plain} idem_dup={idem}")
    print("""
At-most-once lost the rest of the chunk it had already marked done; at-least-once processed part
of a chunk twice because the crash came before its commit. Neither is "wrong": pick by the cost of
a loss versus the cost of a duplicate - and make handlers idempotent if you pick at-least-once.
The idempotent producer removes the *producer's* duplicates: the broker remembers the last
sequence number of each producer id per partition and acknowledges a retried batch without
appending it again.

What to remember:
  * Commit after processing = at-least-once (duplicates possible). Before = at-most-once (losses).
  * A retry after a lost acknowledgement duplicates, unless the producer is idempotent.
  * Push mode is at-most-once by construction: no commits, no redelivery, no retries.""")


if __name__ == "__main__":
    trio.run(main)
