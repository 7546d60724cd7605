"""Produce (key 0; advertised v0-9, served v3-9): append record batches to partitions.

Per partition: the ``records`` must be exactly one RecordBatch v2 — anything else (none,
two, a legacy magic 0/1 message set) is INVALID_RECORD; a damaged batch (length or CRC-32C) is
CORRUPT_MESSAGE; one larger than the topic's ``max.message.bytes`` is MESSAGE_TOO_LARGE; zstd
in a request older than v7 is UNSUPPORTED_COMPRESSION_TYPE. The batch is checked once, by the
partition's log (``PartitionLog.validate``), *before* the producer's sequence — Kafka's order:
a damaged retry is refused as damaged, not answered as a duplicate — and the header it returns
serves the sequence check and the append alike. A valid batch is appended byte for byte; the
log assigns its offsets, and the response carries the assigned ``base_offset`` and the
partition's ``log_start_offset``. Timestamps are the producer's (CreateTime topics):
``log_append_time_ms`` is -1.

``acks``: 0 = no response at all (the server sends nothing) — and if any partition failed, the
connection is closed, Kafka's only way to tell such a producer (it refreshes metadata and
reconnects); 1 and -1 are the same thing on a
single broker with no replicas. In a cluster (docs/cluster.md#replication) -1 ("all") first
refuses the partition with NOT_ENOUGH_REPLICAS when its ISR is smaller than the topic's
``min.insync.replicas`` (nothing is appended), and after the append waits until the high
watermark passes the batch - every in-sync replica holds it - or the request's ``timeout_ms``
ends (REQUEST_TIMED_OUT; the batch stays in the log, as in Kafka); a batch committed by an ISR
that shrank below ``min.insync.replicas`` meanwhile is NOT_ENOUGH_REPLICAS_AFTER_APPEND. A leader that lost the
partition meanwhile (a new epoch, or its lease is in doubt: docs/cluster.md#failover) answers
NOT_LEADER_OR_FOLLOWER instead of success: the producer retries on the new leader. 1 answers
after the leader's append. Durability on the leader's own disk is what the ``fsync`` policy decides:
with ``fsync = "always"`` we wait for the partition's fsync (in a worker thread,
``log_runtime.flush_log``) before answering. Any other value
is INVALID_REQUIRED_ACKS for every partition.

Disk errors: a failed write or fsync answers KAFKA_STORAGE_ERROR (retriable: Kafka's clients
retry it) and is counted and logged, rate-limited, by the log (``broker.log.io_errors``) — a
full disk is never silent, and never floods the log either.

Why advertise v0-2 at all: librdkafka 2.0.2 (kcat) only compresses gzip/snappy/lz4 if the
broker's Produce range starts at 0 (librdkafka #4956) — Apache Kafka 4.0 does the
same. Those versions carry legacy message sets we do not store, so each partition gets
UNSUPPORTED_VERSION. No client we target sends them once it has seen v3+ advertised.

Idempotent producers (rules in ``broker.producers``): :func:`validate_producer`
checks each batch's ``producer_id``/``producer_epoch``/``base_sequence`` against the
partition's ``ProducerStateTable`` before the append. A retry of one of the producer's last 5
batches is answered NONE with the **original** base offset and not appended again; a sequence
gap is OUT_OF_ORDER_SEQUENCE_NUMBER; an epoch older than the partition has seen is
INVALID_PRODUCER_EPOCH. An accepted batch is recorded right after the append — check, append
and record run with no ``await`` in between, so two copies of one retry arriving on two
connections cannot both pass the check. The tables are rebuilt from the logs at start-up
(``broker.producers.ProducerRegistry``), so a retry across a broker restart is still recognised.
Batches with producer id -1 (non-idempotent producers) pass untouched.

Version notes: v3 transactional_id and RecordBatch v2; v5 log_start_offset in the response;
v7 zstd allowed; v8 record_errors / error_message (we send empty / null); v9 flexible.
"""

from __future__ import annotations

import attrs
import trio

from broker.cluster.offsets_topic import OFFSETS_TOPIC
from broker.errors import BrokerError
from broker.log.partition_log import PartitionLog
from broker.producers import CheckResult, Decision, ProducerStateTable, last_sequence
from broker.topics import Topic
from broker.security.authorizer import Operation, ResourceType
from modes.pull.context import RequestContext, now_ms
from modes.pull.errors import CloseConnection, code_for_kind, error_code_for
from modes.pull.log_runtime import flush_log, wait_for_commit
from modes.pull.registry import api
from wire.kafka import compression
from wire.kafka.batch import BatchHeader, InvalidBatch, split_batches
from wire.kafka.errors import ErrorCode
from wire.kafka.messages.produce_fetch import PRODUCE

