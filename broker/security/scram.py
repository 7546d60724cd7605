"""Salted credentials and the SCRAM exchange (RFC 5802, with RFC 7677's SHA-256; SHA-512 alike).

What lives here: the credential the broker stores for a user — never the password — and the
server side of one SCRAM authentication, as a small state machine over byte strings (no sockets,
no clock; the nonce comes from ``secrets`` unless a test passes one in). PLAIN is checked against
the same stored credential (``check_password``): the password the client sends in the clear is
salted and hashed the stored way and compared, so PLAIN needs no plaintext on the broker either.

The credential, as RFC 5802 defines it::

    SaltedPassword = PBKDF2-HMAC-H(password, salt, iterations)
    StoredKey      = H(HMAC(SaltedPassword, "Client Key"))
    ServerKey      = HMAC(SaltedPassword, "Server Key")

The exchange (``n,,n=user,r=cnonce`` / ``r=cnonce+snonce,s=salt,i=iterations`` /
``c=biws,r=...,p=proof`` / ``v=signature``) proves the client knows the password without sending
it, and proves to the client that the broker holds its credential.

Not here: which users exist (``broker.security.kafka_users``), the Kafka framing of the tokens
(``modes.pull.sasl``). Kafka's own defaults are kept: 4096 iterations, a fresh random salt per
user and mechanism.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Callable

import attrs

__all__ = [
    "DEFAULT_ITERATIONS",
    "MECHANISMS",
    "ScramCredential",
    "ScramError",
    "ScramServer",
    "check_password",
    "make_credential",
]

# Hash functions by SASL mechanism name (RFC 7677 registers SCRAM-SHA-256; Kafka adds -512).
MECHANISMS: dict[str, str] = {"SCRAM-SHA-256": "sha256", "SCRAM-SHA-512": "sha512"}
# Kafka's default (and minimum) iteration count for SCRAM credentials.
DEFAULT_ITERATIONS = 4096
MIN_ITERATIONS = 4096
MAX_ITERATIONS = 16384


class ScramError(ValueError):
    """An exchange that cannot succeed: malformed message, unknown user or wrong proof.

    The message is safe to log and to send to the client: it never holds a credential.
    """


@attrs.frozen(repr=False)
class ScramCredential:
    """What the broker stores for one user and one mechanism (no password)."""

    mechanism: str
    salt: bytes
    iterations: int
    stored_key: bytes
    server_key: bytes

    def __repr__(self) -> str:  # keep keys out of tracebacks and log lines
        return f"ScramCredential({self.mechanism}, iterations={self.iterations})"

    def encode(self) -> str:
        """``MECHANISM:iterations:salt:stored_key:server_key`` (base64): a ``password_hash``."""
        b64 = base64.b64encode
        return ":".join((self.mechanism, str(self.iterations), b64(self.salt).decode(),
                         b64(self.stored_key).decode(), b64(self.server_key).decode()))

    @classmethod
    def decode(cls, text: str) -> ScramCredential:
        """Parse what :meth:`encode` wrote.

        Raises:
            ScramError: not five ``:``-separated parts, unknown mechanism, bad base64 or count.
        """
        parts = text.split(":") if isinstance(text, str) else []
        if len(parts) != 5:
            raise ScramError("a password hash is MECHANISM:ITERATIONS:SALT:STORED_KEY:SERVER_KEY")
        mechanism, iterations, salt, stored, server = parts
        if mechanism not in MECHANISMS:
            raise ScramError(f"unknown mechanism {mechanism!r} in password hash; known: {', '.join(MECHANISMS)}")
        try:
            count = int(iterations)
            raw = [base64.b64decode(p, validate=True) for p in (salt, stored, server)]
        except ValueError:
            raise ScramError("a password hash holds bad base64 or a bad iteration count") from None
        size = hashlib.new(MECHANISMS[mechanism]).digest_size
        if not MIN_ITERATIONS <= count <= MAX_ITERATIONS or len(raw[1]) != size or len(raw[2]) != size:
            raise ScramError(f"a {mechanism} password hash needs iterations in "
                             f"[{MIN_ITERATIONS}, {MAX_ITERATIONS}] and {size}-byte keys")
        return cls(mechanism, raw[0], count, raw[1], raw[2])


def _salted_keys(algorithm: str, password: str, salt: bytes, iterations: int) -> tuple[bytes, bytes, bytes]:
    """(client_key, stored_key, server_key) for ``password``."""
    salted = hashlib.pbkdf2_hmac(algorithm, password.encode("utf-8"), salt, iterations)
    client_key = hmac.digest(salted, b"Client Key", algorithm)
    server_key = hmac.digest(salted, b"Server Key", algorithm)
    return client_key, hashlib.new(algorithm, client_key).digest(), server_key


def make_credential(password: str, mechanism: str, *, iterations: int = DEFAULT_ITERATIONS,
                    salt: bytes | None = None) -> ScramCredential:
    """Salt and hash ``password`` for ``mechanism`` (a fresh 32-byte salt unless given)."""
    algorithm = MECHANISMS[mechanism]
    salt = secrets.token_bytes(32) if salt is None else salt
    _, stored_key, server_key = _salted_keys(algorithm, password, salt, iterations)
    return ScramCredential(mechanism, salt, iterations, stored_key, server_key)


def check_password(credential: ScramCredential, password: str) -> bool:
    """Whether ``password`` is the one ``credential`` was made from (for SASL/PLAIN)."""
    _, stored_key, _ = _salted_keys(MECHANISMS[credential.mechanism], password, credential.salt,
                                    credential.iterations)
    return hmac.compare_digest(stored_key, credential.stored_key)


def _attributes(message: bytes, what: str) -> list[tuple[str, str]]:
    try:
        text = message.decode("utf-8")
    except UnicodeDecodeError:
        raise ScramError(f"the {what} is not UTF-8") from None
    pairs = []
    for part in text.split(","):
        if len(part) < 2 or part[1] != "=":
            raise ScramError(f"malformed {what}: expected attribute=value pairs")
        pairs.append((part[0], part[2:]))
    return pairs


def _username(saslname: str) -> str:
    # RFC 5802: "=2C" and "=3D" stand for "," and "="; any other "=" is an error.
    if "=" in saslname.replace("=2C", "").replace("=3D", ""):
        raise ScramError("malformed client-first message: bad escape in the user name")
    return saslname.replace("=2C", ",").replace("=3D", "=")


@attrs.define
class ScramServer:
    """The broker's side of one SCRAM exchange: two client messages in, two server messages out.

    Args:
        mechanism: ``SCRAM-SHA-256`` or ``SCRAM-SHA-512``.
        lookup: the stored credential of a user for this mechanism, or None if none.
        nonce: the server's nonce part (random unless a test fixes it).

    After a successful :meth:`final`, ``username`` is the authenticated user.
    """

    mechanism: str
    lookup: Callable[[str], ScramCredential | None]
    nonce: str = attrs.field(factory=lambda: secrets.token_urlsafe(24))
    username: str | None = None
    _credential: ScramCredential | None = None
    _gs2_header: str = ""
    _client_first_bare: str = ""
    _server_first: str = ""
    _combined_nonce: str = ""
    done: bool = False

    def first(self, client_first: bytes) -> bytes:
        """Answer the client-first message with the server-first message.

        Raises:
            ScramError: malformed message, channel binding asked for, or unknown user.
        """
        try:
            text = client_first.decode("utf-8")
        except UnicodeDecodeError:
            raise ScramError("the client-first message is not UTF-8") from None
        gs2, sep, rest = text.partition(",")
        authzid, sep2, bare = rest.partition(",")
        if not sep or not sep2 or gs2 not in ("n", "y"):
            # "p=..." asks for channel binding, which Kafka does not offer either.
            raise ScramError("malformed client-first message (no GS2 header, or channel binding asked for)")
        attributes = dict(_attributes(bare.encode(), "client-first message"))
        if "m" in attributes or "n" not in attributes or "r" not in attributes or not attributes["r"]:
            raise ScramError("malformed client-first message: needs n= and r=")
        user = _username(attributes["n"])
        if authzid and authzid != f"a={attributes['n']}":
            raise ScramError("an authorization id different from the user name is not supported")
        credential = self.lookup(user)
        if credential is None:
            raise ScramError(self._invalid())
        self.username, self._credential = user, credential
        self._gs2_header = f"{gs2},{authzid},"
        self._client_first_bare = bare
        self._combined_nonce = attributes["r"] + self.nonce
        self._server_first = (f"r={self._combined_nonce},s={base64.b64encode(credential.salt).decode()},"
                              f"i={credential.iterations}")
        return self._server_first.encode()

    def final(self, client_final: bytes) -> bytes:
        """Check the client's proof; answer with the server signature.

        Raises:
            ScramError: out of order, malformed, nonce mismatch, or a wrong proof.
        """
        if self._credential is None or self.done:
            raise ScramError("client-final message out of order")
        pairs = _attributes(client_final, "client-final message")
        if len(pairs) < 3 or pairs[0][0] != "c" or pairs[1][0] != "r" or pairs[-1][0] != "p":
            raise ScramError("malformed client-final message: expected c=, r=, ..., p=")
        if pairs[0][1] != base64.b64encode(self._gs2_header.encode()).decode():
            raise ScramError("malformed client-final message: unexpected channel binding")
        # RFC 5802 wants the nonce of server-first back unchanged. Kafka only checks that it
        # *ends* with it, and librdkafka relies on that: it sends its own nonce once more in
        # front (c=biws,r=<cnonce><cnonce><snonce>). We accept what Kafka accepts.
        if not pairs[1][1].endswith(self._combined_nonce):
            raise ScramError("Invalid client nonce in the final client message")
        try:
            proof = base64.b64decode(pairs[-1][1], validate=True)
        except ValueError:
            raise ScramError("malformed client-final message: the proof is not base64") from None
        without_proof = client_final.decode()[: -(len(pairs[-1][1]) + 3)]
        auth_message = f"{self._client_first_bare},{self._server_first},{without_proof}".encode()
        credential = self._credential
        algorithm = MECHANISMS[credential.mechanism]
        signature = hmac.digest(credential.stored_key, auth_message, algorithm)
        if len(proof) != len(signature):
            raise ScramError(self._invalid())
        client_key = bytes(a ^ b for a, b in zip(proof, signature))
        if not hmac.compare_digest(hashlib.new(algorithm, client_key).digest(), credential.stored_key):
            raise ScramError(self._invalid())
        self.done = True
        server_signature = hmac.digest(credential.server_key, auth_message, algorithm)
        return b"v=" + base64.b64encode(server_signature)

    def _invalid(self) -> str:
        return (f"Authentication failed during authentication due to invalid credentials "
                f"with SASL mechanism {self.mechanism}")
