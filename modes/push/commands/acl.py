"""Who a RESP client is and what it may do: AUTH, ACL ..., and the checks dispatch runs.

The users and their rules are ``broker.security.redis_acl``'s; this module speaks RESP for
them, as Redis 7.0.15 does (docs/resp.md#acl):

* ``AUTH [username] password`` — 1 argument means the ``default`` user; the HELLO command's
  ``AUTH user pass`` option comes through ``authenticate`` too.
* ``ACL SETUSER / GETUSER / DELUSER / LIST / USERS / WHOAMI / CAT / LOG / DRYRUN / GENPASS /
  LOAD / SAVE / HELP``.
* ``permission_error`` — the two checks dispatch makes before running a command for a client
  that is not allowed everything: authenticated yet (``-NOAUTH``)? allowed this command and
  these channels (``-NOPERM``)? Each refusal is remembered for ACL LOG.
* ``users_changed`` — after users change, every connection is moved to its user's new rules;
  a connection whose user is gone, or whose subscriptions its user may no longer have, is
  disconnected (Redis 7 does so, without a message).

A client allowed everything (the ``default`` user as Redis starts it) costs dispatch one
attribute test per batch (``Client.unrestricted``); only the others are checked per command.

Passwords never reach a log line or an error text: AUTH's failures are logged with the user
name and the peer only.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from broker.config import RespConfig
from broker.errors import ConfigError
from broker.loggers import get_logger
from broker.security.redis_acl import (
    CATEGORIES,
    CHANNEL_DENIED,
    COMMAND_DENIED,
    NO_AUTH_COMMANDS,
    CommandCatalog,
    RedisAcl,
    RedisAclError,
    RedisUser,
    describe_channels,
    describe_commands,
    describe_keys,
    describe_user,
    format_acl_file,
    parse_acl_file,
    user_flags,
)
from modes.common.clock import now_ms
from modes.push.client import Client
from modes.push.commands.base import COMMANDS, Command, ServerState, help_reply, subcommand_syntax_error, text_of
from modes.push.commands.clients import client_line
from modes.push.commands.introspection import FACTS
from wire.resp import encoder
from wire.resp.redis_rules import redis_integer

__all__ = [
    "acl_cat", "acl_deluser", "acl_dryrun", "acl_genpass", "acl_getuser", "acl_help", "acl_list",
    "acl_load", "acl_log", "acl_save", "acl_setuser", "acl_users", "acl_whoami", "allowed", "auth", "authenticate",
    "build_acl", "permission_error", "refresh_client", "users_changed",
]

log = get_logger(__name__)

_OK = encoder.simple("OK")
NOAUTH = "NOAUTH Authentication required."
WRONGPASS = "WRONGPASS invalid username-password pair or user is disabled."
_NO_ACL_FILE = ("ERR This Redis instance is not configured to use an ACL file. You may want to specify "
                "users via the ACL SETUSER command and then issue a CONFIG REWRITE (assuming you have a "
                "Redis configuration file set) in order to store users in the Redis configuration.")

# Where each command that names channels has them: (first argument, all the rest?, patterns?).
_CHANNEL_ARGUMENTS = {
    "publish": (1, False, False),
    "spublish": (1, False, False),
    "subscribe": (1, True, False),
    "ssubscribe": (1, True, False),
    "psubscribe": (1, True, True),
}


# --- building the users ------------------------------------------------------------------------

def command_catalog() -> CommandCatalog:
    """Our command table with Redis's ACL categories for each command (``reference.json``)."""
    categories: dict[str, frozenset[str]] = {}
    subcommands: dict[str, tuple[str, ...]] = {}
    for command in COMMANDS.values():
        for each in (command, *(command.subcommands or {}).values()):
            facts = FACTS.get(each.fullname, {})
            categories[each.fullname] = frozenset(c.lstrip("@") for c in facts.get("acl_categories", ()))
        if command.subcommands:
            subcommands[command.fullname] = tuple(sub.fullname for sub in command.subcommands.values())
    return CommandCatalog(categories=categories, subcommands=subcommands)


