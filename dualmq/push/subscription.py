"""The subscriber half of ``dualmq.push``: ``subscribe``, ``Subscription``, ``Gap``, ``Backoff``.

Import them from ``dualmq.push`` (whose docstring explains the guarantees). This module holds
the machinery: a background reader task per subscription that decodes frames, matches
confirmations to the commands waiting for them, sends health-check PINGs, and on a lost
connection either fails the iterator (``ConnectionLost``) or reconnects with backoff,
resubscribes everything and queues a ``Gap`` ahead of the next messages.

Not here: the publisher (``publisher``), sockets, decoding and the helpers both share
(``connection``).
"""

from __future__ import annotations

import collections
import ssl as _ssl
import math
import random
import time
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager

import attrs
import trio

from dualmq.errors import AuthenticationError, ConnectionLost, DualmqError, Timeout
from dualmq.push.connection import (
    DEFAULT_ADDRESS,
    Channel,
    Message,
    RespConnection,
    name_bytes,
    parse_address,
    pick_timeout,
    reply_error,
)
from dualmq.tls import client_context
from wire.resp import encoder
from wire.resp.values import ErrorReply, SimpleString

__all__ = ["Backoff", "Gap", "Subscription", "subscribe"]

# Batches (one per socket read, so up to 64 KiB of messages each) that the background reader
# may queue ahead of the ``async for`` body. Small on purpose: beyond ~1 MiB it is better to
# let TCP and the server's output buffer absorb bursts, where the server's limit applies.
_QUEUED_BATCHES = 16

@attrs.frozen(slots=True)
class Gap:
    """The subscription was disconnected; what was published meanwhile is lost.

    Yielded by a ``reconnect=True`` subscription right after it is subscribed again and
    before any message of the new connection.

    Attributes:
        started_at: ``time.time()`` when the loss was noticed (the connection may have been
            dead a little earlier, e.g. up to ``health_check_interval`` for a silent peer).
        ended_at: ``time.time()`` when every subscription was confirmed again. Messages
            published between the two instants were not delivered to us and never will be.
        reason: why the connection was lost.
        attempts: connection attempts it took (1 = the first one succeeded).
    """

    started_at: float
    ended_at: float
    reason: str
    attempts: int

    @property
    def duration(self) -> float:
        """Seconds without a subscription."""
        return self.ended_at - self.started_at


@attrs.frozen(kw_only=True)
class Backoff:
    """How long to wait between reconnection attempts: exponential, capped, jittered.

    The n-th wait is ``min(initial * factor**(n-1), maximum)``, randomly shortened or
    lengthened by up to ``jitter`` (a fraction), so that many subscribers disconnected by
    the same broker restart do not all knock at the same instant.

    Attributes:
        initial: first wait in seconds (the very first attempt is immediate).
        maximum: cap on a single wait.
        factor: growth per attempt.
        jitter: 0 disables randomisation.
        give_up_after: stop and raise ``ConnectionLost`` after this many seconds of outage;
            None retries forever.
    """

    initial: float = attrs.field(default=0.1, validator=attrs.validators.gt(0))
    maximum: float = attrs.field(default=5.0, validator=attrs.validators.gt(0))
    factor: float = attrs.field(default=2.0, validator=attrs.validators.ge(1))
    jitter: float = attrs.field(default=0.1, validator=[attrs.validators.ge(0), attrs.validators.le(1)])
    give_up_after: float | None = None

    def delays(self) -> Iterable[float]:
        """The successive waits (an endless generator)."""
        delay = self.initial
        while True:
            yield delay * (1 + random.uniform(-self.jitter, self.jitter))
            delay = min(delay * self.factor, self.maximum)


# --- subscriber -----------------------------------------------------------------------------


@attrs.define
class _Pending:
    """A command sent while subscribed, waiting for its confirmation frames."""

    kind: bytes  # b"subscribe", b"unsubscribe", b"psubscribe", b"punsubscribe" or b"pong"
    remaining: int  # (un)subscribe commands get one confirmation per argument
    done: trio.Event = attrs.field(factory=trio.Event)
    error: DualmqError | None = None


