"""Connection commands: PING, ECHO, QUIT, SELECT, RESET and HELLO.

They act on the connection itself — its protocol version (HELLO), its name, whether it
stays open — and answer exactly as redis-server 7 does, including PING's different shape in
a RESP2 client's subscribed context.

Not here: CLIENT and its subcommands (``introspection``), subscriptions (``pubsub``).
"""

from __future__ import annotations

from modes.push.client import REPLY_OFF, REPLY_SKIP, Client
from modes.push.commands.acl import authenticate, refresh_client
from modes.push.commands.base import REDIS_COMPAT_VERSION, ServerState, text_of, valid_client_name
from wire.resp import encoder
from wire.resp.pubsub import pong_frame
from wire.resp.redis_rules import redis_integer

__all__ = ["DATABASES", "echo", "hello", "ping", "quit_", "reset", "select"]

# Redis's default ``databases``: SELECT accepts 0 to 15. Each is empty here (no keys at all).
DATABASES = 16
_INT_MIN, _INT_MAX = -(2**31), 2**31 - 1


def ping(server: ServerState, client: Client, args: list[bytes]) -> None:
    """PING [message] -> PONG, or the message."""
    if len(args) > 2:
        client.reply(encoder.error("ERR wrong number of arguments for 'ping' command"))
    elif client.protocol == 2 and client.subscribed:
        # A RESP2 subscriber reads every frame as a push, so Redis answers PING there in the
        # same shape: ["pong", message].
        client.reply(pong_frame(args[1] if len(args) == 2 else b"", 2))
    elif len(args) == 2:
        client.reply(encoder.bulk(args[1]))
    else:
        client.reply(encoder.simple("PONG"))


def echo(server: ServerState, client: Client, args: list[bytes]) -> None:
    """ECHO message -> the message."""
    client.reply(encoder.bulk(args[1]))


def quit_(server: ServerState, client: Client, args: list[bytes]) -> None:
    """QUIT -> OK, then the connection closes once the reply is sent."""
    client.reply(encoder.simple("OK"))
    client.close_after_reply = True
    client.close_reason = "QUIT"


def select(server: ServerState, client: Client, args: list[bytes]) -> None:
    """SELECT index -> OK for 0..15 (every database is empty), Redis's errors otherwise."""
    # Channels are global in Redis too: the database changes nothing for pub/sub.
    index = redis_integer(args[1])
    if index is None:
        client.reply(encoder.error("ERR value is not an integer or out of range"))
    elif not _INT_MIN <= index <= _INT_MAX:
        # Redis reads the index as a C int first; its message says "must between".
        client.reply(encoder.error(
            f"ERR value is out of range, value must between {_INT_MIN} and {_INT_MAX}"))
    elif not 0 <= index < DATABASES:
        client.reply(encoder.error("ERR DB index is out of range"))
    else:
        client.db = index
        client.reply(encoder.simple("OK"))


def reset(server: ServerState, client: Client, args: list[bytes]) -> None:
    """RESET -> as a new connection: no subscription, RESP2, database 0, no name, replies on."""
    server.pubsub.unsubscribe_all(client.subscriber)
    server.pubsub.punsubscribe_all(client.subscriber)
    server.pubsub.sunsubscribe_all(client.subscriber)
    client.protocol = 2
    client.subscriber.frame_format = 2
    client.name = b""
    client.db = 0
    client.conn.evictable = True
    client.no_touch = False
    # Redis clears CLIENT REPLY OFF and a pending SKIP, but not a SKIP of this very command.
    if client.reply_flags & REPLY_OFF:
        client.replies_muted = False
    client.reply_flags &= REPLY_SKIP
    server.set_subscribed_limits(client)
    # Back to the default user, authenticated only if that user needs no password.
    client.user = server.acl.default_user
    client.authenticated = not server.acl.auth_required()
    refresh_client(server, client)
    client.reply(encoder.simple("RESET"))


def hello(server: ServerState, client: Client, args: list[bytes]) -> None:
    """HELLO [protover [AUTH user pass] [SETNAME name]] -> the server's description as a map."""
    protocol = client.protocol
    rest = args[1:]
    if rest:
        try:
            protocol = int(rest[0])
        except ValueError:
            client.reply(encoder.error("ERR Protocol version is not an integer or out of range"))
            return
        if protocol not in (2, 3):
            client.reply(encoder.error("NOPROTO unsupported protocol version"))
            return
        rest = rest[1:]
    new_name = credentials = None
    while rest:
        option = rest[0].upper()
        if option == b"SETNAME" and len(rest) >= 2:
            new_name = rest[1]
            rest = rest[2:]
        elif option == b"AUTH" and len(rest) >= 3:
            credentials = rest[1], rest[2]
            rest = rest[3:]
        else:
            client.reply(encoder.error(f"ERR Syntax error in HELLO option '{text_of(rest[0])}'"))
            return
    if credentials is not None and not authenticate(server, client, *credentials, args[0]):
        return  # WRONGPASS was replied
    if not client.authenticated:
        # Redis asks for the AUTH option rather than a separate AUTH first.
        client.reply(encoder.error(
            "NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO "
            "AUTH <user> <pass> option can be used to authenticate the client and select the RESP "
            "protocol version at the same time"))
        return
    if new_name is not None:
        if not valid_client_name(new_name):
            client.reply(encoder.error("ERR Client names cannot contain spaces, newlines or special characters."))
            return
        client.name = new_name
    client.protocol = protocol
    client.subscriber.frame_format = protocol
    pairs = [
        (b"server", encoder.bulk(b"redis")),
        (b"version", encoder.bulk(REDIS_COMPAT_VERSION.encode())),
        (b"proto", encoder.integer(protocol)),
        (b"id", encoder.integer(client.id)),
        (b"mode", encoder.bulk(b"standalone")),
        (b"role", encoder.bulk(b"master")),
        (b"modules", encoder.array([])),
    ]
    client.reply(encoder.map_([(encoder.bulk(k), v) for k, v in pairs], protocol))
