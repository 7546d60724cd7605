"""The RESP command table and ``dispatch``: name -> arity, flags, handler (Redis's, cut to pub/sub).

One module per family of commands, as in tokio's mini-redis ``cmd/``; each command is a
function that reads its arguments, applies them and queues its encoded reply:

* ``connection`` — PING, ECHO, QUIT, SELECT, RESET, HELLO;
* ``pubsub`` — PUBLISH, SUBSCRIBE, UNSUBSCRIBE, PSUBSCRIBE, PUNSUBSCRIBE, PUBSUB ...;
* ``introspection`` — CLIENT ..., INFO, CONFIG ..., COMMAND;
* ``base`` — the row type (``Command``), the server as commands see it (``ServerState``).

``dispatch`` is the only way a command runs. It applies Redis's order of checks to every
command, so real clients see the exact errors they would from redis-server:

1. unknown command -> ``ERR unknown command 'X', with args beginning with: …``
   (keyspace commands such as GET and SET land here: dualmq is a broker, not a store);
2. wrong arity -> ``ERR wrong number of arguments for 'x' command`` (then the same two
   checks for the subcommand of CLIENT, CONFIG, PUBSUB);
3. a RESP2 client in subscribed context running anything but (P)(UN)SUBSCRIBE, PING, QUIT,
   RESET -> ``ERR Can't execute 'x': only (P|S)SUBSCRIBE / …``: a RESP2 connection reads
   every frame as a pub/sub message once subscribed, so a normal reply would be misread;
4. the handler.

A row can say that a command passes all of them at once: a command of fixed arity without
subcommands, run by a client that is not subscribed, needs no check beyond its word count
(``Command.checked_word_count``). That is what lets a pipelined PUBLISH through with one
comparison; any other command, or any doubt, goes through the checks one by one.

It runs a whole batch of pipelined commands (what one read of the socket brought) in one
call, because PUBLISH — the hot command — may hold its output back until the batch ends
(``Command.holds_output``, see ``pubsub.publish``): before any other command runs, or an
error is queued, ``dispatch`` releases what was held, so no command and no client can tell.
"""

from __future__ import annotations

from modes.push.client import Client
from modes.push.commands import connection, introspection, pubsub
from modes.push.commands.base import COMMANDS, Command, ServerState, text_of
from modes.push.commands.pubsub import release_held_output
from wire.resp import encoder

__all__ = ["COMMANDS", "Command", "ServerState", "dispatch", "release_held_output"]


def _table(*rows: Command) -> dict[bytes, Command]:
    return {row.name: row for row in rows}


_PUBSUB = ("pubsub",)

COMMANDS.update(_table(
    # connection
    Command(b"PING", -1, connection.ping, allowed_while_subscribed=True),
    Command(b"ECHO", 2, connection.echo),
    Command(b"QUIT", -1, connection.quit_, allowed_while_subscribed=True),
    Command(b"SELECT", 2, connection.select),
    Command(b"RESET", 1, connection.reset, allowed_while_subscribed=True),
    Command(b"HELLO", -1, connection.hello),
    # pub/sub
    Command(b"PUBLISH", 3, pubsub.publish, holds_output=True, flags=_PUBSUB),
    Command(b"SUBSCRIBE", -2, pubsub.subscribe, allowed_while_subscribed=True, flags=_PUBSUB),
    Command(b"PSUBSCRIBE", -2, pubsub.psubscribe, allowed_while_subscribed=True, flags=_PUBSUB),
    Command(b"UNSUBSCRIBE", -1, pubsub.unsubscribe, allowed_while_subscribed=True, flags=_PUBSUB),
    Command(b"PUNSUBSCRIBE", -1, pubsub.punsubscribe, allowed_while_subscribed=True, flags=_PUBSUB),
    Command(b"PUBSUB", -2, None, flags=_PUBSUB, subcommands=_table(
        Command(b"CHANNELS", -2, pubsub.channels),
        Command(b"NUMSUB", -2, pubsub.numsub),
        Command(b"NUMPAT", 2, pubsub.numpat),
        Command(b"HELP", 2, pubsub.help_),
    )),
    # introspection
    Command(b"CLIENT", -2, None, subcommands=_table(
        Command(b"ID", 2, introspection.client_id),
        Command(b"SETNAME", 3, introspection.client_setname),
        Command(b"GETNAME", 2, introspection.client_getname),
        Command(b"SETINFO", 4, introspection.client_setinfo),
        Command(b"LIST", -2, introspection.client_list),
        Command(b"INFO", 2, introspection.client_info),
        Command(b"KILL", -3, introspection.client_kill),
        Command(b"HELP", 2, introspection.client_help),
    )),
    Command(b"CONFIG", -2, None, subcommands=_table(
        Command(b"GET", -3, introspection.config_get),
        Command(b"HELP", 2, introspection.config_help),
    )),
    Command(b"INFO", -1, introspection.info_),
    Command(b"COMMAND", -1, introspection.command_),
))


