"""Introspection commands: CLIENT, INFO, CONFIG and COMMAND — what clients and humans ask a
server about itself.

These answer with what dualmq really has. ``CONFIG GET`` reports the pub/sub limits this
broker enforces (Redis's ``client-output-buffer-limit`` spelling), ``INFO`` adds a
``# dualmq`` section with the delivery guarantee in force and the counters that show what
push mode dropped and why. ``COMMAND`` is minimal: enough for redis-cli's interactive help.

Not here: the table rows naming these handlers and their arities (``modes.push.commands``),
the connection commands (``connection``: PING, HELLO, ...).
"""

from __future__ import annotations

from broker.glob import glob_match
from broker.stats import ServerInfo
from modes.common.clock import now_ms
from modes.push.client import Client
from modes.push.commands.base import (
    COMMANDS,
    REDIS_COMPAT_VERSION,
    Command,
    ServerState,
    text_of,
    valid_client_name,
)
from wire.resp import encoder


# --- CLIENT --------------------------------------------------------------------------------

def client_id(server: ServerState, client: Client, args: list[bytes]) -> None:
    """CLIENT ID -> this connection's id."""
    client.reply(encoder.integer(client.id))


def client_setname(server: ServerState, client: Client, args: list[bytes]) -> None:
    """CLIENT SETNAME name -> OK (Redis's rule for names: printable, no spaces)."""
    if not valid_client_name(args[2]):
        client.reply(encoder.error("ERR Client names cannot contain spaces, newlines or special characters."))
        return
    client.name = args[2]
    client.reply(encoder.simple("OK"))


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
    client.reply(encoder.simple("OK"))


