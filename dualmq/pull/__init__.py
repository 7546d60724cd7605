"""Pull mode of the SDK: Kafka-protocol clients that work against dualmq and real Kafka alike.

    import trio
    from dualmq.pull import Producer, Consumer, Admin

    async def main():
        async with Admin("127.0.0.1:9092") as admin:
            await admin.create_topics("orders", partitions=3, exist_ok=True)
        async with Producer("127.0.0.1:9092") as producer:
            await producer.send("orders", b"one", key=b"customer-1")
        async with Consumer("127.0.0.1:9092", group_id="billing", topics=["orders"],
                            auto_offset_reset="earliest") as consumer:
            async for record in consumer:
                print(record.partition, record.offset, record.value)

    trio.run(main)

This package's ``__init__`` only gathers the public names; import them from here. Each
concept lives in its own module:

=================== =========================================================================
``connection``      one broker connection: framing, correlation ids, ApiVersions
``client``          bootstrap, metadata, a connection per (broker, purpose), coordinators
``records``         ``TopicPartition`` and ``ConsumerRecord``, the values applications see
``partitioner``     murmur2 (bit-exact with Kafka's Java client), sticky null keys
``accumulator``     batching rules (linger, batch size), delivery handles
``producer``        Producer: sender task, acks, compression, idempotence, retries
``fetcher``         positions, pipelined long-poll fetches, offset resets
``consumer``        Consumer: iteration, seek, pause, commits, rebalances
``group``           group membership (Join/Sync/Heartbeat/Leave), OffsetCommit/Fetch
``assignors``       consumer protocol bytes, range and roundrobin assignors
``admin``           Admin: topics, groups, lag, the APIs a broker serves
``dead_letters``    consume() with retries, backoff and a dead-letter topic
=================== =========================================================================

The arrows run one way: ``connection`` <- ``client`` <- (``producer``, ``fetcher``,
``group``) <- (``consumer``, ``admin``), and ``consumer`` -> ``dead_letters`` -> ``producer``.
"""

from __future__ import annotations

from dualmq.pull.accumulator import Delivery
from dualmq.pull.acls import Acl, AclFilter
from dualmq.pull.admin import (
    Admin,
    ConfigEntry,
    GroupDescription,
    GroupListing,
    MemberDescription,
    PartitionDescription,
    PartitionLag,
    TopicDescription,
)
from dualmq.pull.consumer import Consumer
from dualmq.pull.dead_letters import ConsumeStats, consume, dead_letter_headers
from dualmq.pull.partitioner import murmur2, partition_for_key
from dualmq.pull.producer import Producer
from dualmq.pull.records import ConsumerRecord

__all__ = [
    "Acl",
    "AclFilter",
    "Admin",
    "ConfigEntry",
    "ConsumeStats",
    "Consumer",
    "ConsumerRecord",
    "Delivery",
    "GroupDescription",
    "GroupListing",
    "MemberDescription",
    "PartitionDescription",
    "PartitionLag",
    "Producer",
    "TopicDescription",
    "consume",
    "dead_letter_headers",
    "murmur2",
    "partition_for_key",
]
