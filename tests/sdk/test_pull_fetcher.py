"""The consumer's fetch engine (``dualmq.pull.fetcher``) against a scripted fake client.

No broker and no sockets: the fake answers every Fetch at once with one batch starting at the
requested offset, so the tests can drive the fetcher and the consumer's side of the prefetch
queue step by step and look for lost wake-ups.
"""

from __future__ import annotations

import pytest
import trio
import trio.testing

from dualmq.pull.fetcher import FETCH, Fetcher
from wire.kafka.records import build_batch

pytestmark = pytest.mark.timeout(30)

TP = ("t", 0)


class FakeClient:
    """Just enough of ``KafkaClient`` for a ``Fetcher``: one broker (node 0) leads everything."""

    request_timeout = 5.0

    def __init__(self, records_per_fetch: int = 3) -> None:
        self.records_per_fetch = records_per_fetch
        self.fetches: list[int] = []  # fetch_offset of every Fetch issued
        self.gate: trio.Event | None = None  # when set to an unset Event, fetches wait for it

    def leader(self, topic: str, partition: int) -> int:
        return 0

    async def refresh_metadata(self, topics) -> None:
        await trio.lowlevel.checkpoint()

    async def request(self, api_key: int, request: dict, **_options) -> dict:
        assert api_key == FETCH
        wanted = request["topics"][0]["partitions"][0]
        offset = wanted["fetch_offset"]
        self.fetches.append(offset)
        if self.gate is not None:
            await self.gate.wait()
        await trio.lowlevel.checkpoint()
        count = self.records_per_fetch
        batch = build_batch([(None, b"v%d" % (offset + i), None) for i in range(count)],
                            base_offset=offset, base_timestamp=0)
        return {"error_code": 0, "responses": [{"topic": TP[0], "partitions": [{
            "partition_index": TP[1], "error_code": 0, "high_watermark": 1_000_000,
            "log_start_offset": 0, "records": batch}]}]}


async def test_fetcher_never_loses_a_wake_up_when_the_application_frees_a_slot() -> None:
    # Regression: run() and the node loop shared one trio.Event that each replaced after
    # waking. A poke that gave the node loop nothing to do (its prefetch queue still full:
    # the consumer pokes on seeks, pauses, metadata) woke both; when the node loop ran first
    # it replaced the event and parked on the new one, then run() replaced that one too.
    # Nobody ever set the event the node loop slept on, so the release below never reached
    # it and the consumer stopped receiving for good (the "slow consumer of 4 KiB records
    # stalls at ~765" report). Trio runs tasks woken together in a random order, so each
    # round had about even odds of losing the node loop; 200 rounds catch it every time.
    client = FakeClient()
    fetcher = Fetcher(client, lambda: None, prefetch=1)
    fetcher.assign([TP])
    fetcher.states[TP].seek(0)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(fetcher.run)
        for round_ in range(200):
            await trio.testing.wait_all_tasks_blocked()
            assert len(fetcher.completed) == 1, f"no fetch after round {round_}: the fetcher stalled"
            fetcher.poke()  # nothing to do for the node loop: its one prefetch slot is taken
            await trio.testing.wait_all_tasks_blocked()
            # What the consumer does with a completed fetch: take it off the queue, release it.
            fetcher.release(fetcher.completed.popleft())
        nursery.cancel_scope.cancel()
    assert client.fetches == [3 * i for i in range(201)]


async def test_seek_during_an_in_flight_fetch_refetches_from_the_new_position() -> None:
    client = FakeClient()
    client.gate = trio.Event()
    fetcher = Fetcher(client, lambda: None, prefetch=1)
    fetcher.assign([TP])
    fetcher.states[TP].seek(0)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(fetcher.run)
        await trio.testing.wait_all_tasks_blocked()
        assert client.fetches == [0]
        fetcher.states[TP].seek(100)
        fetcher.poke()
        client.gate.set()
        client.gate = None
        await trio.testing.wait_all_tasks_blocked()
        # The answer for offset 0 was for an abandoned position: dropped, and a new Fetch
        # went out from 100 without anyone having to poke again.
        assert client.fetches == [0, 100]
        assert [cf.end_offset for cf in fetcher.completed] == [103]
        nursery.cancel_scope.cancel()


async def test_reassignment_returns_the_prefetch_slots_of_dropped_fetches() -> None:
    client = FakeClient()
    fetcher = Fetcher(client, lambda: None, prefetch=1)
    fetcher.assign([TP, ("t", 1)])
    fetcher.states[TP].seek(0)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(fetcher.run)
        await trio.testing.wait_all_tasks_blocked()
        assert len(fetcher.completed) == 1 and fetcher._buffered[0] == 1
        # Partition 0 is taken away (a rebalance) before the application read its data.
        fetcher.assign([("t", 1)])
        assert not fetcher.completed and fetcher._buffered[0] == 0
        nursery.cancel_scope.cancel()
