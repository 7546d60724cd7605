"""Redis's access-control lists (ACL, Redis 7.0): users, their rules, and what they may run.

What lives here: the ``RedisUser`` record (on/off, SHA-256 password hashes, allowed commands,
key and channel patterns), ``apply_rule`` — one ``ACL SETUSER`` modifier such as ``>secret``,
``+@pubsub``, ``-client|kill``, ``&news.*``, ``resetchannels`` — the ``RedisAcl`` registry of
users, the checks a command goes through before it runs (``RedisAcl.denial``), the text of
``ACL LIST`` / ``ACL GETUSER`` (``describe_user``, ``describe_commands``), and the ACL file
format (``parse_acl_file``, ``format_acl_file``).

What does not: RESP, the commands AUTH and ACL (``modes.push.commands.acl``), ACL LOG
(``broker.security.redis_acl_log``), clocks and sockets. Which commands exist and which
categories each belongs to is not known here either: the front-end passes it in
(``CommandCatalog``), built from its own command table.

Redis's rules, as this module applies them (in our words; docs/resp.md#acl):

* A password is never stored: ``>pass`` keeps its SHA-256 digest (64 lowercase hex digits,
  what ``#hash`` takes directly). ``nopass`` lets any password in; a new user has no password
  and is ``off``: it cannot authenticate until given one (or ``nopass``) and ``on``.
* Commands are a set of allowed full names (``publish``, ``client|kill``). ``+@cat`` /
  ``-@cat`` add or remove every command of a category, a container (CLIENT) with all its
  subcommands; ``+@all`` also allows commands added later (Redis's reserved "future
  commands" bit), which is why it is described as ``+@all ...`` rather than ``-@all +...``.
  ``+cmd|arg`` on a command without subcommands allows just that first argument.
* AUTH, HELLO, QUIT and RESET (Redis's ``no-auth`` commands) are allowed to every user.
* Channels: ``&pattern`` adds a glob pattern; ``allchannels`` (or ``&*``) allows all;
  ``resetchannels`` none. PUBLISH / SUBSCRIBE channels must match a pattern; a PSUBSCRIBE
  pattern must *equal* one of them. A user created by ``ACL SETUSER`` starts with no
  channels (Redis 7.0's ``acl-pubsub-default resetchannels``) unless configured otherwise.
* ``ACL SETUSER`` is all or nothing: one bad modifier and nothing changes.
* Keys: kept only to be described (``~pattern``, ``%R~pattern``, ``allkeys``); push mode has
  no keys, so no command checks them.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence

import attrs

from broker.glob import glob_match

__all__ = [
    "CATEGORIES",
    "CHANNEL_DENIED",
    "COMMAND_DENIED",
    "CommandCatalog",
    "RedisAcl",
    "RedisAclError",
    "RedisUser",
    "apply_rule",
    "describe_commands",
    "describe_user",
    "format_acl_file",
    "hash_password",
    "parse_acl_file",
]

# Redis's command categories, in the order Redis lists them (ACL CAT) and tries them when it
# describes a user's commands.
CATEGORIES = (
    "keyspace", "read", "write", "set", "sortedset", "list", "hash", "string", "bitmap",
    "hyperloglog", "geo", "stream", "pubsub", "admin", "fast", "slow", "blocking", "dangerous",
    "connection", "transaction", "scripting",
)

# Commands every user may run, authenticated or not (Redis's "no-auth" flag).
NO_AUTH_COMMANDS = frozenset({"auth", "hello", "quit", "reset"})

# Why a command was refused (ACL LOG's "reason" field).
COMMAND_DENIED = "command"
CHANNEL_DENIED = "channel"

DEFAULT_USER = "default"
# Channel verdicts a user remembers (see ``RedisUser.may_use_channel``).
_MAX_CHANNEL_VERDICTS = 4096
_HASH = re.compile(r"[0-9a-f]{64}")

# The message of each way a modifier can be wrong, as Redis words it (ACLSetUserStringError).
_UNKNOWN = "Unknown command or category name in ACL"
_SYNTAX = "Syntax error"
_KEY_AFTER_ALL = ("Adding a pattern after the * pattern (or the 'allkeys' flag) is not valid and does "
                  "not have any effect. Try 'resetkeys' to start with an empty list of patterns")
_CHANNEL_AFTER_ALL = ("Adding a pattern after the * pattern (or the 'allchannels' flag) is not valid and "
                      "does not have any effect. Try 'resetchannels' to start with an empty list of channels")
_NO_SUCH_PASSWORD = "The password you are trying to remove from the user does not exist"
_BAD_HASH = ("The password hash must be exactly 64 characters and contain only lowercase hexadecimal "
             "characters")
_FIRST_ARG_OF_SUBCOMMAND = "Allowing first-arg of a subcommand is not supported"
_SELECTORS = "Selectors are not supported by dualmq"


class RedisAclError(Exception):
    """A rule or user definition Redis would refuse; ``str()`` is Redis's explanation."""


