"""What a dualmq cluster keeps in etcd, as values, and one broker's view of it.

The key layout (docs/cluster.md#the-etcd-key-layout), all under ``/dualmq/``:

* ``brokers/<node id>`` - a live broker's addresses (JSON), attached to its lease: when the
  broker stops or its lease expires, the key disappears and so does the broker;
* ``controller`` - ``{"node_id": N}`` of the elected controller, attached to *its* lease;
  the key's create revision serves as the controller epoch (it only grows);
* ``topics/<name>`` - a topic's id, configs and per partition the leader, replicas, ISR and
  leader epoch (JSON), written by the controller;
* ``admin/create-topic/<name>`` - a broker asking the controller to create a topic (Metadata's
  auto-creation on a broker that is not the controller).

``ClusterView`` is what a broker knows of all that: etcd's keys applied one change at a time
(``apply``), in revision order, from the watch. Values are checked when read; a value that does
not check out raises ``ClusterDataInvalid`` and changes nothing.
"""

from __future__ import annotations

import json
from typing import Any

import attrs

from broker.errors import BrokerError
from broker.topics import MAX_PARTITIONS, validate_topic_name

PREFIX = b"/dualmq/"
BROKERS = PREFIX + b"brokers/"
CONTROLLER = PREFIX + b"controller"
TOPICS = PREFIX + b"topics/"
CREATE_REQUESTS = PREFIX + b"admin/create-topic/"
# The first producer id no broker has been given yet (modes/cluster/producer_ids.py).
PRODUCER_IDS = PREFIX + b"producer-ids"

NO_CONTROLLER = -1
# The largest node id (Kafka's are int32, non-negative).
MAX_NODE_ID = 2**31 - 1


class ClusterDataInvalid(BrokerError):
    """A value found in etcd is not what dualmq writes there (wrong JSON, a missing field)."""


class CoordinationError(BrokerError):
    """The store that coordinates the cluster (etcd) could not be used: unreachable, refusing."""


class NotController(BrokerError):
    """A request only the controller may carry out reached another broker."""


class InvalidReplicationFactor(BrokerError):
    """A replication factor that cannot be met (more replicas than brokers, or not yet served)."""


def broker_key(node_id: int) -> bytes:
    return BROKERS + str(node_id).encode()


def topic_key(name: str) -> bytes:
    return TOPICS + name.encode()


def create_request_key(name: str) -> bytes:
    return CREATE_REQUESTS + name.encode()


def _load(value: bytes, what: str) -> dict:
    try:
        raw = json.loads(value)
    except ValueError:
        raise ClusterDataInvalid(f"{what}: not JSON: {value[:60]!r}") from None
    if not isinstance(raw, dict):
        raise ClusterDataInvalid(f"{what}: expected a JSON object")
    return raw


def _field(raw: dict, name: str, kind: type, what: str) -> Any:
    value = raw.get(name)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ClusterDataInvalid(f"{what}: field {name!r} = {value!r}, expected {kind.__name__}")
    return value


