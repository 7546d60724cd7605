"""The cluster view every pull-mode client shares: bootstrap, metadata, connections per broker.

What lives here: ``KafkaClient`` — it turns a bootstrap list ("host:port,host:port") into a map
of broker node ids to addresses (Metadata), keeps one connection per (node, purpose), knows
each topic's partitions and their leaders, and finds group coordinators (FindCoordinator). It
owns a nursery in which every connection's reader task runs, so nothing outlives the client.

What does not: the meaning of produce, fetch or group requests (the producer, consumer, group
and admin modules use ``request``).

Why "purpose": a broker answers requests on a connection in order, and a Fetch may
long-poll for ``max_wait_ms``. A heartbeat queued behind it would be late, so — like
librdkafka — we give fetches, group coordination and everything else separate connections
to the same broker.

Why reconnecting is paced: a broker that is restarting refuses connections for a while, and
a refused connect fails in microseconds. Every task that needs the broker (fetch, heartbeat,
commit, produce) would otherwise spin on it. So, as Kafka's clients do with
``reconnect.backoff.ms`` and ``reconnect.backoff.max.ms``, after a failed attempt the next one
to that address waits: the first pause, doubled after each further failure up to the longest,
with 20% jitter so that many clients of one restarted broker do not all knock at once. The
client also remembers since when no broker has been reachable (``unreachable_since``):
consumers give up with ``ConnectionLost`` only when that outage has lasted longer than the
request timeout (``check_reachable``), so a broker restart costs a pause, not an exception.

Why bootstrap is only a starting point: the Metadata response lists every broker with the
address it advertises; clients then talk to partition leaders at those addresses. Against
dualmq that is one node; against a real Kafka cluster it is many, and the same code works.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Callable, Iterable, Iterator

import attrs
import trio

from dualmq.errors import ConnectionLost, DualmqError, KafkaError, Timeout
from dualmq.pull.connection import BrokerConnection
from dualmq.pull.security import ClientSecurity
from dualmq.sdk_logging import get_logger
from wire.kafka.errors import ErrorCode

__all__ = ["KafkaClient", "TopicInfo", "deadline", "parse_bootstrap"]

log = get_logger(__name__)

METADATA, FIND_COORDINATOR = 3, 10
BOOTSTRAP_NODE = -1
RECONNECT_JITTER = 0.2  # each pause is randomly 20% shorter or longer (Kafka's clients use 20% too)
START_BROKER_HINT = "is a broker running there? `dualmq serve` starts one"


@contextlib.contextmanager
def deadline(seconds: float, what: str) -> Iterator[None]:
    """``trio.fail_after`` that raises the SDK's ``Timeout`` (naming ``what``) instead of ``TooSlowError``.

    Raises:
        Timeout: the block did not finish within ``seconds``.
    """
    try:
        with trio.fail_after(seconds):
            yield
    except trio.TooSlowError:
        raise Timeout(f"{what} did not complete within {seconds:g} s") from None


def parse_bootstrap(bootstrap: str | Iterable[str]) -> list[tuple[str, int]]:
    """``"a:9092,b:9092"`` (or a list of such strings) -> ``[("a", 9092), ("b", 9092)]``.

    Raises:
        ValueError: an entry is not ``host:port``.
    """
    items = bootstrap.split(",") if isinstance(bootstrap, str) else list(bootstrap)
    addresses = []
    for item in items:
        item = item.strip()
        if not item:
            continue
        host, sep, port = item.rpartition(":")
        if not sep or not port.isdigit() or not host:
            raise ValueError(f"bootstrap address {item!r} is not host:port")
        addresses.append((host.strip("[]"), int(port)))
    if not addresses:
        raise ValueError("no bootstrap address given")
    return addresses


@attrs.frozen
class TopicInfo:
    """What Metadata says about one topic."""

    name: str
    error_code: int
    partitions: dict[int, int]  # partition -> leader node id (-1: no leader right now)
    is_internal: bool = False

    @property
    def partition_count(self) -> int:
        return len(self.partitions)


class KafkaClient:
    """Connections and metadata for one application object (a Producer, Consumer or Admin).

    Args:
        bootstrap: "host:port[,host:port...]" or a list of them.
        client_id: the client id in request headers.
        request_timeout: seconds to wait for any response (Kafka: request.timeout.ms, 30 s);
            also how long consumers tolerate an outage (``check_reachable``).
        connect_timeout: seconds to connect and negotiate versions.
        reconnect_backoff, reconnect_backoff_max: seconds: the first and the longest pause
            before connecting again to an address that failed (Kafka: reconnect.backoff.ms,
            50 ms, and reconnect.backoff.max.ms, 1 s).

    Attributes:
        unreachable_since: ``trio.current_time()`` of the first failed connection attempt with
            no successful one since; None while brokers are reachable.
        on_reachability_change: called (no arguments) when an outage starts or ends, e.g. to
            wake a consumer waiting for records so it can look at ``check_reachable``.
    """

    def __init__(self, bootstrap: str | Iterable[str], *, client_id: str = "dualmq",
                 request_timeout: float = 30.0, connect_timeout: float = 10.0,
                 reconnect_backoff: float = 0.05, reconnect_backoff_max: float = 1.0,
                 security: ClientSecurity | None = None) -> None:
        self.bootstrap = parse_bootstrap(bootstrap)
        self.security = security
        self.client_id = client_id
        self.request_timeout = request_timeout
        self.connect_timeout = connect_timeout
        self.reconnect_backoff = reconnect_backoff
        self.reconnect_backoff_max = max(reconnect_backoff, reconnect_backoff_max)
        self.unreachable_since: float | None = None
        self.last_connect_error: DualmqError | None = None
        self.on_reachability_change: Callable[[], None] | None = None
        self._failed_attempts: dict[tuple[str, int], int] = {}  # consecutive failures per address
        self._next_attempt: dict[tuple[str, int], float] = {}  # no connect to it before this time
        self.brokers: dict[int, tuple[str, int]] = {}
        self.topics: dict[str, TopicInfo] = {}
        self.cluster_id: str | None = None
        self.controller_id: int = -1
        self._connections: dict[tuple[int, str], BrokerConnection] = {}
        self._connect_locks: dict[tuple[int, str], trio.Lock] = {}
        self._coordinators: dict[str, int] = {}
        self._nursery: trio.Nursery | None = None
        self._stack: contextlib.AsyncExitStack | None = None

    # --- lifecycle ---------------------------------------------------------------------------

    async def __aenter__(self) -> KafkaClient:
        self._stack = contextlib.AsyncExitStack()
        self._nursery = await self._stack.enter_async_context(trio.open_nursery())
        try:
            await self._bootstrap()
        except BaseException:
            await self.aclose()
            raise
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close every connection and end their reader tasks."""
        for connection in list(self._connections.values()):
            await connection.aclose()
        self._connections.clear()
        if self._stack is not None:
            stack, self._stack = self._stack, None
            self._nursery.cancel_scope.cancel()
            await stack.aclose()

    async def _bootstrap(self) -> None:
        errors = []
        for host, port in self.bootstrap:
            try:
                connection = await BrokerConnection.open(
                    self._nursery, host, port, client_id=self.client_id, node_id=BOOTSTRAP_NODE,
                    timeout=self.connect_timeout, security=self.security)
            except (ConnectionLost, Timeout) as exc:
                errors.append(str(exc))
                continue
            self._connections[(BOOTSTRAP_NODE, "default")] = connection
            await self.refresh_metadata([])
            return
        where = ", ".join(f"{host}:{port}" for host, port in self.bootstrap)
        raise ConnectionLost(f"no broker reachable at {where} ({'; '.join(errors)}); {START_BROKER_HINT}")

    # --- connections and requests --------------------------------------------------------------

    async def connection(self, node_id: int, purpose: str = "default") -> BrokerConnection:
        """The open connection to ``node_id`` for ``purpose`` (opened on first use).

        Raises:
            ConnectionLost, Timeout: the broker cannot be reached, or the node id is unknown to our
                metadata.
        """
        key = (node_id, purpose)
        connection = self._connections.get(key)
        if connection is not None and not connection.closed:
            return connection
        lock = self._connect_locks.setdefault(key, trio.Lock())
        async with lock:
            connection = self._connections.get(key)
            if connection is not None and not connection.closed:
                return connection
            if node_id == BOOTSTRAP_NODE:
                host, port = self.bootstrap[0]
            else:
                try:
                    host, port = self.brokers[node_id]
                except KeyError:
                    # ConnectionLost: retriable, as a node that has just left the cluster (its
                    # partitions on their way to another leader) is not reachable either.
                    raise ConnectionLost(f"broker node {node_id} is not in the cluster metadata") from None
            address = (host, port)
            wait = self._next_attempt.get(address, 0.0) - trio.current_time()
            if wait > 0:
                await trio.sleep(wait)
            try:
                connection = await BrokerConnection.open(self._nursery, host, port, client_id=self.client_id,
                                                         node_id=node_id, timeout=self.connect_timeout,
                                                         security=self.security)
            except (ConnectionLost, Timeout) as exc:
                self._connect_failed(address, exc)
                raise
            self._connected(address)
            self._connections[key] = connection
            return connection

    def _connect_failed(self, address: tuple[str, int], error: DualmqError) -> None:
        """Pace the next attempt to ``address``; start the outage clock if it is not running."""
        now = trio.current_time()
        failures = self._failed_attempts.get(address, 0) + 1
        self._failed_attempts[address] = failures
        pause = min(self.reconnect_backoff * 2 ** (failures - 1), self.reconnect_backoff_max)
        self._next_attempt[address] = now + pause * random.uniform(1 - RECONNECT_JITTER, 1 + RECONNECT_JITTER)
        self.last_connect_error = error
        if self.unreachable_since is None:
            self.unreachable_since = now
            log.info("broker_unreachable", address=f"{address[0]}:{address[1]}", error=str(error))
            if self.on_reachability_change is not None:
                self.on_reachability_change()

    def _connected(self, address: tuple[str, int]) -> None:
        failures = self._failed_attempts.pop(address, 0)
        self._next_attempt.pop(address, None)
        if self.unreachable_since is not None:
            log.info("broker_reachable_again", address=f"{address[0]}:{address[1]}", attempts=failures,
                     outage_seconds=round(trio.current_time() - self.unreachable_since, 3))
            self.unreachable_since = None
            self.last_connect_error = None
            if self.on_reachability_change is not None:
                self.on_reachability_change()

    @property
    def outage_deadline(self) -> float | None:
        """When the current outage exhausts the budget (``trio.current_time()`` scale), or None."""
        return None if self.unreachable_since is None else self.unreachable_since + self.request_timeout

    def check_reachable(self) -> None:
        """Raise if no broker has been reachable for longer than the request timeout.

        Raises:
            ConnectionLost: naming the last connection error and how long it has lasted.
        """
        end = self.outage_deadline
        if end is not None and trio.current_time() >= end:
            raise ConnectionLost(f"no broker reachable for {self.request_timeout:g} s (the request timeout); "
                                 f"last error: {self.last_connect_error}; {START_BROKER_HINT}")

    def any_node(self) -> int:
        """A node to send cluster-wide requests to (metadata, admin): the lowest known id whose
        last connection attempt did not fail, if there is one (a dead broker stays in Metadata
        until the cluster notices; asking it for the new leader would fail until then)."""
        if not self.brokers:
            return BOOTSTRAP_NODE
        reachable = [node for node, address in self.brokers.items() if not self._failed_attempts.get(address)]
        return min(reachable or self.brokers)

    async def request(self, api_key: int, values: dict, *, node: int | None = None, purpose: str = "default",
                      timeout: float | None = None, version: int | None = None,
                      expect_response: bool = True) -> dict | None:
        """Send one request to ``node`` (default: any broker) and return the decoded response.

        Raises:
            ConnectionLost, Timeout, UnsupportedVersion.
        """
        connection = await self.connection(self.any_node() if node is None else node, purpose)
        return await connection.request(api_key, values, timeout=self.request_timeout if timeout is None else timeout,
                                        version=version, expect_response=expect_response)

    async def version(self, api_key: int, node: int | None = None) -> int | None:
        """The negotiated version of ``api_key`` with ``node`` (any broker by default), or None."""
        connection = await self.connection(self.any_node() if node is None else node)
        return connection.versions.get(api_key)

    # --- metadata ------------------------------------------------------------------------------

    async def refresh_metadata(self, topics: Iterable[str] | None, *, allow_auto_create: bool = False) -> dict[str, TopicInfo]:
        """Ask for brokers and the given topics (None = every topic) and update the cache.

        Returns:
            The topics of the response by name (including ones with an error code).

        Raises:
            ConnectionLost, Timeout.
        """
        names = None if topics is None else [{"name": t} for t in topics]
        reply = await self.request(METADATA, {"topics": names, "allow_auto_topic_creation": allow_auto_create})
        brokers = {b["node_id"]: (b["host"], b["port"]) for b in reply["brokers"]}
        if brokers:
            self.brokers = brokers
        self.cluster_id = reply["cluster_id"]
        self.controller_id = reply["controller_id"]
        found = {}
        for topic in reply["topics"]:
            info = TopicInfo(topic["name"], topic["error_code"],
                             {p["partition_index"]: p["leader_id"] for p in topic["partitions"]},
                             topic["is_internal"])
            found[info.name] = info
            if info.error_code == ErrorCode.NONE and info.partitions:
                self.topics[info.name] = info
            else:
                self.topics.pop(info.name, None)
        return found

    async def topic(self, name: str, *, allow_auto_create: bool = False, timeout: float | None = None) -> TopicInfo:
        """The partitions of ``name``, from the cache or (retrying while it is being created) Metadata.

        Args:
            name: the topic.
            allow_auto_create: let the broker create it (as producers do by default).
            timeout: seconds to keep retrying LEADER_NOT_AVAILABLE / UNKNOWN_TOPIC (default:
                the request timeout).

        Raises:
            KafkaError: UNKNOWN_TOPIC_OR_PARTITION (or another topic error) after the timeout.
        """
        info = self.topics.get(name)
        if info is not None:
            return info
        delay = 0.05
        with trio.move_on_after(self.request_timeout if timeout is None else timeout):
            while True:
                found = (await self.refresh_metadata([name], allow_auto_create=allow_auto_create)).get(name)
                if name in self.topics:
                    return self.topics[name]
                code = found.error_code if found is not None else ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
                # Worth waiting for: a topic being created (LEADER_NOT_AVAILABLE, or listed
                # without partitions yet), or one we just asked the broker to auto-create.
                retriable = code in (ErrorCode.LEADER_NOT_AVAILABLE, ErrorCode.NONE) or (
                    allow_auto_create and code == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION)
                if not retriable:
                    raise KafkaError(code, f"topic {name!r}")
                await trio.sleep(delay)
                delay = min(delay * 2, 1.0)
        raise KafkaError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, f"topic {name!r} has no leaders")

    def leader(self, topic: str, partition: int) -> int | None:
        """The cached leader node of a partition (None if unknown or leaderless)."""
        info = self.topics.get(topic)
        if info is None:
            return None
        leader = info.partitions.get(partition, -1)
        return None if leader < 0 else leader

    # --- coordinators ----------------------------------------------------------------------------

    async def coordinator(self, group_id: str, *, refresh: bool = False) -> int:
        """The node coordinating ``group_id`` (FindCoordinator, retried while unavailable).

        Raises:
            KafkaError: a non-retriable error; Timeout after the request timeout.
        """
        if not refresh and group_id in self._coordinators:
            return self._coordinators[group_id]
        delay = 0.05
        with trio.move_on_after(self.request_timeout):
            while True:
                reply = await self.request(FIND_COORDINATOR, {"key": group_id, "key_type": 0})
                code = reply["error_code"]
                if code == ErrorCode.NONE:
                    node = reply["node_id"]
                    self.brokers.setdefault(node, (reply["host"], reply["port"]))
                    self._coordinators[group_id] = node
                    return node
                if code not in (ErrorCode.COORDINATOR_NOT_AVAILABLE,
                                                  ErrorCode.COORDINATOR_LOAD_IN_PROGRESS, ErrorCode.NOT_COORDINATOR):
                    raise KafkaError(code, reply.get("error_message") or f"FindCoordinator({group_id!r})")
                await trio.sleep(delay)
                delay = min(delay * 2, 1.0)
        raise Timeout(f"no coordinator for group {group_id!r} within {self.request_timeout} s")

    def forget_coordinator(self, group_id: str) -> None:
        """Drop a cached coordinator after NOT_COORDINATOR / COORDINATOR_NOT_AVAILABLE."""
        self._coordinators.pop(group_id, None)
