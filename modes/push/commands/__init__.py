"""The RESP command table and ``dispatch``: name -> arity, flags, handler (Redis's, cut to pub/sub).

One module per family of commands, as in tokio's mini-redis ``cmd/``; each command is a
function that reads its arguments, applies them and queues its encoded reply:

* ``connection`` — PING, ECHO, QUIT, SELECT, RESET, HELLO;
* ``pubsub`` — PUBLISH, SPUBLISH, (P|S)SUBSCRIBE, (P|S)UNSUBSCRIBE, PUBSUB ...;
* ``keyspace`` — FLUSHALL, FLUSHDB, DBSIZE: the empty keyspace, answered as such;
* ``clients`` — CLIENT ... (names, listing, REPLY, NO-EVICT, PAUSE, ...);
* ``config`` — CONFIG GET / SET / RESETSTAT, live;
* ``acl`` — AUTH, ACL ..., and the NOAUTH / NOPERM checks below;
* ``introspection`` — INFO, COMMAND (Redis's own descriptions: ``reference.json``);
* ``shutdown`` — SHUTDOWN, where the operator allows it;
* ``pause`` — CLIENT PAUSE's state, which dispatch consults;
* ``cluster`` — CLUSTER ... and the commands between brokers, in cluster mode only
  (``CLUSTER_COMMANDS``: looked up only when the server is in a cluster);
* ``base`` — the row type (``Command``), the server as commands see it (``ServerState``).

``dispatch`` is the only way a command runs. It applies Redis's order of checks to every
command, so real clients see the exact errors they would from redis-server:

1. unknown command -> ``ERR unknown command 'X', with args beginning with: …``
   (keyspace commands such as GET and SET land here: dualmq is a broker, not a store);
2. wrong arity -> ``ERR wrong number of arguments for 'x' command`` (then the same two
   checks for the subcommand of CLIENT, CONFIG, PUBSUB, COMMAND: ``'client|pause'``);
3. a client that has not authenticated while the ``default`` user needs a password ->
   ``NOAUTH Authentication required.`` (AUTH, HELLO, QUIT, RESET excepted); a user not
   allowed the command or one of its channels -> ``NOPERM …`` (``acl.permission_error``;
   skipped for a client allowed everything: ``Client.unrestricted``);
4. a RESP2 client in subscribed context running anything but (P|S)(UN)SUBSCRIBE, PING,
   QUIT, RESET -> ``ERR Can't execute 'x': only (P|S)SUBSCRIBE / …`` (naming a subcommand
   ``pubsub|numpat``): a RESP2 connection reads every frame as a pub/sub message once
   subscribed, so a normal reply would be misread;
5. CLIENT PAUSE: a command the pause covers waits, with every later one of its client
   (``pause``); it runs later from step 1 again, as in Redis;
6. the handler.

After every command that ran or was refused (not one held by the pause), CLIENT REPLY's
state moves on: a SKIP asked for by this command covers the next one (``_next_reply_state``).

A row can say that a command passes all of them at once: a command of fixed arity without
subcommands, run by a client that is not subscribed, while no pause is in force, needs no
check beyond its word count (``Command.checked_word_count``) and, unless the client may do
everything (``Client.unrestricted``), its permission. That is what lets a pipelined
PUBLISH through with one comparison; any other command, or any doubt, goes through the
checks one by one.

It runs a whole batch of pipelined commands (what one read of the socket brought) in one
call, because PUBLISH — the hot command — may hold its output back until the batch ends
(``Command.holds_output``, see ``pubsub.publish``): before any other command runs, or an
error is queued, ``dispatch`` releases what was held, so no command and no client can tell.
"""

from __future__ import annotations

import attrs
import structlog

from modes.common.clock import now_ms
from modes.push.client import REPLY_OFF, REPLY_SKIP, REPLY_SKIP_NEXT, Client
from modes.push.commands import acl, clients, cluster, config, connection, introspection, keyspace, pubsub, shutdown
from modes.push.commands.base import COMMANDS, Command, CommandState, ServerState, text_of
from modes.push.commands.pubsub import release_held_output
from wire.resp import encoder

