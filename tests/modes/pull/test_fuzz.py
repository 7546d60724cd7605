"""Arbitrary and mutated requests: a connection either answers, or closes with a protocol
error — it never fails with an internal error (which would mean a handler bug), and the
broker keeps serving.

The requests start from a valid example of every API we serve and get random bytes
overwritten, truncated or appended, so that most of them still decode and reach a handler
with odd values (negative partitions, huge offsets, null names ...).
"""

from __future__ import annotations

import struct

import trio
import trio.testing
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from broker.config import BrokerConfig, KafkaConfig
from broker.state import BrokerState
from broker.stats import ServerInfo
from modes.pull.api.fetch import MAX_WAIT_CAP_SECONDS
from modes.pull.context import PullBroker
from modes.pull.coordination import Coordination
from modes.pull.errors import CloseConnection
from modes.pull.server import Connection
from tests.modes.pull.test_golden import ONE_RECORD_BATCH
from wire.errors import RemoteProtocolError
from wire.kafka import codec
from wire.kafka.framing import FrameParser, encode_request
from wire.kafka.messages import REQUESTS

PARTITIONS = [{"partition": 0, "fetch_offset": 0, "partition_max_bytes": 1000}]
EXAMPLES = {
    (0, 9): {"acks": 1, "timeout_ms": 10, "topic_data": [{"name": "t", "partition_data": [
        {"index": 0, "records": ONE_RECORD_BATCH}]}]},
    (0, 3): {"acks": -1, "timeout_ms": 10, "topic_data": [{"name": "t", "partition_data": [
        {"index": 0, "records": ONE_RECORD_BATCH}]}]},
    (1, 4): {"max_wait_ms": 0, "min_bytes": 1, "topics": [{"topic": "t", "partitions": PARTITIONS}]},
    (1, 12): {"max_wait_ms": 0, "min_bytes": 1, "topics": [{"topic": "t", "partitions": PARTITIONS}]},
    (2, 7): {"replica_id": -1, "topics": [{"name": "t", "partitions": [{"partition_index": 0, "timestamp": 5}]}]},
    (3, 1): {"topics": [{"name": "t"}]},
    (3, 12): {"topics": [{"name": "t"}]},
    (18, 3): {"client_software_name": "x", "client_software_version": "1"},
    (19, 7): {"topics": [{"name": "n", "num_partitions": 1, "replication_factor": 1,
                          "configs": [{"name": "retention.ms", "value": "5"}]}]},
    (20, 6): {"topics": [{"name": "n"}], "timeout_ms": 5},
    (32, 4): {"resources": [{"resource_type": 2, "resource_name": "t", "configuration_keys": None}]},
    (37, 3): {"topics": [{"name": "t", "count": 3, "assignments": [{"broker_ids": [0]}]}], "timeout_ms": 5},
    (37, 0): {"topics": [{"name": "t", "count": 2, "assignments": None}], "timeout_ms": 5, "validate_only": True},
    (42, 2): {"groups_names": ["g", ""]},
    (42, 0): {"groups_names": ["g"]},
    (8, 8): {"group_id": "g", "generation_id_or_member_epoch": -1, "member_id": "", "topics": [
        {"name": "t", "partitions": [{"partition_index": 0, "committed_offset": 1, "committed_metadata": "m"}]}]},
    (9, 7): {"group_id": "g", "topics": None},
    (9, 1): {"group_id": "g", "topics": [{"name": "t", "partition_indexes": [0, 1]}]},
    (10, 3): {"key": "g", "key_type": 0},
    (11, 7): {"group_id": "g", "session_timeout_ms": 6000, "rebalance_timeout_ms": 6000, "member_id": "",
              "protocol_type": "consumer", "protocols": [{"name": "range", "metadata": b"\x00\x00"}]},
    (11, 0): {"group_id": "g", "session_timeout_ms": 6000, "member_id": "",
              "protocol_type": "consumer", "protocols": [{"name": "range", "metadata": b""}]},
    (12, 4): {"group_id": "g", "generation_id": 1, "member_id": "m"},
    (13, 4): {"group_id": "g", "members": [{"member_id": "m"}]},
    (14, 4): {"group_id": "g", "generation_id": 1, "member_id": "m", "assignments": [
        {"member_id": "m", "assignment": b"x"}]},
    (15, 5): {"groups": ["g", ""]},
    (16, 4): {"states_filter": ["Empty"]},
    (22, 4): {"transactional_id": None, "transaction_timeout_ms": 5},
    (23, 4): {"replica_id": -1, "topics": [{"topic": "t", "partitions": [
        {"partition": 0, "current_leader_epoch": 0, "leader_epoch": 0}]}]},
}


