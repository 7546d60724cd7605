"""One TCP connection to one Kafka broker: framing, correlation ids, version negotiation.

What lives here: ``BrokerConnection`` — open a socket, negotiate API versions with ApiVersions,
send requests and hand each caller its response. What does not: which broker to talk to
(``client``), and what the requests mean (producer, consumer, admin modules).

The rules this follows (Kafka's protocol, in our words):

* Every frame is an int32 size plus header plus body. Request header v1 (v2 when the request
  version is flexible); response header v0 (v1 when flexible) — except ApiVersions, whose
  response header is always v0 so a client can parse it before knowing anything.
* A broker answers in request order on a connection. So we keep a FIFO of pending requests
  and match each response frame to the head of the queue, checking its correlation id.
  There is no need for a dict by correlation id: a mismatch means the stream is corrupt, and
  the only safe reaction is to close the connection.
* Produce with ``acks=0`` gets no response, so it never enters the FIFO.
* A request that times out leaves the stream in an unknown state (its response may still
  arrive and would be matched to the next request), so a timeout closes the connection, as
  Kafka's Java client does; callers retry on a fresh one.

Pointed at the wrong port: ApiVersions sent to a RESP (Redis-protocol) server gets no answer at
all — it reads our binary frame as the start of an inline command and waits for a line end. So
if ApiVersions has not been answered after ``RESP_PROBE_DELAY`` (a Kafka broker answers in
milliseconds), a second connection asks the port ``PING`` in RESP; a ``+PONG`` (or any RESP
error) means "this is a RESP port" and opening fails with ``ProtocolMismatch`` at once, instead
of after the whole timeout. (To a slow but real Kafka broker the probe is a frame with an absurd
size, which it closes; nothing else happens.) A first response byte that no Kafka frame can
start with (a size prefix's high byte is 0 below 16 MiB) is reported the same way.

Version negotiation: we send ApiVersions v3 first (flexible, with our software name); a broker
that does not know v3 answers UNSUPPORTED_VERSION with a v0 body listing the ApiVersions
versions it has, and we retry with its maximum. Then, per API, we use the highest version both
sides support (``choose_versions``), never one outside our own ``[min, max]`` below.
"""

from __future__ import annotations

import collections
import itertools

import trio

from dualmq.errors import AuthenticationError, ConnectionLost, KafkaError, ProtocolMismatch, Timeout, UnsupportedVersion
from dualmq.pull.security import ClientSecurity, ScramClient
from dualmq.sdk_logging import get_logger
from wire.errors import ProtocolError, RemoteProtocolError
from wire.kafka import codec, framing
from wire.kafka.errors import ErrorCode
from wire.kafka.messages import REQUESTS, RESPONSES, admin, groups, metadata, produce_fetch, security
from wire.kafka.messages.security import SASL_AUTHENTICATE, SASL_HANDSHAKE
from wire.kafka.schema import Api

__all__ = ["CLIENT_VERSIONS", "BrokerConnection", "choose_versions"]

log = get_logger(__name__)

API_VERSIONS = 18

# The APIs the SDK sends, each with the lowest version whose meaning the SDK relies on: Produce 3
# and Fetch 4 carry RecordBatch v2 (the only record format we write or read), ListOffsets 1
# returns one offset per timestamp, Metadata 1 distinguishes "all topics" (null) from "no topics"
# (empty). The SDK speaks each API from there (or from its declaration's minimum, if higher) up
# to its declaration's maximum: the versions our descriptors in ``wire.kafka.messages`` can
# encode and decode. OffsetForLeaderEpoch and DescribeConfigs are declared for the broker but
# the SDK never sends them, so they are not here. An API the SDK starts sending is added here.
_SDK_APIS: tuple[tuple[Api, int], ...] = (
    (produce_fetch.PRODUCE, 3),
    (produce_fetch.FETCH, 4),
    (produce_fetch.LIST_OFFSETS, 1),
    (metadata.METADATA, 1),
    (groups.OFFSET_COMMIT, 0),
    (groups.OFFSET_FETCH, 0),
    (groups.FIND_COORDINATOR, 0),
    (groups.JOIN_GROUP, 0),
    (groups.HEARTBEAT, 0),
    (groups.LEAVE_GROUP, 0),
    (groups.SYNC_GROUP, 0),
    (groups.DESCRIBE_GROUPS, 0),
    (groups.LIST_GROUPS, 0),
    (metadata.API_VERSIONS, 0),
    (admin.CREATE_TOPICS, 0),
    (admin.DELETE_TOPICS, 0),
    (produce_fetch.INIT_PRODUCER_ID, 0),
    (admin.CREATE_PARTITIONS, 0),
    (groups.DELETE_GROUPS, 0),
    (security.SASL_HANDSHAKE, 1),
    (security.SASL_AUTHENTICATE, 0),
    (security.DESCRIBE_ACLS, 1),
    (security.CREATE_ACLS, 1),
    (security.DELETE_ACLS, 1),
)