def build_acl(config: RespConfig) -> RedisAcl:
    """The users the config defines: ``requirepass``, then ``[[resp.users]]`` or the ACL file.

    Raises:
        ConfigError: a rule Redis would refuse, or an ACL file that cannot be read or parsed.
    """
    acl = RedisAcl(catalog=command_catalog(), all_channels_default=config.acl_pubsub_default == "allchannels")
    if config.requirepass:
        # Redis's requirepass: the default user's only password.
        acl.set_user("default", ["resetpass", ">" + config.requirepass])
    definitions = [(user.name, user.acl_rules()) for user in config.users]
    if config.aclfile:  # Redis refuses to start when its aclfile cannot be read; so do we
        definitions = _read_acl_file(config.aclfile)
    for name, rules in definitions:
        try:
            acl.set_user(name, rules)
        except RedisAclError as exc:
            where = f"resp.aclfile {config.aclfile}" if config.aclfile else "resp.users"
            raise ConfigError(f"{where}: user {name!r}: {_explain(exc)}") from None
    return acl


def _read_acl_file(path: str) -> list[tuple[str, list[str]]]:
    try:
        text = Path(path).read_text("utf-8", errors="surrogateescape")
    except OSError as exc:
        raise ConfigError(f"resp.aclfile {path}: cannot read it: {exc.strerror}") from None
    try:
        return parse_acl_file(text, path)
    except RedisAclError as exc:
        raise ConfigError(f"resp.aclfile: {exc}") from None


def _explain(exc: RedisAclError) -> str:
    """'modifier' -> message, from the ``(rule, message)`` arguments of a refused rule."""
    if len(exc.args) == 2:
        rule, message = exc.args
        # A password modifier would carry the password itself: never repeat it.
        shown = rule[0] + "<hidden>" if rule[:1] in (">", "<") else rule
        return f"Error in ACL SETUSER modifier '{shown}': {message}"
    return str(exc.args[-1])


# --- the checks dispatch makes -------------------------------------------------------------------

def refresh_client(server: ServerState, client: Client) -> None:
    """Recompute whether ``client`` may skip the checks (its user may do anything, and it
    needs no authentication)."""
    client.unrestricted = client.user.unrestricted and (client.authenticated or not server.acl.auth_required())


def allowed(server: ServerState, client: Client, command: Command, args: list[bytes]) -> bool:
    """Whether ``client`` may run ``command`` now (no refusal to log: dispatch's fast path)."""
    if not client.authenticated and server.acl.auth_required():
        return False
    return _denial(client.user, command.fullname, args) is None


def permission_error(server: ServerState, client: Client, command: Command, args: list[bytes]) -> str | None:
    """The refusal Redis would send ``client`` for ``command``, or None to run it.

    Called by dispatch for clients that are not ``unrestricted`` only, after the unknown
    command and arity checks and before the subscribed-context one (Redis's order).
    """
    fullname = command.fullname
    if not client.authenticated and server.acl.auth_required():
        if fullname in NO_AUTH_COMMANDS:
            return None
        return NOAUTH
    denial = _denial(client.user, fullname, args)
    if denial is None:
        return None
    reason, obj = denial
    server.acl_log.add(reason, obj, client.user.name, client_line(server, client, now_ms()), now_ms())
    if reason == COMMAND_DENIED:
        return f"NOPERM this user has no permissions to run the '{fullname}' command"
    return "NOPERM this user has no permissions to access one of the channels used as arguments"


def _denial(user: RedisUser, fullname: str, args: list[bytes]) -> tuple[str, str] | None:
    """(reason, object) when ``user`` may not run ``args``; None when it may."""
    if not user.may_run(fullname, args):
        return COMMAND_DENIED, fullname
    where = _CHANNEL_ARGUMENTS.get(fullname)
    if where is not None and not user.allchannels:
        first, rest, patterns = where
        for channel in args[first:] if rest else args[first:first + 1]:
            if not user.may_use_channel(channel, patterns):
                return CHANNEL_DENIED, text_of(channel)
    return None


# --- AUTH --------------------------------------------------------------------------------------

