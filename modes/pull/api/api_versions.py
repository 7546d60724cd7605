"""ApiVersions: what this broker speaks — generated from the handler registry.

Every client's first request. The answer lists, per API key, the range of versions we
advertise, taken from ``modes.pull.registry`` so that we never advertise what we do not serve.

Version notes: v1 adds ``throttle_time_ms``; v3 is flexible (compact arrays, tagged fields)
and carries the client's software name/version (we ignore them); the response's tagged
feature fields are left out (optional). v4 = v3 on the wire. The response header is always v0,
whatever the version (KIP-511; the server handles that).

Version negotiation: a client cannot know which ApiVersions versions we speak before it has
asked, so it sends its newest. A request in a version *above* what we serve is not parsed at
all; it gets a v0-format body with UNSUPPORTED_VERSION and an ``api_keys`` array holding only
ApiVersions' own entry, so librdkafka / kafka-python retry with a version we accept.
"""

from __future__ import annotations

from modes.pull.context import RequestContext
from modes.pull.registry import advertised, api
from wire.kafka import codec
from wire.kafka.errors import ErrorCode
from wire.kafka.messages.metadata import API_VERSIONS

# The server answers an ApiVersions request in an unknown version itself (before decoding).
API_VERSIONS_KEY = API_VERSIONS.key

@api(API_VERSIONS)
async def handle_api_versions(ctx: RequestContext, request: dict) -> dict:
    return {"error_code": ErrorCode.NONE, "api_keys": advertised(), "throttle_time_ms": 0}


def unsupported_version_response() -> bytes:
    """The v0 body answering an ApiVersions request in a version we do not know."""
    return codec.encode(API_VERSIONS.response, 0, {
        "error_code": ErrorCode.UNSUPPORTED_VERSION,
        "api_keys": [{"api_key": API_VERSIONS.key, "min_version": API_VERSIONS.min_version,
                      "max_version": API_VERSIONS.max_version}],
    })
