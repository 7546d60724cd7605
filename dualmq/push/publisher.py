"""The push-mode ``Publisher``: PUBLISH over one RESP connection, one message or a pipelined batch.

    async with Publisher("127.0.0.1:6379") as pub:
        receivers = await pub.publish("news", "hello")

What lives here: the publisher, and ``execute`` for any other command (INFO, CONFIG GET ...).
What does not: subscribing (``subscription``), the socket and frame decoding (``connection``).
The guarantee and the rest of push mode are described in the package docstring
(``dualmq.push``).
"""

from __future__ import annotations

from collections.abc import Iterable

import trio

from dualmq.errors import ConnectionLost, ServerError, Timeout
from dualmq.push.connection import (
    DEFAULT_ADDRESS,
    Channel,
    RespConnection,
    name_bytes,
    parse_address,
    pick_timeout,
    reply_error,
)
from dualmq.tls import client_context
from wire.resp import encoder
from wire.resp.values import ErrorReply

__all__ = ["Publisher"]


class Publisher:
    """Publishes messages over one connection; use it as an async context manager.

    Args:
        address: ``"host:port"`` of a RESP server (dualmq serve or Redis).
        protocol: 3 (RESP3, falls back to RESP2 if the server refuses ``HELLO 3``) or 2.
        timeout: default deadline in seconds for every call (connect included).
        name: connection name shown by ``CLIENT LIST``, or None.
        username: the ACL user to authenticate as (None: ``default``), as in redis-py.
        password: its password (Redis ``requirepass`` for ``default``); None: no AUTH.
        ssl, ssl_ca_certs, ssl_certfile, ssl_keyfile: speak TLS (redis-py's names): trust
            ``ssl_ca_certs`` (else the system's CAs), present a client certificate if given.

    Calls from several tasks are safe; they are served one at a time (use ``publish_many``
    to pipeline). A call that fails with ``ConnectionLost`` or ``Timeout`` may or may not have
    reached the server — pub/sub is at-most-once — and is not retried; the connection is
    closed and the next call opens a new one.
    """

    def __init__(
        self,
        address: str | tuple[str, int] = DEFAULT_ADDRESS,
        *,
        protocol: int = 3,
        timeout: float = 5.0,
        name: str | None = None,
        username: str | None = None,
        password: str | None = None,
        ssl: bool = False,
        ssl_ca_certs: str | None = None,
        ssl_certfile: str | None = None,
        ssl_keyfile: str | None = None,
    ) -> None:
        if protocol not in (2, 3):
            raise ValueError(f"protocol must be 2 or 3, got {protocol!r}")
        if username is not None and password is None:
            raise ValueError("a username needs a password (redis-py's rule too)")
        self.address = parse_address(address)
        self._username = username
        self._password = password
        self._tls = client_context(ssl_ca_certs, ssl_certfile, ssl_keyfile) if ssl else None
        self.timeout = timeout
        self._protocol = protocol
        self._name = name
        self._conn: RespConnection | None = None
        self._lock = trio.Lock()
        self._closed = False

    @property
    def protocol(self) -> int | None:
        """The protocol the current connection speaks (2 or 3), None when not connected."""
        return self._conn.protocol if self._conn is not None else None

    async def __aenter__(self) -> Publisher:
        await self.connect()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def connect(self, *, timeout: float | None = None) -> None:
        """Open the connection now (calls open it lazily anyway).

        Raises:
            ConnectionLost, Timeout, ServerError: see ``publish``.
        """
        async with self._lock:
            await self._ensure(pick_timeout(timeout, self.timeout))

    async def _ensure(self, timeout: float) -> RespConnection:
        if self._closed:
            raise ConnectionLost("publisher is closed")
        if self._conn is None:
            self._conn = await RespConnection.open(
                self.address, protocol=self._protocol, name=self._name, timeout=timeout,
                username=self._username, password=self._password, tls=self._tls,
            )
        return self._conn

    async def _round_trip(self, payload: bytes, count: int, what: str, timeout: float | None) -> list[object]:
        """Send ``payload`` (``count`` commands) and return their ``count`` replies, in order."""
        seconds = pick_timeout(timeout, self.timeout)
        async with self._lock:
            ok = False
            try:
                with trio.fail_after(seconds):
                    conn = await self._ensure(seconds)
                    await conn.send(payload)
                    replies = await conn.read_replies(count)
                ok = True
                return replies
            except trio.TooSlowError:
                raise Timeout(f"no reply to {what} within {seconds} s") from None
            finally:
                if not ok and self._conn is not None:
                    # Interrupted half-way (timeout, cancellation, broken socket): a late
                    # reply would be taken as the answer to our *next* command. Never reuse
                    # a connection whose request/reply order is unknown.
                    conn, self._conn = self._conn, None
                    await conn.aclose()

    async def publish(self, channel: Channel, message: Channel, *, timeout: float | None = None) -> int:
        """Publish one message.

        Args:
            channel: the channel (str is sent as UTF-8).
            message: the payload (str is sent as UTF-8).
            timeout: deadline in seconds; default the publisher's.

        Returns:
            How many deliveries the server made: subscribers of the channel plus matching
            pattern subscriptions (Redis counts a client once per matching subscription).
            0 means nobody received it — and nobody ever will.

        Raises:
            ServerError: the server answered with an error (its text is the message).
            ConnectionLost: the connection could not be opened or broke.
            Timeout: no reply within the deadline.
        """
        payload = encoder.command(b"PUBLISH", name_bytes(channel), name_bytes(message))
        (reply,) = await self._round_trip(payload, 1, "PUBLISH", timeout)
        return _receivers(reply)

    async def publish_many(
        self, messages: Iterable[tuple[Channel, Channel]], *, timeout: float | None = None
    ) -> list[int]:
        """Publish several messages in one write (a pipeline) and wait for all the replies.

        The server handles them in the given order, so subscribers receive them in that order.

        Args:
            messages: ``(channel, message)`` pairs.
            timeout: deadline for the whole batch.

        Returns:
            The receiver count of each message, in order.

        Raises:
            ServerError: a PUBLISH was refused (raised after all replies are read, so the
                connection stays usable; the other messages were published).
            ConnectionLost, Timeout: as ``publish``.
        """
        parts = [encoder.command(b"PUBLISH", name_bytes(channel), name_bytes(message)) for channel, message in messages]
        if not parts:
            return []
        replies = await self._round_trip(b"".join(parts), len(parts), f"{len(parts)} pipelined PUBLISH", timeout)
        return [_receivers(reply) for reply in replies]

    async def execute(self, *args: str | bytes | int, timeout: float | None = None) -> object:
        """Send any command and return its decoded reply (the low-level escape hatch).

        Replies are ``wire.resp`` values: ``bytes`` (bulk), ``int``, ``SimpleString``, ``list``,
        ``dict`` (RESP3 map), ``None`` ...

        Raises:
            ServerError: the server answered with an error.
            ConnectionLost, Timeout: as ``publish``.
        """
        (reply,) = await self._round_trip(encoder.command(*args), 1, _command_name(args), timeout)
        if isinstance(reply, ErrorReply):
            raise reply_error(reply, self._username)
        return reply

    async def aclose(self) -> None:
        """Close the connection (idempotent). Later calls raise ``ConnectionLost``."""
        self._closed = True
        conn, self._conn = self._conn, None
        if conn is not None:
            await conn.aclose()


def _command_name(args: tuple) -> str:
    first = args[0] if args else b"?"
    return first.decode("utf-8", "replace") if isinstance(first, bytes) else str(first)


def _receivers(reply: object) -> int:
    if isinstance(reply, ErrorReply):
        raise reply_error(reply)
    if type(reply) is not int:
        raise ServerError(f"unexpected reply to PUBLISH: {reply!r}")
    return reply