def client_line(server: ServerState, client: Client, now: int) -> str:
    """One ``CLIENT LIST`` line, with the fields Redis uses for what we track."""
    flags = "P" if client.subscribed else "N"
    sub = client.subscriber
    return (
        f"id={client.id} addr={client.addr} laddr={client.laddr} name={text_of(client.name)} "
        f"age={(now - client.created_ms) // 1000} idle={(now - client.last_interaction_ms) // 1000} "
        f"flags={flags} db=0 sub={len(sub.channels)} psub={len(sub.patterns)} ssub=0 multi=-1 "
        f"omem={client.outbox.pending_bytes} cmd={text_of(client.last_command).lower()} "
        f"user=default resp={client.protocol} lib-name={text_of(client.lib_name)} "
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
        client.reply(encoder.error("ERR syntax error"))
        return
    text = "".join(client_line(server, c, now) + "\n" for c in clients)
    client.reply(encoder.verbatim(text, client.protocol))


def client_info(server: ServerState, client: Client, args: list[bytes]) -> None:
    """CLIENT INFO -> this connection's CLIENT LIST line."""
    client.reply(encoder.verbatim(client_line(server, client, now_ms()) + "\n", client.protocol))


def client_kill(server: ServerState, client: Client, args: list[bytes]) -> None:
    """CLIENT KILL addr | KILL [ID id] [ADDR addr] [LADDR addr] [SKIPME yes|no] -> OK or a count."""
    if len(args) == 3:
        # Old form: CLIENT KILL addr:port -> +OK or an error.
        target = text_of(args[2])
        victims = [c for c in server.clients.values() if c.addr == target]
        if not victims:
            client.reply(encoder.error("ERR No such client"))
            return
        _kill_all(server, client, victims)
        client.reply(encoder.simple("OK"))
        return
    filters = args[2:]
    if len(filters) % 2:
        client.reply(encoder.error("ERR syntax error"))
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
        elif key == b"SKIPME":
            skipme = value.lower() != b"no"
        else:
            client.reply(encoder.error("ERR syntax error"))
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


def client_help(server: ServerState, client: Client, args: list[bytes]) -> None:
    """CLIENT HELP -> Redis's help text, for the subcommands we have."""
    lines = [
        "CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "GETNAME", "    Return the name of the current connection.",
        "ID", "    Return the ID of the current connection.",
        "INFO", "    Return information about the current client connection.",
        "KILL <ip:port> | KILL <option> <value> [<option> <value> [...]]",
        "    Kill connections by address (or ID, ADDR, LADDR, SKIPME).",
        "LIST [TYPE (NORMAL|PUBSUB)] | LIST ID <id> [<id> ...]", "    Return information about client connections.",
        "SETINFO <LIB-NAME|LIB-VER> <value>", "    Set client meta attributes.",
        "SETNAME <name>", "    Assign the name <name> to the current connection.",
        "HELP", "    Print this help.",
    ]
    client.reply(encoder.array([encoder.simple(line) for line in lines]))


# --- CONFIG --------------------------------------------------------------------------------

def config_values(server: ServerState) -> dict[str, str]:
    """The Redis-named settings this broker really has, as CONFIG GET reports them."""
    config = server.config
    limits = server.limits
    return {
        "maxclients": str(config.maxclients),
        "timeout": str(config.timeout),
        "proto-max-bulk-len": str(config.proto_max_bulk_len),
        "client-output-buffer-limit": (
            f"normal 0 0 0 replica 0 0 0 pubsub {limits.hard_bytes} {limits.soft_bytes} {limits.soft_seconds}"
        ),
        # Push mode keeps nothing: no snapshots, no append-only file.
        "save": "",
        "appendonly": "no",
        "databases": "1",
        "port": server.address.rpartition(":")[2],
        "bind": server.address.rpartition(":")[0].strip("[]"),
    }


def config_get(server: ServerState, client: Client, args: list[bytes]) -> None:
    """CONFIG GET pattern [pattern ...] -> the matching settings and their values."""
    values = config_values(server)
    pairs = []
    for name, value in values.items():
        if any(glob_match(pattern.lower(), name.encode()) for pattern in args[2:]):
            pairs.append((encoder.bulk(name.encode()), encoder.bulk(value.encode())))
    client.reply(encoder.map_(pairs, client.protocol))


def config_help(server: ServerState, client: Client, args: list[bytes]) -> None:
    """CONFIG HELP -> Redis's help text, for the subcommands we have."""
    lines = [
        "CONFIG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "GET <pattern>", "    Return parameters matching the glob-like <pattern> and their values.",
        "HELP", "    Print this help.",
    ]
    client.reply(encoder.array([encoder.simple(line) for line in lines]))


# --- INFO ----------------------------------------------------------------------------------

def info_sections(server: ServerState) -> dict[str, list[tuple[str, object]]]:
    """INFO's sections, by lower-case name: (field, value) pairs in the order they are shown."""
    now = now_ms()
    stats = server.pubsub.statistics()
    info = server.info
    subscribed = sum(1 for c in server.clients.values() if c.subscribed)
    listener = server.listener_statistics()
    config = server.config
    return {
        "server": [
            ("redis_version", REDIS_COMPAT_VERSION),
            ("redis_mode", "standalone"),
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
            ("client_query_buffer_limit_disconnections", listener.buffer_limit_disconnections),
            ("client_output_buffer_limit_disconnections", server.output_limit_disconnections),
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


# --- COMMAND -------------------------------------------------------------------------------

def command_(server: ServerState, client: Client, args: list[bytes]) -> None:
    """COMMAND [COUNT | DOCS | INFO name ...] -> the table, as redis-cli's help needs it."""
    if len(args) == 1:
        client.reply(encoder.array([_command_entry(entry) for entry in COMMANDS.values()]))
        return
    sub = args[1].upper()
    if sub == b"COUNT" and len(args) == 2:
        client.reply(encoder.integer(len(COMMANDS)))
    elif sub == b"DOCS":
        # Minimal: no documentation entries. redis-cli only needs a well-formed reply.
        client.reply(encoder.map_([], client.protocol))
    elif sub == b"INFO":
        entries = []
        for name in args[2:]:
            entry = COMMANDS.get(name.upper())
            entries.append(_command_entry(entry) if entry else encoder.null_array(client.protocol))
        client.reply(encoder.array(entries))
    else:
        client.reply(encoder.error(f"ERR unknown subcommand '{text_of(args[1])[:128]}'. Try COMMAND HELP."))


def _command_entry(entry: Command) -> bytes:
    return encoder.array([
        encoder.bulk(entry.name.lower()),
        encoder.integer(entry.arity),
        encoder.array([encoder.simple(flag) for flag in entry.flags]),
        encoder.integer(0), encoder.integer(0), encoder.integer(0),
        encoder.array([]), encoder.array([]), encoder.array([]), encoder.array([]),
    ])