def hash_password(password: bytes | str) -> str:
    """The SHA-256 digest Redis stores for a password, as 64 lowercase hex digits."""
    data = password.encode("utf-8", "surrogateescape") if isinstance(password, str) else password
    return hashlib.sha256(data).hexdigest()


@attrs.frozen
class CommandCatalog:
    """The commands a front-end has, and the categories of each (by full name, lower case).

    ``categories`` lists every command and subcommand (``client``, ``client|kill``), in the
    order the front-end's table has them; ``subcommands`` names each container's subcommands.
    """

    categories: Mapping[str, frozenset[str]]
    subcommands: Mapping[str, tuple[str, ...]]

    def every(self) -> frozenset[str]:
        return frozenset(self.categories)

    def in_category(self, category: str) -> list[str]:
        """Every command of ``category``, each container followed by its subcommands."""
        return [name for name in self.categories if category in self.categories[name]]

    def with_subcommands(self, name: str) -> list[str]:
        return [name, *self.subcommands.get(name, ())]


@attrs.define(eq=False)
class RedisUser:
    """One ACL user. Mutated only through ``apply_rule`` (so ``unrestricted`` stays true)."""

    name: str
    enabled: bool = False
    nopass: bool = False
    # SHA-256 hex digests, in the order they were added.
    passwords: list[str] = attrs.field(factory=list)
    # "sanitize-payload", "skip-sanitize-payload" or "" (Redis only describes them).
    sanitize: str = ""
    # Allowed commands by full name; ``future_commands`` is Redis's "+@all" bit.
    commands: set[str] = attrs.field(factory=set)
    future_commands: bool = False
    # command -> first arguments allowed although the command is not (``+select|0``).
    first_args: dict[str, list[str]] = attrs.field(factory=dict)
    allkeys: bool = False
    key_patterns: list[str] = attrs.field(factory=list)
    allchannels: bool = False
    channel_patterns: list[bytes] = attrs.field(factory=list)
    # True when every command and every channel is allowed: the one test the hot path makes.
    unrestricted: bool = False
    # Channels already judged (name -> allowed): a glob match per PUBLISH would cost more
    # than the publish. Bounded; a changed user is a new object, so it never goes stale.
    _channel_verdicts: dict[bytes, bool] = attrs.field(factory=dict, repr=False)

    def copy(self) -> RedisUser:
        return attrs.evolve(self, passwords=list(self.passwords), commands=set(self.commands), channel_verdicts={},
                            first_args={k: list(v) for k, v in self.first_args.items()},
                            key_patterns=list(self.key_patterns),
                            channel_patterns=list(self.channel_patterns))

    def check_password(self, password: bytes) -> bool:
        """Whether ``password`` lets one in as this user (any does with ``nopass``)."""
        if not self.enabled:
            return False
        return self.nopass or hash_password(password) in self.passwords

    def may_run(self, fullname: str, args: Sequence[bytes]) -> bool:
        """Whether the command ``fullname`` (its words ``args``) is allowed to this user."""
        if fullname in self.commands or fullname in NO_AUTH_COMMANDS:
            return True
        allowed = self.first_args.get(fullname)
        if not allowed:
            return False
        index = 2 if "|" in fullname else 1
        return len(args) > index and args[index].decode("utf-8", "surrogateescape").lower() in allowed

    def may_use_channel(self, channel: bytes, is_pattern: bool) -> bool:
        """Whether this user may publish/subscribe to ``channel`` (or PSUBSCRIBE ``channel``)."""
        if self.allchannels:
            return True
        if is_pattern:
            # A pattern subscription is allowed only to a pattern the user was given as such.
            return channel in self.channel_patterns
        verdicts = self._channel_verdicts
        verdict = verdicts.get(channel)
        if verdict is None:
            verdict = any(glob_match(pattern, channel) for pattern in self.channel_patterns)
            if len(verdicts) >= _MAX_CHANNEL_VERDICTS:
                verdicts.clear()
            verdicts[channel] = verdict
        return verdict


