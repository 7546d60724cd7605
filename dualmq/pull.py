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

This module only gathers the public names; each concept lives in its own file:

=========================== =================================================================
``_kafka_connection``       one broker connection: framing, correlation ids, ApiVersions
``_kafka_client``           bootstrap, metadata, a connection per (broker, purpose), coordinators
``_kafka_partitioner``      murmur2 (bit-exact with Kafka's Java client), sticky null keys
``_kafka_accumulator``      batching rules (linger, batch size), delivery handles
``_kafka_producer``         Producer: sender task, acks, compression, idempotence, retries
``_kafka_fetcher``          positions, pipelined long-poll fetches, offset resets
``_kafka_consumer``         Consumer: iteration, seek, pause, commits, rebalances
``_kafka_group``            group membership (Join/Sync/Heartbeat/Leave), OffsetCommit/Fetch
``_kafka_assignors``        consumer protocol bytes, range and roundrobin assignors
``_kafka_admin``            Admin: topics, groups, lag
``_kafka_dead_letters``     consume() with retries, backoff and a dead-letter topic
=========================== =================================================================
"""

from __future__ import annotations

from dualmq._kafka_accumulator import Delivery
from dualmq._kafka_admin import (
    Admin,
    GroupDescription,
    GroupListing,
    MemberDescription,
    PartitionDescription,
    PartitionLag,
    TopicDescription,
)
from dualmq._kafka_consumer import Consumer, ConsumerRecord
from dualmq._kafka_dead_letters import ConsumeStats, consume, dead_letter_headers
from dualmq._kafka_partitioner import murmur2, partition_for_key
from dualmq._kafka_producer import Producer

__all__ = [
    "Admin",
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
