"""CONFIG GET, SET, RESETSTAT and HELP: push mode's settings under their Redis names, live.

Every setting push mode really has is readable and, where it can change while running,
settable, under Redis's name and in Redis's format:

    timeout                     idle seconds before a normal client is closed
    maxclients                  connections admitted at once (new connections over it are refused)
    client-output-buffer-limit  "normal 0 0 0 slave <h> <s> <sec> pubsub <h> <s> <sec>"; the
                                pubsub class is enforced (lowering it affects the very next
                                publish, and the 100 ms sweep); replica is shown and stored
                                but no replica ever connects; normal must stay 0 0 0
    proto-max-bulk-len          largest bulk string in a request (for connections opened later)
    client-query-buffer-limit   unparsed request bytes per client
    maxmemory-clients           unparsed request bytes over all clients (no percentages:
                                there is no maxmemory to take one of)
    protected-mode              yes / no: refuse clients from other hosts while the default
                                user has no password
    requirepass                 the default user's password ("" for none); existing
                                connections stay authenticated, as in Redis
    acllog-max-len, acl-pubsub-default
                                ACL LOG's length; the channels a new ACL user starts with
    save, appendonly, databases, port, bind
                                what Redis clients and tools probe for: "" / no (nothing is
                                ever written to disk), 16 (SELECT 0-15, all empty), the listener

CONFIG REWRITE is refused: the broker's configuration is a TOML file it never rewrites.

Redis's rules, copied because clients and tests rely on them: CONFIG GET takes several names
and globs (matched without regard to case; a plain name comes back as typed, an unknown one
adds nothing); CONFIG SET takes several ``name value`` pairs and applies all or none, with
Redis's error texts (``Unknown option or number of arguments for CONFIG SET - 'x'``,
``CONFIG SET failed (possibly related to argument 'timeout') - ...``). Redis lists matches in
the order of a hash table seeded at random when it starts; ours come in the order above.

A value Redis would take but our config file's range refuses (e.g. ``maxclients`` above
1000000) gets the same error format, stating our range.

Not here: the settings themselves and their ranges (``broker.config.RespConfig``), how the
server applies limits (``modes.push.server``, ``modes.common.listener``).
"""

from __future__ import annotations

from collections.abc import Callable

import attrs

from broker.config import RespConfig
from broker.glob import glob_match
from broker.subscribers import OutputLimits
from modes.push.client import Client
from modes.push.commands.acl import users_changed
from modes.push.commands.base import ServerState, help_reply, text_of
from modes.push.commands.connection import DATABASES
from wire.resp import encoder
from wire.resp.redis_rules import redis_integer

__all__ = ["KNOBS", "apply_config", "config_get", "config_help", "config_resetstat", "config_rewrite",
           "config_set", "config_values", "memory_value"]

_INT64_MAX = 2**63 - 1
_UINT64 = 2**64

# memtoull's units: k/m/g are powers of 1000, kb/mb/gb of 1024, any letter case.
_MEMORY_UNITS = {b"": 1, b"b": 1, b"k": 1000, b"kb": 1024, b"m": 1000**2, b"mb": 1024**2,
                 b"g": 1000**3, b"gb": 1024**3}


class _SetError(Exception):
    """A value CONFIG SET cannot take; the message is what follows Redis's "... - "."""


@attrs.frozen
class Knob:
    """One setting under its Redis name: how to read it, and how to turn a value into changes.

    ``parse`` returns the changes as ``{RespConfig field: value}`` (the key ``"replica"`` for
    the replica output limit, kept beside the config) or raises ``_SetError``; None means
    Redis lets CONFIG SET change it and we cannot: ``can't set immutable config``.
    """

    name: str
    get: Callable[[ServerState], str]
    parse: Callable[[bytes], dict[str, object]] | None = None


# --- values as Redis parses them ------------------------------------------------------------------

def memory_value(text: bytes) -> int | None:
    """A size as Redis's ``memtoull`` reads it: digits and an optional unit, else None.

    ``"1mb"`` is 1048576, ``"1m"`` 1000000, ``""`` 0 (no digits read as 0, as in C); no sign,
    no blanks. Returns the value modulo 2**64, as the C arithmetic wraps.
    """
    if text.startswith(b"-"):
        return None
    end = 0
    while end < len(text) and 48 <= text[end] <= 57:
        end += 1
    multiplier = _MEMORY_UNITS.get(text[end:].lower())
    if multiplier is None or end >= 128:
        return None
    digits = min(int(text[:end]), _UINT64 - 1) if end else 0
    return digits * multiplier % _UINT64


