"""Group, offset, producer-id and epoch APIs through the real listener, one request at a time:
the happy paths at several versions and the error codes of issue 5's "bad input" list, each
checked not to disturb another group.
"""

from __future__ import annotations

import trio

from tests.modes.pull.raw import pull_broker
from wire.kafka.errors import ErrorCode
from wire.kafka.records import build_batch

TS = 1_700_000_000_000
FAST = {"group_initial_rebalance_delay_ms": 0}
PROTOCOLS = [{"name": "range", "metadata": b"\x00\x00meta"}]


def join_request(group: str, member_id: str = "", *, session: int = 6000, rebalance: int = 5000,
                 protocols=PROTOCOLS, protocol_type: str = "consumer") -> dict:
    return {"group_id": group, "session_timeout_ms": session, "rebalance_timeout_ms": rebalance,
            "member_id": member_id, "protocol_type": protocol_type, "protocols": protocols}


async def join(client, group: str, version: int = 7, **kwargs) -> dict:
    """A full join: with v4+ the MEMBER_ID_REQUIRED round trip first."""
    response = await client.call(11, version, join_request(group, **kwargs))
    if response["error_code"] == ErrorCode.MEMBER_ID_REQUIRED:
        assert response["member_id"].startswith("raw-")
        response = await client.call(11, version, join_request(group, response["member_id"], **kwargs))
    return response


def commit_request(group: str, offset: int, *, generation: int = -1, member: str = "", topic: str = "t",
                   partition: int = 0, metadata: str | None = "m") -> dict:
    return {"group_id": group, "generation_id_or_member_epoch": generation, "member_id": member,
            "topics": [{"name": topic, "partitions": [
                {"partition_index": partition, "committed_offset": offset, "committed_metadata": metadata}]}]}


def commit_code(response: dict) -> int:
    return response["topics"][0]["partitions"][0]["error_code"]


async def fetched(client, group: str, topic: str = "t", partition: int = 0, version: int = 7) -> int:
    response = await client.call(9, version, {"group_id": group, "topics": [
        {"name": topic, "partition_indexes": [partition]}]})
    return response["topics"][0]["partitions"][0]["committed_offset"]


async def test_find_coordinator_is_us_for_groups_only(tmp_path):
    async with pull_broker(tmp_path) as broker:
        client = await broker.connect()
        for version in (0, 1, 3):
            response = await client.call(10, version, {"key": "g", "key_type": 0})
            assert (response["error_code"], response["node_id"], response["host"], response["port"]) == (
                0, 0, "127.0.0.1", broker.port)
        transactional = await client.call(10, 3, {"key": "tx", "key_type": 1})
        assert (transactional["error_code"], transactional["node_id"]) == (ErrorCode.INVALID_REQUEST, -1)
        assert transactional["error_message"]


async def test_single_member_join_sync_heartbeat_leave(tmp_path):
    async with pull_broker(tmp_path, **FAST) as broker:
        client = await broker.connect()
        first = await client.call(11, 4, join_request("g"))
        assert first["error_code"] == ErrorCode.MEMBER_ID_REQUIRED and first["generation_id"] == -1
        joined = await client.call(11, 4, join_request("g", first["member_id"]))
        member = joined["member_id"]
        assert (joined["error_code"], joined["generation_id"], joined["leader"], joined["protocol_name"]) == (
            0, 1, member, "range")
        assert joined["members"] == [{"member_id": member, "group_instance_id": None, "metadata": b"\x00\x00meta"}]
        synced = await client.call(14, 4, {"group_id": "g", "generation_id": 1, "member_id": member,
                                           "assignments": [{"member_id": member, "assignment": b"mine"}]})
        assert (synced["error_code"], synced["assignment"]) == (0, b"mine")
        assert (await client.call(12, 4, {"group_id": "g", "generation_id": 1, "member_id": member}))[
            "error_code"] == 0
        described = (await client.call(15, 5, {"groups": ["g", "nope"]}))["groups"]
        assert (described[0]["group_state"], described[0]["protocol_data"]) == ("Stable", "range")
        assert described[0]["members"][0]["member_assignment"] == b"mine"
        assert described[0]["members"][0]["client_host"] == "127.0.0.1"
        assert (described[1]["group_state"], described[1]["members"]) == ("Dead", [])
        listed = await client.call(16, 4, {"states_filter": ["stable"]})
        assert [(g["group_id"], g["group_state"]) for g in listed["groups"]] == [("g", "Stable")]
        left = await client.call(13, 4, {"group_id": "g", "members": [{"member_id": member}, {"member_id": "x"}]})
        assert [m["error_code"] for m in left["members"]] == [0, ErrorCode.UNKNOWN_MEMBER_ID]
        # v0-2 answer with the member's own error.
        assert (await client.call(13, 1, {"group_id": "g", "member_id": member}))["error_code"] == (
            ErrorCode.UNKNOWN_MEMBER_ID)
        listed = await client.call(16, 0, {})
        assert [g["group_id"] for g in listed["groups"]] == ["g"]


