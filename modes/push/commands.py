"""The RESP command table: name -> arity, flags, handler (Redis's command table, cut to pub/sub).

``dispatch`` applies Redis's order of checks to every command, so real clients see the exact
errors they would from redis-server (GUIDE §1.3, §4.2):

1. unknown command -> ``ERR unknown command 'X', with args beginning with: …``
   (keyspace commands such as GET and SET land here: dualmq is a broker, not a store);
2. wrong arity -> ``ERR wrong number of arguments for 'x' command``;
3. RESP2 client in subscribed context running anything but (P)(UN)SUBSCRIBE, PING, QUIT,
   RESET -> ``ERR Can't execute 'x': only (P|S)SUBSCRIBE / …``;
4. the handler.

Arity follows Redis's convention: ``n > 0`` means exactly n words (command included),
``n < 0`` means at least ``-n``. A handler receives the connection's ``Client``, the shared
``PushServer`` and the argument list, and queues its reply with ``client.reply``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import attrs

from broker.glob import glob_match
from wire.resp import encoder
from wire.resp.pubsub import pong_frame, subscription_frame

if TYPE_CHECKING:
    from modes.push.client import Client
    from modes.push.server import PushServer

Handler = Callable[["PushServer", "Client", list[bytes]], None]

# What HELLO and INFO report as the Redis version we emulate: the behaviour of redis-server
# 7.0.15 is what our pub/sub replies were checked against (GUIDE §0).
REDIS_COMPAT_VERSION = "7.0.15"

ALLOWED_WHILE_SUBSCRIBED_RESP2 = frozenset(
    {b"SUBSCRIBE", b"UNSUBSCRIBE", b"PSUBSCRIBE", b"PUNSUBSCRIBE", b"SSUBSCRIBE", b"SUNSUBSCRIBE",
     b"PING", b"QUIT", b"RESET"}
)


@attrs.frozen
class Command:
    name: bytes
    arity: int
    handler: Handler
    # Subcommands (CLIENT, PUBSUB, CONFIG, COMMAND) have their own arity and handler.
    subcommands: dict[bytes, Command] | None = None


COMMANDS: dict[bytes, Command] = {}


def command(name: str, arity: int, *, parent: str | None = None) -> Callable[[Handler], Handler]:
    """Register a handler for ``name`` (or ``parent name`` as a subcommand)."""

    def register(handler: Handler) -> Handler:
        entry = Command(name.encode(), arity, handler, {} if parent is None else None)
        if parent is None:
            COMMANDS[entry.name] = entry
        else:
            COMMANDS[parent.encode()].subcommands[entry.name] = entry  # type: ignore[index]
        return handler

    return register


# Command names as clients spell them ("publish", "PUBLISH", "Publish") -> table entry, so the
# hot path skips ``bytes.upper()``. Bounded: only names that exist get in, in few spellings.
_SPELLINGS: dict[bytes, Command] = {}
_MAX_SPELLINGS = 4096


def dispatch(server: PushServer, client: Client, args: list[bytes]) -> None:
    """Run one command with Redis's checks, queueing exactly one reply (or push frames)."""
    entry = _SPELLINGS.get(args[0])
    if entry is None:
        entry = COMMANDS.get(args[0].upper())
        if entry is None:
            client.reply(encoder.error(_unknown_command_text(args)))
            return
        if len(_SPELLINGS) < _MAX_SPELLINGS:
            _SPELLINGS[args[0]] = entry
    arity = entry.arity
    count = len(args)
    if count != arity if arity > 0 else count < -arity:
        client.reply(encoder.error(f"ERR wrong number of arguments for '{entry.name.decode().lower()}' command"))
        return
    name = client.last_command = entry.name
    if entry.subcommands:
        sub = entry.subcommands.get(args[1].upper())
        if sub is None:
            client.reply(encoder.error(
                f"ERR unknown subcommand '{_text(args[1])[:128]}'. Try {name.decode()} HELP."
            ))
            return
        if not _arity_ok(sub.arity, len(args)):
            full = f"{name.decode().lower()}|{sub.name.decode().lower()}"
            client.reply(encoder.error(f"ERR wrong number of arguments for '{full}' command"))
            return
        entry = sub
    if client.subscribed and client.protocol == 2 and name not in ALLOWED_WHILE_SUBSCRIBED_RESP2:
        client.reply(encoder.error(
            f"ERR Can't execute '{name.decode().lower()}': only (P|S)SUBSCRIBE / "
            "(P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context"
        ))
        return
    entry.handler(server, client, args)