FIRST_BATCH_VERSION = 3  # v0-2 carry the legacy message formats
FIRST_ZSTD_VERSION = 7
VALID_ACKS = (-1, 0, 1)


def validate_producer(table: ProducerStateTable, header: BatchHeader) -> CheckResult:
    """Idempotence check of one batch before its append (changes nothing).

    Returns:
        ACCEPT (append, then ``record_producer``), DUPLICATE (answer NONE with
        ``base_offset``, do not append) or a refusal whose ``.error`` names the Kafka error.
    """
    return table.check(header.producer_id, header.producer_epoch, header.base_sequence,
                       last_sequence(header.base_sequence, header.last_offset_delta))


def record_producer(table: ProducerStateTable, header: BatchHeader, base_offset: int) -> None:
    """Remember an appended batch, so that its retry is recognised as a duplicate."""
    table.record(header.producer_id, header.producer_epoch, header.base_sequence,
                 last_sequence(header.base_sequence, header.last_offset_delta),
                 base_offset, base_offset + header.last_offset_delta, now_ms())


@api(PRODUCE)
async def handle_produce(ctx: RequestContext, request: dict) -> dict | None:
    version = ctx.version
    acks = request["acks"]
    registry = ctx.broker.topics
    fsync_always = ctx.broker.config.log.fsync == "always"
    # Logs to fsync before answering, with the results that wait on each.
    to_flush: dict[PartitionLog, list[dict]] = {}
    replication = ctx.broker.cluster.replication if ctx.broker.cluster is not None else None
    # acks=all in a cluster: the appended batches to wait for.
    to_commit: list[_Commit] = []
    responses = []
    for topic_data in request["topic_data"]:
        name = topic_data["name"]
        topic = registry.get(name)
        # Kafka checks Write before existence: an unauthorized client learns nothing of the topic.
        writable = ctx.allowed(Operation.WRITE, ResourceType.TOPIC, name)
        results = []
        for partition_data in topic_data["partition_data"]:
            index = partition_data["index"]
            result = {"index": index, "error_code": ErrorCode.NONE, "base_offset": -1,
                      "log_append_time_ms": -1, "log_start_offset": -1}
            results.append(result)
            if version < FIRST_BATCH_VERSION:
                result["error_code"] = ErrorCode.UNSUPPORTED_VERSION
            elif acks not in VALID_ACKS:
                result["error_code"] = ErrorCode.INVALID_REQUIRED_ACKS
            elif not writable:
                result["error_code"] = ErrorCode.TOPIC_AUTHORIZATION_FAILED
            elif replication is not None and name == OFFSETS_TOPIC:
                # Kafka: "Cannot append to internal topic"; only group coordinators write there.
                result["error_code"] = ErrorCode.INVALID_TOPIC_EXCEPTION
            elif (not_leader := ctx.broker.leadership_error(name, index)) is not None:
                result["error_code"] = not_leader
            elif topic is None or not 0 <= index < len(topic.partitions):
                result["error_code"] = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
            elif acks == -1 and replication is not None and replication.too_few_in_sync(
                    name, index, topic.config.min_insync_replicas):
                result["error_code"] = ErrorCode.NOT_ENOUGH_REPLICAS
            else:
                log = topic.partitions[index]
                code, last_offset = _append(ctx, topic, index, log, partition_data["records"], version, result)
                result["error_code"] = code
                if code == ErrorCode.NONE and replication is not None:
                    replication.appended(name, index, log)
                    if acks == -1:
                        to_commit.append(_Commit(log, last_offset, result, name, index,
                                                 ctx.broker.leader_epoch(name, index),
                                                 topic.config.min_insync_replicas))
                if code == ErrorCode.NONE and fsync_always and acks != 0:
                    to_flush.setdefault(log, []).append(result)
        responses.append({"name": name, "partition_responses": results})
    for log, waiting in to_flush.items():
        # The durability promise of fsync=always: acknowledged means on disk. A failed fsync
        # is not an acknowledgement: the producer gets KAFKA_STORAGE_ERROR and retries.
        try:
            await flush_log(log)
        except OSError as exc:
            log.record_io_error("fsync", exc, now_ms())
            for result in waiting:
                result["error_code"] = error_code_for(exc)
                result["base_offset"] = -1
    if to_commit:
        await _wait_for_commit(ctx, to_commit, trio.current_time() + max(request["timeout_ms"], 0) / 1000)
    if acks == 0:
        failed = [(r["name"], p["index"], ErrorCode(p["error_code"]).name)
                  for r in responses for p in r["partition_responses"] if p["error_code"] != ErrorCode.NONE]
        if failed:
            raise CloseConnection(f"acks=0 produce failed: {failed[:5]}")
        return None
    return {"responses": responses, "throttle_time_ms": 0}


