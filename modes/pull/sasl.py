"""SASL on a Kafka connection: which mechanism, which step, and who the client turned out to be.

Kafka's order, which every client follows: ApiVersions (optional), then SaslHandshake naming a
mechanism, then the mechanism's tokens, then ordinary requests. Until the client has
authenticated, a listener whose security protocol is ``SASL_PLAINTEXT`` or ``SASL_SSL`` accepts
nothing but ApiVersions, SaslHandshake and SaslAuthenticate; anything else closes the connection,
as Kafka does (``IllegalSaslStateException``).

How the tokens travel depends on the handshake's version:

* after SaslHandshake **v1**, each token is the ``auth_bytes`` of a SaslAuthenticate request and
  the answer comes back in its response (a failure answers SASL_AUTHENTICATION_FAILED with a
  message, then closes);
* after SaslHandshake **v0** (old clients), each token is a bare size-prefixed frame with no
  Kafka header, and so is the answer; a failure just closes the connection.

The mechanisms:

* ``PLAIN`` (RFC 4616): one token ``authzid NUL user NUL password``; checked against the
  user's stored SCRAM credential, so the broker never keeps the password;
* ``SCRAM-SHA-256`` / ``SCRAM-SHA-512`` (RFC 5802, RFC 7677): two tokens each way, the server
  side in ``broker.security.scram``.

A bad token (not UTF-8, wrong shape, unknown user, wrong password or proof) fails only this
connection; its error message names the mechanism, never a password. Sessions do not expire:
``session_lifetime_ms`` is 0, so clients never re-authenticate (KIP-368 is not implemented).

Not here: the handlers (``api/sasl_handshake.py``, ``api/sasl_authenticate.py``), the TLS
layer underneath (``modes.common.tls``).
"""

from __future__ import annotations

import attrs

from broker.security.kafka_users import KafkaUsers
from broker.security.scram import MECHANISMS as SCRAM_MECHANISMS
from broker.security.scram import ScramError, ScramServer

__all__ = ["ANONYMOUS", "AuthenticationFailed", "ConnectionSecurity", "SaslStep"]

# Kafka's principal for a connection nobody authenticated (PLAINTEXT, SSL without a client
# certificate).
ANONYMOUS = "User:ANONYMOUS"


class AuthenticationFailed(Exception):
    """A SASL exchange failed; the message is safe to log and to send to the client."""


class SaslStep:
    """Where a connection is in the SASL sequence."""

    HANDSHAKE = "handshake"  # waiting for SaslHandshake
    TOKENS = "tokens"  # handshake v1 done: SaslAuthenticate requests carry the tokens
    RAW_TOKENS = "raw tokens"  # handshake v0 done: bare frames carry the tokens
    DONE = "done"  # authenticated (or the listener has no SASL)


@attrs.define
class ConnectionSecurity:
    """One connection's security state: its principal and, on a SASL listener, its exchange.

    Args:
        sasl_required: the listener speaks SASL_PLAINTEXT or SASL_SSL.
        mechanisms: the enabled mechanisms (Kafka's sasl.enabled.mechanisms).
        users: the credentials to check tokens against.
        principal: ``User:ANONYMOUS``, or the TLS client certificate's subject until SASL
            names the user.
        tls: whether the connection runs over TLS (for the connection summary).
    """

    sasl_required: bool
    mechanisms: tuple[str, ...]
    users: KafkaUsers | None
    principal: str = ANONYMOUS
    tls: bool = False
    step: str = attrs.field(default=None)
    mechanism: str | None = None
    # Set when authentication failed: the connection is closed once its answer is sent.
    failure: str | None = None
    _scram: ScramServer | None = None

    def __attrs_post_init__(self) -> None:
        if self.step is None:
            self.step = SaslStep.HANDSHAKE if self.sasl_required else SaslStep.DONE

    @property
    def authenticated(self) -> bool:
        return self.step == SaslStep.DONE

    def handshake(self, mechanism: str, version: int) -> bool:
        """Record the client's choice; False when ``mechanism`` is not enabled here."""
        if mechanism not in self.mechanisms or self.users is None:
            return False
        self.mechanism = mechanism
        self.step = SaslStep.TOKENS if version >= 1 else SaslStep.RAW_TOKENS
        if mechanism in SCRAM_MECHANISMS:
            self._scram = ScramServer(mechanism, lambda user: self.users.scram_credential(user, mechanism))
        return True

    def authenticate(self, token: bytes) -> bytes:
        """Take one client token; return the server's token (empty when there is none).

        Once the exchange succeeds, ``principal`` is ``User:<name>`` and ``authenticated``.

        Raises:
            AuthenticationFailed: malformed token or bad credentials.
        """
        if self.mechanism == "PLAIN":
            self._plain(token)
            return b""
        scram = self._scram
        assert scram is not None, "handshake() chose the mechanism"
        try:
            if scram.username is None:
                return scram.first(token)
            answer = scram.final(token)
        except ScramError as exc:
            raise AuthenticationFailed(str(exc)) from None
        self._authenticated(scram.username)
        return answer

    def _plain(self, token: bytes) -> None:
        parts = token.split(b"\x00")
        if len(parts) != 3:
            raise AuthenticationFailed("Invalid SASL/PLAIN response: expected 3 tokens separated by NUL")
        try:
            authzid, user, password = (part.decode("utf-8") for part in parts)
        except UnicodeDecodeError:
            raise AuthenticationFailed("Invalid SASL/PLAIN response: not UTF-8") from None
        if not user:
            raise AuthenticationFailed("Authentication failed: username not specified")
        if not password:
            raise AuthenticationFailed("Authentication failed: password not specified")
        if authzid and authzid != user:
            raise AuthenticationFailed("Authentication failed: Client requested an authorization id "
                                       "that is different from username")
        if not self.users.check_plain(user, password):
            raise AuthenticationFailed("Authentication failed: Invalid username or password")
        self._authenticated(user)

    def _authenticated(self, user: str) -> None:
        self.principal = f"User:{user}"
        self.step = SaslStep.DONE
        self._scram = None