async def test_two_members_rebalance_and_follower_assignments_are_ignored(tmp_path):
    async with pull_broker(tmp_path, group_initial_rebalance_delay_ms=200) as broker:
        a, b = await broker.connect(), await broker.connect()
        results = {}

        async def run(name, client, version):
            results[name] = await join(client, "g2", version=version)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(run, "a", a, 7)
            nursery.start_soon(run, "b", b, 0)  # v0: no rebalance timeout, no MEMBER_ID_REQUIRED
        ra, rb = results["a"], results["b"]
        assert ra["generation_id"] == rb["generation_id"] == 1
        leader, follower = (ra, rb) if ra["member_id"] == ra["leader"] else (rb, ra)
        assert len(leader["members"]) == 2 and follower["members"] == []
        clients = {ra["member_id"]: a, rb["member_id"]: b}
        versions = {ra["member_id"]: 4, rb["member_id"]: 0}
        synced = {}

        async def sync(response, assignments):
            member = response["member_id"]
            synced[member] = await clients[member].call(14, versions[member], {
                "group_id": "g2", "generation_id": 1, "member_id": member, "assignments": assignments})

        async with trio.open_nursery() as nursery:
            # The follower sends assignments of its own: Kafka ignores them, and so do we.
            nursery.start_soon(sync, follower, [{"member_id": follower["member_id"], "assignment": b"grab"},
                                                {"member_id": leader["member_id"], "assignment": b"grab"}])
            await trio.sleep(0.1)
            nursery.start_soon(sync, leader, [{"member_id": leader["member_id"], "assignment": b"L"},
                                              {"member_id": follower["member_id"], "assignment": b"F"}])
        assert synced[leader["member_id"]]["assignment"] == b"L"
        assert synced[follower["member_id"]]["assignment"] == b"F"


async def test_bad_group_input_gets_kafka_codes_and_leaves_other_groups_alone(tmp_path):
    async with pull_broker(tmp_path, **FAST) as broker:
        broker.topics.create("t", 2, now_ms=0)
        client = await broker.connect()
        good = await join(client, "good")
        member, generation = good["member_id"], good["generation_id"]
        await client.call(14, 4, {"group_id": "good", "generation_id": generation, "member_id": member,
                                  "assignments": [{"member_id": member, "assignment": b"A"}]})
        assert commit_code(await client.call(8, 8, commit_request("good", 5, generation=generation,
                                                                  member=member))) == 0

        # Absurd session timeouts.
        for session in (0, 1, 5999, 1_800_001, 2**31 - 1, -1):
            response = await client.call(11, 7, join_request("good", session=session))
            assert response["error_code"] == ErrorCode.INVALID_SESSION_TIMEOUT
        # A member id the group never issued (a "duplicate"/forged id) and an empty group id.
        assert (await client.call(11, 7, join_request("good", "forged-id")))["error_code"] == (
            ErrorCode.UNKNOWN_MEMBER_ID)
        assert (await client.call(11, 7, join_request("")))["error_code"] == ErrorCode.INVALID_GROUP_ID
        # Another protocol type, or no common assignor.
        assert (await client.call(11, 7, join_request("good", protocol_type="connect")))["error_code"] == (
            ErrorCode.INCONSISTENT_GROUP_PROTOCOL)
        assert (await client.call(11, 7, join_request("good", protocols=[])))["error_code"] == (
            ErrorCode.INCONSISTENT_GROUP_PROTOCOL)
        # Heartbeats from unknown members, unknown groups, stale generations.
        hb = {"group_id": "good", "generation_id": generation, "member_id": "who"}
        assert (await client.call(12, 4, hb))["error_code"] == ErrorCode.UNKNOWN_MEMBER_ID
        assert (await client.call(12, 0, {**hb, "group_id": "nope"}))["error_code"] == ErrorCode.UNKNOWN_MEMBER_ID
        assert (await client.call(12, 4, {**hb, "member_id": member, "generation_id": generation - 1}))[
            "error_code"] == ErrorCode.ILLEGAL_GENERATION
        # Sync from strangers and stale generations.
        sync = {"group_id": "good", "generation_id": generation, "member_id": "who", "assignments": []}
        assert (await client.call(14, 4, sync))["error_code"] == ErrorCode.UNKNOWN_MEMBER_ID
        assert (await client.call(14, 4, {**sync, "member_id": member, "generation_id": 99}))["error_code"] == (
            ErrorCode.ILLEGAL_GENERATION)
        # Commits from stale generations and unknown members store nothing.
        stale = await client.call(8, 8, commit_request("good", 999, generation=generation - 1, member=member))
        assert commit_code(stale) == ErrorCode.ILLEGAL_GENERATION
        stranger = await client.call(8, 2, commit_request("good", 999, generation=generation, member="who"))
        assert commit_code(stranger) == ErrorCode.UNKNOWN_MEMBER_ID
        simple = await client.call(8, 8, commit_request("good", 999))
        assert commit_code(simple) == ErrorCode.UNKNOWN_MEMBER_ID  # generation -1 on a live group
        assert await fetched(client, "good") == 5
        # Leave for members that are not there.
        assert (await client.call(13, 0, {"group_id": "good", "member_id": "who"}))["error_code"] == (
            ErrorCode.UNKNOWN_MEMBER_ID)
        # After all of that the good group is untouched: still Stable, same generation, member alive.
        assert (await client.call(12, 4, {"group_id": "good", "generation_id": generation,
                                          "member_id": member}))["error_code"] == 0
        described = (await client.call(15, 5, {"groups": ["good"]}))["groups"][0]
        assert (described["group_state"], len(described["members"])) == ("Stable", 1)


