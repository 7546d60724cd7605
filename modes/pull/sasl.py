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
connection; its error message names the mechanism, never a password.

Re-authentication (KIP-368): with ``kafka.connections_max_reauth_ms`` above 0, SaslAuthenticate
v1+ tells the client how long its session lasts (``session_lifetime_ms``). Before it ends the
client sends SaslHandshake and SaslAuthenticate again on the same connection, with the same
mechanism and as the same user (Kafka refuses a change of principal); a request arriving after
the session ended closes the connection instead. Clients that authenticated with v0 (no
lifetime in the answer) are never asked to. With 0, the default as in Kafka, sessions never end.

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
    # KIP-368: how long a session lasts (0: forever), and when the current one ends.
    reauth_ms: int = 0
    session_expires_ms: int | None = None
    # The principal and mechanism of the first authentication (a re-authentication must match).
    _first: tuple[str, str] | None = None
    _scram: ScramServer | None = None
    _now_ms: int = 0
    _lifetime_sent: bool = False

    def __attrs_post_init__(self) -> None:
        if self.step is None:
            self.step = SaslStep.HANDSHAKE if self.sasl_required else SaslStep.DONE

    @property
    def authenticated(self) -> bool:
        return self.step == SaslStep.DONE

    def may_handshake(self) -> bool:
        """Whether a SaslHandshake is expected now: first, or to re-authenticate (KIP-368)."""
        return self.sasl_required and (self.step == SaslStep.HANDSHAKE
                                       or (self.step == SaslStep.DONE and self.session_expires_ms is not None))

    def session_expired(self, now_ms: int) -> bool:
        """Whether the session ended without a re-authentication (the connection must close)."""
        return self.session_expires_ms is not None and now_ms >= self.session_expires_ms

    def handshake(self, mechanism: str, version: int) -> bool:
        """Record the client's choice; False when ``mechanism`` is not enabled here."""
        if mechanism not in self.mechanisms or self.users is None:
            return False
        if self._first is not None and mechanism != self._first[1]:
            return False  # KIP-368: a re-authentication uses the first mechanism
        self.mechanism = mechanism
        self.step = SaslStep.TOKENS if version >= 1 else SaslStep.RAW_TOKENS
        if mechanism in SCRAM_MECHANISMS:
            self._scram = ScramServer(mechanism, lambda user: self.users.scram_credential(user, mechanism))
        return True

    def authenticate(self, token: bytes, now_ms: int = 0, *, lifetime_sent: bool = False) -> bytes:
        """Take one client token; return the server's token (empty when there is none).

        Once the exchange succeeds, ``principal`` is ``User:<name>`` and ``authenticated``.

        Args:
            token: the client's token.
            now_ms: the time (for the session's end).
            lifetime_sent: the answer carries ``session_lifetime_ms`` (SaslAuthenticate v1+),
                so the client knows to re-authenticate; otherwise the session never ends.

        Raises:
            AuthenticationFailed: malformed token, bad credentials, or a re-authentication as
                someone else.
        """
        self._now_ms, self._lifetime_sent = now_ms, lifetime_sent
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
        principal = f"User:{user}"
        if self._first is not None and principal != self._first[0]:
            raise AuthenticationFailed(f"Cannot change principals during re-authentication from "
                                       f"{self._first[0]}: {principal}")
        self._first = (principal, self.mechanism)
        self.principal = principal
        self.step = SaslStep.DONE
        self._scram = None
        if self.reauth_ms and self._lifetime_sent:
            self.session_expires_ms = self._now_ms + self.reauth_ms