def _node_id(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_NODE_ID:
        raise ClusterDataInvalid(f"{what}: {value!r} is not a node id")
    return value


def _dump(value: dict) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


@attrs.frozen
class BrokerInfo:
    """A registered broker: its id and where clients reach its two listeners."""

    node_id: int
    host: str
    kafka_port: int
    resp_host: str
    resp_port: int

    def to_json(self) -> bytes:
        return _dump({"node_id": self.node_id, "host": self.host, "kafka_port": self.kafka_port,
                      "resp_host": self.resp_host, "resp_port": self.resp_port})

    @classmethod
    def from_json(cls, value: bytes, what: str = "broker") -> BrokerInfo:
        raw = _load(value, what)
        ports = [_field(raw, name, int, what) for name in ("kafka_port", "resp_port")]
        if not all(0 < port <= 65535 for port in ports):
            raise ClusterDataInvalid(f"{what}: a port outside [1, 65535]")
        return cls(node_id=_node_id(raw.get("node_id"), f"{what}.node_id"), host=_field(raw, "host", str, what),
                   kafka_port=ports[0], resp_host=_field(raw, "resp_host", str, what), resp_port=ports[1])


@attrs.frozen
class PartitionState:
    """One partition's leadership as the controller decided it."""

    leader: int
    replicas: tuple[int, ...]
    isr: tuple[int, ...]
    leader_epoch: int

    def to_dict(self) -> dict:
        return {"leader": self.leader, "replicas": list(self.replicas), "isr": list(self.isr),
                "leader_epoch": self.leader_epoch}

    @classmethod
    def from_dict(cls, raw: Any, what: str) -> PartitionState:
        if not isinstance(raw, dict):
            raise ClusterDataInvalid(f"{what}: expected a JSON object")
        replicas = tuple(_node_id(n, f"{what}.replicas") for n in _field(raw, "replicas", list, what))
        isr = tuple(_node_id(n, f"{what}.isr") for n in _field(raw, "isr", list, what))
        leader = _field(raw, "leader", int, what)
        epoch = _field(raw, "leader_epoch", int, what)
        if not replicas or len(set(replicas)) != len(replicas):
            raise ClusterDataInvalid(f"{what}: replicas {list(replicas)} must be distinct and not empty")
        if not set(isr) <= set(replicas) or (leader != NO_CONTROLLER and leader not in replicas) or epoch < 0:
            raise ClusterDataInvalid(f"{what}: leader {leader} / isr {list(isr)} / epoch {epoch} do not fit "
                                     f"replicas {list(replicas)}")
        return cls(leader=leader, replicas=replicas, isr=isr, leader_epoch=epoch)


@attrs.frozen
class TopicAssignment:
    """A topic as the cluster knows it: id, configs, and every partition's state."""

    name: str
    topic_id: bytes
    partitions: tuple[PartitionState, ...]
    overrides: dict[str, str] = attrs.field(factory=dict)

    @classmethod
    def new(cls, name: str, topic_id: bytes, replica_lists: list[list[int]],
            overrides: dict[str, str]) -> TopicAssignment:
        """A new topic: each partition led by its first replica, all replicas in sync, epoch 0."""
        return cls(name=name, topic_id=topic_id, overrides=dict(overrides),
                   partitions=tuple(PartitionState(leader=r[0], replicas=tuple(r), isr=tuple(r), leader_epoch=0)
                                    for r in replica_lists))

    def with_isr(self, index: int, isr: tuple[int, ...], *, leader: int, leader_epoch: int) -> TopicAssignment | None:
        """This topic with partition ``index``'s ISR replaced - or None when that partition is
        no longer led by ``leader`` in ``leader_epoch`` (a stale leader must not write)."""
        if not 0 <= index < len(self.partitions):
            return None
        current = self.partitions[index]
        if current.leader != leader or current.leader_epoch != leader_epoch or not set(isr) <= set(current.replicas):
            return None
        partitions = list(self.partitions)
        partitions[index] = attrs.evolve(current, isr=tuple(isr))
        return attrs.evolve(self, partitions=tuple(partitions))

    def to_json(self) -> bytes:
        return _dump({"name": self.name, "topic_id": self.topic_id.hex(), "overrides": self.overrides,
                      "partitions": [p.to_dict() for p in self.partitions]})

    @classmethod
    def from_json(cls, value: bytes, what: str = "topic") -> TopicAssignment:
        raw = _load(value, what)
        name = _field(raw, "name", str, what)
        try:
            validate_topic_name(name)
            topic_id = bytes.fromhex(_field(raw, "topic_id", str, what))
        except (BrokerError, ValueError) as exc:
            raise ClusterDataInvalid(f"{what}: {exc}") from None
        if len(topic_id) != 16 or topic_id == bytes(16):
            raise ClusterDataInvalid(f"{what}: topic_id must be 16 non-zero bytes")
        overrides = _field(raw, "overrides", dict, what)
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in overrides.items()):
            raise ClusterDataInvalid(f"{what}: overrides must map strings to strings")
        partitions = _field(raw, "partitions", list, what)
        if not 1 <= len(partitions) <= MAX_PARTITIONS:
            raise ClusterDataInvalid(f"{what}: {len(partitions)} partitions, allowed [1, {MAX_PARTITIONS}]")
        return cls(name=name, topic_id=topic_id, overrides=overrides,
                   partitions=tuple(PartitionState.from_dict(p, f"{what}.partitions[{i}]")
                                    for i, p in enumerate(partitions)))


def controller_value(node_id: int) -> bytes:
    return _dump({"node_id": node_id})


