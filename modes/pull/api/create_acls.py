"""CreateAcls: add ACL bindings; one result per creation, in request order.

Needs Alter on the cluster (every result CLUSTER_AUTHORIZATION_FAILED otherwise); with
``kafka.authorizer`` off every result is SECURITY_DISABLED. A creation Kafka would refuse — an
unknown or filter-only code (ANY, MATCH), a principal that is not ``User:...``, a prefixed
``*`` — gets INVALID_REQUEST with the reason; the valid ones in the same request are still added.
The bindings are saved to ``acls.json`` before we answer.

Version notes: served from v1 (resource_pattern_type); v2 flexible.
"""

from __future__ import annotations

from broker.security.authorizer import Operation
from modes.pull.acls import SECURITY_DISABLED_MESSAGE, binding_from_creation
from modes.pull.context import RequestContext
from modes.pull.errors import error_code_for
from modes.pull.registry import api
from wire.kafka.errors import ErrorCode
from wire.kafka.messages.security import CREATE_ACLS


@api(CREATE_ACLS)
async def handle_create_acls(ctx: RequestContext, request: dict) -> dict:
    authorizer = ctx.broker.authorizer
    creations = request["creations"]
    if authorizer is None or not ctx.allowed_on_cluster(Operation.ALTER):
        error, message = ((ErrorCode.SECURITY_DISABLED, SECURITY_DISABLED_MESSAGE) if authorizer is None
                          else (ErrorCode.CLUSTER_AUTHORIZATION_FAILED, "Cluster authorization failed."))
        return {"throttle_time_ms": 0,
                "results": [{"error_code": error, "error_message": message} for _ in creations]}
    results, valid = [], []
    for creation in creations:
        try:
            valid.append(binding_from_creation(creation))
        except ValueError as exc:
            results.append({"error_code": ErrorCode.INVALID_REQUEST, "error_message": str(exc)})
        else:
            results.append({"error_code": ErrorCode.NONE, "error_message": None})
    if valid:
        try:
            authorizer.create(valid)
        except OSError as exc:
            results = [r if r["error_code"] else {"error_code": error_code_for(exc), "error_message": str(exc)}
                       for r in results]
    return {"throttle_time_ms": 0, "results": results}
