"""DescribeAcls: the ACL bindings matching a filter, grouped by resource pattern.

Needs Describe on the cluster (CLUSTER_AUTHORIZATION_FAILED otherwise, with Kafka's message);
with ``kafka.authorizer`` off the answer is SECURITY_DISABLED, as Kafka answers without an
authorizer. A filter with an unknown code is INVALID_REQUEST.

Version notes: served from v1 (pattern types: literal, prefixed; filters any and match); v2
flexible; v3 only adds the User resource type to what may be named.
"""

from __future__ import annotations

from broker.security.authorizer import Operation
from modes.pull.acls import SECURITY_DISABLED_MESSAGE, filter_from_wire
from modes.pull.context import RequestContext
from modes.pull.registry import api
from wire.kafka.errors import ErrorCode
from wire.kafka.messages.security import DESCRIBE_ACLS


def _failed(error: ErrorCode, message: str) -> dict:
    return {"throttle_time_ms": 0, "error_code": error, "error_message": message, "resources": []}


@api(DESCRIBE_ACLS)
async def handle_describe_acls(ctx: RequestContext, request: dict) -> dict:
    authorizer = ctx.broker.authorizer
    if authorizer is None:
        return _failed(ErrorCode.SECURITY_DISABLED, SECURITY_DISABLED_MESSAGE)
    if not ctx.allowed_on_cluster(Operation.DESCRIBE):
        return _failed(ErrorCode.CLUSTER_AUTHORIZATION_FAILED, "Cluster authorization failed.")
    try:
        selection = filter_from_wire(request)
    except ValueError as exc:
        return _failed(ErrorCode.INVALID_REQUEST, str(exc))
    groups: dict[tuple, list[dict]] = {}
    for binding in authorizer.describe(selection):
        key = (binding.resource_type, binding.resource_name, binding.pattern_type)
        groups.setdefault(key, []).append({"principal": binding.principal, "host": binding.host,
                                           "operation": binding.operation,
                                           "permission_type": binding.permission})
    resources = [{"resource_type": rtype, "resource_name": name, "pattern_type": pattern, "acls": acls}
                 for (rtype, name, pattern), acls in groups.items()]
    return {"throttle_time_ms": 0, "error_code": ErrorCode.NONE, "error_message": None, "resources": resources}