async def test_offset_commit_and_fetch_rules(tmp_path):
    async with pull_broker(tmp_path, **FAST) as broker:
        broker.topics.create("t", 2, now_ms=0)
        client = await broker.connect()
        # Nothing committed: -1 (also for unknown groups), with empty metadata.
        nothing = await client.call(9, 1, {"group_id": "s", "topics": [{"name": "t", "partition_indexes": [0]}]})
        assert nothing["topics"][0]["partitions"][0] == {
            "partition_index": 0, "committed_offset": -1, "committed_leader_epoch": -1, "metadata": "",
            "error_code": 0}
        # A simple (generation -1) commit; beyond the high watermark is accepted, as in Kafka.
        assert broker.topics.partition("t", 0).high_watermark == 0
        assert commit_code(await client.call(8, 8, commit_request("s", 1234))) == 0
        assert await fetched(client, "s") == 1234
        assert commit_code(await client.call(8, 8, commit_request("s", 7, partition=1))) == 0
        unknown = await client.call(8, 8, commit_request("s", 1, topic="nope"))
        assert commit_code(unknown) == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
        assert commit_code(await client.call(8, 8, commit_request("s", 1, partition=2))) == (
            ErrorCode.UNKNOWN_TOPIC_OR_PARTITION)
        too_large = await client.call(8, 8, commit_request("s", 1, metadata="x" * 4097))
        assert commit_code(too_large) == ErrorCode.OFFSET_METADATA_TOO_LARGE
        assert await fetched(client, "s") == 1234
        # topics = null: every committed partition.
        everything = await client.call(9, 7, {"group_id": "s", "topics": None})
        assert everything["error_code"] == 0
        assert [(t["name"], [(p["partition_index"], p["committed_offset"]) for p in t["partitions"]])
                for t in everything["topics"]] == [("t", [(0, 1234), (1, 7)])]
        # The commit made "s" a known (Empty) group.
        listed = await client.call(16, 4, {"states_filter": []})
        assert [(g["group_id"], g["group_state"]) for g in listed["groups"]] == [("s", "Empty")]
        # Deleting the topic drops its commits.
        await client.call(20, 6, {"topics": [{"name": "t"}], "timeout_ms": 1000})
        broker.topics.create("t", 2, now_ms=0)
        assert await fetched(client, "s") == -1


async def test_committed_offsets_survive_a_restart(tmp_path):
    async with pull_broker(tmp_path) as broker:
        broker.topics.create("t", 1, now_ms=0)
        client = await broker.connect()
        assert commit_code(await client.call(8, 3, commit_request("durable", 42, metadata=None))) == 0
    async with pull_broker(tmp_path) as broker:
        client = await broker.connect()
        assert await fetched(client, "durable", version=1) == 42
        listed = await client.call(16, 3, {})
        assert [(g["group_id"], g["protocol_type"]) for g in listed["groups"]] == [("durable", "")]


