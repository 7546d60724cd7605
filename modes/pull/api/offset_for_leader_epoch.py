"""OffsetForLeaderEpoch: where did a leader epoch end? (log-truncation checks)

Kafka's rule (``LeaderEpochFileCache.endOffsetFor``) with our one constant epoch
0: asking for epoch 0 answers ``(leader_epoch 0, end_offset = log end offset)``; asking for
-1 or any epoch above 0 answers ``(-1, -1)`` (undefined). There is no older epoch, so the
third case (the start offset of the next epoch) never arises. ``current_leader_epoch`` is
fenced as in Fetch (above ours: UNKNOWN_LEADER_EPOCH, below: FENCED_LEADER_EPOCH); an unknown
topic or partition is UNKNOWN_TOPIC_OR_PARTITION. ``replica_id`` (v3+) is ignored: we have no
followers, only consumers.

librdkafka master asks exactly v2 and kafka-python v4; both then validate their position
instead of logging that validation is unsupported.

Version notes: v2 current_leader_epoch, throttle time; v3 replica_id; v4 flexible.
"""

from __future__ import annotations

from broker.security.authorizer import Operation, ResourceType
from modes.pull.context import RequestContext
from modes.pull.registry import api
from wire.kafka.errors import ErrorCode
from wire.kafka.messages.produce_fetch import OFFSET_FOR_LEADER_EPOCH


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
            epoch = ctx.broker.leader_epoch(wanted["topic"], index)
            fenced = ctx.broker.epoch_error(wanted["topic"], index, p["current_leader_epoch"])
            if fenced is not None:
                out["error_code"] = fenced
            elif p["leader_epoch"] == epoch:
                out["leader_epoch"] = epoch
                out["end_offset"] = topic.partitions[index].log_end_offset
        topics.append({"topic": wanted["topic"], "partitions": partitions})
    return {"throttle_time_ms": 0, "topics": topics}