__all__ = ["CLUSTER_COMMANDS", "COMMANDS", "Command", "CommandState", "ServerState", "dispatch", "release_held_output"]

log = structlog.get_logger("dualmq.push")


def _table(*rows: Command) -> dict[bytes, Command]:
    return {row.name: row for row in rows}


def _container(name: bytes, arity: int, *subcommands: Command, handler=None) -> Command:
    """A command that groups subcommands; each is named ``container|sub`` (``client|pause``)."""
    prefix = name.decode().lower() + "|"
    named = [attrs.evolve(sub, fullname=prefix + sub.fullname) for sub in subcommands]
    return Command(name, arity, handler, subcommands=_table(*named))


# CLIENT's subcommands, in the groups of ``clients``: who is connected; switches of the
# caller's own connection; the whole server.
_CLIENT_ABOUT_CONNECTIONS = (
    Command(b"ID", 2, clients.client_id),
    Command(b"SETNAME", 3, clients.client_setname),
    Command(b"GETNAME", 2, clients.client_getname),
    Command(b"SETINFO", 4, clients.client_setinfo),
    Command(b"LIST", -2, clients.client_list),
    Command(b"INFO", 2, clients.client_info),
    Command(b"KILL", -3, clients.client_kill),
)
_CLIENT_SWITCHES = (
    Command(b"REPLY", 3, clients.client_reply),
    Command(b"NO-EVICT", 3, clients.client_no_evict),
    Command(b"NO-TOUCH", 3, clients.client_no_touch),
)
_CLIENT_SERVER_WIDE = (
    Command(b"PAUSE", -3, clients.client_pause),
    Command(b"UNPAUSE", 2, clients.client_unpause),
    Command(b"UNBLOCK", -3, clients.client_unblock),
    Command(b"HELP", 2, clients.client_help),
)

COMMANDS.update(_table(
    # connection
    Command(b"PING", -1, connection.ping, allowed_while_subscribed=True),
    Command(b"ECHO", 2, connection.echo),
    Command(b"QUIT", -1, connection.quit_, allowed_while_subscribed=True),
    Command(b"SELECT", 2, connection.select),
    Command(b"RESET", 1, connection.reset, allowed_while_subscribed=True),
    Command(b"HELLO", -1, connection.hello),
    Command(b"AUTH", -2, acl.auth),
    # pub/sub
    Command(b"PUBLISH", 3, pubsub.publish, holds_output=True, writes=True),
    Command(b"SUBSCRIBE", -2, pubsub.subscribe, allowed_while_subscribed=True),
    Command(b"PSUBSCRIBE", -2, pubsub.psubscribe, allowed_while_subscribed=True),
    Command(b"UNSUBSCRIBE", -1, pubsub.unsubscribe, allowed_while_subscribed=True),
    Command(b"PUNSUBSCRIBE", -1, pubsub.punsubscribe, allowed_while_subscribed=True),
    Command(b"SPUBLISH", 3, pubsub.spublish, writes=True),
    Command(b"SSUBSCRIBE", -2, pubsub.ssubscribe, allowed_while_subscribed=True),
    Command(b"SUNSUBSCRIBE", -1, pubsub.sunsubscribe, allowed_while_subscribed=True),
    _container(
        b"PUBSUB", -2,
        Command(b"CHANNELS", -2, pubsub.channels),
        Command(b"NUMSUB", -2, pubsub.numsub),
        Command(b"NUMPAT", 2, pubsub.numpat),
        Command(b"SHARDCHANNELS", -2, pubsub.shardchannels),
        Command(b"SHARDNUMSUB", -2, pubsub.shardnumsub),
        Command(b"HELP", 2, pubsub.help_),
    ),
    # the (empty) keyspace
    Command(b"FLUSHALL", -1, keyspace.flushall, writes=True),
    Command(b"FLUSHDB", -1, keyspace.flushdb, writes=True),
    Command(b"DBSIZE", 1, keyspace.dbsize),
    # clients
    _container(b"CLIENT", -2, *_CLIENT_ABOUT_CONNECTIONS, *_CLIENT_SWITCHES, *_CLIENT_SERVER_WIDE),
    # server
    _container(
        b"CONFIG", -2,
        Command(b"GET", -3, config.config_get),
        Command(b"SET", -4, config.config_set),
        Command(b"RESETSTAT", 2, config.config_resetstat),
        Command(b"REWRITE", 2, config.config_rewrite),
        Command(b"HELP", 2, config.config_help),
    ),
    Command(b"INFO", -1, introspection.info_),
    _container(
        b"COMMAND", -1,
        Command(b"COUNT", 2, introspection.command_count),
        Command(b"INFO", -2, introspection.command_info),
        Command(b"DOCS", -2, introspection.command_docs),
        Command(b"LIST", -2, introspection.command_list),
        Command(b"GETKEYS", -4, introspection.command_getkeys),
        Command(b"GETKEYSANDFLAGS", -4, introspection.command_getkeys),
        Command(b"HELP", 2, introspection.command_help),
        # COMMAND alone lists every command.
        handler=introspection.command_,
    ),
    Command(b"SHUTDOWN", -1, shutdown.shutdown),
    _container(
        b"ACL", -2,
        Command(b"CAT", -2, acl.acl_cat),
        Command(b"DELUSER", -3, acl.acl_deluser),
        Command(b"DRYRUN", -4, acl.acl_dryrun),
        Command(b"GENPASS", -2, acl.acl_genpass),
        Command(b"GETUSER", 3, acl.acl_getuser),
        Command(b"LIST", 2, acl.acl_list),
        Command(b"LOAD", 2, acl.acl_load),
        Command(b"LOG", -2, acl.acl_log),
        Command(b"SAVE", 2, acl.acl_save),
        Command(b"SETUSER", -3, acl.acl_setuser),
        Command(b"USERS", 2, acl.acl_users),
        Command(b"WHOAMI", 2, acl.acl_whoami),
        Command(b"HELP", 2, acl.acl_help),
    ),
))