class Subscription:
    """A live subscription: an async iterator of ``Message`` (and ``Gap``) events.

    Get one from ``subscribe(...)``; do not construct it yourself. Iterating yields
    ``Message`` objects in the order the server sent them, and — only with
    ``reconnect=True`` — a ``Gap`` each time the connection was lost and restored.

    You may change the subscription while iterating (from the same or another task):
    ``subscribe``, ``unsubscribe``, ``psubscribe``, ``punsubscribe``. Each returns once the
    server confirmed it. Messages already received for a channel you just left may still be
    in the queue and are yielded: unsubscribing stops *future* deliveries.
    """

    def __init__(
        self,
        address: tuple[str, int],
        channels: Iterable[Channel],
        patterns: Iterable[Channel],
        *,
        protocol: int,
        reconnect: bool,
        backoff: Backoff,
        timeout: float,
        name: str | None,
        health_check_interval: float | None,
        username: str | None = None,
        password: str | None = None,
        tls: _ssl.SSLContext | None = None,
    ) -> None:
        self.address = address
        self._username = username
        self._password = password
        self._tls = tls
        self.timeout = timeout
        self._protocol = protocol
        self._reconnect = reconnect
        self._backoff = backoff
        self._name = name
        self._health_check_interval = health_check_interval
        # What we want to be subscribed to (dicts as ordered sets). Updated *before* a
        # command is sent, so a reconnection in the middle restores the new state.
        self._channels: dict[bytes, None] = dict.fromkeys(name_bytes(c) for c in channels)
        self._patterns: dict[bytes, None] = dict.fromkeys(name_bytes(p) for p in patterns)
        self._conn: RespConnection | None = None
        self._connected = trio.Event()
        self._send_lock = trio.Lock()  # the reader (PING) and callers both write
        self._pending: collections.deque[_Pending] = collections.deque()
        self._failure: DualmqError | None = None
        self._send_events, self._receive_events = trio.open_memory_channel(_QUEUED_BATCHES)
        self._batch: list = []
        self._index = 0

    # -- state -----------------------------------------------------------------------------

    @property
    def channels(self) -> frozenset[bytes]:
        """The channels this subscription is (or is becoming) subscribed to."""
        return frozenset(self._channels)

    @property
    def patterns(self) -> frozenset[bytes]:
        """The patterns this subscription is (or is becoming) subscribed to."""
        return frozenset(self._patterns)

    @property
    def protocol(self) -> int | None:
        """2 or 3 for the current connection; None while reconnecting."""
        return self._conn.protocol if self._conn is not None else None

    # -- iteration -------------------------------------------------------------------------

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Message | Gap:
        # Hot path: hand out the current batch without touching trio.
        batch = self._batch
        index = self._index
        if index < len(batch):
            self._index = index + 1
            item = batch[index]
            if type(item) is Message:
                return item
            return self._check(item)
        return await self._next_batch()

    async def _next_batch(self) -> Message | Gap:
        # Messages that arrived before the connection broke are already ours: hand them out
        # first. The failure itself is queued after them and raised when reached (_check).
        try:
            self._batch = self._receive_events.receive_nowait()
        except trio.WouldBlock:
            if self._failure is not None:
                raise self._failure from None
            self._batch = await self._receive_events.receive()
        self._index = 1
        return self._check(self._batch[0])

    def _check(self, item: Message | Gap | DualmqError) -> Message | Gap:
        if isinstance(item, DualmqError):
            self._failure = item
            raise item
        return item

    async def receive(self, *, timeout: float | None = None) -> Message | Gap:
        """The next event, waiting at most ``timeout`` seconds (None: forever).

        Raises:
            Timeout: nothing arrived in time.
            ConnectionLost: the connection dropped (``reconnect=False``) or reconnection
                gave up (``Backoff.give_up_after``).
        """
        if timeout is None:
            return await self.__anext__()
        try:
            with trio.fail_after(timeout):
                return await self.__anext__()
        except trio.TooSlowError:
            raise Timeout(f"no message within {timeout} s") from None

    # -- changing the subscription ---------------------------------------------------------

    async def subscribe(self, *channels: Channel, timeout: float | None = None) -> None:
        """Add channels; returns once the server confirmed them.

        Raises:
            Timeout: no confirmation within ``timeout`` (default: the subscription's).
            ServerError: the server refused the command.
            ConnectionLost: the connection is gone and ``reconnect`` is off.
        """
        names = [name_bytes(c) for c in channels]
        self._channels.update(dict.fromkeys(names))
        await self._command(b"subscribe", names, timeout)

    async def unsubscribe(self, *channels: Channel, timeout: float | None = None) -> None:
        """Leave channels (all of them when none are given); see ``subscribe``."""
        names = [name_bytes(c) for c in channels] or list(self._channels)
        for name in names:
            self._channels.pop(name, None)
        await self._command(b"unsubscribe", names, timeout)

    async def psubscribe(self, *patterns: Channel, timeout: float | None = None) -> None:
        """Add glob patterns (``news.*``, ``h?llo``, ``[ab]*``); see ``subscribe``."""
        names = [name_bytes(p) for p in patterns]
        self._patterns.update(dict.fromkeys(names))
        await self._command(b"psubscribe", names, timeout)

    async def punsubscribe(self, *patterns: Channel, timeout: float | None = None) -> None:
        """Leave patterns (all of them when none are given); see ``subscribe``."""
        names = [name_bytes(p) for p in patterns] or list(self._patterns)
        for name in names:
            self._patterns.pop(name, None)
        await self._command(b"punsubscribe", names, timeout)

    async def ping(self, *, timeout: float | None = None) -> None:
        """Round trip to the server (allowed while subscribed, in RESP2 too).

        Raises:
            Timeout, ConnectionLost: as ``subscribe``.
        """
        await self._command(b"pong", [], timeout)

    async def _command(self, kind: bytes, names: list[bytes], timeout: float | None) -> None:
        if kind != b"pong" and not names:
            return  # nothing to (un)subscribe: Redis' argument-less reply shape is not worth it
        seconds = pick_timeout(timeout, self.timeout)
        verb = b"PING" if kind == b"pong" else kind.upper()
        op = _Pending(kind, len(names) or 1)
        try:
            with trio.fail_after(seconds):
                if self._failure is not None:
                    raise self._failure
                if self._conn is None:
                    # Reconnecting: wait for it (the new connection resubscribes everything
                    # in our state, which may or may not include this change yet).
                    await self._connected.wait()
                    if self._failure is not None:
                        raise self._failure
                try:
                    await self._send(encoder.command(verb, *names), op)
                except ConnectionLost:
                    # The reader notices too; the reconnection (or the failure) resolves op.
                    pass
                await op.done.wait()
        except trio.TooSlowError:
            what = verb.decode() + "".join(" " + n.decode("utf-8", "replace") for n in names)
            raise Timeout(f"no confirmation of {what} within {seconds} s") from None
        if op.error is not None:
            raise op.error

    async def _send(self, data: bytes, op: _Pending) -> None:
        conn = self._conn
        async with self._send_lock:
            # Queued under the lock, right before writing: the order of ``_pending`` is then
            # the order of the commands on the wire, which is the order of their replies.
            self._pending.append(op)
            if conn is None:
                raise ConnectionLost("not connected")
            await conn.send(data)

    # -- connection lifecycle (background reader task) -------------------------------------

    async def _open(self) -> tuple[RespConnection, list[Message]]:
        """Connect, negotiate, subscribe to the whole state and wait for every confirmation.

        Returns:
            The connection and the messages that arrived during the confirmations.
        """
        try:
            with trio.fail_after(self.timeout):
                conn = await RespConnection.open(
                    self.address, protocol=self._protocol, name=self._name, timeout=self.timeout,
                    username=self._username, password=self._password, tls=self._tls,
                )
                try:
                    early = await self._subscribe_all(conn)
                except BaseException:
                    await conn.aclose()
                    raise
                return conn, early
        except trio.TooSlowError:
            raise Timeout(
                f"connecting to {self.address[0]}:{self.address[1]} and subscribing took more than {self.timeout} s"
            ) from None

    async def _subscribe_all(self, conn: RespConnection) -> list[Message]:
        channels, patterns = list(self._channels), list(self._patterns)
        requests = []
        if channels:
            requests.append((b"SUBSCRIBE", *channels))
        if patterns:
            requests.append((b"PSUBSCRIBE", *patterns))
        if not requests:
            return []
        await conn.send(encoder.commands(requests))
        expected = len(channels) + len(patterns)
        early: list[Message] = []
        while expected:
            messages, others = await conn.receive()
            early += messages
            for value in others:
                if isinstance(value, ErrorReply):
                    raise reply_error(value, self._username)
                if isinstance(value, list) and value and value[0] in (b"subscribe", b"psubscribe"):
                    expected -= 1
        return early

    async def _start(self) -> None:
        conn, early = await self._open()
        self._conn = conn
        self._connected.set()
        if early:
            self._send_events.send_nowait(early)

    async def _run(self) -> None:
        """The reader task: pump frames; on loss, reconnect (and report a Gap) or fail."""
        while True:
            try:
                await self._pump(self._conn)
            except ConnectionLost as exc:
                lost = exc
            conn, self._conn = self._conn, None
            self._connected = trio.Event()
            if conn is not None:
                await conn.aclose()
            if self._reconnect:
                try:
                    await self._restore(str(lost))
                    continue
                except (ConnectionLost, AuthenticationError) as exc:
                    lost = exc
            self._failure = lost
            self._resolve_pending(lost)
            self._connected.set()  # wake callers waiting for a connection: they see _failure
            await self._send_events.send([lost])
            return

    async def _pump(self, conn: RespConnection) -> None:
        interval = self._health_check_interval or math.inf
        health_ping: _Pending | None = None
        send = self._send_events.send
        while True:
            received = None
            with trio.move_on_after(interval):
                received = await conn.receive()
            if received is None:
                # Idle for a whole interval. TCP alone may never tell us the peer vanished
                # (power loss, a dropped route), so ask; no answer by next time means lost.
                if health_ping is not None and not health_ping.done.is_set():
                    raise ConnectionLost(f"no answer to PING within {interval} s")
                health_ping = _Pending(b"pong", 1)
                await self._send(encoder.command(b"PING"), health_ping)
                continue
            messages, others = received
            for value in others:
                self._control(value)
            if messages:
                await send(messages)

    def _control(self, value: object) -> None:
        """Match a non-message frame with the command waiting for it."""
        pending = self._pending
        if isinstance(value, ErrorReply):
            if pending:
                op = pending.popleft()
                op.error = reply_error(value, self._username)
                op.done.set()
            return
        if isinstance(value, list) and value and isinstance(value[0], bytes):
            kind = value[0]  # RESP2 array or RESP3 push: b"subscribe", b"pong" ...
        elif isinstance(value, SimpleString) and value == "PONG":
            kind = b"pong"  # RESP3 PING reply, or RESP2 once nothing is subscribed
        else:
            return  # e.g. another kind of RESP3 push (invalidate ...): not ours
        # Replies come in command order, so the frame answers the oldest pending command.
        if pending and pending[0].kind == kind:
            op = pending[0]
            op.remaining -= 1
            if op.remaining <= 0:
                pending.popleft()
                op.done.set()

    def _resolve_pending(self, error: DualmqError | None) -> None:
        while self._pending:
            op = self._pending.popleft()
            op.error = error
            op.done.set()

    async def _restore(self, reason: str) -> None:
        """Reconnect with backoff, resubscribe everything, then queue a Gap (and what followed).

        Raises:
            ConnectionLost: ``Backoff.give_up_after`` elapsed.
            AuthenticationError: the server no longer accepts the credentials.
        """
        started_at = time.time()
        started = trio.current_time()
        attempts = 0
        delays = iter(self._backoff.delays())
        while True:
            attempts += 1
            try:
                conn, early = await self._open()
                break
            except AuthenticationError:
                # The credentials were changed or revoked: retrying cannot help.
                raise
            except DualmqError as exc:
                last = exc
            delay = next(delays)
            limit = self._backoff.give_up_after
            if limit is not None and trio.current_time() - started + delay > limit:
                raise ConnectionLost(
                    f"gave up reconnecting after {attempts} attempts in {trio.current_time() - started:.1f} s "
                    f"(lost: {reason}; last error: {last})"
                )
            await trio.sleep(delay)
        # Commands sent on the old connection are settled: the state they changed was just
        # applied as a whole on the new one.
        self._resolve_pending(None)
        self._conn = conn
        self._connected.set()
        gap = Gap(started_at=started_at, ended_at=time.time(), reason=reason, attempts=attempts)
        await self._send_events.send([gap, *early])

    async def _close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            await conn.aclose()


