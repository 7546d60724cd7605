"""ListOffsets: turn a timestamp into an offset.

Per partition, by ``timestamp``:

* -1 (latest): the high watermark (with ``isolation_level`` read_committed it would be the
  last stable offset — the same value here, as we have no transactions);
* -2 (earliest): the log start offset;
* -3 (max timestamp, v7+): the record with the largest timestamp. We index batches, not
  records, so we answer the *last* offset of the batch holding the largest ``maxTimestamp``
  (what Kafka itself answered before KAFKA-16310) — it walks every batch header, fine for an
  admin query;
* T >= 0: the first record whose timestamp is >= T, and that timestamp; none: offset -1,
  timestamp -1. The log finds the first *batch* whose ``maxTimestamp >= T``; we decode that one
  batch (decompressing if needed) to find the exact record, as Kafka does.

Special timestamps answer ``timestamp = -1``. ``current_leader_epoch`` (v4+) is fenced like in
Fetch; ``leader_epoch`` is the partition's (0 on one broker, etcd's in a cluster).

Version notes: v0 (a list of offsets) is not served; v1 single offset + timestamp; v2
isolation_level and throttle time; v4 leader epochs; v6 flexible; v7 allows -3.
"""

from __future__ import annotations

from broker.errors import BrokerError
from broker.log.partition_log import PartitionLog
from broker.security.authorizer import Operation, ResourceType
from modes.pull.context import RequestContext, now_ms
from modes.pull.errors import error_code_for
from modes.pull.registry import api
from wire.kafka.batch import InvalidBatch, split_batches
from wire.kafka.errors import ErrorCode
from wire.kafka.messages.produce_fetch import LIST_OFFSETS
from wire.kafka.records import decode_batch

LATEST = -1
EARLIEST = -2
MAX_TIMESTAMP = -3
FIRST_MAX_TIMESTAMP_VERSION = 7


@api(LIST_OFFSETS)
async def handle_list_offsets(ctx: RequestContext, request: dict) -> dict:
    registry = ctx.broker.topics
    topics = []
    for wanted_topic in request["topics"]:
        topic = registry.get(wanted_topic["name"])
        describable = ctx.allowed(Operation.DESCRIBE, ResourceType.TOPIC, wanted_topic["name"])
        partitions = []
        for wanted in wanted_topic["partitions"]:
            index = wanted["partition_index"]
            out = {"partition_index": index, "error_code": ErrorCode.NONE, "timestamp": -1,
                   "offset": -1, "leader_epoch": ctx.broker.leader_epoch(wanted_topic["name"], index)}
            partitions.append(out)
            if not describable:
                out["error_code"] = ErrorCode.TOPIC_AUTHORIZATION_FAILED
                continue
            not_leader = ctx.broker.leadership_error(wanted_topic["name"], index)
            if not_leader is not None or topic is None or not 0 <= index < len(topic.partitions):
                out["error_code"] = not_leader or ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
                continue
            epoch_error = ctx.broker.epoch_error(wanted_topic["name"], index, wanted["current_leader_epoch"])
            if epoch_error is not None:
                out["error_code"] = epoch_error
                continue
            try:
                found = _lookup(topic.partitions[index], wanted["timestamp"], ctx.version)
            except (BrokerError, OSError) as exc:
                if isinstance(exc, OSError):
                    topic.partitions[index].record_io_error("read", exc, now_ms())
                out["error_code"] = error_code_for(exc)
                continue
            if isinstance(found, ErrorCode):
                out["error_code"] = found
            else:
                out["offset"], out["timestamp"] = found
        topics.append({"name": wanted_topic["name"], "partitions": partitions})
    return {"throttle_time_ms": 0, "topics": topics}


def _lookup(log: PartitionLog, timestamp: int, version: int) -> tuple[int, int] | ErrorCode:
    if timestamp == LATEST:
        return log.high_watermark, -1
    if timestamp == EARLIEST:
        return log.log_start_offset, -1
    if timestamp == MAX_TIMESTAMP and version >= FIRST_MAX_TIMESTAMP_VERSION:
        best: tuple[int, int] | None = None
        for _, header in log.batches():
            if best is None or header.max_timestamp > best[1]:
                best = (header.last_offset, header.max_timestamp)
        return best if best is not None else (-1, -1)
    if timestamp < 0:
        return ErrorCode.INVALID_REQUEST  # -4/-5 are tiered-storage queries we do not serve
    found = log.offset_for_timestamp(timestamp)
    if found is None:
        return -1, -1
    base_offset, max_timestamp = found
    try:
        batch = split_batches(log.read(base_offset, 1))[0]
        for record in decode_batch(batch, check_crc=False):
            if record.timestamp >= timestamp and record.offset >= log.log_start_offset:
                return record.offset, record.timestamp
    except (InvalidBatch, IndexError):
        pass  # a batch we cannot decode: fall back to batch granularity below
    return base_offset, max_timestamp
