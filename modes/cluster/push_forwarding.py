"""PUBLISH across the cluster: each broker hands what it receives to every other live broker.

Redis Cluster's pub/sub: a PUBLISH on any node reaches the subscribers of every node. Here a
broker delivers a PUBLISH to its own subscribers as always, and ``PushForwarder.forward``
queues it once for each other live broker; each of those delivers it to its own subscribers
and never forwards it again. At most once, nothing retained (docs/cluster.md#push-mode-in-a-cluster):

* **One link per live peer** (``PeerLink``), following the etcd view: a broker that registers
  gets one, a broker whose key goes (stopped, or its lease expired) loses it. A link is one
  plain RESP connection to the peer's RESP listener (the address it registered), opened with
  ``DUALMQ.PEER <my node id> <secret>`` (answered ``+OK``), then carrying one
  ``DUALMQ.FORWARD <channel> <message>`` per PUBLISH, which the peer does not answer (a
  pipelined run of PUBLISHes to one channel goes as one FORWARD with all its messages, and
  is dropped or kept whole).
* **The secret** is the cluster's: 64 hex digits created once in etcd
  (``/dualmq/push/secret``, create-if-absent, no lease) and read by every broker at start. A
  connection that presents it is a peer; only a peer may forward; an ordinary client gets
  an error (``modes.push.commands.cluster``). Whoever can read etcd can act as a broker, as
  they can rewrite the whole cluster already.
* **Never blocking the publisher.** ``forward`` runs in the PUBLISH itself and only appends
  to each link's queue. A queue holds at most ``max_queued_bytes`` (or one larger message
  alone); a message that does not fit, or that is forwarded while the link is down, is
  dropped and counted (``dropped``,
  INFO's ``forward_dropped``). Messages being written when a link breaks are lost too, and
  counted. Nothing is retried: the subscribers of a broker that is slow or gone miss them.
* **Every wait has a deadline**: connect and handshake 5 s, each write 5 s (a peer that reads
  nothing for that long is dropped and reconnected); a failed link retries after a pause
  that doubles from 0.1 s to 2 s, logged once per run of failures.

Not here: the commands (``modes.push.commands``), the view (``modes.cluster.node``).
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable
from typing import Protocol

import attrs
import trio

from broker.cluster.model import PREFIX, ClusterView
from broker.cluster.slots import SlotRange, split_slots
from broker.loggers import get_logger
from modes.cluster.etcd import Compare, EtcdClient, EtcdError, get_op, put_op
from wire.resp import encoder

__all__ = ["PeerLink", "PushForwarder", "SECRET_KEY"]

log = get_logger(__name__)

SECRET_KEY = PREFIX + b"push/secret"
SECRET_MIN_BYTES = 32
CONNECT_TIMEOUT_S = 5.0
SEND_TIMEOUT_S = 5.0
BACKOFF_MIN_S = 0.1
BACKOFF_MAX_S = 2.0
# How long the links wait on the view before looking again anyway.
VIEW_WAIT_S = 5.0
RETRY_PAUSE_S = 0.5
# How long a starting broker retries reading the secret before its start fails.
SECRET_DEADLINE_S = 10.0
MAX_QUEUED_BYTES = 8 * 1024 * 1024
# The longest answer to DUALMQ.PEER read before giving up on it.
MAX_ANSWER_BYTES = 4096
FORWARD = b"DUALMQ.FORWARD"
PEER = b"DUALMQ.PEER"


class PeerLinkDown(Exception):
    """The peer closed the link, refused it, or answered what a peer does not."""


class ClusterMember(Protocol):
    """What forwarding needs of ``ClusterNode``."""

    view: ClusterView
    etcd: EtcdClient

    @property
    def node_id(self) -> int: ...

    async def wait_for(self, predicate, timeout: float = ...) -> bool: ...


@attrs.define(eq=False)
class PeerLink:
    """The queue and the connection to one other broker."""

    node_id: int
    host: str
    port: int
    max_queued_bytes: int
    queue: list[bytes] = attrs.field(factory=list)
    queued_bytes: int = 0
    connected: bool = False
    sent: int = 0
    dropped: int = 0
    _wake: trio.Event = attrs.field(factory=trio.Event)
    cancel_scope: trio.CancelScope = attrs.field(factory=trio.CancelScope)

    def offer(self, frame: bytes) -> None:
        """Queue one DUALMQ.FORWARD, or drop it (link down, queue full). Never waits.

        An empty queue takes any one message, so a PUBLISH larger than the bound is still
        forwarded when the link keeps up (the queue then holds that one message alone).
        """
        if not self.connected or (self.queue and self.queued_bytes + len(frame) > self.max_queued_bytes):
            self.dropped += 1
            return
        self.queue.append(frame)
        self.queued_bytes += len(frame)
        self._wake.set()

    def _drop_queue(self) -> None:
        self.dropped += len(self.queue)
        self.queue.clear()
        self.queued_bytes = 0

    async def run(self, me: int, secret: bytes) -> None:
        """Keep the link up until cancelled (the peer left the view)."""
        pause = BACKOFF_MIN_S
        failures = 0
        with self.cancel_scope:
            while True:
                try:
                    await self._session(me, secret)
                except (OSError, trio.BrokenResourceError, trio.ClosedResourceError, trio.TooSlowError,
                        PeerLinkDown) as exc:
                    if self.connected:
                        pause, failures = BACKOFF_MIN_S, 0
                    if failures == 0 or failures % 50 == 0:
                        log.warning("push_peer_link_down", peer=self.node_id, address=f"{self.host}:{self.port}",
                                    error=str(exc) or type(exc).__name__, failures=failures + 1,
                                    dropped=self.dropped)
                    failures += 1
                finally:
                    self.connected = False
                    self._drop_queue()
                await trio.sleep(pause)
                pause = min(pause * 2, BACKOFF_MAX_S)

    async def _session(self, me: int, secret: bytes) -> None:
        with trio.fail_after(CONNECT_TIMEOUT_S):
            stream = await trio.open_tcp_stream(self.host, self.port)
        async with stream:
            with trio.fail_after(CONNECT_TIMEOUT_S):
                await stream.send_all(encoder.command(PEER, str(me), secret))
                answer = await _read_line(stream)
            if answer != b"+OK":
                raise PeerLinkDown(f"the peer refused the link: {answer[:200]!r}")
            self.connected = True
            log.info("push_peer_link_up", peer=self.node_id, address=f"{self.host}:{self.port}")
            ended: list[BaseException] = []
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._guard, self._watch_replies, stream, ended, nursery.cancel_scope)
                nursery.start_soon(self._guard, self._send, stream, ended, nursery.cancel_scope)
            raise ended[0] if ended else PeerLinkDown("link ended")

    @staticmethod
    async def _guard(task, stream: trio.SocketStream, ended: list[BaseException], scope: trio.CancelScope) -> None:
        """Run one half of the link; its failure ends both halves (kept for ``_session`` to raise)."""
        try:
            await task(stream)
        except (OSError, trio.BrokenResourceError, trio.ClosedResourceError, trio.TooSlowError,
                PeerLinkDown) as exc:
            ended.append(exc)
            scope.cancel()

    async def _send(self, stream: trio.SocketStream) -> None:
        while True:
            await self._wake.wait()
            self._wake = trio.Event()
            if not self.queue:
                continue
            data = b"".join(self.queue)
            count = len(self.queue)
            self.queue.clear()
            self.queued_bytes = 0
            try:
                with trio.fail_after(SEND_TIMEOUT_S):
                    await stream.send_all(data)
            except BaseException:
                self.dropped += count  # in flight when the link broke: lost, at most once
                raise
            self.sent += count

    async def _watch_replies(self, stream: trio.SocketStream) -> None:
        """A peer answers forwards with nothing; an error reply is logged, EOF ends the link."""
        while True:
            data = await stream.receive_some(65536)
            if not data:
                raise PeerLinkDown("the peer closed the link")
            log.warning("push_forward_refused", peer=self.node_id, answer=data[:200].decode(errors="replace"))


async def _read_line(stream: trio.SocketStream) -> bytes:
    buffer = b""
    while b"\r\n" not in buffer:
        if len(buffer) > MAX_ANSWER_BYTES:
            raise PeerLinkDown(f"an answer of more than {MAX_ANSWER_BYTES} bytes without a line end")
        chunk = await stream.receive_some(MAX_ANSWER_BYTES)
        if not chunk:
            raise PeerLinkDown("the peer closed the link during the handshake")
        buffer += chunk
    return buffer.split(b"\r\n", 1)[0]


@attrs.define(eq=False)
class PushForwarder:
    """Push mode's part of the cluster (``modes.push.commands.cluster.PushCluster``)."""

    member: ClusterMember
    max_queued_bytes: int = MAX_QUEUED_BYTES
    secret: bytes = b""
    links: dict[int, PeerLink] = attrs.field(factory=dict)
    forwarded_in: int = 0
    forwarded_out: int = 0
    # Dropped by links that are gone since (their peer left the view).
    dropped_by_gone_links: int = 0
    # Called when the live brokers (so the slots' owners) change: push mode drops the shard
    # subscriptions of slots it lost.
    _slots_changed: Callable[[], object] | None = None
    # Subscriptions dropped that way (INFO).
    shard_subscriptions_moved: int = 0

    @property
    def node_id(self) -> int:
        return self.member.node_id

    # --- what PUBLISH and the commands call (synchronous, in the push server's thread) ----

    def forward(self, channel: bytes, payload: bytes) -> None:
        links = self.links
        if not links:
            return
        self.forwarded_out += 1
        frame = encoder.command(FORWARD, channel, payload)
        for link in links.values():
            link.offer(frame)

    def forward_many(self, channel: bytes, payloads) -> None:
        links = self.links
        if not links:
            return
        self.forwarded_out += len(payloads)
        frame = encoder.command(FORWARD, channel, *payloads)
        for link in links.values():
            link.offer(frame)

    def accepts_peer(self, secret: bytes) -> bool:
        return bool(self.secret) and hmac.compare_digest(secret, self.secret)

    def slot_ranges(self) -> list[SlotRange]:
        return split_slots([*self.member.view.brokers, self.node_id])

    def resp_address(self, node_id: int) -> tuple[str, int] | None:
        info = self.member.view.brokers.get(node_id)
        return None if info is None else (info.resp_host, info.resp_port)

    def on_slots_changed(self, action: Callable[[], object]) -> None:
        self._slots_changed = action

    def info_lines(self) -> list[tuple[str, object]]:
        links = sorted(self.links.values(), key=lambda link: link.node_id)
        lines: list[tuple[str, object]] = [
            ("cluster_node_id", self.node_id),
            ("forward_peers", len(links)),
            ("forward_peers_connected", sum(1 for link in links if link.connected)),
            ("forwarded_out", self.forwarded_out),
            ("forwarded_in", self.forwarded_in),
            ("forward_sent", sum(link.sent for link in links)),
            ("forward_dropped", self.dropped_by_gone_links + sum(link.dropped for link in links)),
            ("forward_queued_bytes", sum(link.queued_bytes for link in links)),
            ("shard_subscriptions_moved", self.shard_subscriptions_moved),
        ]
        for link in links:
            lines.append((f"forward_peer{link.node_id}",
                          f"address={link.host}:{link.port},state={'up' if link.connected else 'down'},"
                          f"sent={link.sent},dropped={link.dropped},queued_bytes={link.queued_bytes}"))
        return lines

    # --- the links -------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Read the cluster's secret, then keep one link per other live broker until cancelled."""
        await self._load_secret()
        owners = self._owners()
        async with trio.open_nursery() as nursery:
            task_status.started()
            while True:
                wanted = self._wanted()
                self._sync(nursery, wanted)
                if self._owners() != owners:
                    owners = self._owners()
                    if self._slots_changed is not None:
                        self.shard_subscriptions_moved += self._slots_changed() or 0
                await self.member.wait_for(lambda: self._wanted() != wanted, timeout=VIEW_WAIT_S)

    def _owners(self) -> list[int]:
        return sorted({*self.member.view.brokers, self.node_id})

    def _wanted(self) -> dict[int, tuple[str, int]]:
        me = self.node_id
        return {node_id: (info.resp_host, info.resp_port)
                for node_id, info in self.member.view.brokers.items() if node_id != me}

    def _sync(self, nursery: trio.Nursery, wanted: dict[int, tuple[str, int]]) -> None:
        for node_id, link in list(self.links.items()):
            if wanted.get(node_id) != (link.host, link.port):
                link.cancel_scope.cancel()
                self.dropped_by_gone_links += link.dropped + len(link.queue)
                del self.links[node_id]
                log.info("push_peer_removed", peer=node_id, dropped=link.dropped)
        for node_id, (host, port) in wanted.items():
            if node_id not in self.links:
                link = PeerLink(node_id=node_id, host=host, port=port, max_queued_bytes=self.max_queued_bytes)
                self.links[node_id] = link
                nursery.start_soon(link.run, self.node_id, self.secret)

    async def _load_secret(self) -> None:
        """Create the cluster's secret in etcd if nobody has, and read it.

        Raises:
            EtcdError: etcd still unreachable or refusing after ``SECRET_DEADLINE_S`` of retries
                (the broker's start fails, as when it cannot join).
        """
        candidate = secrets.token_hex(SECRET_MIN_BYTES).encode()
        etcd = self.member.etcd
        deadline = trio.current_time() + SECRET_DEADLINE_S
        while True:
            try:
                done = await etcd.txn([Compare.absent(SECRET_KEY)], [put_op(SECRET_KEY, candidate)],
                                      [get_op(SECRET_KEY)])
                break
            except EtcdError as exc:
                if trio.current_time() > deadline:
                    raise
                log.warning("push_secret_unavailable", error=str(exc))
                await trio.sleep(RETRY_PAUSE_S)
        value = candidate if done.succeeded else (done.ranges[0][0].value if done.ranges and done.ranges[0] else b"")
        if len(value) < SECRET_MIN_BYTES:
            # Not what a broker writes: forwarding stays off (peers refused both ways), said loudly.
            log.error("push_secret_invalid", key=SECRET_KEY.decode(), length=len(value),
                      advice="delete the key; the next broker to start creates a new one")
            return
        self.secret = value
