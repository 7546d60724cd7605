"""Pull mode's Kafka listener: connections, request framing, dispatch, responses in order.

One task per connection (owned by the shared listener, ``modes.common.listener``, which also
accepts, applies the connection caps and the receive-buffer budget, and makes sure an
exception ends only the connection it happened on). The task reads bytes,
cuts them into frames with ``wire.kafka.framing.FrameParser`` — whose size check runs on the
4-byte prefix *before* any of the frame is buffered, so a peer announcing a frame larger than
``kafka.max_request_bytes`` is cut off without us allocating it — and handles the frames one
after the other.

Why sequential per connection: Kafka requires responses to leave a connection in request
order (kafka-python raises ``CorrelationIdError`` otherwise), and the real broker
gets that by *muting* the socket while a request is in progress. We do the same: a slow
long-polling Fetch delays later requests on its own connection — which every client expects —
but never another connection, since each has its own task. Responses to the frames that
arrived in one read are written with one ``send_all``; before a handler that may wait (Fetch),
the responses already computed are sent first so they are not held back by the wait.

Connection rules:

* Produce with ``acks=0`` gets no response at all (the handler returns None); if it failed,
  the connection is closed instead, as Kafka does, since no response can say so.
* JoinGroup and SyncGroup may be held until the rebalance completes (``may_block``); the
  coordinator runtime (``coordination.py``) wakes them. Its timer task lives in this
  listener's nursery, next to the accept loops (``ConnectionTable.serve``).
* An unknown API key, or a version outside what we advertise, closes *that* connection (logged
  as ``request_rejected``) — except ApiVersions, which answers any unknown version with
  UNSUPPORTED_VERSION in a v0 body so the client can retry lower.
* A request whose body does not decode closes the connection too: we cannot know what the
  client meant, and Kafka does the same (``InvalidRequestException`` while parsing).

Every network wait has a deadline: an idle connection is closed after Kafka's
``connections.max.idle.ms`` (10 minutes), a send that cannot complete within 30 s (a client
that stopped reading) closes the connection. ``kafka.max_connections`` caps open connections,
``kafka.max_connections_per_ip`` those from one address (Kafka closes a connection over either
without a word, and so do we), and ``kafka.queued_max_request_bytes`` the bytes of unfinished
requests held over all connections. Each connection logs one ``connection_closed`` summary line.
"""

from __future__ import annotations

import functools
import ssl
import struct
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import attrs
import trio

from broker.config import BrokerConfig, KafkaConfig, parse_host_port
from broker.loggers import get_logger
from broker.security.exposure import exposure_warning
from broker.security.kafka_users import KafkaUsers
from broker.state import BrokerState
from broker.stats import ServerInfo
from modes.common.listener import Connection as Admitted
from modes.common.listener import ConnectionLimits, ConnectionTable, format_address
from modes.common.running import RunningServers
from modes.common.tls import TlsHandshakeFailed, accept_tls, peer_subject, server_context
from modes.pull import api as _api  # noqa: F401  (importing registers every handler)
from modes.pull.api.api_versions import API_VERSIONS_KEY, unsupported_version_response
from modes.pull.context import PullBroker, RequestContext, now_ms, open_authorizer
from modes.pull.coordination import Coordination
from modes.pull.errors import CloseConnection
from modes.pull.registry import HANDLERS
from modes.pull.sasl import AuthenticationFailed, ConnectionSecurity, SaslStep
from wire.errors import RemoteProtocolError
from wire.kafka import codec
from wire.kafka.errors import ErrorCode
from wire.kafka.framing import FrameParser, decode_request_header, encode_response, peek_api_key_version
from wire.kafka.messages.security import SASL_AUTHENTICATE, SASL_HANDSHAKE

if TYPE_CHECKING:  # cluster mode's module imports httpx: only a cluster broker loads it
    from modes.cluster.node import ClusterNode

log = get_logger(__name__)

RECEIVE_CHUNK = 256 * 1024
# Kafka's connections.max.idle.ms default: an idle client is disconnected after 10 minutes.
IDLE_TIMEOUT_SECONDS = 600.0
# A client that does not read its responses for this long is treated as gone (Kafka's
# request.timeout.ms default is 30 s: the client itself would have given up by then).
SEND_TIMEOUT_SECONDS = 30.0
# What a SASL listener answers before the client has authenticated (Kafka's rule).
BEFORE_AUTHENTICATION = frozenset({API_VERSIONS_KEY, SASL_HANDSHAKE.key, SASL_AUTHENTICATE.key})