def _in_range(field: str, value: int) -> int:
    """``value`` if the config file would accept it for ``field``, else a ``_SetError``."""
    low, high, allow = attrs.fields_dict(RespConfig)[field].metadata["range"]
    if low <= value <= high or value in allow:
        return value
    extra = f"{' or '.join(map(str, allow))} or " if allow else ""
    raise _SetError(f"argument must be {extra}between {low} and {high} inclusive")


def _integer(field: str) -> Callable[[bytes], dict[str, object]]:
    def parse(text: bytes) -> dict[str, object]:
        value = redis_integer(text)
        if value is None:
            raise _SetError("argument couldn't be parsed into an integer")
        return {field: _in_range(field, value)}
    return parse


def _memory(field: str, *, signed: bool, percent_allowed_by_redis: bool = False) -> Callable[[bytes], dict[str, object]]:
    def parse(text: bytes) -> dict[str, object]:
        value = memory_value(text)
        if value is None:
            if percent_allowed_by_redis and text.endswith(b"%") and redis_integer(text[:-1]) is not None:
                raise _SetError("argument must be a memory value: dualmq has no maxmemory to take a "
                                "percentage of")
            raise _SetError("argument must be a memory or percent value" if percent_allowed_by_redis
                            else "argument must be a memory value")
        if signed and value > _INT64_MAX:
            value -= _UINT64  # Redis stores it in a signed long long: it wraps negative
        return {field: _in_range(field, value)}
    return parse


def _output_buffer_limit(text: bytes) -> dict[str, object]:
    """``client-output-buffer-limit``: one or more "<class> <hard> <soft> <soft-seconds>" groups."""
    # Split on single spaces, as Redis does (two spaces make an empty word); "" changes nothing.
    words = text.split(b" ") if text else []
    if len(words) % 4:
        raise _SetError("Wrong number of arguments in buffer limit configuration.")
    groups = [words[i:i + 4] for i in range(0, len(words), 4)]
    classes = {b"normal": "normal", b"slave": "replica", b"replica": "replica", b"pubsub": "pubsub"}
    if any(group[0].lower() not in classes for group in groups):
        raise _SetError("Invalid client class specified in buffer limit configuration.")
    changes: dict[str, object] = {}
    for class_name, hard_text, soft_text, seconds_text in groups:
        hard, soft = memory_value(hard_text), memory_value(soft_text)
        seconds = _c_strtoll(seconds_text)
        if hard is None or soft is None or seconds is None or seconds < 0:
            raise _SetError("Error in hard, soft or soft_seconds setting in buffer limit configuration.")
        kind = classes[class_name.lower()]
        if kind == "normal" and (hard, soft, seconds) != (0, 0, 0):
            raise _SetError("dualmq limits the output of subscribers only: the normal class must stay 0 0 0")
        if kind == "replica":
            changes["replica"] = (hard, soft, seconds)
        elif kind == "pubsub":
            changes["pubsub_hard_limit"] = _in_range("pubsub_hard_limit", hard)
            changes["pubsub_soft_limit"] = _in_range("pubsub_soft_limit", soft)
            changes["pubsub_soft_seconds"] = _in_range("pubsub_soft_seconds", seconds)
    return changes


def _c_strtoll(text: bytes) -> int | None:
    """C's ``strtoll`` when the whole text must be used: blanks and a sign may lead; "" is 0."""
    body = text.lstrip(b" \t\n\v\f\r")
    digits = body[1:] if body[:1] in (b"+", b"-") else body
    if digits and not digits.isdigit():
        return None
    if not digits:
        return 0 if not body else None
    return int(body)


def _only(name: str, allowed: bytes, redis_rule: Callable[[bytes], bool], redis_error: str) -> Callable[[bytes], dict[str, object]]:
    """A setting Redis can change but dualmq has only one value for (it keeps nothing on disk)."""
    shown = allowed.decode() or '""'

    def parse(text: bytes) -> dict[str, object]:
        if not redis_rule(text):
            raise _SetError(redis_error)
        if text.lower() != allowed:
            raise _SetError(f"dualmq keeps nothing on disk: {name} can only be {shown}")
        return {}
    return parse


