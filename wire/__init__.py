"""Sans-IO protocol codecs: bytes in, events out; events in, bytes out.

Nothing here opens a socket, reads a clock or logs. ``wire.resp`` speaks RESP2/RESP3 (Redis),
``wire.kafka`` speaks the Kafka wire protocol. Both raise the errors in ``wire.errors``.
"""

from wire.errors import LocalProtocolError, ProtocolError, RemoteProtocolError

__all__ = ["LocalProtocolError", "ProtocolError", "RemoteProtocolError"]
