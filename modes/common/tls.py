"""TLS for both listeners: the server context from ``[tls]``, the handshake, the peer's name.

Both front-ends wrap an admitted socket the same way: ``trio.SSLStream`` around it (the standard
library's ``ssl`` does the cryptography), a handshake bounded by ``HANDSHAKE_TIMEOUT_SECONDS`` so
a peer that connects and says nothing cannot hold a connection slot, and — when the client sent
a certificate — its subject, which pull mode uses as the principal (``User:CN=alice,O=dualmq``,
the distinguished name in RFC 2253 order as Kafka's default principal builder writes it).

``client_auth`` is Kafka's ``ssl.client.auth``: ``none`` asks for no certificate, ``requested``
asks and accepts a client without one, ``required`` refuses the handshake without one signed by
``ca_file``. A failed handshake ends that connection only (``TlsHandshakeFailed``, logged by the
mode as its close reason); it never disturbs the listener.

Not here: which listener uses TLS (``kafka.security_protocol``, ``resp.tls``); the certificates
themselves (the operator's, or the tests' made with ``openssl``).
"""

from __future__ import annotations

import ssl

import trio

from broker.config import TlsConfig
from broker.errors import ConfigError

__all__ = ["HANDSHAKE_TIMEOUT_SECONDS", "TlsHandshakeFailed", "accept_tls", "peer_subject", "server_context"]

# A TLS handshake is a few round trips; a peer that has not finished within this is gone or
# hostile (Kafka relies on connections.max.idle.ms for it, Redis on its client timeout).
HANDSHAKE_TIMEOUT_SECONDS = 10.0

_VERIFY = {"none": ssl.CERT_NONE, "requested": ssl.CERT_OPTIONAL, "required": ssl.CERT_REQUIRED}
# RFC 2253 attribute names for the OIDs Python spells out.
_SHORT = {"commonName": "CN", "organizationName": "O", "organizationalUnitName": "OU",
          "countryName": "C", "stateOrProvinceName": "ST", "localityName": "L",
          "domainComponent": "DC", "userId": "UID", "emailAddress": "EMAILADDRESS"}


class TlsHandshakeFailed(Exception):
    """The TLS handshake did not complete (bad certificate, not TLS at all, too slow)."""


def server_context(config: TlsConfig) -> ssl.SSLContext:
    """An ``SSLContext`` for the server side of both listeners.

    Raises:
        ConfigError: a certificate, key or CA file that cannot be read or does not match.
    """
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(config.cert_file, config.key_file)
        if config.ca_file:
            context.load_verify_locations(cafile=config.ca_file)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"[tls] cannot load the certificate, key or CA file: {exc}") from None
    context.verify_mode = _VERIFY[config.client_auth]
    return context


async def accept_tls(stream: trio.abc.Stream, context: ssl.SSLContext) -> trio.SSLStream:
    """Run the server side of the TLS handshake on ``stream``.

    Raises:
        TlsHandshakeFailed: the peer is not speaking TLS, its certificate is refused, it
            closed, or it did not finish within ``HANDSHAKE_TIMEOUT_SECONDS``.
    """
    # https_compatible: a client that closes without close_notify (most do) is an ordinary EOF.
    tls = trio.SSLStream(stream, context, server_side=True, https_compatible=True)
    with trio.move_on_after(HANDSHAKE_TIMEOUT_SECONDS) as timeout:
        try:
            await tls.do_handshake()
        except trio.BrokenResourceError as exc:
            cause = exc.__cause__
            reason = getattr(cause, "reason", None) or (str(cause) if cause else "connection closed")
            raise TlsHandshakeFailed(f"TLS handshake failed: {reason}") from None
    if timeout.cancelled_caught:
        raise TlsHandshakeFailed(f"TLS handshake not finished within {HANDSHAKE_TIMEOUT_SECONDS:g} s")
    return tls


def peer_subject(tls: trio.SSLStream) -> str | None:
    """The verified client certificate's subject as an RFC 2253 name, or None without one."""
    certificate = tls.getpeercert()
    if not certificate:
        return None
    # getpeercert lists the RDNs from the root of the name (C=...) down; RFC 2253 (and Kafka's
    # X500Principal.getName()) writes the most specific first.
    parts = []
    for rdn in reversed(certificate.get("subject", ())):
        parts.append("+".join(f"{_SHORT.get(key, key)}={_escape(value)}" for key, value in rdn))
    return ",".join(parts) or None


def _escape(value: str) -> str:
    for special in ("\\", ",", "+", '"', "<", ">", ";", "="):
        value = value.replace(special, "\\" + special)
    return value