def new_user(name: str, *, all_channels: bool) -> RedisUser:
    """A user as ``ACL SETUSER`` creates it: off, no password, no commands, no keys."""
    return RedisUser(name=name, allchannels=all_channels)


def apply_rule(user: RedisUser, rule: str, catalog: CommandCatalog, *, all_channels_default: bool) -> None:
    """Apply one ``ACL SETUSER`` modifier to ``user`` (in place).

    Args:
        user: the user to change.
        rule: one modifier as the client sent it (``on``, ``>pass``, ``+@pubsub``, ``&ch*``...).
        catalog: the commands that exist, with their categories.
        all_channels_default: Redis's ``acl-pubsub-default``: whether ``reset`` allows all channels.

    Raises:
        RedisAclError: Redis's message for a modifier it refuses.
    """
    _apply(user, rule, catalog, all_channels_default)
    user._channel_verdicts.clear()
    user.unrestricted = user.allchannels and user.commands >= catalog.every()


def _apply(user: RedisUser, rule: str, catalog: CommandCatalog, all_channels_default: bool) -> None:
    word = rule.lower()
    if word in _FLAG_RULES:
        _FLAG_RULES[word](user)
    elif word == "reset":
        for step in ("resetpass", "resetkeys", "resetchannels"):
            _FLAG_RULES[step](user)
        if all_channels_default:
            user.allchannels = True
        user.enabled = False
        user.sanitize = "sanitize-payload"
        _set_all_commands(user, catalog, False)
    elif word in ("allcommands", "+@all"):
        _set_all_commands(user, catalog, True)
    elif word in ("nocommands", "-@all"):
        _set_all_commands(user, catalog, False)
    elif not rule:
        raise RedisAclError(_SYNTAX)
    elif rule[0] == ">":
        digest = hash_password(rule[1:])
        if digest not in user.passwords:
            user.passwords.append(digest)
        user.nopass = False
    elif rule[0] == "#":
        digest = rule[1:]
        if not _HASH.fullmatch(digest):
            raise RedisAclError(_BAD_HASH)
        if digest not in user.passwords:
            user.passwords.append(digest)
        user.nopass = False
    elif rule[0] in "<!":
        digest = hash_password(rule[1:]) if rule[0] == "<" else rule[1:]
        if rule[0] == "!" and not _HASH.fullmatch(digest):
            raise RedisAclError(_BAD_HASH)
        if digest not in user.passwords:
            raise RedisAclError(_NO_SUCH_PASSWORD)
        user.passwords.remove(digest)
    elif rule[0] == "&":
        if user.allchannels:
            raise RedisAclError(_CHANNEL_AFTER_ALL)
        pattern = rule[1:].encode("utf-8", "surrogateescape")
        if pattern == b"*":
            _FLAG_RULES["allchannels"](user)
        elif pattern not in user.channel_patterns:
            user.channel_patterns.append(pattern)
    elif rule[0] in "~%":
        _add_key_pattern(user, rule)
    elif rule[0] == "(":
        raise RedisAclError(_SELECTORS)
    elif rule[0] in "+-" and rule[1:2] == "@":
        category = word[2:]
        if category not in CATEGORIES:
            raise RedisAclError(_UNKNOWN)
        for name in catalog.in_category(category):
            _change_permission(user, catalog, name, rule[0] == "+")
    elif rule[0] in "+-":
        _command_rule(user, catalog, word[1:], rule[0] == "+")
    else:
        raise RedisAclError(_SYNTAX)


