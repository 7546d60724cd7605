"""The handler registry: which Kafka APIs pull mode serves, at which versions, and by whom.

Every module in ``modes/pull/api/`` registers its handler with :func:`api`, naming the API key
and the version range it *advertises*. The ApiVersions response is generated from this table
(``api/api_versions.py``), so we can never advertise an API or a version nobody implements —
the rule franz-go's kfake follows, and the one that keeps real clients honest with us: a
client picks, per API, the highest version both sides list (GUIDE §1.8), so an advertised but
unimplemented version is a promise we would break on the first request.

What does not live here: decoding (``wire.kafka.codec`` with ``wire.kafka.messages``) and the
connection loop (``server.py``). A handler only sees a decoded request dict and returns the
response dict (or None when Kafka sends no response, i.e. Produce with ``acks=0``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import attrs

from wire.errors import LocalProtocolError
from wire.kafka.messages import REQUESTS, RESPONSES
from wire.kafka.schema import Message

if TYPE_CHECKING:
    from modes.pull.context import RequestContext

Handler = Callable[["RequestContext", dict], Awaitable["dict | None"]]


@attrs.frozen
class ApiHandler:
    """One served API: its key, advertised versions, descriptors and handler."""

    api_key: int
    name: str
    min_version: int
    max_version: int
    request: Message
    response: Message
    handler: Handler
    # True for handlers that may wait (a long-polling Fetch): the server sends the responses
    # it has already computed before calling them, so earlier answers are not held back.
    may_block: bool = False

    def supports(self, version: int) -> bool:
        return self.min_version <= version <= self.max_version


HANDLERS: dict[int, ApiHandler] = {}


def api(api_key: int, *, min_version: int, max_version: int, may_block: bool = False) -> Callable[[Handler], Handler]:
    """Register the decorated coroutine as the handler of ``api_key``.

    Args:
        api_key: Kafka's API key (0 Produce, 1 Fetch, ...).
        min_version, max_version: the inclusive range advertised in ApiVersions. It must lie
            inside the range our descriptors in ``wire.kafka.messages`` can decode.
        may_block: the handler may wait for a long time (see ``ApiHandler.may_block``).

    Raises:
        LocalProtocolError: a second handler for the same key, or a range the descriptors
            do not cover — both are bugs, caught at import time.
    """
    request, response = REQUESTS[api_key], RESPONSES[api_key]
    for version in (min_version, max_version):
        if not (request.is_valid(version) and response.is_valid(version)):
            raise LocalProtocolError(f"{request.name}: no descriptor for version {version}")

    def register(handler: Handler) -> Handler:
        if api_key in HANDLERS:
            raise LocalProtocolError(f"api key {api_key} registered twice")
        HANDLERS[api_key] = ApiHandler(
            api_key=api_key,
            name=request.name.removesuffix("Request"),
            min_version=min_version,
            max_version=max_version,
            request=request,
            response=response,
            handler=handler,
            may_block=may_block,
        )
        return handler

    return register


def advertised() -> list[dict[str, Any]]:
    """ApiVersions ``api_keys`` entries, sorted by key, straight from the registry."""
    return [
        {"api_key": h.api_key, "min_version": h.min_version, "max_version": h.max_version}
        for h in sorted(HANDLERS.values(), key=lambda h: h.api_key)
    ]