@attrs.define(eq=False)
class Connection:
    """One client connection: its stream, frame parser and counters.

    Works on any trio stream (tests use in-memory ones); the listener's part — addresses,
    caps, the buffer budget — comes in through ``peer`` and ``report_buffered``.
    """

    broker: PullBroker
    stream: trio.abc.Stream
    local: tuple[str, int]
    parser: FrameParser
    peer: tuple[str, int] | None = None
    # Who the client is (SASL state, principal); a plain listener's default is User:ANONYMOUS.
    security: ConnectionSecurity = attrs.field(
        factory=lambda: ConnectionSecurity(sasl_required=False, mechanisms=(), users=None))
    # Told, after a read that changed it, how many bytes of unfinished requests we hold.
    report_buffered: Callable[[int], None] | None = None
    reported_buffered: int = 0
    requests: int = 0
    client_id: str | None = None
    bytes_in: int = 0
    bytes_out: int = 0
    reason: str = "client closed"

    async def run(self) -> None:
        """Serve requests until the client leaves or breaks the protocol."""
        stream, parser, security = self.stream, self.parser, self.security
        pending: list[bytes] = []
        while True:
            with trio.move_on_after(IDLE_TIMEOUT_SECONDS) as idle:
                data = await stream.receive_some(RECEIVE_CHUNK)
            if idle.cancelled_caught:
                self.reason = "idle timeout"
                return
            if not data:
                self.reason = "client closed"
                return
            self.bytes_in += len(data)
            parser.feed(data)  # raises before buffering an oversized frame
            while (frame := parser.next_frame()) is not None:
                response = await self.process(frame, pending)
                if response is not None:
                    pending.append(response)
                if security.failure is not None:
                    # Kafka sends the failed SaslAuthenticate's answer, then closes.
                    await self.send(pending)
                    raise CloseConnection(security.failure)
            # What stays buffered once the complete frames are cut out is the start of a
            # request not finished yet: what the receive-buffer budget counts, once per read.
            held = parser.buffered
            if held != self.reported_buffered and self.report_buffered is not None:
                self.reported_buffered = held
                self.report_buffered(held)
            if pending:
                await self.send(pending)

    async def send(self, pending: list[bytes]) -> None:
        data = pending[0] if len(pending) == 1 else b"".join(pending)
        pending.clear()
        with trio.move_on_after(SEND_TIMEOUT_SECONDS) as timeout:
            await self.stream.send_all(data)
        if timeout.cancelled_caught:
            raise CloseConnection(f"client did not read {len(data)} bytes within {SEND_TIMEOUT_SECONDS} s")
        self.bytes_out += len(data)

    async def process(self, frame: bytes, pending: list[bytes]) -> bytes | None:
        """Decode, dispatch and encode one request; None when no response is due.

        Raises:
            CloseConnection: unknown API key or unadvertised version.
            RemoteProtocolError: a header or body that does not decode.
        """
        self.requests += 1
        stats = self.broker.requests
        security = self.security
        if security.step == SaslStep.RAW_TOKENS:
            return self.raw_token(frame)
        api_key, version, correlation_id = peek_api_key_version(frame)
        handler = HANDLERS.get(api_key)
        if handler is None:
            stats.error(_UNKNOWN_API)
            log.warning("request_rejected", api_key=api_key, api_version=version, reason="unknown api key")
            raise CloseConnection(f"unknown api key {api_key}")
        if not security.authenticated and api_key not in BEFORE_AUTHENTICATION:
            log.warning("request_rejected", api=handler.name, api_version=version,
                        reason="not authenticated (SASL listener)")
            raise CloseConnection(f"{handler.name} request before SASL authentication")
        if security.session_expires_ms is not None and api_key not in BEFORE_AUTHENTICATION \
                and security.session_expired(now_ms()):
            # KIP-368: the client did not re-authenticate in time; Kafka closes the connection.
            log.info("sasl_session_expired", principal=security.principal, api=handler.name)
            raise CloseConnection("SASL session expired (kafka.connections_max_reauth_ms)")
        if not handler.supports(version):
            stats.error(_UNSUPPORTED_VERSION)
            if api_key == API_VERSIONS_KEY:
                # KIP-511: never parse it, answer in a v0 body with response header v0.
                return encode_response(correlation_id, unsupported_version_response(), flexible_header=False)
            log.warning("request_rejected", api_key=api_key, api=handler.name, api_version=version,
                        reason="version not advertised")
            raise CloseConnection(f"{handler.name} v{version} is not supported")
        header, body_at = decode_request_header(frame, handler.request.is_flexible(version))
        self.client_id = header.client_id
        request = codec.decode(handler.request, version, memoryview(frame)[body_at:])
        if handler.may_block and pending:
            await self.send(pending)
        started = time.perf_counter()
        body = await handler.handler(RequestContext(self.broker, header, self.local, self.peer, security),
                                     request)
        # The handler's time: a long-polling Fetch's wait included (that is its latency as the
        # client sees it), decoding and encoding not (microseconds, and not the broker's work).
        stats.timed(handler.name, time.perf_counter() - started)
        if body is None:
            return None
        _count_error_codes(body, stats.errors)
        # ApiVersions responses always use header v0, whatever the version: a client that
        # does not yet know which versions we speak must be able to read the answer.
        flexible_header = api_key != API_VERSIONS_KEY and handler.response.is_flexible(version)
        return encode_response(correlation_id, codec.encode(handler.response, version, body),
                               flexible_header=flexible_header)

    def raw_token(self, token: bytes) -> bytes:
        """One SASL token sent as a bare frame (after SaslHandshake v0); the answer, framed alike.

        Raises:
            CloseConnection: the token failed authentication (Kafka closes without a word).
        """
        security = self.security
        try:
            answer = security.authenticate(token)  # v0: no lifetime in the answer, never expires
        except AuthenticationFailed as exc:
            log.warning("sasl_authentication_failed", mechanism=security.mechanism, reason=str(exc))
            raise CloseConnection(f"SASL authentication failed: {exc}") from None
        if security.authenticated:
            log.info("sasl_authenticated", mechanism=security.mechanism, principal=security.principal)
        return struct.pack(">i", len(answer)) + answer


