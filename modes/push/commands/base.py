"""What every command family shares: the table row, the server as commands see it, helpers.

* ``Command`` — one row of the command table: name, arity, what dispatch must know about it,
  and the function that runs the command (it reads its arguments, applies them, and queues
  its encoded reply).
* ``ServerState`` — the part of the push server a command may read or act on. The server
  (``modes.push.server.PushServer``) implements it; commands never import the server, so
  the server can import them without a cycle.
* ``CommandState`` — what the commands themselves keep per server: CLIENT PAUSE's state and
  the settings CONFIG SET accepts that have no place in the broker's config.
* ``COMMANDS`` — the table itself, name -> ``Command``. It is created empty here and filled
  with every family's rows by the package (``modes.push.commands``), so that COMMAND, which
  lists the table, can read it without importing the package that imports COMMAND.
* Small helpers more than one family uses.

Not here: the rows (``modes.push.commands``), the commands themselves (one module per
family), the order of checks before a command runs (``dispatch``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

import attrs

from broker.channels import PubSub
from broker.config import RespConfig
from broker.security.redis_acl import RedisAcl
from broker.security.redis_acl_log import AclLog
from broker.stats import ServerInfo
from broker.subscribers import OutputLimits, Subscriber
from modes.common.listener import ConnectionTable, ListenerStatistics
from modes.common.request_stats import RequestStats
from modes.push.client import Client
from modes.push.commands.pause import ClientPause
from wire.resp import encoder

__all__ = [
    "COMMANDS",
    "Command",
    "CommandState",
    "Handler",
    "REDIS_COMPAT_VERSION",
    "ServerState",
    "help_reply",
    "subcommand_syntax_error",
    "text_of",
    "valid_client_name",
]

# What HELLO and INFO report as the Redis version we emulate: our pub/sub replies were
# checked byte for byte against redis-server 7.0.15.
REDIS_COMPAT_VERSION = "7.0.15"

# Redis's output-buffer limits for replicas: "<hard> <soft> <soft-seconds>" (its default).
DEFAULT_REPLICA_OUTPUT_LIMIT = (256 * 1024 * 1024, 64 * 1024 * 1024, 60)


@attrs.define
class CommandState:
    """What the commands keep per server, beside the broker's own state.

    ``pause`` is CLIENT PAUSE: whether commands are being held, and the clients held
    (dispatch holds them, the connection loop resumes them: see ``modes.push.batch``).
    ``replica_output_limit`` is the ``replica`` class of ``client-output-buffer-limit``:
    accepted and shown by CONFIG as Redis does, with no effect, as no replica ever connects.
    """

    pause: ClientPause = attrs.field(factory=ClientPause)
    replica_output_limit: tuple[int, int, int] = DEFAULT_REPLICA_OUTPUT_LIMIT


class ServerState(Protocol):
    """The push server as commands see it (``PushServer`` implements it)."""

    # Replaced as a whole (it is frozen) when CONFIG SET changes a setting.
    config: RespConfig
    pubsub: PubSub
    # ``info.request_shutdown`` stops the whole broker (SHUTDOWN), when one is attached.
    info: ServerInfo
    # "HOST:PORT" the RESP listener is bound to.
    address: str
    clients: dict[int, Client]
    # The output-buffer limits of a subscribed client (Redis's ``pubsub`` class).
    limits: OutputLimits
    # The listener's caps and counters (CONFIG SET maxclients, CONFIG RESETSTAT).
    connections: ConnectionTable
    command_state: CommandState
    # The ACL users (AUTH, ACL SETUSER ...) and the refusals ACL LOG shows.
    acl: RedisAcl
    acl_log: AclLog
    commands_processed: int
    # Commands by name and error replies by code (``/metrics``; never reset).
    requests: RequestStats
    # The cluster this broker belongs to (``commands.cluster.PushCluster``), None on its own.
    cluster: Any
    output_limit_disconnections: int
    protocol_errors: int
    # The largest output buffer judged over its limit when a subscriber was cut off (INFO).
    output_at_disconnect_max: int

    def listener_statistics(self) -> ListenerStatistics:
        """Accepted, refused and evicted connections, buffered query bytes (for INFO)."""
        ...

    def subscriber_output_high_water(self) -> int:
        """The most bytes any subscriber's output buffer has held, departed ones included (INFO)."""
        ...

    def set_subscribed_limits(self, client: Client) -> None:
        """Apply the pub/sub output limits while ``client`` has a subscription, none otherwise."""
        ...

    def cut_off(self, subscriber: Subscriber, pending: int, limit: str) -> None:
        """Disconnect a subscriber the broker removed for exceeding its output-buffer limit."""
        ...

    def kill(self, client: Client, reason: str) -> None:
        """Close another client's connection (CLIENT KILL)."""
        ...


