"""SaslHandshake: the client names a SASL mechanism; we list the ones enabled.

On a SASL listener (``kafka.security_protocol`` SASL_PLAINTEXT or SASL_SSL) the named mechanism,
if enabled (``kafka.sasl_mechanisms``), becomes the connection's; otherwise the answer is
UNSUPPORTED_SASL_MECHANISM and the client gives up. On a listener without SASL, or a second
handshake on one connection (unless it starts a KIP-368 re-authentication: see
``modes.pull.sasl``), the answer is ILLEGAL_SASL_STATE, as Kafka answers it.

Version notes: v0 — the tokens then follow as bare size-prefixed frames (``modes.pull.sasl``);
v1 — they travel in SaslAuthenticate requests. Never flexible.
"""

from __future__ import annotations

from modes.pull.context import RequestContext
from modes.pull.registry import api
from wire.kafka.errors import ErrorCode
from wire.kafka.messages.security import SASL_HANDSHAKE


@api(SASL_HANDSHAKE)
async def handle_sasl_handshake(ctx: RequestContext, request: dict) -> dict:
    security = ctx.security
    if security is None or not security.may_handshake():
        return {"error_code": ErrorCode.ILLEGAL_SASL_STATE, "mechanisms": []}
    if not security.handshake(request["mechanism"], ctx.version):
        return {"error_code": ErrorCode.UNSUPPORTED_SASL_MECHANISM, "mechanisms": list(security.mechanisms)}
    return {"error_code": ErrorCode.NONE, "mechanisms": list(security.mechanisms)}
