"""OffsetForLeaderEpoch: where did a leader epoch end? (log-truncation checks)

Kafka's rule (``LeaderEpochFileCache.endOffsetFor``), answered by the partition's leader from
its log's epoch cache (``PartitionLog.end_offset_for_epoch``): asking for the partition's
current epoch answers ``(that epoch, log end offset)``; asking for -1 or an epoch above the
current one answers ``(-1, -1)`` (undefined); an older epoch answers the largest epoch <= it
that the log holds and the offset where the next epoch starts. On a single broker the epoch
is always 0, so the last case never arises. A follower of a new leader asks this to find
where its log diverged and truncates there before fetching (docs/cluster.md#failover).
``current_leader_epoch`` is fenced as in Fetch (above ours: UNKNOWN_LEADER_EPOCH, below:
FENCED_LEADER_EPOCH); an unknown topic or partition is UNKNOWN_TOPIC_OR_PARTITION, and in a
cluster a broker that does not lead the partition answers NOT_LEADER_OR_FOLLOWER.
``replica_id`` (v3+) is not checked: the answer is the same for consumers and followers.

librdkafka master asks exactly v2 and kafka-python v4; both then validate their position
instead of logging that validation is unsupported.

Version notes: v2 current_leader_epoch, throttle time; v3 replica_id; v4 flexible.
"""

from __future__ import annotations

from broker.log.partition_log import PartitionLog
from broker.security.authorizer import Operation, ResourceType
from modes.pull.context import RequestContext
from modes.pull.registry import api
from wire.kafka.errors import ErrorCode
from wire.kafka.messages.produce_fetch import OFFSET_FOR_LEADER_EPOCH


def end_offset_for(log: PartitionLog, asked: int, current: int) -> tuple[int, int]:
    """Where epoch ``asked`` ends in this leader's log, ``current`` being the partition's
    epoch now: ``(asked, log end)`` for the current epoch (even before this leader appended
    in it), undefined ``(-1, -1)`` for a later one or -1, else the log's epoch cache: the
    largest epoch <= ``asked`` it holds and the start of the next one (or the log end)."""
    if asked == current:
        return current, log.log_end_offset
    if asked < 0 or asked > current:
        return -1, -1
    return log.end_offset_for_epoch(asked)


@api(OFFSET_FOR_LEADER_EPOCH)
async def handle_offset_for_leader_epoch(ctx: RequestContext, request: dict) -> dict:
    topics = []
    for wanted in request["topics"]:
        topic = ctx.broker.topics.get(wanted["topic"])
        describable = ctx.allowed(Operation.DESCRIBE, ResourceType.TOPIC, wanted["topic"])
        partitions = []
        for p in wanted["partitions"]:
            index = p["partition"]
            out = {"error_code": ErrorCode.NONE, "partition": index, "leader_epoch": -1, "end_offset": -1}
            partitions.append(out)
            if not describable:
                out["error_code"] = ErrorCode.TOPIC_AUTHORIZATION_FAILED
                continue
            not_leader = ctx.broker.leadership_error(wanted["topic"], index)
            if not_leader is not None or topic is None or not 0 <= index < len(topic.partitions):
                out["error_code"] = not_leader or ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
                continue
            fenced = ctx.broker.epoch_error(wanted["topic"], index, p["current_leader_epoch"])
            if fenced is not None:
                out["error_code"] = fenced
            else:
                out["leader_epoch"], out["end_offset"] = end_offset_for(
                    topic.partitions[index], p["leader_epoch"], ctx.broker.leader_epoch(wanted["topic"], index))
        topics.append({"topic": wanted["topic"], "partitions": partitions})
    return {"throttle_time_ms": 0, "topics": topics}