def authenticate(server: ServerState, client: Client, username: bytes, password: bytes, typed: bytes) -> bool:
    """Log ``client`` in as ``username`` if ``password`` is right; else reply WRONGPASS.

    ``typed`` is the command as the client spelled it (``AUTH``, ``hello``): ACL LOG shows it.

    Returns:
        True when the client is now that user (nothing has been replied yet).
    """
    name = text_of(username)
    user = server.acl.authenticate(name, password)
    if user is None:
        server.acl_log.add("auth", text_of(typed), name, client_line(server, client, now_ms()), now_ms())
        log.info("auth_failed", user=name, conn_id=client.id, peer=client.addr)
        client.reply(encoder.error(WRONGPASS))
        return False
    client.user = user
    client.authenticated = True
    refresh_client(server, client)
    return True


def auth(server: ServerState, client: Client, args: list[bytes]) -> None:
    """AUTH [username] password -> OK, or WRONGPASS."""
    if len(args) > 3:
        client.reply(encoder.error("ERR syntax error"))
        return
    if len(args) == 2 and server.acl.default_user.nopass:
        client.reply(encoder.error(
            "ERR AUTH <password> called without any password configured for the default user. "
            "Are you sure your configuration is correct?"))
        return
    username = args[1] if len(args) == 3 else b"default"
    if authenticate(server, client, username, args[-1], args[0]):
        client.reply(_OK)


# --- ACL -----------------------------------------------------------------------------------------

def users_changed(server: ServerState, actor: Client | None) -> None:
    """Move every connection to its user's current rules; cut off those that lost their user
    or a channel they are subscribed to (``actor``, if among them, after its reply)."""
    acl = server.acl
    for client in list(server.clients.values()):
        user = acl.users.get(client.user.name)
        if user is None:
            _disconnect(server, client, actor, "ACL user deleted")
            continue
        client.user = user
        refresh_client(server, client)
        if client.subscribed and not user.allchannels and not _subscriptions_allowed(client, user):
            _disconnect(server, client, actor, "ACL channel permission revoked")


def _subscriptions_allowed(client: Client, user: RedisUser) -> bool:
    subscriber = client.subscriber
    return (all(user.may_use_channel(channel, False) for channel in subscriber.channels)
            and all(user.may_use_channel(channel, False) for channel in subscriber.shard_channels)
            and all(user.may_use_channel(pattern, True) for pattern in subscriber.patterns))


def _disconnect(server: ServerState, client: Client, actor: Client, reason: str) -> None:
    log.info("client_disconnected_by_acl", client_id=client.id, peer=client.addr, user=client.user.name,
             reason=reason)
    if client is actor:
        client.close_after_reply = True
        client.close_reason = reason
    else:
        server.kill(client, reason)


def acl_setuser(server: ServerState, client: Client, args: list[bytes]) -> None:
    """ACL SETUSER username [rule ...] -> OK; every rule applies, or none does."""
    try:
        server.acl.set_user(text_of(args[2]), [text_of(rule) for rule in args[3:]])
    except RedisAclError as exc:
        if len(exc.args) == 2:
            rule, message = exc.args
            client.reply(encoder.error(f"ERR Error in ACL SETUSER modifier '{rule}': {message}"))
        else:
            client.reply(encoder.error(f"ERR {exc}"))
        return
    client.reply(_OK)
    users_changed(server, client)


def acl_getuser(server: ServerState, client: Client, args: list[bytes]) -> None:
    """ACL GETUSER username -> flags, passwords (hashes), commands, keys, channels, selectors."""
    user = server.acl.users.get(text_of(args[2]))
    if user is None:
        client.reply(encoder.null(client.protocol))
        return
    protocol = client.protocol
    pairs = [
        (b"flags", encoder.set_([encoder.bulk(flag.encode()) for flag in user_flags(user)], protocol)),
        (b"passwords", encoder.array([encoder.bulk(digest.encode()) for digest in user.passwords])),
        (b"commands", encoder.bulk(describe_commands(user, server.acl.catalog).encode())),
        (b"keys", encoder.bulk(describe_keys(user).encode())),
        (b"channels", encoder.bulk(describe_channels(user).encode("utf-8", "surrogateescape"))),
        (b"selectors", encoder.array([])),
    ]
    client.reply(encoder.map_([(encoder.bulk(key), value) for key, value in pairs], protocol))