async def test_delete_groups_only_empty_ones_and_their_offsets_stay_gone(tmp_path):
    async with pull_broker(tmp_path, **FAST) as broker:
        broker.topics.create("t", 1, now_ms=0)
        client = await broker.connect()
        assert commit_code(await client.call(8, 8, commit_request("idle", 5))) == 0
        assert commit_code(await client.call(8, 8, commit_request("keep", 9))) == 0
        member = await join(client, "busy")
        assert member["error_code"] == 0
        response = await client.call(42, 2, {"groups_names": ["busy", "nope", "", "idle"]})
        assert [(r["group_id"], r["error_code"]) for r in response["results"]] == [
            ("busy", ErrorCode.NON_EMPTY_GROUP), ("nope", ErrorCode.GROUP_ID_NOT_FOUND),
            ("", ErrorCode.INVALID_GROUP_ID), ("idle", 0)]
        assert await fetched(client, "idle") == -1 and await fetched(client, "keep") == 9
        listed = await client.call(16, 4, {"states_filter": []})
        assert sorted(g["group_id"] for g in listed["groups"]) == ["busy", "keep"]
        again = await client.call(42, 0, {"groups_names": ["idle"]})
        assert again["results"][0]["error_code"] == ErrorCode.GROUP_ID_NOT_FOUND
    async with pull_broker(tmp_path) as broker:  # the deletion was durable
        client = await broker.connect()
        assert await fetched(client, "idle") == -1 and await fetched(client, "keep") == 9


async def test_init_producer_id(tmp_path):
    async with pull_broker(tmp_path) as broker:
        client = await broker.connect()
        first = await client.call(22, 0, {"transactional_id": None, "transaction_timeout_ms": 1000})
        second = await client.call(22, 4, {"transactional_id": None, "transaction_timeout_ms": 1000})
        assert first["error_code"] == second["error_code"] == 0
        assert second["producer_id"] > first["producer_id"] >= 0 and first["producer_epoch"] == 0
        bumped = await client.call(22, 3, {"transactional_id": None, "transaction_timeout_ms": 1000,
                                           "producer_id": second["producer_id"], "producer_epoch": 0})
        assert (bumped["error_code"], bumped["producer_id"], bumped["producer_epoch"]) == (
            0, second["producer_id"], 1)
        stale = await client.call(22, 4, {"transactional_id": None, "transaction_timeout_ms": 1000,
                                          "producer_id": second["producer_id"], "producer_epoch": 0})
        assert stale["error_code"] == ErrorCode.INVALID_PRODUCER_EPOCH
        transactional = await client.call(22, 4, {"transactional_id": "tx", "transaction_timeout_ms": 1000})
        assert (transactional["error_code"], transactional["producer_id"]) == (ErrorCode.INVALID_REQUEST, -1)


async def produce_to(client, records: bytes) -> dict:
    """Produce v9, acks=all, to partition 0 of topic "t"; the partition's response."""
    response = await client.call(0, 9, {"acks": -1, "timeout_ms": 1000, "topic_data": [
        {"name": "t", "partition_data": [{"index": 0, "records": records}]}]})
    return response["responses"][0]["partition_responses"][0]


def idempotent_batch(count: int, *, pid: int, epoch: int = 0, seq: int) -> bytes:
    return build_batch([(None, b"v%d" % (seq + i), None) for i in range(count)], base_timestamp=TS,
                       producer_id=pid, producer_epoch=epoch, base_sequence=seq)


async def test_idempotent_produce_duplicate_gap_and_stale_epoch(tmp_path):
    async with pull_broker(tmp_path) as broker:
        broker.topics.create("t", 1, now_ms=0)
        client = await broker.connect()
        pid = (await client.call(22, 4, {"transactional_id": None, "transaction_timeout_ms": 1}))["producer_id"]

        first = idempotent_batch(3, pid=pid, seq=0)
        assert (await produce_to(client, first))["base_offset"] == 0
        assert (await produce_to(client, idempotent_batch(2, pid=pid, seq=3)))["base_offset"] == 3
        retry = await produce_to(client, first)
        assert (retry["error_code"], retry["base_offset"]) == (0, 0)
        gap = await produce_to(client, idempotent_batch(1, pid=pid, seq=9))
        assert gap["error_code"] == ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER
        # The producer bumps its epoch; the old epoch is fenced from then on.
        assert (await produce_to(client, idempotent_batch(1, pid=pid, epoch=1, seq=0)))["base_offset"] == 5
        zombie = await produce_to(client, idempotent_batch(1, pid=pid, epoch=0, seq=5))
        assert zombie["error_code"] == ErrorCode.INVALID_PRODUCER_EPOCH
        assert broker.topics.partition("t", 0).high_watermark == 6
    # Rebuilt from the log on restart: the last batch is still recognised.
    async with pull_broker(tmp_path) as broker:
        client = await broker.connect()
        again = await produce_to(client, idempotent_batch(1, pid=pid, epoch=1, seq=0))
        assert (again["error_code"], again["base_offset"]) == (0, 5)
        assert broker.topics.partition("t", 0).high_watermark == 6


