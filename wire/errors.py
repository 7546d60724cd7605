"""Protocol errors, split by whose fault they are (the h11 convention).

``RemoteProtocolError``: the peer sent bytes that break the protocol. The connection that
received them should send ``reply`` (if any) and close; no other connection is affected.

``LocalProtocolError``: our own code asked the codec to do something the protocol forbids
(encode a value that cannot be encoded, send out of order). That is a bug on our side.

Both carry ``reply``: the bytes the front-end should write before closing, already encoded
for the protocol in question (a RESP ``-ERR Protocol error: ...`` line, say), or ``None``
when the protocol has no way to say it (Kafka closes silently on a bad header).
"""

from __future__ import annotations


class ProtocolError(Exception):
    """A violation of the wire protocol.

    Args:
        message: human-readable description, used in logs.
        reply: encoded bytes to send to the peer before closing, or None.
    """

    def __init__(self, message: str, *, reply: bytes | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.reply = reply


class RemoteProtocolError(ProtocolError):
    """The peer broke the protocol; close this connection (after sending ``reply``)."""


class LocalProtocolError(ProtocolError):
    """We misused the codec: a bug in our code, never the peer's fault."""
