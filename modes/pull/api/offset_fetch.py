"""OffsetFetch: a group's committed offsets.

Per requested partition: the committed offset, its leader epoch (v5+) and metadata; a
partition without a commit — or a group we never heard of — answers offset -1, epoch -1,
metadata "" and error NONE ("nothing committed": the consumer applies its reset policy).
``topics = null`` (v2+) asks for every partition the group has committed.

Commits of a deleted topic are gone (DeleteTopics drops them from the store), so a topic
created again under the same name starts with no committed offsets, as in Kafka.

In a cluster (docs/cluster.md#groups) the offsets are those of the group's
``__consumer_offsets`` partition, answered by its leader only: elsewhere NOT_COORDINATOR (or
COORDINATOR_LOAD_IN_PROGRESS while it reads the partition), top-level from v2, per partition
before.

``require_stable`` (v7) is ignored: without transactions every offset is stable.

Version notes: v2 null topics and a top-level error_code; v3 throttle time; v5
committed_leader_epoch; v6 flexible; v7 require_stable. v8+ (several groups per request) is
not served.
"""

from __future__ import annotations

from broker.security.authorizer import Operation, ResourceType
from broker.outcome import ErrorKind
from modes.pull.context import RequestContext
from modes.pull.errors import code_for_kind
from modes.pull.registry import api
from wire.kafka.errors import ErrorCode
from wire.kafka.messages.groups import OFFSET_FETCH


def _partition(index: int, committed, error: ErrorCode = ErrorCode.NONE) -> dict:
    if committed is None:
        return {"partition_index": index, "committed_offset": -1, "committed_leader_epoch": -1,
                "metadata": "", "error_code": error}
    return {"partition_index": index, "committed_offset": committed.offset,
            "committed_leader_epoch": committed.leader_epoch,
            "metadata": committed.metadata if committed.metadata is not None else "",
            "error_code": ErrorCode.NONE}


@api(OFFSET_FETCH)
async def handle_offset_fetch(ctx: RequestContext, request: dict) -> dict:
    # In a cluster the group's offsets are those read from its __consumer_offsets partition.
    store = ctx.broker.group_offsets or ctx.broker.coord.offsets
    group_id = request["group_id"]
    topics = []
    denied = None
    if not ctx.allowed(Operation.DESCRIBE, ResourceType.GROUP, group_id):
        denied = ErrorCode.GROUP_AUTHORIZATION_FAILED
    elif (not_here := ctx.broker.group_error(group_id)) is not ErrorKind.NONE:
        denied = code_for_kind(not_here)
    if denied is not None:
        # v2+ reads the top-level code; v0-1 only have the partitions' codes.
        for wanted in request["topics"] or []:
            topics.append({"name": wanted["name"], "partitions": [
                _partition(index, None, denied) for index in wanted["partition_indexes"]]})
        return {"throttle_time_ms": 0, "topics": topics, "error_code": denied}
    if request["topics"] is None:
        by_topic: dict[str, list[dict]] = {}
        for (topic, index), committed in sorted(store.fetch_all(group_id).items()):
            # Offsets of topics the principal may not describe are left out, as Kafka does.
            if ctx.allowed(Operation.DESCRIBE, ResourceType.TOPIC, topic):
                by_topic.setdefault(topic, []).append(_partition(index, committed))
        topics = [{"name": name, "partitions": parts} for name, parts in by_topic.items()]
    else:
        for wanted in request["topics"]:
            if not ctx.allowed(Operation.DESCRIBE, ResourceType.TOPIC, wanted["name"]):
                topics.append({"name": wanted["name"], "partitions": [
                    _partition(index, None, ErrorCode.TOPIC_AUTHORIZATION_FAILED)
                    for index in wanted["partition_indexes"]]})
                continue
            topics.append({"name": wanted["name"], "partitions": [
                _partition(index, store.fetch(group_id, wanted["name"], index))
                for index in wanted["partition_indexes"]]})
    return {"throttle_time_ms": 0, "topics": topics, "error_code": ErrorCode.NONE}