async def test_a_damaged_retry_is_refused_as_damaged_not_answered_as_a_duplicate(tmp_path):
    # Kafka checks a batch (size, CRC) before the producer's sequence: a retry whose bytes were
    # damaged on the way is CORRUPT_MESSAGE, never "already written" for data it did not carry.
    async with pull_broker(tmp_path, log={"max_message_bytes": 1000}) as broker:
        broker.topics.create("t", 1, now_ms=0)
        client = await broker.connect()
        pid = (await client.call(22, 4, {"transactional_id": None, "transaction_timeout_ms": 1}))["producer_id"]

        first = idempotent_batch(3, pid=pid, seq=0)
        assert (await produce_to(client, first))["base_offset"] == 0
        damaged = bytearray(first)
        damaged[-1] ^= 0x01
        assert (await produce_to(client, bytes(damaged)))["error_code"] == ErrorCode.CORRUPT_MESSAGE
        too_large = build_batch([(None, b"x" * 2000, None)], base_timestamp=TS, producer_id=pid,
                                producer_epoch=0, base_sequence=0)
        assert (await produce_to(client, too_large))["error_code"] == ErrorCode.MESSAGE_TOO_LARGE
        assert (await produce_to(client, first))["error_code"] == ErrorCode.NONE  # the intact retry still is one
        assert broker.topics.partition("t", 0).high_watermark == 3


async def test_offset_for_leader_epoch(tmp_path):
    async with pull_broker(tmp_path) as broker:
        broker.topics.create("t", 1, now_ms=0)
        broker.topics.partition("t", 0).append(build_batch([(None, b"x", None)] * 4, base_timestamp=TS), TS)
        client = await broker.connect()

        async def ask(leader_epoch, current=-1, topic="t", version=4):
            response = await client.call(23, version, {"replica_id": -1, "topics": [{"topic": topic, "partitions": [
                {"partition": 0, "current_leader_epoch": current, "leader_epoch": leader_epoch}]}]})
            p = response["topics"][0]["partitions"][0]
            return p["error_code"], p["leader_epoch"], p["end_offset"]

        assert await ask(0) == (0, 0, 4)
        assert await ask(0, version=2) == (0, 0, 4)
        assert await ask(-1) == (0, -1, -1)
        assert await ask(3) == (0, -1, -1)
        assert (await ask(0, current=1))[0] == ErrorCode.UNKNOWN_LEADER_EPOCH
        assert (await ask(0, topic="nope"))[0] == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION


async def test_static_member_rejoins_without_rebalance_and_old_id_is_fenced(tmp_path):
    async with pull_broker(tmp_path, **FAST) as broker:
        client = await broker.connect()
        static = {**join_request("st"), "group_instance_id": "consumer-1"}
        joined = await client.call(11, 5, static)  # static members skip MEMBER_ID_REQUIRED
        old_id = joined["member_id"]
        assert (joined["error_code"], joined["generation_id"]) == (0, 1) and old_id.startswith("consumer-1-")
        await client.call(14, 3, {"group_id": "st", "generation_id": 1, "member_id": old_id,
                                  "group_instance_id": "consumer-1",
                                  "assignments": [{"member_id": old_id, "assignment": b"P"}]})
        # The consumer restarts: same instance id, no member id. Same generation, no rebalance.
        again = await client.call(11, 7, static)
        assert (again["error_code"], again["generation_id"]) == (0, 1) and again["member_id"] != old_id
        fenced = await client.call(12, 3, {"group_id": "st", "generation_id": 1, "member_id": old_id,
                                           "group_instance_id": "consumer-1"})
        assert fenced["error_code"] == ErrorCode.FENCED_INSTANCE_ID
        alive = await client.call(12, 4, {"group_id": "st", "generation_id": 1, "member_id": again["member_id"],
                                          "group_instance_id": "consumer-1"})
        assert alive["error_code"] == 0
        synced = await client.call(14, 4, {"group_id": "st", "generation_id": 1, "member_id": again["member_id"],
                                           "group_instance_id": "consumer-1", "assignments": []})
        assert (synced["error_code"], synced["assignment"]) == (0, b"P")
