"""CLIENT and its subcommands: a connection's name, its listing, and the switches Redis gives it.

* Who is connected: ID, SETNAME, GETNAME, SETINFO, LIST, INFO, KILL.
* Switches of the caller's own connection: REPLY ON|OFF|SKIP (stop the replies to one's own
  commands — pushes still come), NO-EVICT (never closed to free query-buffer memory over
  ``maxmemory-clients``), NO-TOUCH (no effect: there are no keys whose access time to keep).
* The whole server: PAUSE / UNPAUSE (hold every command, or every write — PUBLISH, SPUBLISH,
  FLUSHALL, FLUSHDB — for a while; see ``pause``), UNBLOCK (there are no blocking commands
  here, so no client is ever blocked in one: always 0, as Redis answers for such a client).

Replies and errors are Redis 7.0.15's, word for word; NO-TOUCH and SETINFO answer as
Redis 7.2 does (7.0 lacks them; clients send SETINFO on every connection).

Not here: the checks before a subcommand runs (``dispatch``), CLIENT PAUSE's state and how
held commands resume (``pause``, ``modes.push.batch``).
"""

from __future__ import annotations

from modes.common.clock import now_ms
from modes.push.client import REPLY_OFF, REPLY_SKIP, REPLY_SKIP_NEXT, Client
from modes.push.commands.base import ServerState, help_reply, subcommand_syntax_error, text_of, valid_client_name
from modes.push.commands.pause import ALL, WRITE
from wire.resp import encoder
from wire.resp.redis_rules import redis_integer

__all__ = [
    "client_getname", "client_help", "client_id", "client_info", "client_kill", "client_line",
    "client_list", "client_no_evict", "client_no_touch", "client_pause", "client_reply",
    "client_setinfo", "client_setname", "client_unblock", "client_unpause",
]

_OK = encoder.simple("OK")
_SYNTAX_ERROR = encoder.error("ERR syntax error")
_NOT_AN_INTEGER = encoder.error("ERR value is not an integer or out of range")


# --- who is connected ------------------------------------------------------------------------

def client_id(server: ServerState, client: Client, args: list[bytes]) -> None:
    """CLIENT ID -> this connection's id."""
    client.reply(encoder.integer(client.id))


def client_setname(server: ServerState, client: Client, args: list[bytes]) -> None:
    """CLIENT SETNAME name -> OK (Redis's rule for names: printable, no spaces)."""
    if not valid_client_name(args[2]):
        client.reply(encoder.error("ERR Client names cannot contain spaces, newlines or special characters."))
        return
    client.name = args[2]
    client.reply(_OK)


def client_getname(server: ServerState, client: Client, args: list[bytes]) -> None:
    """CLIENT GETNAME -> the name, or null when none was set."""
    client.reply(encoder.bulk(client.name) if client.name else encoder.null(client.protocol))


def client_setinfo(server: ServerState, client: Client, args: list[bytes]) -> None:
    """CLIENT SETINFO LIB-NAME|LIB-VER value -> OK (shown by CLIENT LIST)."""
    attribute = args[2].upper()
    if attribute == b"LIB-NAME":
        client.lib_name = args[3]
    elif attribute == b"LIB-VER":
        client.lib_ver = args[3]
    else:
        client.reply(encoder.error(f"ERR Unrecognized option '{text_of(args[2])}'"))
        return
    client.reply(_OK)


def _flags(server: ServerState, client: Client) -> str:
    # Redis's letters, in Redis's order: P pub/sub, b blocked (held by CLIENT PAUSE),
    # e no-evict, T no-touch; N when none applies.
    flags = ""
    if client.subscribed:
        flags += "P"
    if server.command_state.pause.is_holding(client):
        flags += "b"
    if not client.conn.evictable:
        flags += "e"
    if client.no_touch:
        flags += "T"
    return flags or "N"


def client_line(server: ServerState, client: Client, now: int) -> str:
    """One ``CLIENT LIST`` line, with the fields Redis uses for what we track."""
    sub = client.subscriber
    return (
        f"id={client.id} addr={client.addr} laddr={client.laddr} name={text_of(client.name)} "
        f"age={(now - client.created_ms) // 1000} idle={(now - client.last_interaction_ms) // 1000} "
        f"flags={_flags(server, client)} db={client.db} sub={len(sub.channels)} psub={len(sub.patterns)} "
        f"ssub={len(sub.shard_channels)} multi=-1 "
        f"omem={client.outbox.pending_bytes} cmd={text_of(client.last_command).lower()} "
        f"user={client.user.name} resp={client.protocol} lib-name={text_of(client.lib_name)} "
        f"lib-ver={text_of(client.lib_ver)}"
    )