def _yes_no(field: str) -> Callable[[bytes], dict[str, object]]:
    def parse(text: bytes) -> dict[str, object]:
        value = text.lower()
        if value not in (b"yes", b"no"):
            raise _SetError("argument must be 'yes' or 'no'")
        return {field: value == b"yes"}
    return parse


def _acl_pubsub_default(text: bytes) -> dict[str, object]:
    value = text.lower()
    if value not in (b"allchannels", b"resetchannels"):
        raise _SetError("argument(s) must be one of the following: allchannels, resetchannels")
    return {"acl_pubsub_default": value.decode()}


def _output_limit_text(server: ServerState) -> str:
    limits = server.limits
    hard, soft, seconds = server.command_state.replica_output_limit
    return (f"normal 0 0 0 slave {hard} {soft} {seconds} "
            f"pubsub {limits.hard_bytes} {limits.soft_bytes} {limits.soft_seconds}")


KNOBS: dict[str, Knob] = {knob.name: knob for knob in (
    Knob("timeout", lambda s: str(s.config.timeout), _integer("timeout")),
    Knob("maxclients", lambda s: str(s.config.maxclients), _integer("maxclients")),
    Knob("client-output-buffer-limit", _output_limit_text, _output_buffer_limit),
    Knob("proto-max-bulk-len", lambda s: str(s.config.proto_max_bulk_len),
         _memory("proto_max_bulk_len", signed=True)),
    Knob("client-query-buffer-limit", lambda s: str(s.config.client_query_buffer_limit),
         _memory("client_query_buffer_limit", signed=False)),
    Knob("maxmemory-clients", lambda s: str(s.config.maxmemory_clients),
         _memory("maxmemory_clients", signed=True, percent_allowed_by_redis=True)),
    Knob("save", lambda s: "", _only("save", b"", lambda text: True, "Invalid save parameters")),
    Knob("appendonly", lambda s: "no",
         _only("appendonly", b"no", lambda text: text.lower() in (b"yes", b"no"), "argument must be 'yes' or 'no'")),
    Knob("protected-mode", lambda s: "yes" if s.config.protected_mode else "no", _yes_no("protected_mode")),
    Knob("requirepass", lambda s: s.config.requirepass, lambda text: {"requirepass": text.decode("utf-8", "surrogateescape")}),
    Knob("acllog-max-len", lambda s: str(s.config.acllog_max_len), _integer("acllog_max_len")),
    Knob("acl-pubsub-default", lambda s: s.config.acl_pubsub_default, _acl_pubsub_default),
    Knob("databases", lambda s: str(DATABASES)),
    Knob("port", lambda s: s.address.rpartition(":")[2]),
    Knob("bind", lambda s: s.address.rpartition(":")[0].strip("[]")),
)}


def config_values(server: ServerState) -> dict[str, str]:
    """Every setting's current value, by Redis name, as CONFIG GET shows it."""
    return {name: knob.get(server) for name, knob in KNOBS.items()}


# --- the commands ----------------------------------------------------------------------------------

def config_get(server: ServerState, client: Client, args: list[bytes]) -> None:
    """CONFIG GET parameter [parameter ...] -> name, value, ... for every match (a map in RESP3)."""
    # Keyed by lower-case name: a setting asked for twice (in any case, or by a name and a
    # glob) comes back once, under the spelling that found it first.
    found: dict[str, tuple[bytes, Knob]] = {}
    for pattern in args[2:]:
        lowered = pattern.lower()
        if not any(char in pattern for char in b"[*?"):
            knob = KNOBS.get(lowered.decode("utf-8", "replace"))
            if knob is not None and knob.name not in found:
                found[knob.name] = (pattern, knob)
            continue
        for name, knob in KNOBS.items():
            if name not in found and glob_match(lowered, name.encode()):
                found[name] = (name.encode(), knob)
    pairs = [(encoder.bulk(shown), encoder.bulk(knob.get(server).encode())) for shown, knob in found.values()]
    client.reply(encoder.map_(pairs, client.protocol))


