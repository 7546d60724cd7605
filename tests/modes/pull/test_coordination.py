"""Pull mode's runtime around the core: offset flushes queued behind one lock, in threads."""

from __future__ import annotations

from pathlib import Path

import trio

from broker.config import BrokerConfig
from broker.state import BrokerState
from modes.pull.coordination import Coordination

T0 = 1_700_000_000_000


async def test_concurrent_offset_flushes_never_overlap_and_lose_nothing(tmp_path: Path) -> None:
    # Twenty requests commit and flush at once, the store compacting every few hundred bytes:
    # each flush's file work runs in a worker thread while the others queue (the store
    # itself refuses overlapping jobs, so an overlap would fail loudly here).
    config = BrokerConfig(data_dir=tmp_path / "data")
    state = BrokerState.open(config, now_ms=T0)
    state.offsets._compact_after_bytes = 300
    coordination = Coordination.around(state)

    async def request(partition: int) -> None:
        for offset in range(5):
            state.offsets.commit("g", "t", partition, offset, -1, None, T0)
            await coordination.flush_offsets()

    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            for partition in range(20):
                nursery.start_soon(request, partition)
    state.close()
    again = BrokerState.open(config, now_ms=T0)
    assert {p: c.offset for (_, p), c in again.offsets.fetch_all("g").items()} == {p: 4 for p in range(20)}
    again.close()