def acl_deluser(server: ServerState, client: Client, args: list[bytes]) -> None:
    """ACL DELUSER username [username ...] -> how many existed; their connections are closed."""
    names = [text_of(name) for name in args[2:]]
    if "default" in names:
        client.reply(encoder.error("ERR The 'default' user cannot be removed"))
        return
    client.reply(encoder.integer(len(server.acl.delete(names))))
    users_changed(server, client)


def acl_list(server: ServerState, client: Client, args: list[bytes]) -> None:
    """ACL LIST -> each user as an ACL file line, by name."""
    catalog = server.acl.catalog
    client.reply(encoder.array([encoder.bulk(describe_user(user, catalog).encode("utf-8", "surrogateescape"))
                                for user in server.acl.sorted_users()]))


def acl_users(server: ServerState, client: Client, args: list[bytes]) -> None:
    """ACL USERS -> the user names, sorted."""
    client.reply(encoder.array([encoder.bulk(user.name.encode("utf-8", "surrogateescape"))
                                for user in server.acl.sorted_users()]))


def acl_whoami(server: ServerState, client: Client, args: list[bytes]) -> None:
    """ACL WHOAMI -> the connection's user."""
    client.reply(encoder.bulk(client.user.name.encode("utf-8", "surrogateescape")))


def acl_cat(server: ServerState, client: Client, args: list[bytes]) -> None:
    """ACL CAT [category] -> the categories, or the commands of one (those push mode has)."""
    if len(args) > 3:
        client.reply(subcommand_syntax_error(args))
        return
    if len(args) == 2:
        client.reply(encoder.array([encoder.bulk(name.encode()) for name in CATEGORIES]))
        return
    category = text_of(args[2]).lower()
    if category not in CATEGORIES:
        client.reply(encoder.error(f"ERR Unknown category '{text_of(args[2])}'"))
        return
    names = server.acl.catalog.in_category(category)
    client.reply(encoder.array([encoder.bulk(name.encode()) for name in names]))


def acl_log(server: ServerState, client: Client, args: list[bytes]) -> None:
    """ACL LOG [count | RESET] -> the newest refusals (10 unless a count is given)."""
    if len(args) > 3:
        client.reply(subcommand_syntax_error(args))
        return
    count = 10
    if len(args) == 3:
        if args[2].upper() == b"RESET":
            server.acl_log.reset()
            client.reply(_OK)
            return
        number = redis_integer(args[2])
        if number is None:
            client.reply(encoder.error("ERR value is not an integer or out of range"))
            return
        count = max(number, 0)
    now = now_ms()
    protocol = client.protocol
    entries = []
    for entry in server.acl_log.entries[:count]:
        fields = [
            (b"count", encoder.integer(entry.count)),
            (b"reason", encoder.bulk(entry.reason.encode())),
            (b"context", encoder.bulk(entry.context.encode())),
            (b"object", encoder.bulk(entry.object.encode("utf-8", "surrogateescape"))),
            (b"username", encoder.bulk(entry.username.encode("utf-8", "surrogateescape"))),
            (b"age-seconds", encoder.double((now - entry.created_ms) / 1000, protocol)),
            (b"client-info", encoder.bulk(entry.client_info.encode("utf-8", "surrogateescape"))),
        ]
        entries.append(encoder.map_([(encoder.bulk(key), value) for key, value in fields], protocol))
    client.reply(encoder.array(entries))


def acl_dryrun(server: ServerState, client: Client, args: list[bytes]) -> None:
    """ACL DRYRUN username command [arg ...] -> OK, or why the user may not run it."""
    user = server.acl.users.get(text_of(args[2]))
    if user is None:
        client.reply(encoder.error(f"ERR User '{text_of(args[2])}' not found"))
        return
    words = args[3:]
    command = COMMANDS.get(words[0].upper())
    if command is not None and command.subcommands is not None and len(words) > 1:
        # As Redis's lookupCommand: a container's unknown subcommand names no command at all.
        command = command.subcommands.get(words[1].upper())
    if command is None:
        client.reply(encoder.error(f"ERR Command '{text_of(words[0])}' not found"))
        return
    arity, count = command.arity, len(words)
    if not (count == arity if arity > 0 else count >= -arity):
        client.reply(encoder.error(f"ERR wrong number of arguments for '{command.fullname}' command"))
        return
    denial = _denial(user, command.fullname, words)
    if denial is None:
        client.reply(_OK)
    elif denial[0] == COMMAND_DENIED:
        client.reply(encoder.bulk(f"This user has no permissions to run the '{denial[1]}' command".encode()))
    else:
        client.reply(encoder.bulk(f"This user has no permissions to access the '{denial[1]}' channel"
                                  .encode("utf-8", "surrogateescape")))


