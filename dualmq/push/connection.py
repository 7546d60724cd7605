"""One RESP connection for the push-mode SDK: socket, handshake, reading replies.

What lives here (private to ``dualmq.push``):

* ``parse_address`` — ``"host:port"`` / ``"[v6]:port"`` / ``(host, port)`` to a tuple;
  ``name_bytes`` — a channel name or payload as bytes; ``pick_timeout``; ``DEFAULT_ADDRESS``.
* ``RespConnection`` — a trio TCP stream plus a ``wire.resp.subscriber.SubscriberReader``
  (the sans-IO decoder that turns a subscriber's bytes into messages fast, re-exported here
  as ``FrameReader``; messages are ``Message``): ``open`` (connect and negotiate RESP3 with
  ``HELLO 3``, falling back to RESP2), ``send``, ``receive`` (one ``receive_some`` of up to
  64 KiB, every complete frame in it), ``aclose``.

Pointed at the wrong port: a Kafka broker reads the first four bytes of ``HELLO`` (``*2\r\n``)
as the size of a ~700 MB request, over any limit, and closes the connection without a word. A
server that closes the connection before answering the very first command, or answers with a
binary frame (a Kafka size prefix starts with a zero byte), is not a RESP server: ``open``
raises ``ProtocolMismatch`` naming the likely mix-up, within one round trip.

Not here: subscription state, reconnection, the public API (``dualmq.push``).
"""

from __future__ import annotations

import ssl

import trio

from dualmq.errors import AuthenticationError, ConnectionLost, ProtocolMismatch, ServerError, Timeout
from wire.errors import RemoteProtocolError
from wire.resp import encoder
from wire.resp.subscriber import PubSubMessage as Message
from wire.resp.subscriber import SubscriberReader as FrameReader
from wire.resp.values import ErrorReply, Push

__all__ = ["DEFAULT_ADDRESS", "Channel", "FrameReader", "Message", "RespConnection", "name_bytes",
           "parse_address", "pick_timeout"]

# One read takes whatever the kernel has, up to this much. 64 KiB holds ~500 typical
# messages, so the per-read costs (a syscall, a trio checkpoint) are shared by hundreds of
# messages, while a single buffer stays small enough to stay in cache.
RECEIVE_SIZE = 64 * 1024
WRONG_PORT_HINT = "give RESP clients the broker's RESP port (dualmq serve --resp, default 6379)"

DEFAULT_ADDRESS = "127.0.0.1:6379"  # Redis's default port: the SDK's default broker

Channel = str | bytes


def name_bytes(value: Channel) -> bytes:
    """A channel name, pattern or payload as bytes (str -> UTF-8)."""
    # str -> UTF-8: what redis-py and redis-cli send; bytes pass through untouched.
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8")
    raise TypeError(f"channel names and messages must be str or bytes, not {type(value).__name__}")


def pick_timeout(timeout: float | None, default: float) -> float:
    """``timeout`` if given, else the caller's ``default`` (a per-call override of a client default)."""
    return default if timeout is None else timeout


def parse_address(address: str | tuple[str, int]) -> tuple[str, int]:
    """Split ``"host:port"`` (``"[::1]:port"`` for IPv6) or pass a ``(host, port)`` through.

    Raises:
        ValueError: no port, or a port that is not a number in 1..65535.
    """
    if isinstance(address, tuple):
        host, port = address
    else:
        host, sep, port_text = address.rpartition(":")
        if not sep or not port_text.isdigit():
            raise ValueError(f"address must be HOST:PORT, got {address!r}")
        host, port = host.strip("[]") or "127.0.0.1", int(port_text)
    if not 0 < int(port) < 65536:
        raise ValueError(f"port must be in 1..65535, got {port}")
    return host, int(port)


# --- the connection -------------------------------------------------------------------------


def _describe(address: tuple[str, int]) -> str:
    return f"{address[0]}:{address[1]}"


async def _start_tls(stream: trio.SocketStream, context: ssl.SSLContext, address: tuple[str, int]) -> trio.SSLStream:
    """The client side of the TLS handshake (the caller bounds the time).

    Raises:
        ConnectionLost: the handshake failed: an untrusted certificate, or not a TLS port.
    """
    tls = trio.SSLStream(stream, context, server_hostname=address[0], https_compatible=True)
    try:
        await tls.do_handshake()
    except trio.BrokenResourceError as exc:
        await trio.aclose_forcefully(stream)
        raise ConnectionLost(f"TLS handshake with {_describe(address)} failed: {exc.__cause__ or exc}") from None
    return tls


