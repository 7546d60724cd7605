"""Pull mode's Kafka listener: connections, request framing, dispatch, responses in order.

One task per connection (owned by ``trio.serve_listeners``' nursery). The task reads bytes,
cuts them into frames with ``wire.kafka.framing.FrameParser`` — whose size check runs on the
4-byte prefix *before* any of the frame is buffered, so a peer announcing a frame larger than
``kafka.max_request_bytes`` is cut off without us allocating it — and handles the frames one
after the other.

Why sequential per connection: Kafka requires responses to leave a connection in request
order (GUIDE §1.1; kafka-python raises ``CorrelationIdError`` otherwise), and the real broker
gets that by *muting* the socket while a request is in progress. We do the same: a slow
long-polling Fetch delays later requests on its own connection — which every client expects —
but never another connection, since each has its own task. Responses to the frames that
arrived in one read are written with one ``send_all``; before a handler that may wait (Fetch),
the responses already computed are sent first so they are not held back by the wait.

Connection rules (GUIDE §1.1, §1.8):

* Produce with ``acks=0`` gets no response at all (the handler returns None); if it failed,
  the connection is closed instead, as Kafka does, since no response can say so.
* JoinGroup and SyncGroup may be held until the rebalance completes (``may_block``); the
  coordinator runtime (``coordination.py``) wakes them. Its timer task lives in this
  listener's nursery, next to ``serve_listeners``.
* An unknown API key, or a version outside what we advertise, closes *that* connection (logged
  as ``request_rejected``) — except ApiVersions, which answers any unknown version with
  UNSUPPORTED_VERSION in a v0 body so the client can retry lower.
* A request whose body does not decode closes the connection too: we cannot know what the
  client meant, and Kafka does the same (``InvalidRequestException`` while parsing).

Every network wait has a deadline: an idle connection is closed after Kafka's
``connections.max.idle.ms`` (10 minutes), a send that cannot complete within 30 s (a client
that stopped reading) closes the connection. ``kafka.max_connections`` caps open connections.
Each connection logs one ``connection_closed`` summary line.
"""

from __future__ import annotations

import itertools
import time

import attrs
import structlog
import trio
from structlog.contextvars import bound_contextvars

from broker.config import BrokerConfig, parse_host_port
from broker.stats import ServerInfo
from broker.topics import TopicRegistry
from modes.pull import api as _api  # noqa: F401  (importing registers every handler)
from modes.pull.api.api_versions import API_VERSIONS_KEY, unsupported_version_response
from modes.pull.context import PullBroker, RequestContext
from modes.pull.coordination import open_coordination
from modes.pull.errors import CloseConnection
from modes.pull.registry import HANDLERS
from wire.errors import RemoteProtocolError
from wire.kafka import codec
from wire.kafka.framing import FrameParser, decode_request_header, encode_response, peek_api_key_version

log = structlog.get_logger("dualmq.pull")

RECEIVE_CHUNK = 256 * 1024
# Kafka's connections.max.idle.ms default: an idle client is disconnected after 10 minutes.
IDLE_TIMEOUT_SECONDS = 600.0
# A client that does not read its responses for this long is treated as gone (Kafka's
# request.timeout.ms default is 30 s: the client itself would have given up by then).
SEND_TIMEOUT_SECONDS = 30.0


def _format_address(address: tuple) -> str:
    host, port = address[0], address[1]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


