"""The client side of TLS, shared by the SDK's Kafka and RESP clients.

One function builds the ``ssl.SSLContext`` both use: trust the given CA file (else the system's
CAs), present a client certificate when one is given (for brokers with ``tls.client_auth``), and
check the broker's host name unless told not to. The names of the arguments a user passes stay
each ecosystem's own (kafka-python's ``ssl_cafile``, redis-py's ``ssl_ca_certs``); they end here.
"""

from __future__ import annotations

import ssl

__all__ = ["client_context"]


def client_context(cafile: str | None = None, certfile: str | None = None, keyfile: str | None = None,
                   *, check_hostname: bool = True) -> ssl.SSLContext:
    """An ``SSLContext`` for connecting to a TLS listener.

    Raises:
        ValueError: a CA, certificate or key file that cannot be read.
    """
    try:
        context = ssl.create_default_context(cafile=cafile)
        if certfile:
            context.load_cert_chain(certfile, keyfile)
    except (OSError, ssl.SSLError) as exc:
        raise ValueError(f"cannot load the TLS CA, certificate or key file: {exc}") from None
    context.check_hostname = check_hostname
    return context
