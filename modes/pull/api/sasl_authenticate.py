"""SaslAuthenticate: one SASL token from the client, one back (after SaslHandshake v1).

PLAIN takes one round, SCRAM two (``modes.pull.sasl``). A token that fails — malformed, unknown
user, wrong password or proof — is answered SASL_AUTHENTICATION_FAILED with Kafka's message
(which names the mechanism, never a credential), and the connection is closed once that answer
is sent. A SaslAuthenticate with no handshake before it, or after authentication completed, is
ILLEGAL_SASL_STATE and closes the connection too (Kafka: ``IllegalSaslStateException``).

Version notes: v1 adds ``session_lifetime_ms``: ``kafka.connections_max_reauth_ms`` once
authenticated (0, the default: the session never ends), and the client re-authenticates before
it runs out (KIP-368, see ``modes.pull.sasl``); v2 flexible.
"""

from __future__ import annotations

from broker.loggers import get_logger
from modes.pull.context import RequestContext, now_ms
from modes.pull.registry import api
from modes.pull.sasl import AuthenticationFailed, SaslStep
from wire.kafka.errors import ErrorCode
from wire.kafka.messages.security import SASL_AUTHENTICATE

log = get_logger(__name__)


def _answer(error: ErrorCode, message: str | None, token: bytes = b"", lifetime_ms: int = 0) -> dict:
    return {"error_code": error, "error_message": message, "auth_bytes": token,
            "session_lifetime_ms": lifetime_ms}


@api(SASL_AUTHENTICATE)
async def handle_sasl_authenticate(ctx: RequestContext, request: dict) -> dict:
    security = ctx.security
    if security is None or security.step != SaslStep.TOKENS:
        message = "SaslAuthenticate request received in the wrong state (no SaslHandshake v1 before it)"
        if security is not None:
            security.failure = message
        return _answer(ErrorCode.ILLEGAL_SASL_STATE, message)
    try:
        token = security.authenticate(bytes(request["auth_bytes"]), now_ms(), lifetime_sent=ctx.version >= 1)
    except AuthenticationFailed as exc:
        log.warning("sasl_authentication_failed", mechanism=security.mechanism, reason=str(exc))
        security.failure = f"SASL authentication failed: {exc}"
        return _answer(ErrorCode.SASL_AUTHENTICATION_FAILED, str(exc))
    lifetime = 0
    if security.authenticated:
        log.info("sasl_authenticated", mechanism=security.mechanism, principal=security.principal)
        if security.session_expires_ms is not None:
            lifetime = security.reauth_ms
    return _answer(ErrorCode.NONE, None, token, lifetime)