# Command names as clients spell them ("publish", "PUBLISH", "Publish") -> table entry, so the
# hot path skips ``bytes.upper()``. Bounded: only names that exist get in, in few spellings.
_SPELLINGS: dict[bytes, Command] = {}
_MAX_SPELLINGS = 4096


def dispatch(server: ServerState, client: Client, commands: list[list[bytes]]) -> int:
    """Run a batch of parsed commands in order, each after Redis's checks.

    Every command queues exactly one reply (or its push frames), or an error reply; the
    connection stays up either way. Stops early after a command that closes the connection
    (QUIT, CLIENT KILL of itself). What PUBLISH held back may still be held on return: the
    caller releases it (``release_held_output``) when the batch of commands ends.

    Args:
        server: the push server.
        client: the connection the commands came from.
        commands: the parsed commands, each a list of words, the name first.

    Returns:
        How many commands ran or were refused.
    """
    spellings = _SPELLINGS
    executed = 0
    for args in commands:
        executed += 1
        try:
            entry = spellings[args[0]]
        except KeyError:
            entry = _look_up(args[0])
        if entry is not None and len(args) == entry.checked_word_count and not client.subscribed:
            # Nothing to check: known, exact arity, no subcommand, no subscribed context.
            client.last_command = entry.name
        else:
            checked = _checked(entry, client, args)
            if isinstance(checked, str):
                release_held_output(server, client)
                client.reply(encoder.error(checked))
                continue
            entry = checked
        if not entry.holds_output:
            release_held_output(server, client)
        entry.handler(server, client, args)
        if client.close_after_reply:
            break
    return executed


def _look_up(spelling: bytes) -> Command | None:
    """The table entry for a command name in any letter case (remembered for next time)."""
    entry = COMMANDS.get(spelling.upper())
    if entry is not None and len(_SPELLINGS) < _MAX_SPELLINGS:
        _SPELLINGS[spelling] = entry
    return entry


def _checked(entry: Command | None, client: Client, args: list[bytes]) -> Command | str:
    """Redis's checks, in Redis's order, for the command ``args`` (``entry`` if it is known).

    Returns:
        The command to run (``entry``, or the subcommand ``args`` names), or the text of the
        error to reply instead.
    """
    if entry is None:
        return _unknown_command_text(args)
    count = len(args)
    if not _arity_ok(entry.arity, count):
        return f"ERR wrong number of arguments for '{entry.name.decode().lower()}' command"
    client.last_command = entry.name
    name = entry.name.decode()
    run = entry
    if entry.subcommands is not None:
        run = entry.subcommands.get(args[1].upper())
        if run is None:
            return f"ERR unknown subcommand '{text_of(args[1])[:128]}'. Try {name} HELP."
        if not _arity_ok(run.arity, count):
            return f"ERR wrong number of arguments for '{name.lower()}|{run.name.decode().lower()}' command"
    if client.subscribed and client.protocol == 2 and not entry.allowed_while_subscribed:
        return (f"ERR Can't execute '{name.lower()}': only (P|S)SUBSCRIBE / "
                "(P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context")
    return run


def _arity_ok(arity: int, count: int) -> bool:
    """Redis's arity rule: exactly ``arity`` words if positive, at least ``-arity`` if negative."""
    return count == arity if arity > 0 else count >= -arity


def _unknown_command_text(args: list[bytes]) -> str:
    """Redis's message: the name as typed, then up to ~128 characters of quoted arguments."""
    listed = ""
    for arg in args[1:]:
        if len(listed) >= 128:
            break
        listed += f"'{text_of(arg)[: 128 - len(listed)]}' "
    return f"ERR unknown command '{text_of(args[0])[:128]}', with args beginning with: {listed}"