def _arity_ok(arity: int, count: int) -> bool:
    return count == arity if arity > 0 else count >= -arity


def _text(data: bytes) -> str:
    return data.decode("utf-8", errors="replace")


def _unknown_command_text(args: list[bytes]) -> str:
    """Redis's message: the name as typed, then up to ~128 characters of quoted arguments."""
    listed = ""
    for arg in args[1:]:
        if len(listed) >= 128:
            break
        listed += f"'{_text(arg)[: 128 - len(listed)]}' "
    return f"ERR unknown command '{_text(args[0])[:128]}', with args beginning with: {listed}"


# --- connection ----------------------------------------------------------------------------

@command("PING", -1)
def ping(server: PushServer, client: Client, args: list[bytes]) -> None:
    if len(args) > 2:
        client.reply(encoder.error("ERR wrong number of arguments for 'ping' command"))
    elif client.protocol == 2 and client.subscribed:
        # RESP2 subscribed context: PING answers in the same shape as a push (GUIDE §4.1).
        client.reply(pong_frame(args[1] if len(args) == 2 else b"", 2))
    elif len(args) == 2:
        client.reply(encoder.bulk(args[1]))
    else:
        client.reply(encoder.simple("PONG"))


@command("ECHO", 2)
def echo(server: PushServer, client: Client, args: list[bytes]) -> None:
    client.reply(encoder.bulk(args[1]))


@command("QUIT", -1)
def quit_(server: PushServer, client: Client, args: list[bytes]) -> None:
    client.reply(encoder.simple("OK"))
    client.close_after_reply = True
    client.close_reason = "QUIT"


@command("SELECT", 2)
def select(server: PushServer, client: Client, args: list[bytes]) -> None:
    # Pub/sub has no databases (channels are global in Redis too); only db 0 exists here.
    if args[1] == b"0":
        client.reply(encoder.simple("OK"))
    elif args[1].lstrip(b"-").isdigit():
        client.reply(encoder.error("ERR DB index is out of range"))
    else:
        client.reply(encoder.error("ERR value is not an integer or out of range"))


@command("RESET", 1)
def reset(server: PushServer, client: Client, args: list[bytes]) -> None:
    server.pubsub.unsubscribe_all(client.subscriber)
    server.pubsub.punsubscribe_all(client.subscriber)
    client.protocol = 2
    client.subscriber.frame_format = 2
    client.name = b""
    server.set_subscribed_limits(client)
    client.reply(encoder.simple("RESET"))


@command("HELLO", -1)
def hello(server: PushServer, client: Client, args: list[bytes]) -> None:
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
            client.reply(encoder.error(f"ERR Syntax error in HELLO option '{_text(rest[0])}'"))
            return
    if new_name is not None:
        if not _valid_client_name(new_name):
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


def _valid_client_name(name: bytes) -> bool:
    # Redis: only printable ASCII without spaces ('!' .. '~').
    return all(33 <= byte <= 126 for byte in name)


# --- pub/sub -------------------------------------------------------------------------------

# PUBLISH's reply for small receiver counts, encoded once: it is sent for every publish.
_SMALL_INTEGERS = [encoder.integer(n) for n in range(1024)]


@command("PUBLISH", 3)
def publish(server: PushServer, client: Client, args: list[bytes]) -> None:
    receivers = server.publish(args[1], args[2], client.last_interaction_ms)
    client.reply(_SMALL_INTEGERS[receivers] if receivers < 1024 else encoder.integer(receivers))


def _subscribe_many(server: PushServer, client: Client, names: list[bytes], kind: bytes, action) -> None:
    for name in names:
        count = action(client.subscriber, name)
        client.reply(subscription_frame(kind, name, count, client.protocol))
    server.set_subscribed_limits(client)