@attrs.frozen
class CreateRequest:
    """A broker's request that the controller create a topic (auto-creation)."""

    name: str
    partitions: int
    replication_factor: int
    # Topic configs (the internal __consumer_offsets topic has its retention.ms); left out of
    # the JSON when empty, so requests read the same as before the field existed.
    overrides: dict[str, str] = attrs.field(factory=dict)

    def to_json(self) -> bytes:
        raw: dict[str, Any] = {"name": self.name, "partitions": self.partitions,
                               "replication_factor": self.replication_factor}
        if self.overrides:
            raw["overrides"] = self.overrides
        return _dump(raw)

    @classmethod
    def from_json(cls, value: bytes, what: str = "create request") -> CreateRequest:
        raw = _load(value, what)
        overrides = raw.get("overrides", {})
        if not isinstance(overrides, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in overrides.items()):
            raise ClusterDataInvalid(f"{what}: overrides must map strings to strings")
        return cls(name=_field(raw, "name", str, what), partitions=_field(raw, "partitions", int, what),
                   replication_factor=_field(raw, "replication_factor", int, what), overrides=overrides)


@attrs.frozen
class Change:
    """What one applied key changed, for the runtime to act on."""

    topic: TopicAssignment | None = None      # a topic was written: open its local logs
    controller_gone: bool = False             # the controller key vanished: run for election
    create_request: CreateRequest | None = None  # a broker asks for a topic (the controller acts)
    broker_gone: int | None = None            # a broker's key vanished: the controller fails over
    broker_joined: int | None = None          # a broker registered (a new life of it, if it was here)


@attrs.define
class ClusterView:
    """One broker's knowledge of the cluster, built from etcd's keys in revision order."""

    brokers: dict[int, BrokerInfo] = attrs.field(factory=dict)
    controller: int = NO_CONTROLLER
    # The create revision of the controller key: grows with every new controller.
    controller_epoch: int = 0
    topics: dict[str, TopicAssignment] = attrs.field(factory=dict)

    def apply(self, key: bytes, value: bytes | None, *, create_revision: int = 0) -> Change:
        """Apply one key's new value (``None``: deleted).

        Raises:
            ClusterDataInvalid: the value is not what dualmq writes; the view is unchanged.
        """
        what = key.decode(errors="replace")
        if key == CONTROLLER:
            if value is None:
                self.controller = NO_CONTROLLER
                return Change(controller_gone=True)
            self.controller = _node_id(_load(value, what).get("node_id"), f"{what}.node_id")
            self.controller_epoch = max(self.controller_epoch, create_revision)
            return Change()
        if key.startswith(BROKERS):
            node_id = _node_id(_int_suffix(key, BROKERS), what)
            if value is None:
                self.brokers.pop(node_id, None)
                return Change(broker_gone=node_id)
            info = BrokerInfo.from_json(value, what)
            if info.node_id != node_id:
                raise ClusterDataInvalid(f"{what}: holds node id {info.node_id}")
            self.brokers[node_id] = info
            return Change(broker_joined=node_id)
        if key.startswith(TOPICS):
            name = key[len(TOPICS):].decode(errors="replace")
            if value is None:
                self.topics.pop(name, None)
                return Change()
            topic = TopicAssignment.from_json(value, what)
            if topic.name != name:
                raise ClusterDataInvalid(f"{what}: holds topic {topic.name!r}")
            self.topics[name] = topic
            return Change(topic=topic)
        if key.startswith(CREATE_REQUESTS) and value is not None:
            return Change(create_request=CreateRequest.from_json(value, what))
        return Change()

    def leader(self, topic: str, partition: int) -> int | None:
        """The leader of one partition, or None when the cluster has no such partition."""
        assignment = self.topics.get(topic)
        if assignment is None or not 0 <= partition < len(assignment.partitions):
            return None
        return assignment.partitions[partition].leader

    def partition(self, topic: str, partition: int) -> PartitionState | None:
        """One partition's state, or None when the cluster has no such partition."""
        assignment = self.topics.get(topic)
        if assignment is None or not 0 <= partition < len(assignment.partitions):
            return None
        return assignment.partitions[partition]

    def live_broker_ids(self) -> list[int]:
        return sorted(self.brokers)


def _int_suffix(key: bytes, prefix: bytes) -> int:
    try:
        return int(key[len(prefix):])
    except ValueError:
        raise ClusterDataInvalid(f"{key!r}: not a node id after {prefix!r}") from None