def _set_flag(**values: object):
    def apply(user: RedisUser) -> None:
        for name, value in values.items():
            value = value() if callable(value) else value
            setattr(user, name, value)
    return apply


_FLAG_RULES = {
    "on": _set_flag(enabled=True),
    "off": _set_flag(enabled=False),
    "nopass": _set_flag(nopass=True, passwords=list),
    "resetpass": _set_flag(nopass=False, passwords=list),
    "allkeys": _set_flag(allkeys=True, key_patterns=list),
    "resetkeys": _set_flag(allkeys=False, key_patterns=list),
    "allchannels": _set_flag(allchannels=True, channel_patterns=list),
    "resetchannels": _set_flag(allchannels=False, channel_patterns=list),
    "sanitize-payload": _set_flag(sanitize="sanitize-payload"),
    "skip-sanitize-payload": _set_flag(sanitize="skip-sanitize-payload"),
    # Selectors are not supported, so clearing them changes nothing.
    "clearselectors": _set_flag(),
}


def _add_key_pattern(user: RedisUser, rule: str) -> None:
    if user.allkeys:
        raise RedisAclError(_KEY_AFTER_ALL)
    if rule[0] == "%":
        access, tilde, pattern = rule[1:].partition("~")
        if not tilde or not access or any(c not in "RWrw" for c in access):
            raise RedisAclError(_SYNTAX)
        access = ("R" if "r" in access.lower() else "") + ("W" if "w" in access.lower() else "")
        prefix = "~" if access == "RW" else f"%{access}~"
    else:
        pattern, prefix = rule[1:], "~"
    if pattern == "*" and prefix == "~":
        _FLAG_RULES["allkeys"](user)
    elif prefix + pattern not in user.key_patterns:
        user.key_patterns.append(prefix + pattern)


def _set_all_commands(user: RedisUser, catalog: CommandCatalog, allowed: bool) -> None:
    user.commands = set(catalog.categories) if allowed else set()
    user.future_commands = allowed
    user.first_args.clear()


def _change_permission(user: RedisUser, catalog: CommandCatalog, name: str, allowed: bool) -> None:
    """Allow or forbid ``name`` and, for a container, every subcommand (ACLChangeSelectorPerm)."""
    user.first_args.pop(name, None)
    for each in catalog.with_subcommands(name):
        if allowed:
            user.commands.add(each)
        else:
            user.commands.discard(each)


def _command_rule(user: RedisUser, catalog: CommandCatalog, name: str, allowed: bool) -> None:
    """``+name`` / ``-name``: a command, a subcommand (``client|kill``), or a first argument."""
    if name in catalog.categories:
        _change_permission(user, catalog, name, allowed)
        return
    if not allowed or "|" not in name:
        raise RedisAclError(_UNKNOWN)
    command, _, first_arg = name.rpartition("|")
    if command not in catalog.categories:
        raise RedisAclError(_UNKNOWN)
    if "|" in command:
        raise RedisAclError(_FIRST_ARG_OF_SUBCOMMAND)
    if not first_arg:
        raise RedisAclError(_SYNTAX)
    if catalog.subcommands.get(command):
        raise RedisAclError(_UNKNOWN)
    allowed_args = user.first_args.setdefault(command, [])
    if first_arg not in allowed_args:
        allowed_args.append(first_arg)


# --- describing a user (ACL LIST, ACL GETUSER, the ACL file) -------------------------------------