def _unsubscribe_many(server: PushServer, client: Client, names: list[bytes], kind: bytes,
                      action, action_all) -> None:
    if not names:
        names = action_all(client.subscriber)
        if not names:
            # Nothing to leave: Redis still answers with one frame naming no channel.
            client.reply(subscription_frame(kind, None, client.subscriber.subscription_count, client.protocol))
            server.set_subscribed_limits(client)
            return
        count = client.subscriber.subscription_count
        # action_all already removed them; report counts decreasing as Redis does one by one.
        for index, name in enumerate(names):
            client.reply(subscription_frame(kind, name, count + len(names) - index - 1, client.protocol))
    else:
        for name in names:
            count = action(client.subscriber, name)
            client.reply(subscription_frame(kind, name, count, client.protocol))
    server.set_subscribed_limits(client)


@command("SUBSCRIBE", -2)
def subscribe(server: PushServer, client: Client, args: list[bytes]) -> None:
    _subscribe_many(server, client, args[1:], b"subscribe", server.pubsub.subscribe)


@command("PSUBSCRIBE", -2)
def psubscribe(server: PushServer, client: Client, args: list[bytes]) -> None:
    _subscribe_many(server, client, args[1:], b"psubscribe", server.pubsub.psubscribe)


@command("UNSUBSCRIBE", -1)
def unsubscribe(server: PushServer, client: Client, args: list[bytes]) -> None:
    _unsubscribe_many(server, client, args[1:], b"unsubscribe",
                      server.pubsub.unsubscribe, server.pubsub.unsubscribe_all)


@command("PUNSUBSCRIBE", -1)
def punsubscribe(server: PushServer, client: Client, args: list[bytes]) -> None:
    _unsubscribe_many(server, client, args[1:], b"punsubscribe",
                      server.pubsub.punsubscribe, server.pubsub.punsubscribe_all)


@command("PUBSUB", -2)
def pubsub_(server: PushServer, client: Client, args: list[bytes]) -> None:  # pragma: no cover
    raise AssertionError("PUBSUB is dispatched to its subcommands")


@command("CHANNELS", -2, parent="PUBSUB")
def pubsub_channels(server: PushServer, client: Client, args: list[bytes]) -> None:
    if len(args) > 3:
        client.reply(encoder.error("ERR wrong number of arguments for 'pubsub|channels' command"))
        return
    channels = server.pubsub.channels(args[2] if len(args) == 3 else None)
    client.reply(encoder.array([encoder.bulk(c) for c in channels]))


@command("NUMSUB", -2, parent="PUBSUB")
def pubsub_numsub(server: PushServer, client: Client, args: list[bytes]) -> None:
    items = []
    for channel in args[2:]:
        items += [encoder.bulk(channel), encoder.integer(server.pubsub.numsub(channel))]
    client.reply(encoder.array(items))


@command("NUMPAT", 2, parent="PUBSUB")
def pubsub_numpat(server: PushServer, client: Client, args: list[bytes]) -> None:
    client.reply(encoder.integer(server.pubsub.numpat()))


@command("HELP", 2, parent="PUBSUB")
def pubsub_help(server: PushServer, client: Client, args: list[bytes]) -> None:
    lines = [
        "PUBSUB <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "CHANNELS [<pattern>]",
        "    Return the currently active channels matching a <pattern> (default: '*').",
        "NUMPAT",
        "    Return number of subscriptions to patterns.",
        "NUMSUB [<channel> ...]",
        "    Return the number of subscribers for the specified channels, excluding",
        "    pattern subscriptions(default: no channels).",
        "HELP",
        "    Print this help.",
    ]
    client.reply(encoder.array([encoder.simple(line) for line in lines]))


# --- introspection -------------------------------------------------------------------------
# CLIENT, INFO, CONFIG and COMMAND live in modes/push/introspection.py, which registers its
# handlers in this table when imported.

from modes.push import introspection  # noqa: E402,F401  (registers handlers)