# The versions the SDK can speak, per API key: ``(min, max)``, built from ``_SDK_APIS``.
CLIENT_VERSIONS: dict[int, tuple[int, int]] = {
    declared.key: (max(declared.min_version, relied_on), declared.max_version)
    for declared, relied_on in _SDK_APIS
}

# Cap on one response frame. Fetch responses are bounded by the max_bytes we ask for (default
# 50 MiB, Kafka's fetch.max.bytes), plus headers; a bigger size prefix means a corrupt stream.
MAX_RESPONSE_BYTES = 128 * 1024 * 1024
_RECEIVE_CHUNK = 256 * 1024

RESP_PROBE_DELAY = 0.5  # seconds without an ApiVersions answer before we ask "are you RESP?"
RESP_PROBE_TIMEOUT = 1.0
# Every RESP2/RESP3 value starts with one of these bytes; no Kafka response can (its first byte
# is the high byte of a size below MAX_RESPONSE_BYTES).
_RESP_FIRST_BYTES = frozenset(b"+-:$*_,#!=(%~>|")
WRONG_PORT_HINT = "give Kafka clients the broker's Kafka port (dualmq serve --kafka, default 9092)"


def choose_versions(broker_ranges: dict[int, tuple[int, int]]) -> dict[int, int]:
    """Per API key, the highest version both we and the broker support.

    Args:
        broker_ranges: api_key -> (min, max) from the broker's ApiVersions response.

    Returns:
        api_key -> version, only for APIs with a common version.
    """
    chosen = {}
    for key, (ours_min, ours_max) in CLIENT_VERSIONS.items():
        theirs = broker_ranges.get(key)
        if theirs is None:
            continue
        high = min(ours_max, theirs[1])
        if high >= max(ours_min, theirs[0]):
            chosen[key] = high
    return chosen


async def _start_tls(stream: trio.SocketStream, security: ClientSecurity, host: str, address: str,
                     timeout: float) -> trio.SSLStream:
    """The client side of the TLS handshake over ``stream``.

    Raises:
        ConnectionLost: the handshake failed (untrusted certificate, not a TLS port) or timed out.
        ValueError: a CA, certificate or key file that cannot be read (the socket is closed first).
    """
    try:
        context = security.ssl_context()
    except ValueError:
        await trio.aclose_forcefully(stream)
        raise
    tls = trio.SSLStream(stream, context, server_hostname=host, https_compatible=True)
    with trio.move_on_after(timeout) as scope:
        try:
            await tls.do_handshake()
        except trio.BrokenResourceError as exc:
            await trio.aclose_forcefully(stream)
            raise ConnectionLost(f"TLS handshake with {address} failed: {exc.__cause__ or exc}") from None
    if scope.cancelled_caught:
        await trio.aclose_forcefully(stream)
        raise Timeout(f"TLS handshake with {address} took more than {timeout} s")
    return tls


class _Pending:
    """One request waiting for its response (a slot filled by the reader task)."""

    __slots__ = ("api_key", "correlation_id", "error", "event", "frame", "version")

    def __init__(self, api_key: int, version: int, correlation_id: int) -> None:
        self.api_key = api_key
        self.version = version
        self.correlation_id = correlation_id
        self.event = trio.Event()
        self.frame: bytes | None = None
        self.error: BaseException | None = None


