"""Fetch: serve stored batches from an offset on, long-polling for new data.

Per requested partition — and *every* requested partition appears in the response, data or
not, because kafka-python drops a full-fetch response whose partition set differs from its
request:

* unknown topic/partition: UNKNOWN_TOPIC_OR_PARTITION;
* ``current_leader_epoch`` (v9+): -1 means "don't check"; above the partition's epoch (0 on
  one broker, etcd's in a cluster) is UNKNOWN_LEADER_EPOCH (the client has seen a newer
  leader than us), below is FENCED_LEADER_EPOCH (``PullBroker.epoch_error``);
* ``fetch_offset`` below ``log_start_offset`` or above the log end offset: OFFSET_OUT_OF_RANGE
  (the consumer then applies its reset policy);
* otherwise whole stored batches, starting with the one that *contains* ``fetch_offset``
  (clients skip the records before it), within ``partition_max_bytes`` and the request's
  ``max_bytes`` — except that the first batch of the first partition with data is returned
  even if larger than both (KIP-74), or a consumer whose limit is below one batch would stall.

``high_watermark = last_stable_offset`` (no transactions): the log end on a single broker; in a
cluster, the offset below which every in-sync replica holds the data. ``aborted_transactions``
empty, ``preferred_read_replica`` -1.

Consumers (``replica_id`` -1) are served only below the high watermark: an offset between it
and the log end gets no records (and a long poll waits for the high watermark to move). In a
cluster, a fetch with ``replica_id`` >= 0 is a follower's (docs/cluster.md#replication): it must
come from one of the partition's followers to its leader (else NOT_LEADER_OR_FOLLOWER), it
reads up to the log end, its ``fetch_offset`` tells the leader what the follower holds (which
may move the high watermark), and its long poll waits for the log end to move. On a single
broker ``replica_id`` is ignored.

Long poll: if the response would hold fewer than ``min_bytes`` and no partition had an error,
we wait for an append to any of the requested partitions (``log_runtime.wait_for_data``: one
ticket per partition, one event, no polling) until ``max_wait_ms`` passes, then read again. The wait is bounded by
``MAX_WAIT_CAP_SECONDS`` whatever the client asks.

Fetch sessions (KIP-227, v7+): we never create one, and answer ``session_id = 0``, which tells
kafka-python to keep sending full fetches; a request naming a session (``session_id`` != 0)
can only refer to one we never made: FETCH_SESSION_ID_NOT_FOUND.

Version notes: v4 RecordBatch v2, isolation_level, last_stable_offset, aborted_transactions;
v5 log_start_offset; v7 sessions and top-level error_code; v9 current_leader_epoch; v10 zstd:
we store batches as sent and never recompress, so a v4-9 fetch that would return a zstd batch
gets UNSUPPORTED_COMPRESSION_TYPE for that partition instead (Kafka's rule); v11 rack_id /
preferred_read_replica; v12 flexible.
"""

from __future__ import annotations

import trio

from broker.errors import BrokerError
from broker.log.partition_log import PartitionLog
from broker.security.authorizer import Operation, ResourceType
from modes.pull.context import RequestContext, now_ms
from modes.pull.errors import error_code_for
from modes.pull.log_runtime import wait_for_data
from modes.pull.registry import api
from wire.kafka import compression
from wire.kafka.batch import InvalidBatch, parse_header, split_batches
from wire.kafka.errors import ErrorCode
from wire.kafka.messages.produce_fetch import FETCH

FIRST_ZSTD_VERSION = 10

# No client waits longer than this for one fetch (Kafka's own clients time out requests at
# 30 s); a larger max_wait_ms is clamped so the connection's wait is always bounded.
MAX_WAIT_CAP_SECONDS = 30.0


@api(FETCH, may_block=True)
async def handle_fetch(ctx: RequestContext, request: dict) -> dict:
    if request["session_id"] != 0:
        return {"error_code": ErrorCode.FETCH_SESSION_ID_NOT_FOUND, "session_id": 0, "responses": []}
    deadline = trio.current_time() + min(max(request["max_wait_ms"], 0) / 1000, MAX_WAIT_CAP_SECONDS)
    min_bytes = request["min_bytes"]
    follower = request["replica_id"] >= 0 and ctx.broker.cluster is not None
    while True:
        responses, total, errors, waiting = _read_all(ctx, request, zstd_allowed=ctx.version >= FIRST_ZSTD_VERSION)
        if errors or total >= min_bytes or not waiting or trio.current_time() >= deadline:
            return {"error_code": ErrorCode.NONE, "session_id": 0, "responses": responses}
        if not await wait_for_data(waiting, deadline, log_end=follower):
            # The deadline passed, or a log closed under us (its topic was deleted): read once
            # more so the answer reflects the present, then stop waiting.
            responses, *_ = _read_all(ctx, request, zstd_allowed=ctx.version >= FIRST_ZSTD_VERSION)
            return {"error_code": ErrorCode.NONE, "session_id": 0, "responses": responses}


