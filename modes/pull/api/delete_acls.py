"""DeleteAcls: remove every ACL binding each filter matches, and list what each removed.

Needs Alter on the cluster (each filter's result CLUSTER_AUTHORIZATION_FAILED otherwise); with
``kafka.authorizer`` off, SECURITY_DISABLED. A filter with an unknown code is INVALID_REQUEST and
removes nothing; the others still apply. The remaining bindings are saved before we answer.

Version notes: served from v1 (pattern type filter); v2 flexible.
"""

from __future__ import annotations

from broker.security.authorizer import Operation
from modes.pull.acls import SECURITY_DISABLED_MESSAGE, binding_to_wire, filter_from_wire
from modes.pull.context import RequestContext
from modes.pull.errors import error_code_for
from modes.pull.registry import api
from wire.kafka.errors import ErrorCode
from wire.kafka.messages.security import DELETE_ACLS


def _result(error: ErrorCode, message: str | None, matching: list[dict]) -> dict:
    return {"error_code": error, "error_message": message, "matching_acls": matching}


@api(DELETE_ACLS)
async def handle_delete_acls(ctx: RequestContext, request: dict) -> dict:
    authorizer = ctx.broker.authorizer
    filters = request["filters"]
    if authorizer is None:
        return {"throttle_time_ms": 0,
                "filter_results": [_result(ErrorCode.SECURITY_DISABLED, SECURITY_DISABLED_MESSAGE, [])
                                   for _ in filters]}
    if not ctx.allowed_on_cluster(Operation.ALTER):
        return {"throttle_time_ms": 0,
                "filter_results": [_result(ErrorCode.CLUSTER_AUTHORIZATION_FAILED,
                                           "Cluster authorization failed.", []) for _ in filters]}
    parsed: list = []
    for entry in filters:
        try:
            parsed.append(filter_from_wire(entry))
        except ValueError as exc:
            parsed.append(str(exc))
    selections = [p for p in parsed if not isinstance(p, str)]
    try:
        removed = iter(authorizer.delete(selections))
    except OSError as exc:
        return {"throttle_time_ms": 0,
                "filter_results": [_result(error_code_for(exc), str(exc), []) for _ in filters]}
    results = []
    for item in parsed:
        if isinstance(item, str):
            results.append(_result(ErrorCode.INVALID_REQUEST, item, []))
            continue
        matching = [{"error_code": ErrorCode.NONE, "error_message": None, **binding_to_wire(b)}
                    for b in next(removed)]
        results.append(_result(ErrorCode.NONE, None, matching))
    return {"throttle_time_ms": 0, "filter_results": results}