# Known only to a broker in a cluster (``server.cluster`` set): on its own, a broker answers
# them "unknown command" as before, and COMMAND does not list them.
CLUSTER_COMMANDS = _table(
    _container(
        b"CLUSTER", -2,
        Command(b"SLOTS", 2, cluster.cluster_slots),
        Command(b"SHARDS", 2, cluster.cluster_shards),
        Command(b"NODES", 2, cluster.cluster_nodes),
        Command(b"INFO", 2, cluster.cluster_info),
        Command(b"MYID", 2, cluster.cluster_myid),
        Command(b"KEYSLOT", 3, cluster.cluster_keyslot),
        Command(b"HELP", 2, cluster.cluster_help),
    ),
    Command(b"DUALMQ.PEER", 3, cluster.peer, internal=True),
    Command(b"DUALMQ.FORWARD", -3, pubsub.forward, internal=True),
)

# Command names as clients spell them ("publish", "PUBLISH", "Publish") -> table entry, so the
# hot path skips ``bytes.upper()``. Bounded: only names that exist get in, in few spellings.
_SPELLINGS: dict[bytes, Command] = {}
_MAX_SPELLINGS = 4096
_PUBLISH = COMMANDS[b"PUBLISH"]
_SPELLINGS[b"PUBLISH"] = _SPELLINGS[b"publish"] = _PUBLISH