def config_set(server: ServerState, client: Client, args: list[bytes]) -> None:
    """CONFIG SET parameter value [parameter value ...] -> OK once every change is applied.

    All or nothing: every name is looked up first (Redis reports the first unknown one), then
    every value parsed; only when all are valid does the running server change.
    """
    if len(args) % 2:
        client.reply(encoder.error("ERR syntax error"))
        return
    pairs = list(zip(args[2::2], args[3::2]))
    knobs: list[Knob] = []
    problem: str | None = None
    for name, _ in pairs:
        knob = KNOBS.get(name.lower().decode("utf-8", "replace"))
        if knob is None:
            problem = f"ERR Unknown option or number of arguments for CONFIG SET - '{text_of(name)}'"
        elif knob.parse is None:
            problem = _failed(text_of(name), "can't set immutable config")
        elif knob in knobs:
            problem = _failed(text_of(name), "duplicate parameter")
        if problem is not None:
            client.reply(encoder.error(problem))
            return
        knobs.append(knob)
    changes: dict[str, object] = {}
    for knob, (_, value) in zip(knobs, pairs):
        try:
            changes.update(knob.parse(value))
        except _SetError as exc:
            # Here Redis names the setting by its own spelling, not as typed.
            client.reply(encoder.error(_failed(knob.name, str(exc))))
            return
    apply_config(server, changes)
    client.reply(encoder.simple("OK"))


def _failed(name: str, reason: str) -> str:
    return f"ERR CONFIG SET failed (possibly related to argument '{name}') - {reason}"


def apply_config(server: ServerState, changes: dict[str, object]) -> None:
    """Make the running server follow ``changes`` (RespConfig fields, and ``"replica"``).

    The config is frozen: the server gets a new one. What is read per use (``timeout`` by the
    idle sweep, the pubsub limits when a client subscribes) follows by itself; what was copied
    at start-up is updated here: every subscriber's output limits, the listener's caps.
    """
    changes = dict(changes)
    replica = changes.pop("replica", None)
    if replica is not None:
        server.command_state.replica_output_limit = replica
    if not changes:
        return
    server.config = attrs.evolve(server.config, **changes)
    server.limits = OutputLimits.from_config(server.config)
    server.acl_log.max_len = server.config.acllog_max_len
    server.acl.all_channels_default = server.config.acl_pubsub_default == "allchannels"
    if "requirepass" in changes:
        # Redis's requirepass: the default user's only password; "" leaves it without one.
        password = server.config.requirepass
        server.acl.set_user("default", ["resetpass", ">" + password] if password else ["nopass"])
        users_changed(server, None)
    for client in server.clients.values():
        server.set_subscribed_limits(client)
    server.connections.limits = attrs.evolve(
        server.connections.limits,
        max_connections=server.config.maxclients,
        per_connection_buffer_bytes=server.config.client_query_buffer_limit,
        total_buffer_bytes=server.config.maxmemory_clients,
    )


def config_rewrite(server: ServerState, client: Client, args: list[bytes]) -> None:
    """CONFIG REWRITE -> an error: the broker never rewrites its TOML file (edit it, restart)."""
    client.reply(encoder.error(
        "ERR CONFIG REWRITE is not supported: dualmq never rewrites its configuration file; "
        "edit the TOML file and restart the broker to keep a change"))


def config_resetstat(server: ServerState, client: Client, args: list[bytes]) -> None:
    """CONFIG RESETSTAT -> OK; the counters INFO shows start again from 0."""
    server.commands_processed = 0
    server.output_limit_disconnections = 0
    server.protocol_errors = 0
    server.acl_log.denied.clear()
    server.pubsub.reset_statistics()
    server.connections.reset_statistics()
    client.reply(encoder.simple("OK"))


_HELP = """\
CONFIG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:
GET <pattern>
    Return parameters matching the glob-like <pattern> and their values.
SET <directive> <value>
    Set the configuration <directive> to <value>.
RESETSTAT
    Reset statistics reported by the INFO command.
REWRITE
    Rewrite the configuration file.
HELP
    Prints this help.
"""


def config_help(server: ServerState, client: Client, args: list[bytes]) -> None:
    """CONFIG HELP -> Redis's help text, for the subcommands we have."""
    help_reply(client, _HELP)