Handler = Callable[[ServerState, Client, list[bytes]], None]


@attrs.frozen
class Command:
    """One row of the command table.

    Arity follows Redis's convention: ``n > 0`` means exactly n words (command included),
    ``n < 0`` means at least ``-n``. A handler receives the server, the connection's
    ``Client`` and the argument list, and queues its reply with ``client.reply`` (or, for
    pub/sub confirmations, ``client.push``). What COMMAND INFO and DOCS show about a command
    is Redis's own description of it (``reference.json``), looked up by ``fullname``.
    """

    name: bytes
    arity: int
    # None for a command that only groups subcommands (CLIENT, CONFIG, PUBSUB).
    handler: Handler | None
    # Subcommands (CLIENT LIST, PUBSUB NUMSUB, ...) have their own arity and handler.
    subcommands: Mapping[bytes, Command] | None = None
    # May run in a RESP2 client's subscribed context; every other command is refused there.
    allowed_while_subscribed: bool = False
    # May hold its reply and its deliveries back until the batch of commands ends (PUBLISH);
    # dispatch releases them before it runs anything without this flag.
    holds_output: bool = False
    # Held while CLIENT PAUSE WRITE is in force: what Redis flags "write" (FLUSHALL) or
    # "may replicate" (PUBLISH, SPUBLISH: Redis propagates them to replicas).
    writes: bool = False
    # Checks its caller itself, so dispatch applies no ACL check to it (NOAUTH, NOPERM): the
    # commands between brokers of a cluster (``commands.cluster``), which answer only a
    # connection that presented the cluster's secret.
    internal: bool = False
    # Redis's name for it in errors and COMMAND: "publish", "pubsub|numpat" for a subcommand.
    fullname: str = attrs.field()
    # The word count with which this command passes all of dispatch's checks at once when
    # the client is not subscribed: its arity if that is exact and it has no subcommands,
    # else 0 (no command has 0 words). It lets dispatch admit a pipelined PUBLISH with one
    # comparison; everything else goes through the checks one by one.
    checked_word_count: int = attrs.field(init=False)

    @fullname.default
    def _fullname(self) -> str:
        return self.name.decode().lower()

    @checked_word_count.default
    def _checked_word_count(self) -> int:
        return self.arity if self.arity > 0 and self.subcommands is None else 0


COMMANDS: dict[bytes, Command] = {}


def text_of(data: bytes) -> str:
    """Client bytes as text for an error message or CLIENT LIST (undecodable bytes replaced)."""
    return data.decode("utf-8", errors="replace")


def help_reply(client: Client, text: str) -> None:
    """Reply to a HELP subcommand: Redis sends its help text as an array of simple strings, a line each."""
    client.reply(encoder.array([encoder.simple(line) for line in text.splitlines()]))


def subcommand_syntax_error(args: list[bytes]) -> bytes:
    """Redis's reply when a subcommand's handler finds too many arguments for it.

    The table's arity says "at least n" for such subcommands (PUBSUB CHANNELS, CLIENT PAUSE),
    so dispatch lets them through and the handler refuses: the subcommand as typed, the
    container in capitals (``addReplySubcommandSyntaxError``).
    """
    return encoder.error(
        f"ERR unknown subcommand or wrong number of arguments for '{text_of(args[1])[:128]}'. "
        f"Try {text_of(args[0]).upper()} HELP."
    )


def valid_client_name(name: bytes) -> bool:
    """Redis's rule for a connection name: printable ASCII without spaces ('!' .. '~')."""
    return all(33 <= byte <= 126 for byte in name)
