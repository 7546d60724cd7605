"""State shared by the pull-mode handlers: the broker (one per listener) and one request.

``PullBroker`` is what every handler may touch: the configuration, the topic registry, the
identity we advertise in Metadata, and the clock (the core never reads one; modes own it).
The group coordinator, committed offsets and producer state hang off ``PullBroker.coordination``
(``modes.pull.coordination``), the trio runtime ``serve_kafka`` builds around the
``BrokerState`` it is given.
``RequestContext`` adds what is specific to one request: its API version, header, and the
connection it arrived on (Metadata needs the connection's local address when we listen on a
wildcard address and no ``advertised`` address is configured).
"""

from __future__ import annotations

import attrs

from typing import TYPE_CHECKING

from broker.config import BrokerConfig, parse_host_port
from broker.security.authorizer import CLUSTER_NAME, Authorizer, Operation, ResourceType
from broker.security.kafka_users import KafkaUsers
from broker.stats import ServerInfo
from broker.topics import Topic, TopicRegistry
from modes.common.request_stats import RequestStats
# The handlers take the wall clock from here; one definition serves both modes.
from modes.common.clock import now_ms  # noqa: F401  (re-exported)
from wire.kafka.errors import ErrorCode
from wire.kafka.framing import RequestHeader

if TYPE_CHECKING:
    from modes.pull.sasl import ConnectionSecurity

if TYPE_CHECKING:
    from modes.cluster.node import ClusterNode
    from modes.pull.coordination import Coordination

# The leader epoch of every partition of a single broker. It never changes leadership, so the
# epoch never moves; clients only need it to be >= 0 and never to decrease. In a cluster each
# partition's epoch is the one the controller wrote to etcd (``PullBroker.leader_epoch``).
LEADER_EPOCH = 0

_WILDCARDS = ("0.0.0.0", "::", "")


@attrs.define(eq=False)
class PullBroker:
    """Everything the Kafka handlers share.

    Attributes:
        bound: the ``(host, port)`` the listener is bound to.
    """

    config: BrokerConfig
    topics: TopicRegistry
    info: ServerInfo
    bound: tuple[str, int] = ("127.0.0.1", 0)
    coordination: Coordination | None = None
    # Requests by API, error codes in responses, latency per API (for ``/metrics``).
    requests: RequestStats = attrs.field(factory=RequestStats)
    # The [[kafka.users]] credentials SASL checks against.
    users: KafkaUsers = attrs.field(factory=lambda: KafkaUsers({}))
    # The ACLs (None: kafka.authorizer is off and everyone may do everything, as in Kafka
    # without an authorizer.class.name).
    authorizer: Authorizer | None = None
    # This broker's membership of a cluster (None: a single broker, the default).
    cluster: ClusterNode | None = None

    @property
    def coord(self) -> Coordination:
        """The groups / offsets / producers runtime (always set by ``serve_kafka``)."""
        assert self.coordination is not None, "serve_kafka builds the coordination runtime"
        return self.coordination

    @property
    def node_id(self) -> int:
        if self.config.cluster.enabled:
            return self.config.cluster.node_id
        return self.config.kafka.node_id

    def leadership_error(self, topic: str, partition: int) -> ErrorCode | None:
        """In a cluster, why this broker may not serve the partition's data (None: it may).

        UNKNOWN_TOPIC_OR_PARTITION when the cluster has no such partition,
        NOT_LEADER_OR_FOLLOWER when another broker leads it: Kafka's answers, on which clients
        refresh their metadata and go to the leader. A single broker leads everything.
        """
        if self.cluster is None:
            return None
        leader = self.cluster.view.leader(topic, partition)
        if leader is None:
            return ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
        if not self.cluster.leads(topic, partition):
            # Another broker leads it, nobody does (-1), or this broker is listed as leader
            # but may not act as one now (its lease may have expired: docs/cluster.md#failover).
            return ErrorCode.NOT_LEADER_OR_FOLLOWER
        return None

    def leader_epoch(self, topic: str, partition: int) -> int:
        """The partition's leader epoch: etcd's in a cluster, the constant 0 on one broker."""
        if self.cluster is None:
            return LEADER_EPOCH
        epoch = self.cluster.leader_epoch(topic, partition)
        return LEADER_EPOCH if epoch is None else epoch

    def epoch_error(self, topic: str, partition: int, current_leader_epoch: int) -> ErrorCode | None:
        """Kafka's fencing of a request's ``current_leader_epoch`` (-1: not checked) against
        the partition's epoch here: a newer one is UNKNOWN_LEADER_EPOCH (the client has seen
        a leader change this broker has not heard of yet), an older one FENCED_LEADER_EPOCH
        (the client's metadata is stale). None if it passes."""
        ours = self.leader_epoch(topic, partition)
        if current_leader_epoch == -1 or current_leader_epoch == ours:
            return None
        if current_leader_epoch > ours:
            return ErrorCode.UNKNOWN_LEADER_EPOCH
        return ErrorCode.FENCED_LEADER_EPOCH

    def advertised_address(self, local: tuple[str, int]) -> tuple[str, int]:
        """The ``(host, port)`` clients should connect to (Metadata's only broker).

        ``kafka.advertised`` wins (clients behind NAT); otherwise the bound address, except
        that a wildcard bind (0.0.0.0) is useless to a client, so we answer with the local
        address of the connection the client reached us on.
        """
        if self.config.kafka.advertised:
            return parse_host_port(self.config.kafka.advertised)
        if self.bound[0] in _WILDCARDS:
            return local[0], self.bound[1]
        return self.bound

    def auto_create(self, name: str) -> Topic:
        """Create ``name`` with the default partition count (Metadata auto-creation).

        Raises:
            InvalidTopic, TopicExists, ConfigError: as ``TopicRegistry.create``.
        """
        return self.topics.create(name, self.config.kafka.num_partitions, now_ms=now_ms())


def open_authorizer(config: BrokerConfig) -> Authorizer | None:
    """The authorizer ``kafka.authorizer`` asks for, with the ACLs kept in the data directory.

    Raises:
        DamagedFile: ``acls.json`` exists but cannot be read as ACLs.
    """
    kafka = config.kafka
    if not kafka.authorizer:
        return None
    return Authorizer.open(config.data_dir, super_users=kafka.super_users,
                           allow_everyone_if_no_acl_found=kafka.allow_everyone_if_no_acl_found)


@attrs.frozen
class RequestContext:
    """One decoded request's surroundings."""

    broker: PullBroker
    header: RequestHeader
    local: tuple[str, int]
    peer: tuple[str, int] | None = None
    # The connection's SASL state and principal (None in unit tests of a handler alone).
    security: ConnectionSecurity | None = None

    @property
    def principal(self) -> str:
        return self.security.principal if self.security is not None else "User:ANONYMOUS"

    def allowed(self, operation: Operation, resource_type: ResourceType, name: str) -> bool:
        """Whether this request's principal may do ``operation`` on the resource (always True
        when the authorizer is off)."""
        authorizer = self.broker.authorizer
        if authorizer is None:
            return True
        return authorizer.authorize(self.principal, self.client_host, operation, resource_type, name)

    def allowed_on_cluster(self, operation: Operation) -> bool:
        return self.allowed(operation, ResourceType.CLUSTER, CLUSTER_NAME)

    @property
    def version(self) -> int:
        return self.header.api_version

    @property
    def client_host(self) -> str:
        return self.peer[0] if self.peer else ""
