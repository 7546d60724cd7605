"""The handler registry: which Kafka APIs pull mode serves, at which versions, and by whom.

Every module in ``modes/pull/api/`` registers its handler with :func:`api`, naming the API's
declaration from ``wire.kafka.messages`` (``@api(PRODUCE)``). The declaration carries the key and
the version range; the ApiVersions response is generated from this table
(``api/api_versions.py``), so we can never advertise an API or a version nobody implements —
the rule franz-go's kfake follows, and the one that keeps real clients honest with us: a client
picks, per API, the highest version both sides list, so an advertised but unimplemented version
is a promise we would break on the first request.

Every handler serves its declaration's whole range; none advertises less. Produce is the one
API whose oldest versions are not really served (v0-2 carry legacy message sets we do not
store): it still advertises them, because librdkafka only compresses when Produce's range starts
at 0, and answers them per partition with UNSUPPORTED_VERSION (``api/produce.py``).

What does not live here: decoding (``wire.kafka.codec`` with ``wire.kafka.messages``) and the
connection loop (``server.py``). A handler only sees a decoded request dict and returns the
response dict (or None when Kafka sends no response, i.e. Produce with ``acks=0``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import attrs

from wire.errors import LocalProtocolError
from wire.kafka.schema import Api, Message

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


def api(declaration: Api, *, may_block: bool = False) -> Callable[[Handler], Handler]:
    """Register the decorated coroutine as the handler of ``declaration``'s API.

    Args:
        declaration: the API, from ``wire.kafka.messages``; its key and its whole version
            range are what ApiVersions advertises for this handler.
        may_block: the handler may wait for a long time (see ``ApiHandler.may_block``).

    Raises:
        LocalProtocolError: a second handler for the same key (a bug, caught at import time).
    """

    def register(handler: Handler) -> Handler:
        if declaration.key in HANDLERS:
            raise LocalProtocolError(f"api key {declaration.key} registered twice")
        HANDLERS[declaration.key] = ApiHandler(
            api_key=declaration.key,
            name=declaration.name,
            min_version=declaration.min_version,
            max_version=declaration.max_version,
            request=declaration.request,
            response=declaration.response,
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