def dispatch(server: ServerState, client: Client, commands: list[list[bytes]]) -> int:
    """Run a batch of parsed commands in order, each after Redis's checks.

    Every command queues exactly one reply (or its push frames), or an error reply; the
    connection stays up either way. Stops early after a command that closes the connection
    (QUIT, CLIENT KILL of itself, SHUTDOWN), and at a command CLIENT PAUSE holds: that one and
    the rest wait in the pause (``server.command_state.pause``), and so does every command of
    this client until the pause is over. What PUBLISH held back may still be held on return:
    the caller releases it (``release_held_output``) when the batch of commands ends.

    Args:
        server: the push server.
        client: the connection the commands came from.
        commands: the parsed commands, each a list of words, the name first.

    Returns:
        How many commands ran or were refused (not those held).
    """
    spellings = _SPELLINGS
    pause = server.command_state.pause
    if pause.held and client in pause.held:
        # Behind a held command: these wait too, in order.
        _hold(server, client, commands)
        return 0
    # No pause in force and replies plain: the fast path may be taken. Only a command on the
    # careful path can change that (CLIENT PAUSE, CLIENT REPLY), so it is looked at again
    # after those only.
    fast = pause.mode is None and not client.reply_flags
    # A client allowed everything (the default user) skips the ACL checks; any other is
    # checked here too, and sent the careful way (which refuses and logs) when not allowed.
    unrestricted = client.unrestricted
    if fast and not client.subscribed and not client.held_replies and _publishes_only(server, client, commands):
        _count(server, _PUBLISH, len(commands))
        return len(commands)
    executed = 0
    # Commands by name, for /metrics. A pipeline repeats one command (PUBLISH, PUBLISH, ...):
    # the fast path counts the run in locals and adds it to the table once, when it ends.
    counted: Command | None = None
    run = 0
    try:
        for args in commands:
            try:
                entry = spellings[args[0]]
            except KeyError:
                entry = _look_up(args[0])
                if entry is None and server.cluster is not None:
                    entry = CLUSTER_COMMANDS.get(args[0].upper())
            if (fast and entry is not None and len(args) == entry.checked_word_count and not client.subscribed
                    and (unrestricted or acl.allowed(server, client, entry, args))):
                # Nothing to check: known, exact arity, no subcommand, no subscribed context, no pause.
                client.last_command = entry.name
                if entry is counted:
                    run += 1
                else:
                    if run:
                        _count(server, counted, run)
                    counted, run = entry, 1
                if not entry.holds_output:
                    release_held_output(server, client)
                entry.handler(server, client, args)
            elif not _run_carefully(server, client, entry, args):
                # Held by CLIENT PAUSE: this command and every later one wait (identity, not
                # equality: a pipeline repeats equal commands).
                position = next(i for i, command in enumerate(commands) if command is args)
                _hold(server, client, commands[position:])
                return executed
            else:
                fast = pause.mode is None and not client.reply_flags
                unrestricted = client.unrestricted
            executed += 1
            if client.close_after_reply:
                break
    finally:
        if run:
            _count(server, counted, run)
    return executed


def _count(server: ServerState, command: Command, times: int) -> None:
    """Add ``times`` runs of ``command`` to the server's commands-by-name counters."""
    calls = server.requests.requests
    calls[command.fullname] = calls.get(command.fullname, 0) + times


def _publishes_only(server: ServerState, client: Client, commands: list[list[bytes]]) -> bool:
    """Run the batch at once if it is nothing but PUBLISHes to one channel (the hot case).

    The caller checked what the fast path needs (no pause, replies plain, the client not
    subscribed, nothing held back); a restricted user's PUBLISH is checked against its ACL
    here (one channel: one verdict for the run). A lone PUBLISH is published at once, without
    holding anything back for a batch end that is already here. A run of them is checked column by
    column (every command three words, one name, one channel), then published as one
    fan-out (``pubsub.publish_run``) when the broker can prove that is the same as one by one.

    Returns:
        True when the whole batch ran; False when nothing ran and the commands must go
        through dispatch's loop one by one.
    """
    if len(commands) == 1:
        args = commands[0]
        if len(args) != 3 or _SPELLINGS.get(args[0]) is not _PUBLISH:
            return False
        if not client.unrestricted and not acl.allowed(server, client, _PUBLISH, args):
            return False
        pubsub.publish_alone(server, client, args)
        return True
    try:
        names, channels, payloads = zip(*commands, strict=True)
    except ValueError:  # not all of three words
        return False
    count = len(names)
    if (_SPELLINGS.get(names[0]) is not _PUBLISH or names.count(names[0]) != count
            or channels.count(channels[0]) != count):
        return False
    if not client.unrestricted and not acl.allowed(server, client, _PUBLISH, commands[0]):
        return False  # one channel: one verdict for the whole run
    return pubsub.publish_run(server, client, channels[0], payloads)