class BrokerConnection:
    """A connection to one broker. Create with ``await BrokerConnection.open(...)``.

    The reader task runs in a nursery the caller owns (the client's), so it never outlives the
    client; ``close()`` stops it.
    """

    def __init__(self, stream: trio.abc.Stream, address: str, client_id: str, node_id: int) -> None:
        self.address = address
        self.node_id = node_id
        self.client_id = client_id
        self._stream = stream
        self._parser = framing.FrameParser(MAX_RESPONSE_BYTES)
        self._pending: collections.deque[_Pending] = collections.deque()
        # StrictFIFOLock: requests hit the wire in the order callers asked, which is also the
        # order they are appended to ``_pending`` (both happen while holding the lock).
        self._send_lock = trio.StrictFIFOLock()
        self._correlation = itertools.count(1)
        self._closed: BaseException | None = None
        self._reader_done = trio.Event()
        self.versions: dict[int, int] = {}
        self.broker_ranges: dict[int, tuple[int, int]] = {}

    @classmethod
    async def open(cls, nursery: trio.Nursery, host: str, port: int, *, client_id: str, node_id: int,
                   timeout: float, security: ClientSecurity | None = None) -> BrokerConnection:
        """Connect (with TLS if ``security`` says so), start the reader in ``nursery``, negotiate
        API versions, authenticate (SASL, if ``security`` says so).

        Args:
            nursery: owns the reader task.
            host, port: the broker's address.
            client_id: sent in every request header (shows up in broker logs and quotas).
            node_id: the broker's node id (-1 for a bootstrap address).
            timeout: seconds for connect plus ApiVersions (and for each step of TLS and SASL).
            security: TLS and SASL settings (``dualmq.pull.security``); None: plaintext.

        Raises:
            AuthenticationError: the broker refused our SASL credentials.
            ConnectionLost: cannot connect, the TLS handshake failed, or the broker broke the
                connection.
            Timeout: no answer within ``timeout``.
            ProtocolMismatch: the port speaks RESP (or something else), not Kafka.
        """
        address = f"{host}:{port}"
        try:
            with trio.fail_after(timeout):
                stream = await trio.open_tcp_stream(host, port)
        except trio.TooSlowError:
            raise Timeout(f"connecting to {address} took more than {timeout} s") from None
        except OSError as exc:
            raise ConnectionLost(f"cannot connect to {address}: {exc}") from None
        if isinstance(stream, trio.SocketStream):
            # Small requests (heartbeats, acks=1 produces) must not wait for Nagle's timer.
            stream.setsockopt(trio.socket.IPPROTO_TCP, trio.socket.TCP_NODELAY, True)
        if security is not None and security.uses_tls:
            stream = await _start_tls(stream, security, host, address, timeout)
        connection = cls(stream, address, client_id, node_id)
        nursery.start_soon(connection._reader)
        probe = trio.CancelScope()
        nursery.start_soon(connection._probe_for_resp, host, port, probe)
        try:
            await connection._negotiate(timeout)
            if security is not None and security.uses_sasl:
                await connection._authenticate(security, timeout)
        except BaseException:
            await connection.aclose()
            raise
        finally:
            probe.cancel()
        return connection

    async def _probe_for_resp(self, host: str, port: int, scope: trio.CancelScope) -> None:
        """While ApiVersions waits: after ``RESP_PROBE_DELAY``, ask the port ``PING`` in RESP.

        An answer in RESP fails this connection with ``ProtocolMismatch`` (see the module
        docstring). Anything else (no answer, a closed socket) proves nothing: we keep waiting.
        """
        with scope:
            await trio.sleep(RESP_PROBE_DELAY)
            with trio.move_on_after(RESP_PROBE_TIMEOUT):
                try:
                    probe = await trio.open_tcp_stream(host, port)
                    async with probe:
                        await probe.send_all(b"PING\r\n")
                        reply = await probe.receive_some(64)
                except (OSError, trio.BrokenResourceError, trio.ClosedResourceError):
                    return
                if reply[:1] in (b"+", b"-"):
                    self._fail(ProtocolMismatch(
                        f"{self.address} speaks RESP (the Redis protocol), not Kafka: it answered PING with "
                        f"{reply.strip()[:40].decode(errors='replace')!r}; {WRONG_PORT_HINT}"))

    @property
    def closed(self) -> bool:
        return self._closed is not None

    async def _negotiate(self, timeout: float) -> None:
        version = 3
        for _ in range(2):
            reply = await self.request(API_VERSIONS, {"client_software_name": "dualmq-sdk",
                                                      "client_software_version": "0.1.0"},
                                       version=version, timeout=timeout)
            ranges = {k["api_key"]: (k["min_version"], k["max_version"]) for k in reply["api_keys"]}
            if reply["error_code"] == ErrorCode.UNSUPPORTED_VERSION and API_VERSIONS in ranges:
                version = min(version - 1, ranges[API_VERSIONS][1])
                continue
            if reply["error_code"] != ErrorCode.NONE:
                raise KafkaError(reply["error_code"], f"ApiVersions from {self.address}")
            self.broker_ranges = ranges
            self.versions = choose_versions(ranges)
            return
        raise UnsupportedVersion(f"{self.address} does not accept any ApiVersions version we speak")

    async def _authenticate(self, security: ClientSecurity, timeout: float) -> None:
        """SaslHandshake v1, then the mechanism's tokens in SaslAuthenticate requests.

        Raises:
            AuthenticationError: the broker refused the mechanism or the credentials.
            ConnectionLost, Timeout: as any request.
        """
        mechanism = security.sasl_mechanism
        handshake = await self.request(SASL_HANDSHAKE.key, {"mechanism": mechanism}, timeout=timeout, version=1)
        if handshake["error_code"] != ErrorCode.NONE:
            raise AuthenticationError(
                f"{self.address} does not accept SASL mechanism {mechanism} "
                f"({ErrorCode.lookup(handshake['error_code'])!s}; enabled: {', '.join(handshake['mechanisms'])})")
        user, password = security.sasl_plain_username, security.sasl_plain_password
        if mechanism == "PLAIN":
            await self._sasl_token(b"\x00" + user.encode() + b"\x00" + password.encode(), timeout)
            return
        scram = ScramClient(mechanism, user, password)
        server_first = await self._sasl_token(scram.first(), timeout)
        scram.verify(await self._sasl_token(scram.final(server_first), timeout))

    async def _sasl_token(self, token: bytes, timeout: float) -> bytes:
        answer = await self.request(SASL_AUTHENTICATE.key, {"auth_bytes": token}, timeout=timeout)
        if answer["error_code"] != ErrorCode.NONE:
            raise AuthenticationError(f"{self.address}: {answer['error_message'] or 'SASL authentication failed'}")
        return bytes(answer["auth_bytes"])

    def version(self, api_key: int) -> int:
        """The negotiated version for ``api_key``.

        Raises:
            UnsupportedVersion: the broker and we share no version of this API.
        """
        try:
            return self.versions[api_key]
        except KeyError:
            name = REQUESTS[api_key].name.removesuffix("Request") if api_key in REQUESTS else api_key
            raise UnsupportedVersion(f"broker {self.address} does not support {name} in a version we speak") from None

    def supports(self, api_key: int) -> bool:
        return api_key in self.versions

    async def request(self, api_key: int, values: dict, *, timeout: float, version: int | None = None,
                      expect_response: bool = True) -> dict | None:
        """Send one request and wait for its decoded response.

        Args:
            api_key: the API.
            values: the request body fields (``wire.kafka.codec`` dict convention).
            timeout: seconds to wait for the response; on expiry the connection is closed.
            version: force a version (default: the negotiated one).
            expect_response: False only for Produce with acks=0 (the broker sends nothing).

        Returns:
            The decoded response dict, or None when no response is expected.

        Raises:
            ConnectionLost, Timeout, UnsupportedVersion.
        """
        pending = await self.send(api_key, values, version=version, expect_response=expect_response)
        if pending is None:
            return None
        return await self.response(pending, timeout=timeout)

    async def send(self, api_key: int, values: dict, *, version: int | None = None,
                   expect_response: bool = True) -> _Pending | None:
        """The first half of ``request``: put the request on the wire, don't wait for the answer.

        Requests reach the wire in the order their ``send`` calls *started* holding the
        connection's send lock. A caller that needs a strict order between its own requests
        (the idempotent producer: sequence numbers must arrive in order) awaits ``send`` for
        one before starting ``send`` for the next, then waits for the responses concurrently
        with ``response``.

        Returns:
            The slot to pass to ``response``; None when no response is expected.

        Raises:
            ConnectionLost, UnsupportedVersion.
        """
        if version is None:
            version = self.version(api_key)
        request_message = REQUESTS[api_key]
        body = codec.encode(request_message, version, values)
        return await self._send(api_key, version, body, request_message.is_flexible(version), expect_response)

    async def response(self, pending: _Pending, *, timeout: float) -> dict:
        """The second half of ``request``: wait for and decode the response to ``pending``.

        Raises:
            ConnectionLost, Timeout (the connection is closed: see the module docstring).
        """
        api_key, version = pending.api_key, pending.version
        if not pending.event.is_set():
            with trio.move_on_after(timeout) as scope:
                await pending.event.wait()
            if scope.cancelled_caught:
                self._fail(Timeout(f"no response to {REQUESTS[api_key].name} v{version} from {self.address} "
                                   f"within {timeout} s"))
        if pending.error is not None:
            raise pending.error
        response = RESPONSES[api_key]
        flexible_header = response.is_flexible(version) and api_key != API_VERSIONS
        try:
            correlation_id, offset = framing.decode_response_header(pending.frame, flexible_header)
            if correlation_id != pending.correlation_id:
                raise RemoteProtocolError(f"correlation id {correlation_id}, expected {pending.correlation_id}")
            body_view = memoryview(pending.frame)[offset:]
            if api_key == API_VERSIONS and version > 0:
                try:
                    return codec.decode(response, version, body_view)
                except RemoteProtocolError:
                    # An UNSUPPORTED_VERSION reply comes as a v0 body whatever we sent.
                    return codec.decode(response, 0, body_view)
            return codec.decode(response, version, body_view)
        except ProtocolError as exc:
            self._fail(ConnectionLost(f"bad response from {self.address}: {exc}"))
            raise self._closed from None

    async def _send(self, api_key: int, version: int, body: bytes, flexible: bool,
                    expect_response: bool) -> _Pending | None:
        if self._closed is not None:
            raise self._closed
        correlation_id = next(self._correlation) & 0x7FFFFFFF
        frame = framing.encode_request(api_key, version, correlation_id, self.client_id, body,
                                       flexible_header=flexible)
        async with self._send_lock:
            if self._closed is not None:
                raise self._closed
            pending = _Pending(api_key, version, correlation_id) if expect_response else None
            if pending is not None:
                self._pending.append(pending)
            try:
                await self._stream.send_all(frame)
            except BaseException as exc:
                # Cancelled half-way or the socket broke: the broker may have seen part of the
                # frame, so nothing that follows on this stream can be trusted.
                self._fail(ConnectionLost(f"sending to {self.address} failed: {exc!r}"))
                if isinstance(exc, (trio.BrokenResourceError, trio.ClosedResourceError, OSError)):
                    raise self._closed from None
                raise
        return pending

    async def _reader(self) -> None:
        received = 0
        try:
            while True:
                data = await self._stream.receive_some(_RECEIVE_CHUNK)
                if not data:
                    if not received and self._pending and self._pending[0].api_key == API_VERSIONS:
                        raise ConnectionLost(f"{self.address} closed the connection without answering ApiVersions: "
                                             f"is it a Kafka port, and does it expect TLS or SASL "
                                             f"(security_protocol)? ({WRONG_PORT_HINT})")
                    raise ConnectionLost(f"{self.address} closed the connection")
                if not received and data[0] in _RESP_FIRST_BYTES:
                    raise ProtocolMismatch(f"{self.address} speaks RESP (the Redis protocol), not Kafka: it "
                                           f"answered {bytes(data[:40])!r}; {WRONG_PORT_HINT}")
                received += len(data)
                self._parser.feed(data)
                while (frame := self._parser.next_frame()) is not None:
                    if not self._pending:
                        raise ConnectionLost(f"{self.address} sent a response nobody asked for")
                    pending = self._pending.popleft()
                    pending.frame = frame
                    pending.event.set()
        except (ConnectionLost, ProtocolMismatch) as exc:
            self._fail(exc)
        except RemoteProtocolError as exc:
            self._fail(ConnectionLost(f"corrupt stream from {self.address}: {exc}"))
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
            self._fail(ConnectionLost(f"connection to {self.address} lost: {exc!r}"))
        finally:
            self._reader_done.set()

    def _fail(self, error: BaseException) -> None:
        """Mark the connection dead, fail every pending request, close the socket."""
        if self._closed is None:
            self._closed = error
            if isinstance(error, Timeout):
                log.debug("kafka_request_timed_out", address=self.address, reason=str(error))
        while self._pending:
            pending = self._pending.popleft()
            pending.error = self._closed
            pending.event.set()
        # Closing the socket wakes the reader task (ClosedResourceError) so it ends. This is
        # a synchronous close of the underlying socket because _fail runs in synchronous
        # contexts (the reader, a timed-out waiter) where we cannot ``await aclose()``.
        stream = self._stream
        if isinstance(stream, trio.SSLStream):
            stream = stream.transport_stream
        if isinstance(stream, trio.SocketStream):
            stream.socket.close()

    async def aclose(self) -> None:
        """Close the connection; pending requests fail with ConnectionLost."""
        self._fail(ConnectionLost(f"connection to {self.address} closed by the client"))
        with trio.CancelScope(shield=True):
            with trio.move_on_after(1):
                await self._stream.aclose()
