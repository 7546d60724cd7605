"""RESP2/RESP3, the Redis serialization protocol, sans-IO.

    requests.py           RequestParser (server: bytes -> commands, multibulk and inline),
                          check-then-parse
    inline.py             inline commands split with Redis' sdssplitargs quoting rules
    request_fast_path.py  plain multibulk pipelines parsed in bulk (hiredis or pure Python)
    replies.py            ReplyParser and NEED_DATA (client: bytes -> values, RESP2 and RESP3)
    redis_rules.py        string2ll's valid decimals and the "-ERR Protocol error" reply, shared
    encoder.py            one function per reply shape, ``encode`` for any value, ``command``
                          for clients
    pubsub.py             pre-shaped pub/sub frames for the publish hot path
    values.py             the Python types that keep RESP's kinds apart (SimpleString, ...)

Errors are ``wire.errors`` ones; a ``RemoteProtocolError`` from ``RequestParser`` carries the
exact ``-ERR Protocol error: ...`` line Redis would send before closing.
"""

from wire.resp.replies import NEED_DATA, ReplyParser
from wire.resp.requests import RequestParser
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
