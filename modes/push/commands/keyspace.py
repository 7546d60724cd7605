"""The empty keyspace: FLUSHALL, FLUSHDB and DBSIZE, answered as Redis answers them for no keys.

dualmq's push mode is a message broker, not a store: it has no keys, in any of Redis's 16
databases. Test fixtures and harnesses written for Redis still send ``FLUSHALL`` (or
``FLUSHDB``) before every test and may check ``DBSIZE``; the honest answers exist — there is
nothing to flush, and zero keys — so they get exactly Redis's replies, including its syntax
errors. (SELECT, which picks one of the 16 empty databases, is a connection command:
``connection``.)

Not here: GET, SET and every other command that reads or writes keys. They stay unknown
commands (``ERR unknown command``): pretending to store would lose data silently.
"""

from __future__ import annotations

from modes.push.client import Client
from modes.push.commands.base import ServerState
from wire.resp import encoder

__all__ = ["dbsize", "flushall", "flushdb"]

_OK = encoder.simple("OK")
_SYNTAX_ERROR = encoder.error("ERR syntax error")


def flushall(server: ServerState, client: Client, args: list[bytes]) -> None:
    """FLUSHALL [ASYNC|SYNC] -> OK: there are no keys to remove, in any database."""
    _flush(client, args)


def flushdb(server: ServerState, client: Client, args: list[bytes]) -> None:
    """FLUSHDB [ASYNC|SYNC] -> OK: the selected database has no keys to remove."""
    _flush(client, args)


def _flush(client: Client, args: list[bytes]) -> None:
    # Redis accepts one optional mode word, in any letter case; anything else is a syntax error.
    if len(args) > 2 or (len(args) == 2 and args[1].upper() not in (b"ASYNC", b"SYNC")):
        client.reply(_SYNTAX_ERROR)
    else:
        client.reply(_OK)


def dbsize(server: ServerState, client: Client, args: list[bytes]) -> None:
    """DBSIZE -> 0: no database holds a key."""
    client.reply(encoder.integer(0))