# Error labels of requests refused before any handler ran (the connection is closed).
_UNKNOWN_API = "UNKNOWN_API_KEY"
_UNSUPPORTED_VERSION = ErrorCode.UNSUPPORTED_VERSION.name


def _count_error_codes(body: dict, errors: dict[str, int]) -> None:
    """Add every non-zero ``error_code`` of a response (at any depth: per topic, per
    partition) to ``errors``, by Kafka's name for it.

    Walks dicts and lists only (never record bytes): a few dozen small dicts per response.
    """
    code = body.get("error_code")
    if code:
        name = _error_name(code)
        errors[name] = errors.get(name, 0) + 1
    for value in body.values():
        if type(value) is list:
            for item in value:
                if type(item) is dict:
                    _count_error_codes(item, errors)
        elif type(value) is dict:
            _count_error_codes(value, errors)


def _error_name(code: int) -> str:
    known = ErrorCode.lookup(code)
    return known.name if isinstance(known, ErrorCode) else f"CODE_{int(code)}"


@attrs.define(eq=False)
class KafkaServer:
    """Serves admitted connections; the listener (``ConnectionTable``) owns accept and caps."""

    broker: PullBroker
    table: ConnectionTable | None = None
    # The server side of TLS, when kafka.security_protocol is SSL or SASL_SSL.
    tls: ssl.SSLContext | None = None

    async def serve_connection(self, admitted: Admitted) -> None:
        """Run one connection; protocol errors end it with a reason, as Kafka does.

        Anything else it raises (a bug, a reset peer) is the listener's business: it ends
        this connection only and logs it.
        """
        kafka = self.broker.config.kafka
        security = ConnectionSecurity(sasl_required=kafka.uses_sasl, mechanisms=kafka.sasl_mechanisms,
                                      users=self.broker.users, tls=self.tls is not None,
                                      reauth_ms=kafka.connections_max_reauth_ms)
        stream: trio.abc.Stream = admitted.stream
        if self.tls is not None:
            try:
                stream = await accept_tls(stream, self.tls)
            except TlsHandshakeFailed as exc:
                admitted.close_reason = str(exc)
                return
            subject = peer_subject(stream)
            if subject is not None:
                security.principal = f"User:{subject}"
        connection = Connection(
            self.broker, stream, tuple(admitted.local_address[:2]),
            FrameParser(kafka.max_request_bytes),
            peer=tuple(admitted.peer_address[:2]),
            report_buffered=functools.partial(self.table.account, admitted),
            security=security,
        )
        try:
            await connection.run()
            admitted.close_reason = connection.reason
        except RemoteProtocolError as exc:
            admitted.close_reason = f"protocol error: {exc.message}"
        except CloseConnection as exc:
            admitted.close_reason = str(exc)
        finally:
            admitted.summary.update(client_id=connection.client_id, requests=connection.requests,
                                    bytes_in=connection.bytes_in, bytes_out=connection.bytes_out)
            if kafka.security_protocol != "PLAINTEXT":
                admitted.summary.update(principal=security.principal, security=kafka.security_protocol)