def _has_zstd(data: bytes) -> bool:
    try:
        return any(parse_header(b).compression == compression.ZSTD for b in split_batches(data))
    except InvalidBatch:
        return False


def _read_all(ctx: RequestContext, request: dict, *, zstd_allowed: bool):
    """One pass over the requested partitions.

    Returns:
        ``(responses, total_bytes, had_errors, waiting)`` where ``waiting`` lists the
        ``(log, high_watermark)`` pairs a long poll would wait on.
    """
    registry = ctx.broker.topics
    cluster = ctx.broker.cluster
    replica_id = request["replica_id"]
    follower = replica_id >= 0 and cluster is not None
    remaining = request["max_bytes"]
    total = 0
    errors = False
    waiting: list[tuple[PartitionLog, int]] = []
    responses = []
    for fetch_topic in request["topics"]:
        name = fetch_topic["topic"]
        topic = registry.get(name)
        readable = ctx.allowed(Operation.READ, ResourceType.TOPIC, name)
        partitions = []
        for wanted in fetch_topic["partitions"]:
            index = wanted["partition"]
            out = {"partition_index": index, "error_code": ErrorCode.NONE, "high_watermark": -1,
                   "last_stable_offset": -1, "log_start_offset": -1, "aborted_transactions": [],
                   "preferred_read_replica": -1, "records": b""}
            partitions.append(out)
            if not readable:
                out["error_code"] = ErrorCode.TOPIC_AUTHORIZATION_FAILED
                errors = True
                continue
            not_leader = ctx.broker.leadership_error(name, index)
            if not_leader is not None or topic is None or not 0 <= index < len(topic.partitions):
                out["error_code"] = not_leader or ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
                errors = True
                continue
            epoch_error = ctx.broker.epoch_error(name, index, wanted["current_leader_epoch"])
            if epoch_error is not None:
                out["error_code"] = epoch_error
                errors = True
                continue
            log = topic.partitions[index]
            offset = wanted["fetch_offset"]
            if follower:
                assert cluster is not None
                if not log.log_start_offset <= offset <= log.log_end_offset:
                    # A follower ahead of its leader (a divergent log) acknowledges nothing.
                    out["error_code"] = ErrorCode.OFFSET_OUT_OF_RANGE
                    errors = True
                    continue
                if not cluster.replication.follower_fetched(name, index, replica_id, offset, log):
                    out["error_code"] = ErrorCode.NOT_LEADER_OR_FOLLOWER
                    errors = True
                    continue
            high_watermark = log.high_watermark
            out["high_watermark"] = out["last_stable_offset"] = high_watermark
            out["log_start_offset"] = log.log_start_offset
            limit = min(wanted["partition_max_bytes"], remaining)
            # A long poll waits for what this reader may see to grow past what it sees now:
            # the high watermark for a consumer, the log end for a follower.
            served_up_to = log.log_end_offset if follower else high_watermark
            waiting.append((log, served_up_to))
            if offset == served_up_to:
                continue
            if total and limit <= 0:
                continue  # the response is full; the client asks again for the rest
            try:
                data = log.read(offset, max(limit, 1), to_log_end=follower)
            except (BrokerError, OSError) as exc:
                if isinstance(exc, OSError):
                    # A failing disk (or no descriptor left): counted and logged, rate-limited.
                    log.record_io_error("read", exc, now_ms())
                out["error_code"] = error_code_for(exc)
                errors = True
                continue
            if total and len(data) > limit:
                continue  # only the first partition with data may exceed the limits
            if not zstd_allowed and _has_zstd(data):
                out["error_code"] = ErrorCode.UNSUPPORTED_COMPRESSION_TYPE
                errors = True
                continue
            out["records"] = data
            total += len(data)
            remaining -= len(data)
        responses.append({"topic": name, "partitions": partitions})
    return responses, total, errors, waiting