@attrs.define(eq=False)
class Connection:
    """One client connection: its stream, frame parser and counters."""

    broker: PullBroker
    stream: trio.SocketStream
    local: tuple[str, int]
    parser: FrameParser
    peer: tuple[str, int] | None = None
    requests: int = 0
    client_id: str | None = None
    bytes_in: int = 0
    bytes_out: int = 0
    reason: str = "broker stopping"

    async def run(self) -> None:
        """Serve requests until the client leaves or breaks the protocol."""
        stream, parser = self.stream, self.parser
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
        api_key, version, correlation_id = peek_api_key_version(frame)
        handler = HANDLERS.get(api_key)
        if handler is None:
            log.warning("request_rejected", api_key=api_key, api_version=version, reason="unknown api key")
            raise CloseConnection(f"unknown api key {api_key}")
        if not handler.supports(version):
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
        body = await handler.handler(RequestContext(self.broker, header, self.local, self.peer), request)
        if body is None:
            return None
        # ApiVersions responses always use header v0 (GUIDE §1.3).
        flexible_header = api_key != API_VERSIONS_KEY and handler.response.is_flexible(version)
        return encode_response(correlation_id, codec.encode(handler.response, version, body),
                               flexible_header=flexible_header)


@attrs.define(eq=False)
class KafkaServer:
    """Accepts connections and owns the connection limit."""

    broker: PullBroker
    limiter: trio.CapacityLimiter
    ids: itertools.count = attrs.field(factory=lambda: itertools.count(1))

    async def handle(self, stream: trio.SocketStream) -> None:
        conn_id = next(self.ids)
        try:
            peer_address = stream.socket.getpeername()[:2]
            peer = _format_address(peer_address)
            local = stream.socket.getsockname()[:2]
        except OSError:  # the peer is already gone
            await trio.aclose_forcefully(stream)
            return
        with bound_contextvars(conn_id=conn_id, peer=peer, mode="pull"):
            token = object()
            try:
                self.limiter.acquire_on_behalf_of_nowait(token)
            except trio.WouldBlock:
                log.warning("connection_rejected", reason="max_connections reached",
                            max_connections=self.limiter.total_tokens)
                await trio.aclose_forcefully(stream)
                return
            started = time.monotonic()
            connection = Connection(self.broker, stream, local,
                                    FrameParser(self.broker.config.kafka.max_request_bytes),
                                    peer=peer_address)
            try:
                await connection.run()
            except RemoteProtocolError as exc:
                connection.reason = f"protocol error: {exc.message}"
            except CloseConnection as exc:
                connection.reason = str(exc)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                connection.reason = "connection reset"
            except Exception as exc:
                # A bug in a handler: say so loudly, but only this client pays for it.
                log.exception("connection_failed")
                connection.reason = f"internal error: {type(exc).__name__}"
            finally:
                self.limiter.release_on_behalf_of(token)
                await trio.aclose_forcefully(stream)
                log.info("connection_closed", reason=connection.reason, client_id=connection.client_id,
                         requests=connection.requests,
                         bytes_in=connection.bytes_in, bytes_out=connection.bytes_out,
                         duration_ms=int((time.monotonic() - started) * 1000))


async def serve_kafka(
    config: BrokerConfig,
    topics: TopicRegistry,
    info: ServerInfo,
    *,
    task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve the Kafka protocol on ``config.kafka.listen`` until cancelled.

    Reports ``HOST:PORT`` (the bound address; port 0 resolved) once accepting connections.
    """
    coordination = open_coordination(config.data_dir, config.kafka, topics)
    try:
        host, port = parse_host_port(config.kafka.listen)
        listeners = await trio.open_tcp_listeners(port, host=host)
        bound = listeners[0].socket.getsockname()[:2]
        broker = PullBroker(config=config, topics=topics, info=info, bound=(bound[0], bound[1]),
                            coordination=coordination)
        server = KafkaServer(broker, trio.CapacityLimiter(config.kafka.max_connections))
        async with trio.open_nursery() as nursery:
            # Session expiry and rebalance deadlines happen with no request to trigger them.
            nursery.start_soon(coordination.groups.run_timers)
            await nursery.start(trio.serve_listeners, server.handle, listeners)
            address = _format_address(bound)
            log.info("kafka_listening", address=address, advertised=config.kafka.advertised or None)
            task_status.started(address)
    finally:
        # Every acknowledged commit is already fsynced; this only closes the journal.
        coordination.close()