def client_list(server: ServerState, client: Client, args: list[bytes]) -> None:
    """CLIENT LIST [TYPE normal|pubsub|...] [ID id ...] -> one line per connection."""
    now = now_ms()
    clients = list(server.clients.values())
    if len(args) >= 4 and args[2].upper() == b"ID":
        wanted = set()
        for raw in args[3:]:
            try:
                wanted.add(int(raw))
            except ValueError:
                client.reply(encoder.error("ERR Invalid client ID"))
                return
        clients = [c for c in clients if c.id in wanted]
    elif len(args) == 4 and args[2].upper() == b"TYPE":
        kind = args[3].lower()
        if kind == b"pubsub":
            clients = [c for c in clients if c.subscribed]
        elif kind == b"normal":
            clients = [c for c in clients if not c.subscribed]
        elif kind in (b"master", b"replica", b"slave"):
            clients = []
        else:
            client.reply(encoder.error(f"ERR Unknown client type '{text_of(args[3])}'"))
            return
    elif len(args) != 2:
        client.reply(_SYNTAX_ERROR)
        return
    text = "".join(client_line(server, c, now) + "\n" for c in clients)
    client.reply(encoder.verbatim(text, client.protocol))


def client_info(server: ServerState, client: Client, args: list[bytes]) -> None:
    """CLIENT INFO -> this connection's CLIENT LIST line."""
    client.reply(encoder.verbatim(client_line(server, client, now_ms()) + "\n", client.protocol))


def client_kill(server: ServerState, client: Client, args: list[bytes]) -> None:
    """CLIENT KILL addr | KILL [ID id] [ADDR addr] [LADDR addr] [USER name] [SKIPME yes|no] -> OK or a count."""
    if len(args) == 3:
        # Old form: CLIENT KILL addr:port -> +OK or an error.
        target = text_of(args[2])
        victims = [c for c in server.clients.values() if c.addr == target]
        if not victims:
            client.reply(encoder.error("ERR No such client"))
            return
        _kill_all(server, client, victims)
        client.reply(_OK)
        return
    filters = args[2:]
    if len(filters) % 2:
        client.reply(_SYNTAX_ERROR)
        return
    victims = list(server.clients.values())
    skipme = True
    for key, value in zip(filters[::2], filters[1::2]):
        key = key.upper()
        if key == b"ID":
            try:
                wanted = int(value)
            except ValueError:
                client.reply(encoder.error("ERR client-id should be greater than 0"))
                return
            victims = [c for c in victims if c.id == wanted]
        elif key == b"ADDR":
            victims = [c for c in victims if c.addr == text_of(value)]
        elif key == b"LADDR":
            victims = [c for c in victims if c.laddr == text_of(value)]
        elif key == b"USER":
            user = server.acl.users.get(text_of(value))
            if user is None:
                client.reply(encoder.error(f"ERR No such user '{text_of(value)}'"))
                return
            victims = [c for c in victims if c.user is user]
        elif key == b"SKIPME":
            skipme = value.lower() != b"no"
        else:
            client.reply(_SYNTAX_ERROR)
            return
    if skipme:
        victims = [c for c in victims if c is not client]
    _kill_all(server, client, victims)
    client.reply(encoder.integer(len(victims)))


def _kill_all(server: ServerState, killer: Client, victims: list[Client]) -> None:
    for victim in victims:
        if victim is killer:
            # Redis closes the caller after replying to it.
            killer.close_after_reply = True
            killer.close_reason = "CLIENT KILL"
        else:
            server.kill(victim, f"CLIENT KILL by client {killer.id}")


# --- switches of the caller's connection -------------------------------------------------------

def client_reply(server: ServerState, client: Client, args: list[bytes]) -> None:
    """CLIENT REPLY ON|OFF|SKIP -> OK for ON; nothing at all for OFF and SKIP.

    OFF drops the replies to every later command until ON; SKIP drops the reply to the next
    command only (dispatch turns the pending SKIP into the current one when this command ends).
    Pushes — subscribe confirmations, messages — still come, as from Redis.
    """
    mode = args[2].upper()
    if mode == b"ON":
        # Also ends a SKIP of this very command: its +OK is sent.
        client.reply_flags &= ~(REPLY_OFF | REPLY_SKIP)
        client.replies_muted = False
        client.reply(_OK)
    elif mode == b"OFF":
        client.reply_flags |= REPLY_OFF
        client.replies_muted = True
    elif mode == b"SKIP":
        # With replies off already, there is nothing to skip.
        if not client.reply_flags & REPLY_OFF:
            client.reply_flags |= REPLY_SKIP_NEXT
    else:
        client.reply(_SYNTAX_ERROR)


def _on_off(client: Client, word: bytes) -> bool | None:
    """ON -> True, OFF -> False (any letter case); anything else -> None after a syntax error."""
    value = {b"ON": True, b"OFF": False}.get(word.upper())
    if value is None:
        client.reply(_SYNTAX_ERROR)
    return value


