"""Connection commands: PING, ECHO, QUIT, SELECT, RESET and HELLO.

They act on the connection itself — its protocol version (HELLO), its name, whether it
stays open — and answer exactly as redis-server 7 does, including PING's different shape in
a RESP2 client's subscribed context.

Not here: CLIENT and its subcommands (``introspection``), subscriptions (``pubsub``).
"""

from __future__ import annotations

from modes.push.client import Client
from modes.push.commands.base import REDIS_COMPAT_VERSION, ServerState, text_of, valid_client_name
from wire.resp import encoder
from wire.resp.pubsub import pong_frame

__all__ = ["echo", "hello", "ping", "quit_", "reset", "select"]


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
    """SELECT index -> OK for database 0, an error for any other."""
    # Pub/sub has no databases (channels are global in Redis too); only db 0 exists here.
    if args[1] == b"0":
        client.reply(encoder.simple("OK"))
    elif args[1].lstrip(b"-").isdigit():
        client.reply(encoder.error("ERR DB index is out of range"))
    else:
        client.reply(encoder.error("ERR value is not an integer or out of range"))


def reset(server: ServerState, client: Client, args: list[bytes]) -> None:
    """RESET -> leave every subscription, back to RESP2 and no name."""
    server.pubsub.unsubscribe_all(client.subscriber)
    server.pubsub.punsubscribe_all(client.subscriber)
    client.protocol = 2
    client.subscriber.frame_format = 2
    client.name = b""
    server.set_subscribed_limits(client)
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
    new_name = None
    while rest:
        option = rest[0].upper()
        if option == b"SETNAME" and len(rest) >= 2:
            new_name = rest[1]
            rest = rest[2:]
        elif option == b"AUTH" and len(rest) >= 3:
            # No users or passwords exist here; Redis without a password configured
            # answers AUTH that way too.
            client.reply(encoder.error(
                "WRONGPASS invalid username-password pair or user is disabled."
            ))
            return
        else:
            client.reply(encoder.error(f"ERR Syntax error in HELLO option '{text_of(rest[0])}'"))
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
