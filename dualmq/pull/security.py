"""How the SDK's Kafka clients prove who they are: TLS and SASL settings, and the SASL exchange.

The settings are kafka-python's names, so code moves between the two unchanged:
``security_protocol`` (``PLAINTEXT``, ``SSL``, ``SASL_PLAINTEXT``, ``SASL_SSL``),
``sasl_mechanism`` (``PLAIN``, ``SCRAM-SHA-256``, ``SCRAM-SHA-512``), ``sasl_plain_username``,
``sasl_plain_password``, ``ssl_cafile``, ``ssl_certfile``, ``ssl_keyfile`` and
``ssl_check_hostname``. ``Producer``, ``Consumer`` and ``Admin`` take them as keyword arguments.

After ApiVersions, a SASL connection sends SaslHandshake (v1) and then the mechanism's tokens in
SaslAuthenticate requests: PLAIN's one (RFC 4616), or SCRAM's two (RFC 5802; the client proves
it knows the password without sending it, and checks the broker's signature in return, so a
broker that does not hold the credential is caught too). A refusal raises ``AuthenticationError``
with the broker's message; it is never retried, since the same password would fail again.

Not here: the requests that carry the tokens (``BrokerConnection._authenticate`` in
``connection.py``), the broker's side (``modes.pull.sasl``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import ssl

import attrs

from dualmq.errors import AuthenticationError
from dualmq.tls import client_context

__all__ = ["ClientSecurity", "ScramClient"]

SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
_SCRAM_HASHES = {"SCRAM-SHA-256": "sha256", "SCRAM-SHA-512": "sha512"}
SASL_MECHANISMS = ("PLAIN", *_SCRAM_HASHES)


def _check_protocol(instance: object, attribute: attrs.Attribute, value: str) -> None:
    if value not in SECURITY_PROTOCOLS:
        raise ValueError(f"security_protocol must be one of {', '.join(SECURITY_PROTOCOLS)}, not {value!r}")


@attrs.frozen(kw_only=True)
class ClientSecurity:
    """TLS and SASL settings of one client (kafka-python's argument names)."""

    security_protocol: str = attrs.field(default="PLAINTEXT", validator=_check_protocol)
    sasl_mechanism: str = "PLAIN"
    sasl_plain_username: str | None = None
    sasl_plain_password: str | None = attrs.field(default=None, repr=False)
    ssl_cafile: str | None = None
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None
    ssl_check_hostname: bool = True

    def __attrs_post_init__(self) -> None:
        if self.uses_sasl:
            if self.sasl_mechanism not in SASL_MECHANISMS:
                raise ValueError(f"sasl_mechanism must be one of {', '.join(SASL_MECHANISMS)}, "
                                 f"not {self.sasl_mechanism!r}")
            if not self.sasl_plain_username or self.sasl_plain_password is None:
                raise ValueError(f"security_protocol={self.security_protocol} needs sasl_plain_username "
                                 f"and sasl_plain_password")

    @property
    def uses_tls(self) -> bool:
        return self.security_protocol in ("SSL", "SASL_SSL")

    @property
    def uses_sasl(self) -> bool:
        return self.security_protocol.startswith("SASL_")

    def ssl_context(self) -> ssl.SSLContext:
        """The client side of TLS (``dualmq.tls.client_context``).

        Raises:
            ValueError: a file that cannot be read.
        """
        return client_context(self.ssl_cafile, self.ssl_certfile, self.ssl_keyfile,
                              check_hostname=self.ssl_check_hostname)


@attrs.define
class ScramClient:
    """The client's side of one SCRAM exchange (RFC 5802), sans I/O."""

    mechanism: str
    user: str
    password: str = attrs.field(repr=False)
    nonce: str = attrs.field(factory=lambda: secrets.token_urlsafe(24))
    _first_bare: str = ""
    _server_signature: bytes = b""

    def first(self) -> bytes:
        name = self.user.replace("=", "=3D").replace(",", "=2C")
        self._first_bare = f"n={name},r={self.nonce}"
        return f"n,,{self._first_bare}".encode()

    def final(self, server_first: bytes) -> bytes:
        """The client-final message (with the proof) for the broker's server-first message.

        Raises:
            AuthenticationError: a server-first message that is malformed or does not extend
                our nonce (not the broker we think, or a broken one).
        """
        algorithm = _SCRAM_HASHES[self.mechanism]
        try:
            text = server_first.decode()
            fields = dict(part.split("=", 1) for part in text.split(","))
            nonce, salt, iterations = fields["r"], base64.b64decode(fields["s"]), int(fields["i"])
        except (UnicodeDecodeError, ValueError, KeyError):
            raise AuthenticationError(f"malformed SCRAM server-first message {server_first[:60]!r}") from None
        if not nonce.startswith(self.nonce) or nonce == self.nonce:
            raise AuthenticationError("the broker's SCRAM nonce does not extend ours")
        salted = hashlib.pbkdf2_hmac(algorithm, self.password.encode(), salt, iterations)
        client_key = hmac.digest(salted, b"Client Key", algorithm)
        stored_key = hashlib.new(algorithm, client_key).digest()
        without_proof = f"c=biws,r={nonce}"
        auth_message = f"{self._first_bare},{text},{without_proof}".encode()
        proof = bytes(a ^ b for a, b in zip(client_key, hmac.digest(stored_key, auth_message, algorithm)))
        server_key = hmac.digest(salted, b"Server Key", algorithm)
        self._server_signature = hmac.digest(server_key, auth_message, algorithm)
        return f"{without_proof},p={base64.b64encode(proof).decode()}".encode()

    def verify(self, server_final: bytes) -> None:
        """Check the broker's signature: it must hold our credential, not just say yes.

        Raises:
            AuthenticationError: a missing or wrong signature.
        """
        expected = b"v=" + base64.b64encode(self._server_signature)
        if not hmac.compare_digest(server_final, expected):
            raise AuthenticationError("the broker's SCRAM signature is wrong: it does not hold our credential")