@asynccontextmanager
async def subscribe(
    address: str | tuple[str, int] = DEFAULT_ADDRESS,
    *channels: Channel,
    patterns: Iterable[Channel] = (),
    protocol: int = 3,
    reconnect: bool = False,
    backoff: Backoff = Backoff(),
    timeout: float = 5.0,
    name: str | None = None,
    health_check_interval: float | None = 30.0,
    username: str | None = None,
    password: str | None = None,
    ssl: bool = False,
    ssl_ca_certs: str | None = None,
    ssl_certfile: str | None = None,
    ssl_keyfile: str | None = None,
) -> AsyncIterator[Subscription]:
    """Subscribe to channels and/or patterns for the duration of an ``async with`` block.

    Entering the block returns only once the server confirmed every subscription, so a
    message published after that is delivered to you.

    Args:
        address: ``"host:port"`` of a RESP server (dualmq serve or Redis).
        *channels: exact channel names (str is sent as UTF-8). May be empty: add later with
            ``Subscription.subscribe``.
        patterns: glob patterns (Redis rules: ``*``, ``?``, ``[a-z]``, ``[^x]``, ``\\``).
        protocol: 3 (falls back to 2 if the server refuses ``HELLO 3``) or 2.
        reconnect: on a lost connection, reconnect with ``backoff``, resubscribe everything
            and yield a ``Gap``; False: the iterator raises ``ConnectionLost``.
        backoff: waits between reconnection attempts.
        timeout: deadline in seconds for connecting + confirming, and the default for
            ``subscribe``/``unsubscribe``/... calls on the subscription.
        name: connection name for ``CLIENT LIST``, or None.
        health_check_interval: after this many idle seconds send PING; no answer within
            another interval counts as a lost connection. None disables it.
        username: the ACL user to authenticate as (None: ``default``), as in redis-py.
        password: its password (Redis ``requirepass`` for ``default``); None: no AUTH.
        ssl, ssl_ca_certs, ssl_certfile, ssl_keyfile: speak TLS (redis-py's names): trust
            ``ssl_ca_certs`` (else the system's CAs), present a client certificate if given.

    Yields:
        The ``Subscription``: iterate it for ``Message`` / ``Gap`` events.

    Raises:
        ConnectionLost: cannot connect (on entry, even with ``reconnect``: a wrong address
            should fail fast, not retry forever).
        Timeout: the server did not confirm within ``timeout``.
        AuthenticationError: wrong credentials, or the server wants some (never retried).
        ServerError: the server refused a subscription.
    """
    if username is not None and password is None:
        raise ValueError("a username needs a password (redis-py's rule too)")
    sub = Subscription(
        parse_address(address), channels, patterns, protocol=protocol, reconnect=reconnect,
        backoff=backoff, timeout=timeout, name=name, health_check_interval=health_check_interval,
        username=username, password=password,
        tls=client_context(ssl_ca_certs, ssl_certfile, ssl_keyfile) if ssl else None,
    )
    try:
        await sub._start()
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(sub._run)
                try:
                    yield sub
                finally:
                    nursery.cancel_scope.cancel()
        except BaseExceptionGroup as group:
            # The nursery wraps whatever the ``async with`` body raised in a group (trio's
            # strict exception groups). The reader task never raises on purpose, so a group
            # of one is the caller's own exception: hand it back unwrapped.
            if len(group.exceptions) == 1:
                raise group.exceptions[0] from None
            raise
    finally:
        await sub._close()
