"""The pull-mode ``Admin``: topics and consumer groups, with lag.

    async with Admin("127.0.0.1:9092") as admin:
        await admin.create_topics("orders", partitions=6, config={"retention.ms": "86400000"})
        for group in await admin.list_groups():
            print(await admin.describe_group(group.group_id))

What lives here: thin, typed wrappers over CreateTopics, CreatePartitions, DeleteTopics, Metadata,
ListOffsets, DescribeConfigs, ListGroups, DescribeGroups, DeleteGroups and OffsetFetch, and (through
``acls.py``) CreateAcls, DescribeAcls and DeleteAcls. Results are frozen attrs values.

Lag has one definition everywhere in dualmq: log-end offset minus committed offset,
per partition, never negative; a partition without a commit counts its whole retained log
(log end minus log start) as lag, since that is what a new member would have to read with
``auto_offset_reset="earliest"``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from typing import Any

import attrs

from dualmq.errors import KafkaError, UnsupportedVersion
from dualmq.pull.acls import Acl, AclFilter, create_acls, delete_acls, describe_acls
from dualmq.pull.assignors import decode_assignment
from dualmq.pull.client import KafkaClient
from dualmq.pull.fetcher import EARLIEST, LATEST, list_offsets
from dualmq.pull.group import fetch_committed
from dualmq.pull.records import TopicPartition
from dualmq.pull.security import ClientSecurity
from wire.errors import RemoteProtocolError
from wire.kafka.errors import ErrorCode

__all__ = ["Admin", "ConfigEntry", "GroupDescription", "GroupListing", "MemberDescription",
           "PartitionDescription", "PartitionLag", "TopicDescription"]

CREATE_TOPICS, DELETE_TOPICS, LIST_GROUPS, DESCRIBE_GROUPS, CREATE_PARTITIONS, DELETE_GROUPS = 19, 20, 16, 15, 37, 42
DESCRIBE_CONFIGS, TOPIC_RESOURCE = 32, 2
# DescribeConfigs versions we speak: from v1 (config_source) to v4 (flexible). Chosen here
# against the broker's ApiVersions, as the connection does for the APIs of its table.
DESCRIBE_CONFIGS_VERSIONS = (1, 4)
# Kafka's ConfigSource numbers (DescribeConfigsResponse), in words.
CONFIG_SOURCES = {1: "topic", 2: "broker (dynamic)", 3: "broker (dynamic default)", 4: "broker config",
                  5: "default", 6: "broker (dynamic logger)", 7: "client metrics", 8: "group"}


@attrs.frozen
class PartitionDescription:
    partition: int
    leader: int
    log_start_offset: int
    log_end_offset: int


@attrs.frozen
class TopicDescription:
    name: str
    partitions: tuple[PartitionDescription, ...]

    @property
    def messages(self) -> int:
        """Records currently retained (sum of end minus start)."""
        return sum(p.log_end_offset - p.log_start_offset for p in self.partitions)


@attrs.frozen
class ConfigEntry:
    """One setting of a topic, as DescribeConfigs reports it.

    Attributes:
        name: Kafka's name (``retention.ms``).
        value: the effective value (None for a sensitive or unset one).
        source: where it comes from, in words: ``topic`` (set on the topic), ``broker config``
            (the broker's config file changed the default), ``default``...
    """

    name: str
    value: str | None
    source: str
    read_only: bool = False


@attrs.frozen
class GroupListing:
    group_id: str
    protocol_type: str
    state: str = ""


@attrs.frozen
class MemberDescription:
    member_id: str
    client_id: str
    client_host: str
    assignment: tuple[TopicPartition, ...]


@attrs.frozen
class PartitionLag:
    topic: str
    partition: int
    committed: int | None
    log_end_offset: int
    lag: int


@attrs.frozen
class GroupDescription:
    group_id: str
    state: str
    protocol_type: str
    protocol: str
    members: tuple[MemberDescription, ...]
    offsets: tuple[PartitionLag, ...]

    @property
    def total_lag(self) -> int:
        return sum(p.lag for p in self.offsets)


class Admin:
    """Cluster administration (async context manager).

    Args:
        bootstrap: "host:port[,...]".
        request_timeout_ms: per-request deadline (topic creation waits up to this too).
        security: TLS and SASL keyword arguments, named as kafka-python names them:
            ``security_protocol``, ``sasl_mechanism``, ``sasl_plain_username``,
            ``sasl_plain_password``, ``ssl_cafile``, ``ssl_certfile``, ``ssl_keyfile``,
            ``ssl_check_hostname`` (``dualmq.pull.security.ClientSecurity``).
    """

    def __init__(self, bootstrap: str | Iterable[str], *, request_timeout_ms: float = 30_000,
                 client_id: str = "dualmq-admin", **security: Any) -> None:
        self._client = KafkaClient(bootstrap, client_id=client_id, request_timeout=request_timeout_ms / 1000,
                                   security=ClientSecurity(**security))

    async def __aenter__(self) -> Admin:
        await self._client.__aenter__()
        return self

    async def __aexit__(self, *exc_info: object) -> bool:
        await self._client.aclose()
        return False

    def _controller(self) -> int:
        # Topic changes go to the controller in a real cluster (any broker forwards since
        # KIP-590, but the controller is the direct route).
        client = self._client
        return client.controller_id if client.controller_id in client.brokers else client.any_node()

    # --- the broker ----------------------------------------------------------------------------

    async def api_versions(self, node: int | None = None) -> dict[int, tuple[int, int]]:
        """The Kafka APIs a broker serves, as it advertised them in its ApiVersions response.

        What a tool checks before it relies on a feature (kafka-python's admin client calls it
        ``get_api_versions``): a broker without OffsetCommit (API key 8), say, cannot store a
        consumer's position.

        Args:
            node: the broker's node id (default: any broker of the cluster).

        Returns:
            ``{api_key: (min_version, max_version)}``, a copy.

        Raises:
            ConnectionLost, Timeout: the broker cannot be reached.
            DualmqError: ``node`` is not in the cluster metadata.
        """
        connection = await self._client.connection(self._client.any_node() if node is None else node)
        return dict(connection.broker_ranges)

    # --- access control lists -----------------------------------------------------------------

    async def create_acls(self, bindings: Iterable[Acl]) -> None:
        """Add ACL bindings (needs Alter on the cluster; see ``dualmq.pull.acls``).

        Raises:
            KafkaError: SECURITY_DISABLED (no authorizer), CLUSTER_AUTHORIZATION_FAILED,
                INVALID_REQUEST, ... for the first binding refused.
            ValueError: an unknown operation, resource type, pattern or permission name.
        """
        await create_acls(self._client, list(bindings))

    async def describe_acls(self, selection: AclFilter | None = None, **fields: str) -> list[Acl]:
        """The bindings matching ``selection`` (or an ``AclFilter(**fields)``; all by default).

        Raises:
            KafkaError: SECURITY_DISABLED, CLUSTER_AUTHORIZATION_FAILED (needs Describe on the cluster).
        """
        return await describe_acls(self._client, selection or AclFilter(**fields))

    async def delete_acls(self, selection: AclFilter | None = None, **fields: str) -> list[Acl]:
        """Remove the bindings matching ``selection`` (or ``AclFilter(**fields)``); what was removed.

        Raises:
            KafkaError: SECURITY_DISABLED, CLUSTER_AUTHORIZATION_FAILED (needs Alter on the cluster).
        """
        return await delete_acls(self._client, selection or AclFilter(**fields))

    # --- topics --------------------------------------------------------------------------------

    async def create_topics(self, names: str | Iterable[str], partitions: int = 1,
                            config: Mapping[str, str] | None = None, *, replication_factor: int = -1,
                            exist_ok: bool = False) -> None:
        """Create topics.

        Args:
            names: a topic name or several (each gets the same settings).
            partitions: partition count.
            config: topic configs, e.g. ``{"retention.ms": "60000"}``.
            replication_factor: -1 = the broker's default (CreateTopics v4+); else explicit.
            exist_ok: do not raise TOPIC_ALREADY_EXISTS.

        Raises:
            KafkaError: the first per-topic error (INVALID_TOPIC_EXCEPTION, INVALID_PARTITIONS,
                INVALID_CONFIG, TOPIC_ALREADY_EXISTS, ...), with the broker's message.
        """
        names = [names] if isinstance(names, str) else list(names)
        version = await self._client.version(CREATE_TOPICS, self._controller())
        if replication_factor == -1 and (version or 0) < 4:
            replication_factor = 1  # "-1 = default" needs v4; one replica is every broker's default
        configs = [{"name": str(k), "value": None if v is None else str(v)} for k, v in (config or {}).items()]
        reply = await self._client.request(CREATE_TOPICS, {
            "topics": [{"name": n, "num_partitions": partitions, "replication_factor": replication_factor,
                        "assignments": [], "configs": configs} for n in names],
            "timeout_ms": int(self._client.request_timeout * 1000), "validate_only": False,
        }, node=self._controller())
        errors = [(t["name"], t["error_code"], t["error_message"]) for t in reply["topics"]
                  if t["error_code"] != ErrorCode.NONE
                  and not (exist_ok and t["error_code"] == ErrorCode.TOPIC_ALREADY_EXISTS)]
        if errors:
            name, code, message = errors[0]
            raise KafkaError(code, f"{name!r}: {message}" if message else repr(name))
        # Creation is asynchronous in a real cluster: wait until metadata shows leaders.
        for name in names:
            await self._client.topic(name)

    async def create_partitions(self, topic: str, total: int, *, validate_only: bool = False) -> None:
        """Grow ``topic`` to ``total`` partitions (topics never shrink).

        Records already written stay in their partitions, but from now on a key may hash to
        another partition than before: per-key order holds only among records written after
        the change. That is why Kafka asks for this explicitly rather than doing it for you.

        Raises:
            KafkaError: INVALID_PARTITIONS (``total`` not above the current count),
                UNKNOWN_TOPIC_OR_PARTITION, ... with the broker's message.
        """
        reply = await self._client.request(CREATE_PARTITIONS, {
            "topics": [{"name": topic, "count": total, "assignments": None}],
            "timeout_ms": int(self._client.request_timeout * 1000), "validate_only": validate_only,
        }, node=self._controller())
        for result in reply["results"]:
            if result["error_code"] != ErrorCode.NONE:
                raise KafkaError(result["error_code"], f"{topic!r}: {result['error_message'] or ''}")
        if not validate_only:
            await self._client.refresh_metadata([topic])  # our own cache shows the new partitions

    async def delete_topics(self, names: str | Iterable[str], *, missing_ok: bool = False) -> None:
        """Delete topics (and their data).

        Raises:
            KafkaError: e.g. UNKNOWN_TOPIC_OR_PARTITION (unless ``missing_ok``).
        """
        names = [names] if isinstance(names, str) else list(names)
        version = await self._client.version(DELETE_TOPICS, self._controller())
        values = {"timeout_ms": int(self._client.request_timeout * 1000)}
        if (version or 0) >= 6:
            values["topics"] = [{"name": n} for n in names]
        else:
            values["topic_names"] = names
        reply = await self._client.request(DELETE_TOPICS, values, node=self._controller())
        for result in reply["responses"]:
            code = result["error_code"]
            if code == ErrorCode.NONE or (missing_ok and code == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION):
                self._client.topics.pop(result["name"], None)
                continue
            raise KafkaError(code, f"{result['name']!r}: {result['error_message'] or ''}")

    async def list_topics(self, *, internal: bool = False) -> list[str]:
        """Names of every topic (internal ones such as __consumer_offsets only if asked)."""
        found = await self._client.refresh_metadata(None)
        return sorted(name for name, info in found.items()
                      if info.error_code == ErrorCode.NONE and (internal or not info.is_internal))

    async def describe_topics(self, names: str | Iterable[str] | None = None) -> list[TopicDescription]:
        """Partitions, leaders and log start/end offsets of the given topics (default: all).

        Raises:
            KafkaError: a named topic does not exist.
        """
        if names is None:
            names = await self.list_topics()
        names = [names] if isinstance(names, str) else list(names)
        found = await self._client.refresh_metadata(names)
        for name in names:
            info = found.get(name)
            if info is None or info.error_code != ErrorCode.NONE:
                raise KafkaError(info.error_code if info else ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, repr(name))
        tps = [(n, p) for n in names for p in found[n].partitions]
        starts = await list_offsets(self._client, {tp: EARLIEST for tp in tps})
        ends = await list_offsets(self._client, {tp: LATEST for tp in tps})
        return [TopicDescription(n, tuple(
            PartitionDescription(p, found[n].partitions[p], starts[(n, p)][0], ends[(n, p)][0])
            for p in sorted(found[n].partitions))) for n in names]

    async def describe_configs(self, names: str | Iterable[str]) -> dict[str, tuple[ConfigEntry, ...]]:
        """The effective configuration of topics (DescribeConfigs), e.g. ``retention.ms``.

        Returns:
            topic -> its settings, in the broker's order.

        Raises:
            KafkaError: a topic does not exist (UNKNOWN_TOPIC_OR_PARTITION) or another error.
            UnsupportedVersion: the broker does not serve DescribeConfigs v1-4.
        """
        names = [names] if isinstance(names, str) else list(names)
        connection = await self._client.connection(self._controller())
        theirs = connection.broker_ranges.get(DESCRIBE_CONFIGS)
        low, high = DESCRIBE_CONFIGS_VERSIONS
        if theirs is None or min(high, theirs[1]) < max(low, theirs[0]):
            raise UnsupportedVersion(f"broker {connection.address} does not serve DescribeConfigs v{low}-{high}")
        reply = await connection.request(DESCRIBE_CONFIGS, {
            "resources": [{"resource_type": TOPIC_RESOURCE, "resource_name": name, "configuration_keys": None}
                          for name in names],
            "include_synonyms": False, "include_documentation": False,
        }, timeout=self._client.request_timeout, version=min(high, theirs[1]))
        described = {}
        for result in reply["results"]:
            if result["error_code"] != ErrorCode.NONE:
                raise KafkaError(result["error_code"], result["error_message"] or repr(result["resource_name"]))
            described[result["resource_name"]] = tuple(
                ConfigEntry(c["name"], c["value"], CONFIG_SOURCES.get(c["config_source"], "unknown"), c["read_only"])
                for c in result["configs"])
        return described

    # --- groups -------------------------------------------------------------------------------------

    async def list_groups(self) -> list[GroupListing]:
        """Every group known to any broker of the cluster."""
        listings = {}
        for node in sorted(self._client.brokers):
            reply = await self._client.request(LIST_GROUPS, {"states_filter": []}, node=node)
            if reply["error_code"] != ErrorCode.NONE:
                raise KafkaError(reply["error_code"], "ListGroups")
            for group in reply["groups"]:
                listings[group["group_id"]] = GroupListing(group["group_id"], group["protocol_type"],
                                                           group["group_state"])
        return [listings[g] for g in sorted(listings)]

    async def describe_group(self, group_id: str) -> GroupDescription:
        """State, members with their assignments, and per-partition committed offsets and lag.

        Raises:
            KafkaError: the coordinator reported an error for the group.
        """
        node = await self._client.coordinator(group_id)
        reply = await self._client.request(DESCRIBE_GROUPS, {"groups": [group_id],
                                                             "include_authorized_operations": False}, node=node)
        described = reply["groups"][0]
        if described["error_code"] != ErrorCode.NONE:
            raise KafkaError(described["error_code"], f"DescribeGroups {group_id!r}")
        members = []
        for member in described["members"]:
            assignment: tuple[TopicPartition, ...] = ()
            if described["protocol_type"] == "consumer" and member["member_assignment"]:
                try:
                    assignment = tuple(sorted(decode_assignment(member["member_assignment"])))
                except RemoteProtocolError:  # another protocol's bytes under type "consumer"
                    assignment = ()
            members.append(MemberDescription(member["member_id"], member["client_id"], member["client_host"],
                                             assignment))
        offsets = await self._group_offsets(group_id, {tp for m in members for tp in m.assignment})
        return GroupDescription(group_id, described["group_state"], described["protocol_type"],
                                described["protocol_data"], tuple(members), offsets)

    async def delete_group(self, group_id: str, *, missing_ok: bool = False) -> None:
        """Delete a consumer group and its committed offsets.

        Only a group without members can be deleted (stop its consumers first); a consumer that
        later uses the name starts over from its ``auto_offset_reset``.

        Raises:
            KafkaError: NON_EMPTY_GROUP, GROUP_ID_NOT_FOUND (unless ``missing_ok``), ...
        """
        node = await self._client.coordinator(group_id)
        reply = await self._client.request(DELETE_GROUPS, {"groups_names": [group_id]}, node=node)
        for result in reply["results"]:
            code = result["error_code"]
            if code == ErrorCode.NONE or (missing_ok and code == ErrorCode.GROUP_ID_NOT_FOUND):
                continue
            raise KafkaError(code, f"DeleteGroups {result['group_id']!r}")

    async def _group_offsets(self, group_id: str, assigned: set[TopicPartition]) -> tuple[PartitionLag, ...]:
        # OffsetFetch with a null topic list (v2+) returns every partition with a commit.
        node = await self._client.coordinator(group_id)
        reply = await self._client.request(9, {"group_id": group_id, "topics": None, "require_stable": False},
                                           node=node)
        committed: dict[TopicPartition, int | None] = {tp: None for tp in assigned}
        for topic in reply["topics"]:
            for part in topic["partitions"]:
                if part["error_code"] == ErrorCode.NONE and part["committed_offset"] >= 0:
                    committed[(topic["name"], part["partition_index"])] = part["committed_offset"]
        if not committed:
            return ()
        for topic in {t for t, _ in committed}:
            await self._client.topic(topic)
        ends = await list_offsets(self._client, {tp: LATEST for tp in committed})
        starts = await list_offsets(self._client, {tp: EARLIEST for tp in committed if committed[tp] is None})
        result = []
        for tp in sorted(committed):
            end = ends[tp][0]
            base = committed[tp] if committed[tp] is not None else starts[tp][0]
            result.append(PartitionLag(tp[0], tp[1], committed[tp], end, max(0, end - base)))
        return tuple(result)

    async def committed_offsets(self, group_id: str, partitions: Iterable[TopicPartition]) -> dict[TopicPartition, int | None]:
        """A group's committed offsets for the given partitions (None = nothing committed)."""
        return await fetch_committed(self._client, group_id, partitions)

