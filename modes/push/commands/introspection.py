"""Introspection commands: INFO and COMMAND — what clients and humans ask a server about itself.

``INFO`` answers with what dualmq really has, and adds a ``# dualmq`` section with the
delivery guarantee in force and the counters that show what push mode dropped and why.

``COMMAND`` (INFO, DOCS, COUNT, LIST, GETKEYS, GETKEYSANDFLAGS, HELP) describes the commands
of our table with Redis's own description of each (``reference.json``: arity, flags, ACL
categories, key specs, documentation), encoded as Redis encodes it — so redis-cli's hints
and any client that introspects commands see what Redis would show, byte for byte. A
container (CLIENT, CONFIG, ...) lists only the subcommands we implement.

Not here: the table rows naming these handlers and their arities (``modes.push.commands``),
CLIENT (``clients``), CONFIG (``config``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from importlib.resources import files

from broker.glob import glob_match
from broker.stats import ServerInfo
from modes.common.clock import now_ms
from modes.push.client import Client
from modes.push.commands.base import COMMANDS, REDIS_COMPAT_VERSION, Command, ServerState, help_reply, text_of
from wire.resp import encoder

__all__ = ["FACTS", "command_", "command_count", "command_docs", "command_getkeys", "command_help",
           "command_info", "command_list", "info_", "info_sections"]


# --- INFO ----------------------------------------------------------------------------------

def info_sections(server: ServerState) -> dict[str, list[tuple[str, object]]]:
    """INFO's sections, by lower-case name: (field, value) pairs in the order they are shown."""
    now = now_ms()
    stats = server.pubsub.statistics()
    info = server.info
    subscribed = sum(1 for c in server.clients.values() if c.subscribed)
    listener = server.listener_statistics()
    config = server.config
    sections = {
        "server": [
            ("redis_version", REDIS_COMPAT_VERSION),
            ("redis_mode", "standalone" if server.cluster is None else "cluster"),
            ("process_id", info.pid),
            ("tcp_port", server.address.rpartition(":")[2]),
            ("uptime_in_seconds", info.uptime_seconds(now)),
            ("uptime_in_days", info.uptime_seconds(now) // 86400),
            ("executable", "dualmq"),
        ],
        "clients": [
            ("connected_clients", len(server.clients)),
            ("pubsub_clients", subscribed),
            ("maxclients", config.maxclients),
            # Redis reports the largest over the last few seconds; ours is the largest now.
            ("client_recent_max_input_buffer", listener.largest_buffered_bytes),
            ("client_recent_max_output_buffer",
             max((c.outbox.pending_bytes for c in server.clients.values()), default=0)),
        ],
        "stats": [
            ("total_connections_received", listener.connections_received),
            ("total_commands_processed", server.commands_processed),
            # Every connection refused by a cap, maxclients or per IP (breakdown in # dualmq).
            ("rejected_connections", listener.rejected_total),
            # Closed for holding the most query-buffer bytes while over maxmemory-clients.
            ("evicted_clients", listener.buffer_budget_evictions),
            ("pubsub_channels", stats.channels),
            ("pubsub_patterns", stats.patterns),
            ("pubsubshard_channels", stats.shard_channels),
            ("client_query_buffer_limit_disconnections", listener.buffer_limit_disconnections),
            ("client_output_buffer_limit_disconnections", server.output_limit_disconnections),
            # Refused logins, commands, keys (never: no keys here), channels, as ACL LOG counts
            # them: Redis 7.2's fields (7.0.15 has none), reset by CONFIG RESETSTAT only.
            ("acl_access_denied_auth", server.acl_log.denied.get("auth", 0)),
            ("acl_access_denied_cmd", server.acl_log.denied.get("command", 0)),
            ("acl_access_denied_key", 0),
            ("acl_access_denied_channel", server.acl_log.denied.get("channel", 0)),
        ],
        "dualmq": [
            ("dualmq_version", info.version),
            ("mode", "push"),
            ("delivery_guarantee", "at-most-once, connected subscribers only, nothing retained"),
            ("messages_published", stats.messages_published),
            ("frames_delivered", stats.frames_delivered),
            ("messages_dropped_no_subscriber", stats.messages_dropped_no_subscriber),
            ("subscribers_disconnected_hard_limit", stats.subscribers_disconnected_hard),
            ("subscribers_disconnected_soft_limit", stats.subscribers_disconnected_soft),
            # Exact peaks, kept after a subscriber is gone (CLIENT LIST's omem is "now" only):
            # the most any subscriber's output buffer held, and the largest one judged over
            # its limit (queued bytes plus the message that did not fit) when it was cut off.
            ("subscriber_output_high_water_bytes", server.subscriber_output_high_water()),
            ("subscriber_output_at_disconnect_max_bytes", server.output_at_disconnect_max),
            ("protocol_errors", server.protocol_errors),
            ("rejected_connections_maxclients", listener.rejected.get("resp.maxclients", 0)),
            ("rejected_connections_per_ip", listener.rejected.get("resp.maxclients_per_ip", 0)),
            ("maxclients_per_ip", config.maxclients_per_ip),
            # Connections reset by their peer before we could even name them.
            ("connections_reset_before_served", listener.peers_gone_at_accept),
            # Connections ended by an unexpected error in their handling (logged with traceback).
            ("connection_failures", listener.connection_failures),
            ("query_buffers_bytes", listener.buffered_bytes),
            ("client_query_buffer_limit", config.client_query_buffer_limit),
            ("maxmemory_clients", config.maxmemory_clients),
            # Pull mode's log, which shares this process: failed disk reads/writes/fsyncs
            # (disk full, failing disk) and how many segment files are open right now.
            *_log_lines(info),
            ("pubsub_limit_hard_bytes", server.limits.hard_bytes),
            ("pubsub_limit_soft_bytes", server.limits.soft_bytes),
            ("pubsub_limit_soft_seconds", server.limits.soft_seconds),
            ("kafka_listener", server.info.kafka_address),
        ],
    }
    if server.cluster is not None:
        # Redis's section (cluster_enabled), then PUBLISH's forwarding to the other brokers.
        sections["cluster"] = [("cluster_enabled", 1), *server.cluster.info_lines()]
    return sections


def _log_lines(info: ServerInfo) -> list[tuple[str, object]]:
    """INFO lines about the log this process also runs (zeros when none is attached)."""
    stats = info.log_statistics()
    if stats is None:
        return [("log_io_errors", 0)]
    return [
        ("log_io_errors", stats.io_errors),
        ("log_open_segment_files", stats.files.open_files),
        ("log_max_open_segment_files", stats.files.capacity),
    ]


def info_(server: ServerState, client: Client, args: list[bytes]) -> None:
    """INFO [section ...] -> the sections asked for (all when none or "all" is named)."""
    sections = info_sections(server)
    wanted = [a.decode(errors="replace").lower() for a in args[1:]]
    if not wanted or any(w in ("all", "everything", "default") for w in wanted):
        wanted = list(sections)
    parts = []
    for name in wanted:
        if name in sections:
            body = "".join(f"{key}:{value}\r\n" for key, value in sections[name])
            parts.append(f"# {name.capitalize() if name != 'dualmq' else 'dualmq'}\r\n{body}")
    client.reply(encoder.verbatim("\r\n".join(parts), client.protocol))


# --- COMMAND ---------------------------------------------------------------------------------

def _load_facts() -> dict[str, dict]:
    # Data, not code: generated from redis-server 7.0.15 by
    # tests/modes/push/derive_command_reference.py (the 7.2 additions kept by hand).
    reference = json.loads(files("modes.push.commands").joinpath("reference.json").read_text("utf-8"))
    return {**reference["redis_7_0"], **reference["later_than_7_0"]}


# Redis's description of each command, by full name ("publish", "pubsub|numpat").
FACTS: dict[str, dict] = _load_facts()

# The facts whose strings Redis sends as simple strings (flags, categories), in a set.
_STATUS_SETS = frozenset({"flags", "doc_flags"})
# The lists Redis sends as sets in RESP3 (their items in the order given).
_SETS = frozenset({"history"})


def _all_commands() -> Iterator[Command]:
    """Every command of the table, each container followed by its subcommands."""
    for command in COMMANDS.values():
        yield command
        if command.subcommands:
            yield from command.subcommands.values()


def _find(words: list[bytes], *, strict: bool) -> Command | None:
    """The command ``words`` name, as Redis's ``lookupCommandLogic`` finds it.

    ``[b"client", b"list"]`` names CLIENT LIST. Strict (a ``container|sub`` name, as COMMAND
    INFO and DOCS take) means every word must be used: ``publish|x`` names nothing. Not
    strict (a command line, as GETKEYS takes), later words are arguments.
    """
    command = COMMANDS.get(words[0].upper())
    if len(words) == 1 or command is None or command.subcommands is None:
        return None if strict and len(words) != 1 else command
    if strict and len(words) != 2:
        return None
    return command.subcommands.get(words[1].upper())


def _by_name(name: bytes) -> Command | None:
    """The command a full name (``publish``, ``client|list``, any case) names, or None."""
    return _find(name.split(b"|"), strict=True)


def _fact(value: object, protocol: int, key: str = "") -> bytes:
    """One fact as Redis encodes it: maps, arrays, bulk strings, integers; flag lists as sets."""
    if isinstance(value, dict):
        return encoder.map_([(encoder.bulk(k.encode()), _fact(v, protocol, k)) for k, v in value.items()],
                            protocol)
    if isinstance(value, list):
        if key in _STATUS_SETS:
            return encoder.set_([encoder.simple(item) for item in value], protocol)
        items = [_fact(item, protocol) for item in value]
        return encoder.set_(items, protocol) if key in _SETS else encoder.array(items)
    if isinstance(value, int):
        return encoder.integer(value)
    return encoder.bulk(value.encode())


def _info_entry(command: Command, protocol: int) -> bytes:
    """One command's COMMAND INFO entry: Redis's ten fields, its subcommands nested in the last."""
    facts = FACTS[command.fullname]
    if command.subcommands:
        subcommands = encoder.array([_info_entry(sub, protocol) for sub in command.subcommands.values()])
    else:
        subcommands = encoder.set_([], protocol)  # Redis: an empty set, but an array of entries
    return encoder.array([
        encoder.bulk(command.fullname.encode()),
        encoder.integer(command.arity),
        encoder.set_([encoder.simple(flag) for flag in facts["flags"]], protocol),
        encoder.integer(facts["first_key"]),
        encoder.integer(facts["last_key"]),
        encoder.integer(facts["key_step"]),
        encoder.set_([encoder.simple(category) for category in facts["acl_categories"]], protocol),
        encoder.set_([encoder.bulk(tip.encode()) for tip in facts["tips"]], protocol),
        encoder.set_([_fact(spec, protocol) for spec in facts["key_specs"]], protocol),
        subcommands,
    ])


def _docs_entry(command: Command, protocol: int) -> bytes:
    """One command's COMMAND DOCS map; a container's ends with its subcommands' docs."""
    pairs = [(encoder.bulk(key.encode()), _fact(value, protocol, key))
             for key, value in FACTS[command.fullname]["docs"].items()]
    if command.subcommands:
        subcommands = [(encoder.bulk(sub.fullname.encode()), _docs_entry(sub, protocol))
                       for sub in command.subcommands.values()]
        pairs.append((encoder.bulk(b"subcommands"), encoder.map_(subcommands, protocol)))
    return encoder.map_(pairs, protocol)


def command_(server: ServerState, client: Client, args: list[bytes]) -> None:
    """COMMAND -> every command's COMMAND INFO entry."""
    client.reply(encoder.array([_info_entry(command, client.protocol) for command in COMMANDS.values()]))


def command_count(server: ServerState, client: Client, args: list[bytes]) -> None:
    """COMMAND COUNT -> how many commands there are (subcommands not counted)."""
    client.reply(encoder.integer(len(COMMANDS)))


def command_info(server: ServerState, client: Client, args: list[bytes]) -> None:
    """COMMAND INFO [name ...] -> an entry per name (null if unknown); every command if none."""
    if len(args) == 2:
        command_(server, client, args)
        return
    entries = []
    for name in args[2:]:
        command = _by_name(name)
        entries.append(_info_entry(command, client.protocol) if command else encoder.null(client.protocol))
    client.reply(encoder.array(entries))


def command_docs(server: ServerState, client: Client, args: list[bytes]) -> None:
    """COMMAND DOCS [name ...] -> name -> documentation, for the known names (all if none)."""
    if len(args) == 2:
        found = list(COMMANDS.values())
    else:
        found = [command for command in map(_by_name, args[2:]) if command is not None]
    pairs = [(encoder.bulk(command.fullname.encode()), _docs_entry(command, client.protocol)) for command in found]
    client.reply(encoder.map_(pairs, client.protocol))


def command_list(server: ServerState, client: Client, args: list[bytes]) -> None:
    """COMMAND LIST [FILTERBY MODULE name | ACLCAT category | PATTERN pattern] -> full names."""
    keep = _list_filter(args[2:])
    if keep is None:
        client.reply(encoder.error("ERR syntax error"))
        return
    names = [command.fullname.encode() for command in _all_commands() if keep(command)]
    client.reply(encoder.array([encoder.bulk(name) for name in names]))


def _list_filter(words: list[bytes]) -> object:
    """COMMAND LIST's filter as a predicate, or None for a syntax error."""
    if not words:
        return lambda command: True
    if len(words) != 3 or words[0].upper() != b"FILTERBY":
        return None
    kind, value = words[1].upper(), words[2]
    if kind == b"MODULE":
        return lambda command: False  # no command here comes from a module
    if kind == b"ACLCAT":
        category = "@" + text_of(value).lower()
        return lambda command: category in FACTS[command.fullname]["acl_categories"]
    if kind == b"PATTERN":
        pattern = value.lower()
        return lambda command: glob_match(pattern, command.fullname.encode())
    return None


def command_getkeys(server: ServerState, client: Client, args: list[bytes]) -> None:
    """COMMAND GETKEYS|GETKEYSANDFLAGS command [arg ...] -> an error: no command here has keys.

    Shard channels are declared as key specs flagged ``not_key`` (Redis uses them to route
    SPUBLISH in a cluster), so even SPUBLISH has "no key arguments", as in Redis.
    """
    if _find(args[2:], strict=False) is None:
        client.reply(encoder.error("ERR Invalid command specified"))
    else:
        client.reply(encoder.error("ERR The command has no key arguments"))


_HELP = """\
COMMAND <subcommand> [<arg> [value] [opt] ...]. Subcommands are:
(no subcommand)
    Return details about all Redis commands.
COUNT
    Return the total number of commands in this Redis server.
LIST
    Return a list of all commands in this Redis server.
INFO [<command-name> ...]
    Return details about multiple Redis commands.
    If no command names are given, documentation details for all
    commands are returned.
DOCS [<command-name> ...]
    Return documentation details about multiple Redis commands.
    If no command names are given, documentation details for all
    commands are returned.
GETKEYS <full-command>
    Return the keys from a full Redis command.
GETKEYSANDFLAGS <full-command>
    Return the keys and the access flags from a full Redis command.
HELP
    Prints this help.
"""


def command_help(server: ServerState, client: Client, args: list[bytes]) -> None:
    """COMMAND HELP -> Redis's help text."""
    help_reply(client, _HELP)
