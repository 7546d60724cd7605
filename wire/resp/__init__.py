"""RESP2/RESP3, the Redis serialization protocol, sans-IO.

    parser.py    RequestParser (server: bytes -> commands, multibulk and inline) and
                 ReplyParser (client: bytes -> values, RESP2 and RESP3), check-then-parse
    encoder.py   one function per reply shape, ``encode`` for any value, ``command`` for clients
    pubsub.py    pre-shaped pub/sub frames for the publish hot path
    values.py    the Python types that keep RESP's kinds apart (SimpleString, ErrorReply, ...)

Errors are ``wire.errors`` ones; a ``RemoteProtocolError`` from ``RequestParser`` carries the
exact ``-ERR Protocol error: ...`` line Redis would send before closing.
"""

from wire.resp.parser import NEED_DATA, ReplyParser, RequestParser
from wire.resp.values import ErrorReply, Push, RespSet, SimpleString, Verbatim

__all__ = [
    "NEED_DATA",
    "ErrorReply",
    "Push",
    "ReplyParser",
    "RequestParser",
    "RespSet",
    "SimpleString",
    "Verbatim",
]