def connection_limits(config: KafkaConfig) -> ConnectionLimits:
    """The listener caps pull mode applies, named by their config keys.

    No per-connection buffer limit here: ``FrameParser`` refuses a frame larger than
    ``max_request_bytes`` from its size prefix, before buffering it.
    """
    return ConnectionLimits(
        max_connections=config.max_connections,
        max_connections_setting="kafka.max_connections",
        max_per_ip=config.max_connections_per_ip,
        max_per_ip_setting="kafka.max_connections_per_ip",
        total_buffer_bytes=max(0, config.queued_max_request_bytes),  # -1 (no limit) -> 0
        total_buffer_setting="kafka.queued_max_request_bytes",
    )


def _warn_if_exposed(config: BrokerConfig, address: str, host: str) -> None:
    """One warning at start for a Kafka listener other machines can reach with no authentication
    (neither SASL nor a required client certificate)."""
    kafka = config.kafka
    authenticated = kafka.uses_sasl or (kafka.uses_tls and config.tls.client_auth == "required")
    warning = exposure_warning(
        f"Kafka listener {address}", host, authentication_required=authenticated,
        mitigation=f"security_protocol = {kafka.security_protocol}: anyone who can connect may produce, consume "
                   "and delete topics; set kafka.security_protocol = \"SASL_SSL\" with [[kafka.users]]")
    if warning is not None:
        log.warning("listener_exposed", mode="pull", address=address, warning=warning)


async def serve_kafka(
    state: BrokerState,
    info: ServerInfo,
    *,
    running: RunningServers | None = None,
    cluster: ClusterNode | None = None,
    task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve the Kafka protocol on ``state.config.kafka.listen`` until cancelled.

    The state (topics, offsets, groups, producers) is opened and closed by the caller
    (``BrokerState``); this only serves it. ``running.pull`` is set to the server once it
    accepts (for metrics), if ``running`` is given.

    Reports ``HOST:PORT`` (the bound address; port 0 resolved) once accepting connections.
    """
    config = state.config
    coordination = Coordination.around(state)
    host, port = parse_host_port(config.kafka.listen)
    listeners = await trio.open_tcp_listeners(port, host=host)
    bound = listeners[0].socket.getsockname()[:2]
    broker = PullBroker(config=config, topics=state.topics, info=info, bound=(bound[0], bound[1]),
                        coordination=coordination, users=KafkaUsers.of(config.kafka.users),
                        authorizer=open_authorizer(config), cluster=cluster)
    if cluster is not None:
        # Imported here: cluster mode's modules load httpx, which a single broker never needs.
        from modes.cluster.offsets import ClusterOffsets
        broker.group_offsets = ClusterOffsets(cluster, state.groups, coordination.groups.tick,
                                              fsync_always=config.log.fsync == "always")
    server = KafkaServer(broker, tls=server_context(config.tls) if config.kafka.uses_tls else None)
    # Kafka closes a connection over a cap without a word: no refusal to send.
    server.table = ConnectionTable(mode="pull", limits=connection_limits(config.kafka),
                                   handler=server.serve_connection)
    async with trio.open_nursery() as nursery:
        # Session expiry and rebalance deadlines happen with no request to trigger them.
        nursery.start_soon(coordination.groups.run_timers)
        if broker.group_offsets is not None:
            nursery.start_soon(broker.group_offsets.run)
        await nursery.start(server.table.serve, listeners)
        address = format_address(bound)
        if running is not None:
            running.pull = server
        log.info("kafka_listening", address=address, advertised=config.kafka.advertised or None,
                 security_protocol=config.kafka.security_protocol,
                 authorizer="acls" if broker.authorizer is not None else "off")
        _warn_if_exposed(config, address, host)
        task_status.started(address)
