"""Producer id blocks from the cluster's one counter in etcd (modes/cluster/producer_ids.py)."""

from __future__ import annotations

import pytest
import trio

from broker.cluster.model import PRODUCER_IDS, CoordinationError
from broker.outcome import ErrorKind
from broker.producers import ProducerIdManager
from dualmq.etcd_process import EtcdProcess
from modes.cluster.etcd import EtcdClient
from modes.cluster.producer_ids import allocate_block, ensure_block, parse_counter


async def test_brokers_allocating_at_once_get_disjoint_blocks_above_their_floors(etcd: EtcdProcess) -> None:
    async with EtcdClient([etcd.endpoint]) as client:
        blocks: list[tuple[int, int]] = []

        async def broker(floor: int) -> None:
            for _ in range(5):
                blocks.append(await allocate_block(client, 1000, floor))

        async with trio.open_nursery() as nursery:
            for floor in (0, 0, 2500):
                nursery.start_soon(broker, floor)
        kvs, _ = await client.range(PRODUCER_IDS)
    assert len(blocks) == 15 and all(end - start == 1000 for start, end in blocks)
    ordered = sorted(blocks)
    assert all(a_end <= b_start for (_, a_end), (b_start, _) in zip(ordered, ordered[1:])), ordered
    assert parse_counter(kvs[0].value) == ordered[-1][1]


async def test_a_managers_ids_are_unique_across_two_brokers(etcd: EtcdProcess, tmp_path) -> None:
    managers = [ProducerIdManager.open(tmp_path / str(n), block_size=3) for n in (1, 2)]
    managers[1].observe(7, 0)    # broker 2 met id 7 in a log (a past as a single broker)
    for manager in managers:
        manager.share_blocks()
    issued = []
    async with EtcdClient([etcd.endpoint]) as client:
        locks = [trio.Lock(), trio.Lock()]
        for _ in range(4):
            for manager, lock in zip(managers, locks):
                await ensure_block(client, manager, lock)
                result = manager.init_producer_id()
                assert result.error is ErrorKind.NONE
                issued.append(result.producer_id)
    assert len(set(issued)) == len(issued), issued
    assert min(issued[1::2]) >= 8, issued   # broker 2's ids skip what its log holds


async def test_a_damaged_counter_is_refused_and_never_guessed_at(etcd: EtcdProcess, tmp_path) -> None:
    manager = ProducerIdManager.open(tmp_path)
    manager.share_blocks()
    async with EtcdClient([etcd.endpoint]) as client:
        for damaged in (b"-5", b"12ab", b"99999999999999999999", b""):
            await client.put(PRODUCER_IDS, damaged)
            with pytest.raises(CoordinationError, match="not a producer id counter"):
                await ensure_block(client, manager, trio.Lock())
            assert manager.init_producer_id().error is ErrorKind.COORDINATOR_NOT_AVAILABLE
        await client.put(PRODUCER_IDS, b"5000")     # repaired: allocation goes on from it
        await ensure_block(client, manager, trio.Lock())
    assert manager.init_producer_id().producer_id == 5000


async def test_etcd_unreachable_is_a_coordination_error_within_the_deadline(etcd: EtcdProcess) -> None:
    endpoint = etcd.endpoint
    etcd.stop()
    async with EtcdClient([endpoint], request_timeout=2) as client:
        with trio.fail_after(15):
            with pytest.raises(CoordinationError, match="cannot reserve producer ids"):
                await allocate_block(client, 1000, 0)