def describe_commands(user: RedisUser, catalog: CommandCatalog) -> str:
    """The user's commands as Redis 7.0 describes them: ``-@all +@pubsub -pubsub|numpat``.

    Redis does not replay the rules it was given: it rebuilds a short equivalent. Start from
    ``+@all`` (if the user may run future commands) or ``-@all``; then, while some category
    has more of its commands the way the user has them than not, take the one with the fewest
    exceptions; then name each command that still differs, then allowed first arguments.
    """
    additive = not user.future_commands
    described: set[str] = set() if additive else set(catalog.categories)
    rules = ["-@all" if additive else "+@all"]
    # What is left to explain: the user's commands with the categories used so far undone.
    remaining = set(user.commands)
    applied: set[str] = set()
    while True:
        best, fewest_diff, most_same = None, None, 0
        for category in CATEGORIES:
            if category in applied:
                continue
            names = catalog.in_category(category)
            on = sum(1 for name in names if name in remaining)
            off = len(names) - on
            diff, same = (off, on) if additive else (on, off)
            if same > diff and (fewest_diff is None or diff < fewest_diff or (diff == fewest_diff and same > most_same)):
                best, fewest_diff, most_same = category, diff, same
        if best is None:
            break
        applied.add(best)
        rules.append(("+@" if additive else "-@") + best)
        for name in catalog.in_category(best):
            for each in catalog.with_subcommands(name):
                if additive:
                    described.add(each)
                    remaining.discard(each)
                else:
                    described.discard(each)
                    remaining.add(each)
    for name in catalog.categories:
        allowed = name in user.commands
        if allowed != (name in described):
            rules.append(("+" if allowed else "-") + name)
            for each in catalog.with_subcommands(name):
                if allowed:
                    described.add(each)
                else:
                    described.discard(each)
        if not allowed:
            rules += [f"+{name}|{arg}" for arg in user.first_args.get(name, ())]
    return " ".join(rules)


def describe_keys(user: RedisUser) -> str:
    return "~*" if user.allkeys else " ".join(user.key_patterns)


def describe_channels(user: RedisUser) -> str:
    if user.allchannels:
        return "&*"
    return " ".join("&" + pattern.decode("utf-8", "surrogateescape") for pattern in user.channel_patterns)


def user_flags(user: RedisUser) -> list[str]:
    """Redis's flag words for the user, in Redis's order (ACL GETUSER's ``flags``)."""
    flags = ["on" if user.enabled else "off"]
    if user.nopass:
        flags.append("nopass")
    if user.sanitize:
        flags.append(user.sanitize)
    return flags


def describe_user(user: RedisUser, catalog: CommandCatalog) -> str:
    """The user as one ``ACL LIST`` line (and one ACL file line): ``user alice on #... &news*``."""
    words = ["user", user.name, *user_flags(user), *("#" + digest for digest in user.passwords)]
    if user.allkeys or user.key_patterns:
        words.append(describe_keys(user))
    words.append("&*" if user.allchannels else "resetchannels")
    if not user.allchannels and user.channel_patterns:
        words.append(describe_channels(user))
    words.append(describe_commands(user, catalog))
    return " ".join(words)


# --- the registry -----------------------------------------------------------------------------