def acl_genpass(server: ServerState, client: Client, args: list[bytes]) -> None:
    """ACL GENPASS [bits] -> a random password of ``bits`` bits (256), as hex digits."""
    bits = 256
    if len(args) > 3:
        client.reply(subcommand_syntax_error(args))
        return
    if len(args) == 3:
        number = redis_integer(args[2])
        if number is None:
            client.reply(encoder.error("ERR value is not an integer or out of range"))
            return
        if not 0 < number <= 4096:
            client.reply(encoder.error("ERR ACL GENPASS argument must be the number of bits for the output "
                                       "password, a positive number up to 4096"))
            return
        bits = number
    digits = (bits + 3) // 4
    client.reply(encoder.bulk(secrets.token_hex((digits + 1) // 2)[:digits].encode()))


def acl_load(server: ServerState, client: Client, args: list[bytes]) -> None:
    """ACL LOAD -> replace every user with the ACL file's (all or nothing)."""
    path = server.config.aclfile
    if not path:
        client.reply(encoder.error(_NO_ACL_FILE))
        return
    try:
        text = Path(path).read_text("utf-8", errors="surrogateescape")
        server.acl.replace_all(parse_acl_file(text, path))
    except OSError as exc:
        client.reply(encoder.error(f"ERR Error loading ACLs, opening file '{path}': {exc.strerror}"))
        return
    except RedisAclError as exc:
        client.reply(encoder.error(f"ERR {path}: {_explain_load(exc)}"))
        return
    log.info("acl_file_loaded", path=path, users=len(server.acl.users))
    client.reply(_OK)
    users_changed(server, client)


def _explain_load(exc: RedisAclError) -> str:
    if len(exc.args) == 3:
        name, rule, message = exc.args
        return f"user '{name}': " + _explain(RedisAclError(rule, message))
    return " ".join(str(arg) for arg in exc.args)


def acl_save(server: ServerState, client: Client, args: list[bytes]) -> None:
    """ACL SAVE -> write every user to the ACL file (replaced atomically, as Redis does)."""
    path = server.config.aclfile
    if not path:
        client.reply(encoder.error(_NO_ACL_FILE))
        return
    temporary = f"{path}.tmp-{os.getpid()}"
    try:
        with open(temporary, "w", encoding="utf-8", errors="surrogateescape") as f:
            f.write(format_acl_file(server.acl))
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, path)
    except OSError as exc:
        log.warning("acl_file_save_failed", path=path, error=exc.strerror)
        client.reply(encoder.error("ERR There was an error trying to save the ACLs. Please check the server "
                                   "logs for more information"))
        return
    log.info("acl_file_saved", path=path, users=len(server.acl.users))
    client.reply(_OK)


_HELP = """\
ACL <subcommand> [<arg> [value] [opt] ...]. Subcommands are:
CAT [<category>]
    List all commands that belong to <category>, or all command categories
    when no category is specified.
DELUSER <username> [<username> ...]
    Delete a list of users.
DRYRUN <username> <command> [<arg> ...]
    Returns whether the user can execute the given command without executing the command.
GETUSER <username>
    Get the user's details.
GENPASS [<bits>]
    Generate a secure 256-bit user password. The optional `bits` argument can
    be used to specify a different size.
LIST
    Show users details in config file format.
LOAD
    Reload users from the ACL file.
LOG [<count> | RESET]
    Show the ACL log entries.
SAVE
    Save the current config to the ACL file.
SETUSER <username> <attribute> [<attribute> ...]
    Create or modify a user with the specified attributes.
USERS
    List all the registered usernames.
WHOAMI
    Return the current connection username.
HELP
    Prints this help.
"""


def acl_help(server: ServerState, client: Client, args: list[bytes]) -> None:
    """ACL HELP -> Redis's help text."""
    help_reply(client, _HELP)
