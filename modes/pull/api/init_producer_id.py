"""InitProducerId: give an idempotent producer its producer id and epoch.

``transactional_id = null`` (idempotence only): a new producer id (monotonic, never reused
across restarts — ``ProducerIdManager`` reserves them in blocks on disk) with epoch 0. v3+
with an existing id and epoch asks for an epoch bump (kafka-python does after certain
errors): the same id, epoch + 1; a wrong epoch is INVALID_PRODUCER_EPOCH, an id we never
issued UNKNOWN_PRODUCER_ID.

A transactional id needs the transaction APIs (24-28), which we do not implement:
INVALID_REQUEST, so a transactional producer fails at once instead of retrying forever.
``transaction_timeout_ms`` is therefore ignored.

Advertised from v0: librdkafka 2.0.2's IdempotentProducer feature needs v0 in range and
aiokafka only has v0.

Version notes: v1 = v0; v2 flexible; v3 producer_id / producer_epoch in the request; v4 only
adds an error code (PRODUCER_FENCED) we never send.
"""

from __future__ import annotations

from modes.pull.context import RequestContext
from modes.pull.errors import code_for_kind
from modes.pull.registry import api
from wire.kafka.messages.produce_fetch import INIT_PRODUCER_ID


@api(INIT_PRODUCER_ID)
async def handle_init_producer_id(ctx: RequestContext, request: dict) -> dict:
    result = ctx.broker.coord.producers.ids.init_producer_id(
        request["transactional_id"], request["producer_id"], request["producer_epoch"])
    return {"throttle_time_ms": 0, "error_code": code_for_kind(result.error),
            "producer_id": result.producer_id, "producer_epoch": result.producer_epoch}