def reply_error(reply: ErrorReply, username: str | None = None) -> ServerError:
    """The SDK error for an error reply: ``AuthenticationError`` for refused or missing
    credentials (WRONGPASS, NOAUTH), ``ServerError`` for anything else."""
    text = str(reply)
    code = text.split(" ", 1)[0]
    if code == "WRONGPASS":
        return AuthenticationError(f"the server refused user {username or 'default'!r} with that password: {text}")
    if code == "NOAUTH":
        return AuthenticationError(f"the server requires a password: pass username=/password= "
                                   f"(--user/--password on the command line); it said: {text}")
    return ServerError(text)


class RespConnection:
    """A TCP connection to a RESP server with the protocol negotiated.

    Create with ``await RespConnection.open(...)``. Not safe for two tasks to ``send`` at
    once, nor to ``receive`` at once: the owner serialises them.
    """

    def __init__(self, stream: trio.abc.Stream, address: tuple[str, int], protocol: int) -> None:
        self.stream = stream
        self.address = address
        self.reader = FrameReader(protocol)
        self.received_bytes = 0
        self.first_bytes = b""  # the start of what the server sent, to name a protocol mix-up

    @property
    def protocol(self) -> int:
        """2 or 3: what the server agreed to speak."""
        return self.reader.protocol

    @classmethod
    async def open(
        cls,
        address: tuple[str, int],
        *,
        protocol: int = 3,
        name: str | None = None,
        timeout: float = 5.0,
        username: str | None = None,
        password: str | None = None,
        tls: ssl.SSLContext | None = None,
    ) -> RespConnection:
        """Connect and negotiate the protocol.

        With ``protocol=3`` we send ``HELLO 3`` (plus ``SETNAME``): a server that answers with
        an error (Redis < 6, or anything without HELLO) is spoken to in RESP2 instead, which
        every server supports. With ``protocol=2`` no HELLO is sent at all.

        Args:
            address: (host, port).
            protocol: 3 (preferred, falls back to 2) or 2.
            name: a connection name for ``CLIENT LIST`` (no spaces), or None.
            timeout: seconds for the connect and the handshake together.
            username: the ACL user to authenticate as (None: ``default``), as redis-py's.
            password: its password; None sends no AUTH at all (a server without ``requirepass``).
            tls: speak TLS with this context (``dualmq.tls.client_context``); None: plaintext.

        Returns:
            An open connection; ``protocol`` tells which version was agreed.

        Raises:
            ConnectionLost: the connection could not be opened or broke during the handshake.
            Timeout: the server did not answer within ``timeout``.
            AuthenticationError: wrong credentials, or the server wants some and none were given.
            ServerError: the server refused the connection name.
            ProtocolMismatch: the server does not speak RESP (e.g. a Kafka port).
            ValueError: ``protocol`` is not 2 or 3, or a username came without a password.
        """
        if protocol not in (2, 3):
            raise ValueError(f"protocol must be 2 or 3, got {protocol!r}")
        if username is not None and password is None:
            raise ValueError("a username needs a password (redis-py's rule too)")
        where = _describe(address)
        try:
            with trio.fail_after(timeout):
                try:
                    stream = await trio.open_tcp_stream(*address)
                except OSError as exc:
                    raise ConnectionLost(f"cannot connect to {where}: {exc}; is a broker running there? "
                                         "`dualmq serve` starts one") from exc
                if tls is not None:
                    stream = await _start_tls(stream, tls, address)
                conn = cls(stream, address, 2)
                try:
                    await conn._handshake(protocol, name, username, password)
                except ConnectionLost as exc:
                    await conn.aclose()
                    raise conn._mismatch() or exc from None
                except BaseException:
                    await conn.aclose()
                    raise
                return conn
        except trio.TooSlowError:
            raise Timeout(f"connecting to {where} (handshake included) took more than {timeout} s") from None

    def _mismatch(self) -> ProtocolMismatch | None:
        """After the handshake failed: a ``ProtocolMismatch`` if the server plainly is not RESP."""
        where = _describe(self.address)
        if not self.received_bytes:
            return ProtocolMismatch(f"{where} does not speak RESP: it closed the connection without answering "
                                    f"HELLO, as a Kafka port (or a TLS listener: ssl=True) does; {WRONG_PORT_HINT}")
        if self.first_bytes[:1] == b"\x00":
            return ProtocolMismatch(f"{where} does not speak RESP: it answered with a binary size-prefixed "
                                    f"frame, as a Kafka broker does; {WRONG_PORT_HINT}")
        return None

    async def _handshake(self, protocol: int, name: str | None, username: str | None,
                         password: str | None) -> None:
        # Credentials go with HELLO (one round trip), else in an AUTH of their own, as
        # redis-py sends them; AUTH with one argument is the "default" user's.
        credentials = [] if password is None else [username or "default", password]
        if protocol == 3:
            args: list[str] = ["HELLO", "3"] + (["AUTH", *credentials] if credentials else [])
            args += ["SETNAME", name] if name else []
            await self.send(encoder.command(*args))
            reply = await self.read_reply()
            if not isinstance(reply, ErrorReply):
                self.reader.set_protocol(3)
                return
            error = reply_error(reply, username)
            if isinstance(error, AuthenticationError):
                raise error
            # Old server or no HELLO: stay in RESP2 and name the connection the RESP2 way.
        if credentials:
            await self.send(encoder.command("AUTH", *(credentials if username else credentials[1:])))
            reply = await self.read_reply()
            if isinstance(reply, ErrorReply):
                raise reply_error(reply, username)
        if name:
            await self.send(encoder.command("CLIENT", "SETNAME", name))
            reply = await self.read_reply()
            if isinstance(reply, ErrorReply):
                raise ServerError(str(reply))

    async def send(self, data: bytes) -> None:
        """Write ``data`` completely.

        Raises:
            ConnectionLost: the connection is broken or closed.
        """
        try:
            await self.stream.send_all(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            raise ConnectionLost(f"connection to {_describe(self.address)} lost while sending: {exc}") from exc

    async def receive(self) -> tuple[list[Message], list[object]]:
        """Wait for data, read up to 64 KiB once, and decode every complete frame in it.

        Returns:
            ``(messages, others)`` as ``FrameReader.frames``; both may be empty when only part
            of a frame arrived.

        Raises:
            ConnectionLost: the server closed the connection, it broke, or it sent bytes that
                are not RESP (we cannot resynchronise on a byte stream, so it is as good as lost).
        """
        try:
            data = await self.stream.receive_some(RECEIVE_SIZE)
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            raise ConnectionLost(f"connection to {_describe(self.address)} lost: {exc}") from exc
        if not data:
            raise ConnectionLost(f"{_describe(self.address)} closed the connection")
        if not self.received_bytes:
            self.first_bytes = bytes(data[:16])
        self.received_bytes += len(data)
        self.reader.feed(data)
        try:
            return self.reader.frames()
        except RemoteProtocolError as exc:
            raise ConnectionLost(f"{_describe(self.address)} sent invalid RESP: {exc}") from exc

    async def read_replies(self, count: int) -> list[object]:
        """Read until ``count`` replies (not pushes, not messages) have arrived; return them.

        Pushes that are not replies (a RESP3 server may send them at any time) are dropped:
        the caller of this method is a request/response user such as a publisher.

        Raises:
            ConnectionLost: as ``receive``.
        """
        replies: list[object] = []
        while len(replies) < count:
            _messages, others = await self.receive()
            for value in others:
                if not isinstance(value, Push):
                    replies.append(value)
        if len(replies) > count:  # the server answered more than we asked: it is confused
            raise ConnectionLost(f"{_describe(self.address)} sent {len(replies)} replies for {count} requests")
        return replies

    async def read_reply(self) -> object:
        """Read one reply (see ``read_replies``)."""
        return (await self.read_replies(1))[0]

    async def aclose(self) -> None:
        """Close the socket. Never blocks for long and never raises for an already-broken socket."""
        with trio.move_on_after(1.0) as scope:
            # Shielded: closing must happen even when we are being cancelled.
            scope.shield = True
            await self.stream.aclose()
