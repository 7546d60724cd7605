"""One RESP connection's state: the record ``CLIENT LIST`` shows and every command works on.

``Client`` holds what Redis keeps in its ``client`` struct for a pub/sub server: the protocol
version HELLO negotiated, the name, counters, the request parser (the query buffer), the
subscriber (its subscriptions and its bounded outbox), and the flags the code that reads and
writes the socket coordinates with.

Not here: reading and writing the socket (``modes.push.server`` and the connection drivers,
``modes.push.drivers`` and ``modes.push.event_loop``), running commands (``modes.push.batch``
and ``modes.push.commands``), the accept loop and connection caps (``modes.common.listener``).
"""

from __future__ import annotations

from collections.abc import Callable

import attrs
import trio

from broker.security.redis_acl import RedisUser
from broker.subscribers import Outbox, Subscriber
from modes.common.listener import Connection
from modes.common.request_stats import resp_error_code
from wire.resp.requests import RequestParser

__all__ = ["REPLY_OFF", "REPLY_SKIP", "REPLY_SKIP_NEXT", "Client"]

# CLIENT REPLY's state, as bits of ``Client.reply_flags`` (Redis's client flags of the same
# names): OFF drops every reply until CLIENT REPLY ON; SKIP_NEXT, set by CLIENT REPLY SKIP,
# becomes SKIP when that command ends, and SKIP drops the replies of the command that follows.
REPLY_OFF = 1
REPLY_SKIP = 2
REPLY_SKIP_NEXT = 4


@attrs.define(eq=False)
class Client:
    """One RESP connection's state (what ``CLIENT LIST`` shows).

    ``conn`` is the listener's view of the same connection (addresses, cancel scope, close
    reason, buffered bytes); the properties below read through to it.
    """

    conn: Connection
    subscriber: Subscriber
    # The ACL user the connection runs as (``default`` until AUTH), and whether it has
    # authenticated: a client that has not may still run as ``default`` while that user
    # needs no password (Redis's ``authRequired``).
    user: RedisUser
    authenticated: bool = False
    # True while the user may run everything on every channel and no authentication is due:
    # dispatch then skips the ACL checks (kept by ``commands.acl.refresh_client``).
    unrestricted: bool = False
    fd: int = -1
    # The connection's query buffer: bytes read but not yet a complete command stay here.
    parser: RequestParser = attrs.field(factory=RequestParser)
    protocol: int = 2
    # True while the client has a subscription (kept by the server's set_subscribed_limits):
    # read on every command, so a plain attribute rather than a computed property.
    subscribed: bool = False
    name: bytes = b""
    lib_name: bytes = b""
    lib_ver: bytes = b""
    # The database SELECT chose (0-15): every one is empty, and CLIENT LIST shows it.
    db: int = 0
    # Another broker of the cluster, recognised by DUALMQ.PEER (``commands.cluster``): only
    # such a connection may run DUALMQ.FORWARD.
    cluster_peer: bool = False
    # CLIENT NO-TOUCH (no keys here: shown by CLIENT LIST, nothing else).
    no_touch: bool = False
    # CLIENT REPLY's REPLY_* bits; 0 in the common case, so dispatch tests one int per command.
    reply_flags: int = 0
    # Replies are dropped while set (kept by dispatch from ``reply_flags``); pushes are not.
    replies_muted: bool = False
    last_interaction_ms: int = 0
    last_command: bytes = b"NULL"
    commands_processed: int = 0
    bytes_received: int = 0
    bytes_sent: int = 0
    close_after_reply: bool = False
    # Replies to PUBLISHes held back during the batch being run, queued as one piece when the
    # batch ends or another command runs (see ``commands.pubsub.publish``). Only a client that
    # is not subscribed holds replies: nothing else can land in its outbox meanwhile, and no
    # output limit applies to it, so holding them changes nothing but the cost.
    held_replies: list[bytes] = attrs.field(factory=list)
    # The socket refused part of a write: whoever waits for it to become writable (the event
    # loop, or the connection's writer task) owns the order of output until then, and nobody
    # else writes meanwhile.
    blocked: bool = False
    # -- used by the task-per-connection driver only --
    # Output was queued outside any batch; the writer task should send it.
    flush_requested: bool = False
    writer_lot: trio.lowlevel.ParkingLot = attrs.field(factory=trio.lowlevel.ParkingLot)
    # -- used by the event-loop driver only --
    # True while the client's socket is in the loop's readiness set.
    watched: bool = False
    # Set by the loop when the connection must end (EOF, QUIT, a protocol error, a bug); the
    # connection's own task waits for it, then sends what is left and returns.
    finished: trio.Event = attrs.field(factory=trio.Event)
    # An exception a batch of this client raised in the loop (a bug): the connection's task
    # re-raises it, so the listener logs it and closes only this connection.
    failure: Exception | None = None
    # Called when a reply pushes the client over its output-buffer limit (the server cuts it off).
    on_overflow: Callable[[Client], None] | None = None
    # The server's error-reply counts by code (``RequestStats.errors``), for ``/metrics``.
    error_counts: dict[str, int] | None = None

    @property
    def outbox(self) -> Outbox:
        return self.subscriber.outbox

    @property
    def id(self) -> int:
        return self.conn.id

    @property
    def addr(self) -> str:
        return self.conn.peer

    @property
    def laddr(self) -> str:
        return self.conn.local

    @property
    def created_ms(self) -> int:
        return self.conn.opened_ms

    @property
    def stream(self) -> trio.SocketStream:
        return self.conn.stream

    @property
    def close_reason(self) -> str:
        return self.conn.close_reason

    @close_reason.setter
    def close_reason(self, reason: str) -> None:
        self.conn.close_reason = reason

    def reply(self, data: bytes) -> None:
        """Queue an encoded reply for this client (dropped while CLIENT REPLY turned replies off).

        Replies count against the output-buffer limit too (Redis measures all pending
        output of a pub/sub client), so a subscriber that pipelines commands without ever
        reading can be cut off here as well as by a publish.

        Args:
            data: the encoded reply.
        """
        if data and data[0] == 45 and self.error_counts is not None:  # b"-": an error reply
            code = resp_error_code(data)
            self.error_counts[code] = self.error_counts.get(code, 0) + 1
        if not self.replies_muted:
            self.push(data)

    def push(self, data: bytes) -> None:
        """Queue a pub/sub frame (a subscribe confirmation, a message) even while replies are off.

        Redis sends pushes to a client that said CLIENT REPLY OFF: they are not replies to it.

        Args:
            data: the encoded frame.
        """
        if not self.outbox.put(data, self.last_interaction_ms) and self.on_overflow is not None:
            self.on_overflow(self)

    def release_held_replies(self) -> None:
        """Queue the replies held back during this batch (``held_replies``) as one piece."""
        held = self.held_replies
        if held:
            self.reply(held[0] if len(held) == 1 else b"".join(held))
            held.clear()