def client_no_evict(server: ServerState, client: Client, args: list[bytes]) -> None:
    """CLIENT NO-EVICT ON|OFF -> OK: whether this connection may be closed to free query-buffer
    memory when all connections together hold more than ``maxmemory-clients``."""
    value = _on_off(client, args[2])
    if value is not None:
        client.conn.evictable = not value
        client.reply(_OK)


def client_no_touch(server: ServerState, client: Client, args: list[bytes]) -> None:
    """CLIENT NO-TOUCH ON|OFF -> OK. Redis stops updating the access time of the keys the
    connection reads; with no keys here, only CLIENT LIST's ``T`` flag shows it."""
    value = _on_off(client, args[2])
    if value is not None:
        client.no_touch = value
        client.reply(_OK)


# --- the whole server: PAUSE, UNPAUSE, UNBLOCK ---------------------------------------------------

def client_pause(server: ServerState, client: Client, args: list[bytes]) -> None:
    """CLIENT PAUSE timeout-ms [WRITE|ALL] -> OK; commands wait until the time is up or UNPAUSE."""
    if len(args) > 4:
        # The arity (-3) lets it through; Redis's handler then refuses it so.
        client.reply(subcommand_syntax_error(args))
        return
    mode = ALL
    if len(args) == 4:
        mode = {b"WRITE": WRITE, b"ALL": ALL}.get(args[3].upper())
        if mode is None:
            # Redis checks the mode before the timeout.
            client.reply(encoder.error("ERR CLIENT PAUSE mode must be WRITE or ALL"))
            return
    timeout = redis_integer(args[2])
    if timeout is None:
        client.reply(encoder.error("ERR timeout is not an integer or out of range"))
        return
    if timeout < 0:
        client.reply(encoder.error("ERR timeout is negative"))
        return
    # Redis: a timeout of 0 means an end time of 0, i.e. a pause already over.
    server.command_state.pause.start(mode, now_ms() + timeout if timeout else 0)
    client.reply(_OK)


def client_unpause(server: ServerState, client: Client, args: list[bytes]) -> None:
    """CLIENT UNPAUSE -> OK; the held clients run their commands, in the order they were held."""
    server.command_state.pause.end()
    client.reply(_OK)


def client_unblock(server: ServerState, client: Client, args: list[bytes]) -> None:
    """CLIENT UNBLOCK client-id [TIMEOUT|ERROR] -> 0: no client is ever in a blocking command here.

    Redis unblocks a client waiting in BLPOP, XREAD BLOCK, WAIT...; dualmq has none of them.
    A client held by CLIENT PAUSE is not unblockable either (Redis 7.2 answers 0 for it too;
    redis-server 7.0.15 crashes on it).
    """
    if len(args) > 4:
        client.reply(subcommand_syntax_error(args))
    elif len(args) == 4 and args[3].upper() not in (b"TIMEOUT", b"ERROR"):
        # Redis checks the reason before the id.
        client.reply(encoder.error("ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR"))
    elif redis_integer(args[2]) is None:
        client.reply(_NOT_AN_INTEGER)
    else:
        client.reply(encoder.integer(0))


_HELP = """\
CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:
GETNAME
    Return the name of the current connection.
ID
    Return the ID of the current connection.
INFO
    Return information about the current client connection.
KILL <ip:port>
    Kill connection made from <ip:port>.
KILL <option> <value> [<option> <value> [...]]
    Kill connections. Options are:
    * ADDR (<ip:port>|<unixsocket>:0)
      Kill connections made from the specified address
    * LADDR (<ip:port>|<unixsocket>:0)
      Kill connections made to specified local address
    * SKIPME (YES|NO)
      Skip killing current connection (default: yes).
LIST [options ...]
    Return information about client connections. Options:
    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)
      Return clients of specified type.
UNPAUSE
    Stop the current client pause, resuming traffic.
PAUSE <timeout> [WRITE|ALL]
    Suspend all, or just write, clients for <timeout> milliseconds.
REPLY (ON|OFF|SKIP)
    Control the replies sent to the current connection.
SETINFO <LIB-NAME|LIB-VER> <value>
    Set client meta attributes.
SETNAME <name>
    Assign the name <name> to the current connection.
UNBLOCK <clientid> [TIMEOUT|ERROR]
    Unblock the specified blocked client.
NO-EVICT (ON|OFF)
    Protect current client connection from eviction.
NO-TOUCH (ON|OFF)
    Will not touch LRU/LFU stats when this mode is on.
HELP
    Prints this help.
"""


def client_help(server: ServerState, client: Client, args: list[bytes]) -> None:
    """CLIENT HELP -> Redis's help text, for the subcommands we have."""
    help_reply(client, _HELP)
