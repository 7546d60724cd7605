"""ApiVersions (key 18, v0-4): what this broker speaks — generated from the handler registry.

Every client's first request. The answer lists, per API key, the range of versions we
advertise, taken from ``modes.pull.registry`` so that we never advertise what we do not serve.

Version notes: v1 adds ``throttle_time_ms``; v3 is flexible (compact arrays, tagged fields)
and carries the client's software name/version (we ignore them); the response's tagged
feature fields are left out (optional). v4 = v3 on the wire. The response header is always v0,
whatever the version (KIP-511; the server handles that).

Version negotiation (GUIDE §1.8): a request in a version *above* what we serve is not parsed
at all; it gets a v0-format body with UNSUPPORTED_VERSION and an ``api_keys`` array holding
only ApiVersions' own entry, so librdkafka / kafka-python retry with a version we accept.
"""

from __future__ import annotations

from modes.pull.context import RequestContext
from modes.pull.registry import HANDLERS, advertised, api
from wire.kafka import codec
from wire.kafka.errors import ErrorCode
from wire.kafka.messages import ApiVersionsResponse

API_VERSIONS_KEY = 18
MIN_VERSION, MAX_VERSION = 0, 4


@api(API_VERSIONS_KEY, min_version=MIN_VERSION, max_version=MAX_VERSION)
async def handle_api_versions(ctx: RequestContext, request: dict) -> dict:
    return {"error_code": ErrorCode.NONE, "api_keys": advertised(), "throttle_time_ms": 0}


def unsupported_version_response() -> bytes:
    """The v0 body answering an ApiVersions request in a version we do not know."""
    own = HANDLERS[API_VERSIONS_KEY]
    return codec.encode(ApiVersionsResponse, 0, {
        "error_code": ErrorCode.UNSUPPORTED_VERSION,
        "api_keys": [{"api_key": API_VERSIONS_KEY, "min_version": own.min_version,
                      "max_version": own.max_version}],
    })