def _run_carefully(server: ServerState, client: Client, entry: Command | None, args: list[bytes]) -> bool:
    """Run one command after each of Redis's checks, or refuse it with the check's error.

    Returns:
        False when CLIENT PAUSE holds the command instead (nothing was done), else True.
    """
    checked = _checked(server, entry, client, args)
    if isinstance(checked, str):
        release_held_output(server, client)
        client.reply(encoder.error(checked))
    else:
        pause = server.command_state.pause
        if pause.mode is not None and pause.holds(checked.writes, now_ms()):
            release_held_output(server, client)
            return False
        if not checked.holds_output:
            release_held_output(server, client)
        _count(server, checked, 1)
        checked.handler(server, client, args)
    if client.reply_flags:
        _next_reply_state(server, client)
    return True


def _hold(server: ServerState, client: Client, commands: list[list[bytes]]) -> None:
    """Hold ``commands`` for the pause; a client holding too much is closed, as Redis closes
    one whose unprocessed requests pass ``client-query-buffer-limit``."""
    held_bytes = server.command_state.pause.hold(client, commands)
    limit = server.config.client_query_buffer_limit
    if held_bytes > limit:
        del server.command_state.pause.held[client]
        log.warning("paused_client_buffer_limit_exceeded", client_id=client.id, peer=client.addr,
                    held_bytes=held_bytes, limit_bytes=limit)
        client.close_after_reply = True
        client.close_reason = f"{held_bytes} bytes of commands held by CLIENT PAUSE, over client-query-buffer-limit"


def _next_reply_state(server: ServerState, client: Client) -> None:
    """CLIENT REPLY's state after a command: SKIP ends; a SKIP asked for now covers the next.

    What PUBLISH held back belongs to the command before the change, so it is released
    (dropped if that command's replies were off) before replies are switched on or off.
    """
    flags = client.reply_flags
    flags = (flags & REPLY_OFF) | (REPLY_SKIP if flags & REPLY_SKIP_NEXT else 0)
    client.reply_flags = flags
    muted = flags != 0
    if muted != client.replies_muted:
        release_held_output(server, client)
        client.replies_muted = muted


def _look_up(spelling: bytes) -> Command | None:
    """The table entry for a command name in any letter case (remembered for next time)."""
    entry = COMMANDS.get(spelling.upper())
    if entry is not None and len(_SPELLINGS) < _MAX_SPELLINGS:
        _SPELLINGS[spelling] = entry
    return entry


def _checked(server: ServerState, entry: Command | None, client: Client, args: list[bytes]) -> Command | str:
    """Redis's checks, in Redis's order, for the command ``args`` (``entry`` if it is known).

    Returns:
        The command to run (``entry``, or the subcommand ``args`` names), or the text of the
        error to reply instead.
    """
    if entry is None:
        return _unknown_command_text(args)
    count = len(args)
    if not _arity_ok(entry.arity, count):
        return f"ERR wrong number of arguments for '{entry.fullname}' command"
    client.last_command = entry.name
    run = entry
    # COMMAND alone runs the container's own handler; CLIENT, CONFIG, PUBSUB need a subcommand.
    if entry.subcommands is not None and count > 1:
        run = entry.subcommands.get(args[1].upper())
        if run is None:
            return f"ERR unknown subcommand '{text_of(args[1])[:128]}'. Try {entry.name.decode()} HELP."
        if not _arity_ok(run.arity, count):
            return f"ERR wrong number of arguments for '{run.fullname}' command"
        client.last_command = run.fullname.encode()
    if not client.unrestricted and not run.internal:
        refusal = acl.permission_error(server, client, run, args)
        if refusal is not None:
            return refusal
    if client.subscribed and client.protocol == 2 and not entry.allowed_while_subscribed:
        return (f"ERR Can't execute '{run.fullname}': only (P|S)SUBSCRIBE / "
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
