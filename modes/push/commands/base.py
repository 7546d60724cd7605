"""What every command family shares: the table row, the server as commands see it, helpers.

* ``Command`` — one row of the command table: name, arity, flags, and the function that
  runs the command (it reads its arguments, applies them, and queues its encoded reply).
* ``ServerState`` — the part of the push server a command may read or act on. The server
  (``modes.push.server.PushServer``) implements it; commands never import the server, so
  the server can import them without a cycle.
* ``COMMANDS`` — the table itself, name -> ``Command``. It is created empty here and filled
  with every family's rows by the package (``modes.push.commands``), so that COMMAND, which
  lists the table, can read it without importing the package that imports COMMAND.
* Small helpers more than one family uses.

Not here: the rows (``modes.push.commands``), the commands themselves (one module per
family), the order of checks before a command runs (``dispatch``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Protocol

import attrs

from broker.channels import PubSub
from broker.config import RespConfig
from broker.stats import ServerInfo
from broker.subscribers import OutputLimits, Subscriber
from modes.common.listener import ListenerStatistics
from modes.push.client import Client

__all__ = [
    "COMMANDS",
    "Command",
    "Handler",
    "REDIS_COMPAT_VERSION",
    "ServerState",
    "text_of",
    "valid_client_name",
]

# What HELLO and INFO report as the Redis version we emulate: our pub/sub replies were
# checked byte for byte against redis-server 7.0.15.
REDIS_COMPAT_VERSION = "7.0.15"


class ServerState(Protocol):
    """The push server as commands see it (``PushServer`` implements it)."""

    config: RespConfig
    pubsub: PubSub
    info: ServerInfo
    # "HOST:PORT" the RESP listener is bound to.
    address: str
    clients: dict[int, Client]
    # The output-buffer limits of a subscribed client (Redis's ``pubsub`` class).
    limits: OutputLimits
    commands_processed: int
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
    ``Client`` and the argument list, and queues its reply with ``client.reply``.
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
    # Redis's command flags as COMMAND reports them.
    flags: tuple[str, ...] = ()
    # The word count with which this command passes all of dispatch's checks at once when
    # the client is not subscribed: its arity if that is exact and it has no subcommands,
    # else 0 (no command has 0 words). It lets dispatch admit a pipelined PUBLISH with one
    # comparison; everything else goes through the checks one by one.
    checked_word_count: int = attrs.field(init=False)

    @checked_word_count.default
    def _checked_word_count(self) -> int:
        return self.arity if self.arity > 0 and self.subcommands is None else 0


COMMANDS: dict[bytes, Command] = {}


def text_of(data: bytes) -> str:
    """Client bytes as text for an error message or CLIENT LIST (undecodable bytes replaced)."""
    return data.decode("utf-8", errors="replace")


def valid_client_name(name: bytes) -> bool:
    """Redis's rule for a connection name: printable ASCII without spaces ('!' .. '~')."""
    return all(33 <= byte <= 126 for byte in name)
