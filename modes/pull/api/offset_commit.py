"""OffsetCommit: a group stores the next offset it will consume.

First the membership check, ``GroupCoordinator.validate_commit`` (Kafka's
``validateOffsetCommit``): generation -1 on an Empty or unknown group is a "simple" commit
(manual assignment) and is accepted; otherwise the member must be known (UNKNOWN_MEMBER_ID),
of the current generation (ILLEGAL_GENERATION — a commit from a stale generation must never
overwrite what the new owner commits), and the group not CompletingRebalance
(REBALANCE_IN_PROGRESS). A refused request gets that error on every partition and stores
nothing.

Then per partition: an unknown topic or partition is UNKNOWN_TOPIC_OR_PARTITION (Kafka checks
its metadata cache the same way); metadata over 4096 bytes is OFFSET_METADATA_TOO_LARGE;
otherwise ``OffsetStore.commit``. The offset itself is **not** range-checked — Kafka accepts
any offset in a commit, including one beyond the high watermark or below the log start, and
so do we: the consumer owns its position, and a wrong one is corrected by its reset policy on
the next Fetch (OFFSET_OUT_OF_RANGE). Lag is reported as ``max(0, high watermark − committed)``.

Durability: the response is sent only after ``Coordination.flush_offsets`` (write + fsync, in a
worker thread so the event loop keeps serving) returned — an acknowledged commit survives a crash.

In a cluster (docs/cluster.md#groups) a broker that does not coordinate the group answers
NOT_COORDINATOR (COORDINATOR_LOAD_IN_PROGRESS while it reads the group's partition) on every
partition, and the accepted commits become one record batch in the group's
``__consumer_offsets`` partition, answered once every in-sync replica holds it
(``ClusterOffsets.commit``); the local store is not used.

``retention_time_ms`` (v2-4) is ignored: commits are kept until the group or topic is deleted.

Version notes: v3 throttle time; v5 drops retention_time_ms; v6 committed_leader_epoch;
v7 group_instance_id; v8 flexible.
"""

from __future__ import annotations

from broker.cluster.offsets_topic import Commit
from broker.outcome import ErrorKind
from broker.security.authorizer import Operation, ResourceType
from modes.pull.context import RequestContext, now_ms
from modes.pull.coordination import monotonic_ms
from modes.pull.errors import code_for_kind
from modes.pull.registry import api
from wire.kafka.errors import ErrorCode
from wire.kafka.messages.groups import OFFSET_COMMIT


@api(OFFSET_COMMIT)
async def handle_offset_commit(ctx: RequestContext, request: dict) -> dict:
    coord = ctx.broker.coord
    group_id = request["group_id"]
    if not ctx.allowed(Operation.READ, ResourceType.GROUP, group_id):
        return {"throttle_time_ms": 0, "topics": [
            {"name": t["name"], "partitions": [
                {"partition_index": p["partition_index"], "error_code": ErrorCode.GROUP_AUTHORIZATION_FAILED}
                for p in t["partitions"]]} for t in request["topics"]]}
    group_offsets = ctx.broker.group_offsets
    verdict = ctx.broker.group_error(group_id)
    if verdict is ErrorKind.NONE:
        verdict = coord.groups.coordinator.validate_commit(
            group_id, member_id=request["member_id"],
            generation_id=request["generation_id_or_member_epoch"],
            instance_id=request["group_instance_id"], now_ms=monotonic_ms())
        coord.groups.tick()
    stored = False
    topics = []
    wall = now_ms()
    # In a cluster: the commits to write to __consumer_offsets, each with its result's place.
    to_replicate: list[tuple[Commit, int, list[dict]]] = []
    for wanted in request["topics"]:
        topic = ctx.broker.topics.get(wanted["name"])
        readable = ctx.allowed(Operation.READ, ResourceType.TOPIC, wanted["name"])
        partitions = []
        for p in wanted["partitions"]:
            index = p["partition_index"]
            if not readable:
                code = ErrorCode.TOPIC_AUTHORIZATION_FAILED
            elif verdict is not ErrorKind.NONE:
                code = code_for_kind(verdict)
            elif topic is None or not 0 <= index < len(topic.partitions):
                code = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
            elif group_offsets is not None:
                code = ErrorCode.NONE  # for now: the write's outcome replaces it below
                to_replicate.append((Commit(wanted["name"], index, p["committed_offset"],
                                            p["committed_leader_epoch"], p["committed_metadata"]),
                                     len(partitions), partitions))
            else:
                kind = coord.offsets.commit(group_id, wanted["name"], index, p["committed_offset"],
                                            p["committed_leader_epoch"], p["committed_metadata"], wall)
                stored = stored or kind is ErrorKind.NONE
                code = code_for_kind(kind)
            partitions.append({"partition_index": index, "error_code": code})
        topics.append({"name": wanted["name"], "partitions": partitions})
    if group_offsets is not None and to_replicate:
        # Answered once every in-sync replica of the group's partition holds the records.
        kinds = await group_offsets.commit(group_id, [commit for commit, _, _ in to_replicate], wall)
        for commit, position, results in to_replicate:
            results[position]["error_code"] = code_for_kind(kinds[(commit.topic, commit.partition)])
    if stored:
        # Not acknowledged before it is on disk.
        await coord.flush_offsets()
    return {"throttle_time_ms": 0, "topics": topics}