def example_frames() -> list[bytes]:
    frames = []
    for (api_key, version), values in EXAMPLES.items():
        request = REQUESTS[api_key]
        frames.append(encode_request(api_key, version, 1, "fuzz", codec.encode(request, version, values),
                                     flexible_header=request.is_flexible(version))[4:])
    return frames


@st.composite
def mutated_frames(draw) -> bytes:
    frame = bytearray(draw(st.sampled_from(example_frames())))
    # Keep the header's api key and version intact so most bodies reach their handler.
    for _ in range(draw(st.integers(1, 3))):
        position = draw(st.integers(4, len(frame) - 1))
        frame[position] = draw(st.sampled_from([0x00, 0x01, 0x7F, 0x80, 0xFF, draw(st.integers(0, 255))]))
    change = draw(st.sampled_from(["none", "none", "none", "truncate", "append"]))
    if change == "truncate":
        frame = frame[: draw(st.integers(8, len(frame)))]
    elif change == "append":
        frame += draw(st.binary(min_size=1, max_size=8))
    return bytes(frame)


async def serve_one(broker: PullBroker, frame: bytes) -> None:
    client, server = trio.testing.memory_stream_pair()
    connection = Connection(broker, server, ("127.0.0.1", 9092), FrameParser(1 << 20))

    async def talk() -> None:
        await client.send_all(struct.pack(">i", len(frame)) + frame)
        await client.aclose()

    # Virtual seconds: past the longest long poll a Fetch may hold (a mutated max_wait_ms and
    # min_bytes can ask for it), so only a real hang trips it.
    with trio.fail_after(MAX_WAIT_CAP_SECONDS + 5):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(talk)
            # The group timers, as serve_kafka runs them: a held JoinGroup completes when the
            # (virtual) initial rebalance delay has passed.
            nursery.start_soon(broker.coord.groups.run_timers)
            try:
                await connection.run()
            except (RemoteProtocolError, CloseConnection, trio.BrokenResourceError, trio.ClosedResourceError):
                pass
            nursery.cancel_scope.cancel()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(frame=st.one_of(mutated_frames(), st.binary(min_size=8, max_size=64)))
# Found by hypothesis: Fetch v4 with max_wait_ms and min_bytes mutated to ~16.7 million, which
# holds the 30 s (virtual) long poll to its cap.
@example(frame=b"\x00\x01\x00\x04\x00\x00\x00\x01\x00\x04fuzz\xff\xff\xff\xff\x01\x00\x00\x00\x01\x00\x00\x01"
               b"\x7f\xff\xff\xff\x00\x00\x00\x00\x01\x00\x01t\x00\x00\x00\x01" + bytes(12) + b"\x00\x00\x03\xe8")
def test_mutated_requests_never_cause_internal_errors(tmp_path, frame):
    config = BrokerConfig(data_dir=tmp_path / "data", kafka=KafkaConfig(listen="127.0.0.1:0"))
    state = BrokerState.open(config, now_ms=0)
    topics = state.topics
    # A mutated CreateTopics/CreatePartitions may ask for thousands of partitions; they would
    # persist into every later example (same data dir). A small budget keeps each one quick.
    topics.max_total_partitions = 64
    try:
        if topics.get("t") is None:
            topics.create("t", 1, now_ms=0)
        # The Coordination holds a trio.Lock: built inside the trio run that uses it.
        async def serve_with_coordination() -> None:
            broker = PullBroker(config=config, topics=topics, info=ServerInfo(config=config, started_at_ms=0),
                                coordination=Coordination.around(state))
            await serve_one(broker, frame)

        # Virtual time (safe: only in-memory streams here), so that a mutated max_wait_ms
        # long poll (or a JoinGroup held for a rebalance) passes instantly while a real hang
        # still trips fail_after. The threshold is not 0 because OffsetCommit fsyncs in a
        # worker thread: the clock must not jump while that (real) work runs.
        trio.run(serve_with_coordination, clock=trio.testing.MockClock(autojump_threshold=0.05))
    finally:
        state.close()