@attrs.frozen
class _Commit:
    """An acks=all batch appended in a cluster, waiting for the high watermark."""

    log: PartitionLog
    last_offset: int
    result: dict
    topic: str
    index: int
    leader_epoch: int      # the partition's epoch at the append
    min_insync: int        # the topic's min.insync.replicas


async def _wait_for_commit(ctx: RequestContext, to_commit: list[_Commit], deadline: float) -> None:
    """acks=all: wait until each batch is below its partition's high watermark (all in-sync
    replicas hold it); one whose wait ends at ``deadline`` first is REQUEST_TIMED_OUT, one
    whose partition this broker no longer leads in the same epoch NOT_LEADER_OR_FOLLOWER, and
    one committed by an ISR that shrank below ``min.insync.replicas`` meanwhile
    NOT_ENOUGH_REPLICAS_AFTER_APPEND (Kafka's answer: the batch is in the log, but in fewer
    replicas than the producer asked for; it retries, and may write it twice)."""
    def still_leading(c: _Commit) -> bool:
        return ctx.broker.leadership_error(c.topic, c.index) is None \
            and ctx.broker.leader_epoch(c.topic, c.index) == c.leader_epoch

    replication = ctx.broker.cluster.replication if ctx.broker.cluster is not None else None
    for c in to_commit:
        result = c.result
        if result["error_code"] != ErrorCode.NONE:
            continue  # its fsync failed
        await wait_for_commit(c.log, c.last_offset, deadline, lambda: still_leading(c))
        if not still_leading(c):
            result["error_code"], result["base_offset"] = ErrorCode.NOT_LEADER_OR_FOLLOWER, -1
        elif c.log.high_watermark <= c.last_offset:
            result["error_code"], result["base_offset"] = ErrorCode.REQUEST_TIMED_OUT, -1
        elif replication is not None and replication.too_few_in_sync(c.topic, c.index, c.min_insync):
            result["error_code"], result["base_offset"] = ErrorCode.NOT_ENOUGH_REPLICAS_AFTER_APPEND, -1


def _append(ctx: RequestContext, topic: Topic, index: int, log: PartitionLog, records, version: int,
            result: dict) -> tuple[ErrorCode, int]:
    """Validate and append one partition's records; fills ``result`` on success.

    Returns:
        The error code, and the last offset of the batch (-1 unless the code is NONE).
    """
    if not records:
        return ErrorCode.INVALID_RECORD, -1
    try:
        batches = split_batches(records, strict=True)  # reads only the length fields
        if len(batches) != 1:
            # Produce v3+ carries exactly one batch per partition (Kafka's validateRecords).
            return ErrorCode.INVALID_RECORD, -1
        # Magic, length, the topic's size limit, CRC-32C: the one parse of this batch.
        header = log.validate(batches[0])
    except InvalidBatch as exc:
        return error_code_for(exc), -1
    if header.compression == compression.ZSTD and version < FIRST_ZSTD_VERSION:
        return ErrorCode.UNSUPPORTED_COMPRESSION_TYPE, -1
    table = None
    if header.producer_id >= 0:
        table = ctx.broker.coord.producers.table(topic, index)
        decision = validate_producer(table, header)
        if decision.kind is Decision.DUPLICATE:
            result["base_offset"] = decision.base_offset
            result["log_start_offset"] = log.log_start_offset
            return ErrorCode.NONE, decision.base_offset + header.last_offset_delta
        if decision.kind is not Decision.ACCEPT:
            return code_for_kind(decision.error), -1
    try:
        # The log stamps the offset and writes. A write error (disk full…) leaves the log
        # unchanged; the log has counted and logged it.
        result["base_offset"] = log.append(batches[0], now_ms(), validated=header,
                                           leader_epoch=ctx.broker.leader_epoch(topic.name, index))
    except (BrokerError, OSError) as exc:
        return error_code_for(exc), -1
    except ValueError:
        # An epoch below the log's latest: this broker's view is behind the log (it led in a
        # later epoch, then lost it); only the partition's current leader may append.
        return ErrorCode.NOT_LEADER_OR_FOLLOWER, -1
    if table is not None:
        record_producer(table, header, result["base_offset"])
    result["log_start_offset"] = log.log_start_offset
    return ErrorCode.NONE, result["base_offset"] + header.last_offset_delta