@attrs.define(eq=False)
class RedisAcl:
    """Every user of one RESP listener, ``default`` always among them.

    ``all_channels_default`` is Redis's ``acl-pubsub-default`` (``allchannels`` when True):
    the channels a user created by ``ACL SETUSER`` (or reset) starts with.
    """

    catalog: CommandCatalog
    all_channels_default: bool = False
    users: dict[str, RedisUser] = attrs.field(factory=dict)

    def __attrs_post_init__(self) -> None:
        if DEFAULT_USER not in self.users:
            self.users[DEFAULT_USER] = self.fresh_default_user()

    def fresh_default_user(self) -> RedisUser:
        """``default`` as Redis creates it at start: on, nopass, every key, channel, command."""
        user = new_user(DEFAULT_USER, all_channels=False)
        for rule in ("on", "nopass", "allkeys", "allchannels", "+@all"):
            apply_rule(user, rule, self.catalog, all_channels_default=self.all_channels_default)
        return user

    @property
    def default_user(self) -> RedisUser:
        return self.users[DEFAULT_USER]

    def auth_required(self) -> bool:
        """Whether a new connection must authenticate first (``default`` has a password or is off)."""
        default = self.default_user
        return not default.nopass or not default.enabled

    def authenticate(self, name: str, password: bytes) -> RedisUser | None:
        """The user ``name`` if ``password`` is right for it and it is on, else None."""
        user = self.users.get(name)
        return user if user is not None and user.check_password(password) else None

    def set_user(self, name: str, rules: Iterable[str]) -> RedisUser:
        """Create or change a user, all rules or none (``ACL SETUSER``).

        Returns:
            The user as it now is (a new object: clients holding the old one must be moved).

        Raises:
            RedisAclError: a modifier Redis refuses, as ``(rule, message)`` in ``args``.
        """
        if not valid_username(name):
            raise RedisAclError("Usernames can't contain spaces or null characters")
        existing = self.users.get(name)
        user = existing.copy() if existing is not None else new_user(name, all_channels=self.all_channels_default)
        for rule in rules:
            try:
                apply_rule(user, rule, self.catalog, all_channels_default=self.all_channels_default)
            except RedisAclError as exc:
                raise RedisAclError(rule, str(exc)) from None
        self.users[name] = user
        return user

    def delete(self, names: Iterable[str]) -> list[str]:
        """Remove the users named (``default`` may not be); returns those that existed."""
        gone = []
        for name in names:
            if self.users.pop(name, None) is not None:
                gone.append(name)
        return gone

    def replace_all(self, definitions: list[tuple[str, list[str]]]) -> None:
        """Replace every user with ``definitions`` (ACL LOAD), atomically.

        Users not defined are gone; ``default``, if not defined, is as Redis creates it.

        Raises:
            RedisAclError: naming the user and modifier that is wrong; nothing changed.
        """
        fresh = RedisAcl(catalog=self.catalog, all_channels_default=self.all_channels_default)
        fresh.users.pop(DEFAULT_USER)
        for name, rules in definitions:
            if name in fresh.users:
                raise RedisAclError(name, "Duplicate user found. A user can only be defined once in config files")
            try:
                fresh.set_user(name, rules)
            except RedisAclError as exc:
                raise RedisAclError(name, *exc.args) from None
        fresh.users.setdefault(DEFAULT_USER, self.fresh_default_user())
        self.users = fresh.users

    def sorted_users(self) -> list[RedisUser]:
        """Users in Redis's order (by name, bytewise): ACL LIST, ACL USERS, the ACL file."""
        return sorted(self.users.values(), key=lambda user: user.name.encode("utf-8", "surrogateescape"))


def valid_username(name: str) -> bool:
    return bool(name) and not any(c in name for c in " \t\r\n\0")


# --- the ACL file ------------------------------------------------------------------------------

def parse_acl_file(text: str, source: str) -> list[tuple[str, list[str]]]:
    """Read an ACL file: one ``user <name> <rule> ...`` per line, ``#`` comments, blank lines.

    Args:
        text: the file's contents.
        source: its path, for error messages.

    Returns:
        (name, rules) per user line, in file order.

    Raises:
        RedisAclError: ``<source>:<line>: <what is wrong>``, as Redis reports it.
    """
    definitions = []
    for number, line in enumerate(text.splitlines(), start=1):
        words = line.split()
        if not words or words[0].startswith("#"):
            continue
        if words[0] != "user" or len(words) < 2:
            raise RedisAclError(f"{source}:{number}: line should start with user keyword")
        definitions.append((words[1], words[2:]))
    return definitions


def format_acl_file(acl: RedisAcl) -> str:
    """Every user as ``ACL LIST`` shows it, a line each: what ACL SAVE writes."""
    return "".join(describe_user(user, acl.catalog) + "\n" for user in acl.sorted_users())
