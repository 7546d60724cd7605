"""InitProducerId: give an idempotent producer its producer id and epoch.

``transactional_id = null`` (idempotence only): a new producer id (monotonic, never reused
across restarts — ``ProducerIdManager`` reserves them in blocks on disk) with epoch 0. v3+
with an existing id and epoch asks for an epoch bump (kafka-python does after certain
errors): the same id, epoch + 1; a wrong epoch is INVALID_PRODUCER_EPOCH, an id we never
issued UNKNOWN_PRODUCER_ID.

In a cluster, ids come in blocks from one counter in etcd, so that they are unique across the
brokers (docs/cluster.md#producer-ids): the handler gets a block first if none is left
(COORDINATOR_NOT_AVAILABLE when etcd cannot give one), and an epoch bump gets a new id.

A transactional id needs the transaction APIs (24-28), which we do not implement:
INVALID_REQUEST, so a transactional producer fails at once instead of retrying forever.
``transaction_timeout_ms`` is therefore ignored.

Advertised from v0: librdkafka 2.0.2's IdempotentProducer feature needs v0 in range and
aiokafka only has v0.

Version notes: v1 = v0; v2 flexible; v3 producer_id / producer_epoch in the request; v4 only
adds an error code (PRODUCER_FENCED) we never send.
"""

from __future__ import annotations

from broker.cluster.model import CoordinationError
from broker.loggers import get_logger
from broker.security.authorizer import Operation, ResourceType
from modes.pull.context import RequestContext
from modes.pull.errors import code_for_kind
from modes.pull.registry import api
from wire.kafka.errors import ErrorCode
from wire.kafka.messages.produce_fetch import INIT_PRODUCER_ID

log = get_logger(__name__)


@api(INIT_PRODUCER_ID)
async def handle_init_producer_id(ctx: RequestContext, request: dict) -> dict:
    # An idempotent producer needs IdempotentWrite on the cluster, or Write on some topic
    # (Kafka 2.8+, KIP-679); otherwise CLUSTER_AUTHORIZATION_FAILED.
    if request["transactional_id"] is None and not _may_write_idempotently(ctx):
        return {"throttle_time_ms": 0, "error_code": ErrorCode.CLUSTER_AUTHORIZATION_FAILED,
                "producer_id": -1, "producer_epoch": -1}
    if ctx.broker.cluster is not None:
        # Ids come in blocks from the cluster's one counter (docs/cluster.md#producer-ids).
        try:
            await ctx.broker.cluster.ensure_producer_ids()
        except CoordinationError as exc:
            log.warning("producer_id_block_unavailable", error=str(exc))
            return {"throttle_time_ms": 0, "error_code": ErrorCode.COORDINATOR_NOT_AVAILABLE,
                    "producer_id": -1, "producer_epoch": -1}
    result = ctx.broker.coord.producers.ids.init_producer_id(
        request["transactional_id"], request["producer_id"], request["producer_epoch"])
    return {"throttle_time_ms": 0, "error_code": code_for_kind(result.error),
            "producer_id": result.producer_id, "producer_epoch": result.producer_epoch}


def _may_write_idempotently(ctx: RequestContext) -> bool:
    authorizer = ctx.broker.authorizer
    if authorizer is None or ctx.allowed_on_cluster(Operation.IDEMPOTENT_WRITE):
        return True
    return authorizer.authorize_any(ctx.principal, ctx.client_host, Operation.WRITE, ResourceType.TOPIC)
