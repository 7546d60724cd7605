"""The pull consumer survives a broker restart, and gives up only when its outage budget is spent.

A real ``dualmq serve`` child process (``dualmq.process.BrokerProcess``) is killed with SIGKILL
while a consumer reads, and started again on the same port and data dir: the consumer must
reconnect (paced by ``reconnect_backoff_ms``), rejoin its group and read on from its position,
so that every record — produced before the crash and after the restart — arrives exactly once.
When the broker does not come back, iteration raises ``ConnectionLost`` once no broker has been
reachable for ``request_timeout_ms``, not earlier and not never.
"""

from __future__ import annotations

import pytest
import trio

from dualmq.errors import CommitFailed, ConnectionLost
from dualmq.process import BrokerProcess
from dualmq.pull import Consumer, Producer
from tests.support import fast_groups_config

pytestmark = pytest.mark.timeout(120)

BEFORE, AFTER = 20, 20


async def produce(address: str, topic: str, first: int, count: int) -> None:
    async with Producer(address) as producer:
        for i in range(first, first + count):
            await producer.send(topic, b"%d" % i)


def make_consumer(address: str, topic: str, grouped: bool, **options) -> Consumer:
    """A member of group ``survivors`` (grouped) or a manually assigned consumer committing for it."""
    if grouped:
        return Consumer(address, group_id="survivors", topics=[topic], auto_offset_reset="earliest", **options)
    consumer = Consumer(address, group_id="survivors", auto_offset_reset="earliest", **options)
    consumer.assign([(topic, 0)])
    return consumer


@pytest.mark.parametrize("grouped", [True, False], ids=["group", "assigned"])
async def test_consumer_reads_on_after_the_broker_is_killed_and_restarted(tmp_path, grouped) -> None:
    topic = "restarted"
    async with BrokerProcess(tmp_path / "data", "--config", str(fast_groups_config(tmp_path))) as broker:
        await produce(broker.kafka_address, topic, 0, BEFORE)
        values: list[int] = []
        refused_commits = 0
        read_before = trio.Event()
        with trio.fail_after(60):
            async with make_consumer(broker.kafka_address, topic, grouped) as consumer, \
                    trio.open_nursery() as nursery:

                async def crash_restart_produce() -> None:
                    await read_before.wait()
                    await broker.stop_async(sig=9)  # SIGKILL: the consumer's connections die mid-fetch
                    await trio.sleep(1.5)            # long enough for several refused reconnects
                    await broker.start_async()       # same data dir, same port
                    await produce(broker.kafka_address, topic, BEFORE, AFTER)

                nursery.start_soon(crash_restart_produce)
                async for record in consumer:
                    values.append(int(record.value))
                    # At-least-once: commit after each record, so commits also fall in the outage
                    # (they wait for the broker). The restarted broker has forgotten the group's
                    # members, so the first commit after it may be refused as from an unknown
                    # member, as Kafka refuses one from a member that missed a rebalance: the
                    # application carries on, the consumer rejoins and keeps its positions.
                    try:
                        await consumer.commit()
                    except CommitFailed:
                        refused_commits += 1
                    if len(values) == BEFORE:
                        read_before.set()
                    if len(values) == BEFORE + AFTER:
                        break
    assert broker.starts == 2
    assert values == list(range(BEFORE + AFTER))  # none lost, none twice, in order
    assert refused_commits <= 1


async def test_reconnect_backoff_is_configurable_and_paces_the_attempts(tmp_path) -> None:
    # 50 ms doubling to at most 200 ms: in 2 s of outage about a dozen connection attempts,
    # not thousands (a refused connect fails in microseconds) and not two.
    async with BrokerProcess(tmp_path / "data") as broker:
        await produce(broker.kafka_address, "paced", 0, 1)
        consumer = make_consumer(broker.kafka_address, "paced", grouped=False, request_timeout_ms=2000,
                                 reconnect_backoff_ms=50, reconnect_backoff_max_ms=200)
        attempts = 0
        with trio.fail_after(30):
            async with consumer:
                await consumer.__anext__()
                client = consumer._client
                failed = client._connect_failed

                def counting(address, error):
                    nonlocal attempts
                    attempts += 1
                    failed(address, error)

                client._connect_failed = counting
                await broker.stop_async(sig=9)
                with pytest.raises(ConnectionLost):
                    await consumer.__anext__()
    # Each purpose (fetch, group, default) has its own connection, all paced by one backoff.
    assert 5 <= attempts <= 60, attempts


@pytest.mark.parametrize("grouped", [True, False], ids=["group", "assigned"])
async def test_consumer_raises_connection_lost_once_the_outage_outlasts_the_budget(tmp_path, grouped) -> None:
    topic = "abandoned"
    budget = 2.0
    async with BrokerProcess(tmp_path / "data", "--config", str(fast_groups_config(tmp_path))) as broker:
        await produce(broker.kafka_address, topic, 0, 5)
        consumer = make_consumer(broker.kafka_address, topic, grouped, request_timeout_ms=budget * 1000)
        with trio.fail_after(30):
            async with consumer:
                for _ in range(5):
                    await consumer.__anext__()
                await broker.stop_async(sig=9)
                killed_at = trio.current_time()
                with pytest.raises(ConnectionLost, match="no broker reachable for 2 s"):
                    await consumer.__anext__()
                waited = trio.current_time() - killed_at
    # Not at the first refused connection, and not long after the budget either.
    assert budget <= waited < budget + 3, waited
