"""Consumer-group membership (Kafka's classic protocol) and committed offsets.

What lives here: ``GroupMember`` — find the coordinator, JoinGroup, SyncGroup (computing the
assignment when we are the leader), Heartbeat in a background loop, LeaveGroup; and the group's
offsets: OffsetCommit, OffsetFetch. What does not: fetching records, positions and the rebalance
*callbacks* (the ``Consumer``, in ``consumer``, decides when to rejoin and what to do
around it), and the assignors themselves (``assignors``).

The protocol in one paragraph: every member sends JoinGroup with its subscription;
the coordinator waits until all current members have (re)joined, picks a leader and a common
assignor, and answers — the leader gets everyone's subscriptions. Every member then sends
SyncGroup; the leader's carries the assignment for all, and each member receives its own part.
Afterwards members heartbeat; a heartbeat answered REBALANCE_IN_PROGRESS means "join again"
(someone arrived, left or timed out). A generation id numbers each completed rebalance, and the
coordinator refuses heartbeats and commits from an older generation (ILLEGAL_GENERATION), which
is how a member that slept through a rebalance learns it no longer owns its partitions.

Two error dances every client must do: JoinGroup v4+ with an empty member id is answered
MEMBER_ID_REQUIRED *with* a fresh member id, to be sent back in an immediate re-join (so the
coordinator can time out members it never heard from again); UNKNOWN_MEMBER_ID means "forget
your id and join as new".
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

import trio

from dualmq.errors import CommitFailed, ConnectionLost, KafkaError, Timeout
from dualmq.pull.assignors import (
    ASSIGNORS,
    decode_assignment,
    decode_subscription,
    encode_assignment,
    encode_subscription,
)
from dualmq.pull.client import KafkaClient, deadline
from dualmq.pull.records import TopicPartition
from dualmq.sdk_logging import get_logger
from wire.kafka.errors import ErrorCode

__all__ = ["GroupMember", "commit_offsets", "fetch_committed"]

log = get_logger(__name__)

OFFSET_COMMIT, OFFSET_FETCH, JOIN_GROUP, HEARTBEAT, LEAVE_GROUP, SYNC_GROUP = 8, 9, 11, 12, 13, 14

# Errors after which the coordinator must be looked up again (it moved, or is starting).
_COORDINATOR_ERRORS = frozenset({ErrorCode.COORDINATOR_NOT_AVAILABLE, ErrorCode.NOT_COORDINATOR})
_REJOIN_ERRORS = frozenset({ErrorCode.REBALANCE_IN_PROGRESS, ErrorCode.ILLEGAL_GENERATION,
                            ErrorCode.UNKNOWN_MEMBER_ID})


class GroupMember:
    """Our membership in one consumer group.

    Args:
        client: the consumer's ``KafkaClient``.
        group_id: the group.
        topics: the subscription.
        assignors: assignor names in order of preference (each must be in ``ASSIGNORS``).
        session_timeout: seconds without heartbeat after which the coordinator drops us.
        rebalance_timeout: seconds the coordinator waits for members to rejoin.
        heartbeat_interval: seconds between heartbeats (Kafka: a third of the session or less).
        metadata_max_age: seconds between the leader's looks at the subscribed topics'
            partition counts (Kafka's metadata.max.age.ms, default 5 minutes). A topic that
            grew (CreatePartitions) makes the leader rejoin, so the new partitions get an
            owner; without it their records would go unread by the group until the next
            rebalance for another reason.
    """

    def __init__(self, client: KafkaClient, group_id: str, topics: Iterable[str], *,
                 assignors: Iterable[str] = ("range", "roundrobin"), session_timeout: float = 45.0,
                 rebalance_timeout: float = 60.0, heartbeat_interval: float = 3.0,
                 metadata_max_age: float = 300.0) -> None:
        self.client = client
        self.group_id = group_id
        self.topics = sorted(set(topics))
        self.assignors = list(assignors)
        for name in self.assignors:
            if name not in ASSIGNORS:
                raise ValueError(f"unknown assignor {name!r} (known: {sorted(ASSIGNORS)})")
        self.session_timeout = session_timeout
        self.rebalance_timeout = rebalance_timeout
        self.heartbeat_interval = heartbeat_interval
        self.metadata_max_age = metadata_max_age
        # As leader: the partition counts the current assignment was computed from.
        self.assigned_counts: dict[str, int] | None = None
        self.member_id = ""
        self.generation = -1
        self.leader = ""
        self.protocol: str | None = None
        self.needs_rejoin = True
        self.rejoin_needed_event = trio.Event()

    # --- join / sync --------------------------------------------------------------------------

    async def join(self) -> list[TopicPartition]:
        """(Re)join the group and return our assignment. Retries until it succeeds.

        Raises:
            KafkaError: a non-retriable group error (e.g. INCONSISTENT_GROUP_PROTOCOL).
            Timeout: not done within the rebalance timeout plus the request timeout.
            ConnectionLost: no broker reachable for longer than the request timeout.
        """
        with deadline(self.rebalance_timeout + self.client.request_timeout, f"joining group {self.group_id!r}"):
            while True:
                self.client.check_reachable()
                try:
                    assignment = await self._join_once()
                except (ConnectionLost, Timeout) as exc:  # finding the coordinator failed
                    log.debug("group_join_retried", group=self.group_id, error=str(exc))
                    self.client.forget_coordinator(self.group_id)
                    assignment = None
                if assignment is not None:
                    self.needs_rejoin = False
                    self.rejoin_needed_event = trio.Event()
                    log.info("group_joined", group=self.group_id, member=self.member_id,
                             generation=self.generation, leader=self.leader == self.member_id,
                             protocol=self.protocol, assignment=sorted(assignment))
                    return assignment
                await trio.sleep(0.05)

    async def _join_once(self) -> list[TopicPartition] | None:
        node = await self.client.coordinator(self.group_id)
        protocols = [{"name": name, "metadata": encode_subscription(self.topics)} for name in self.assignors]
        try:
            reply = await self.client.request(JOIN_GROUP, {
                "group_id": self.group_id, "session_timeout_ms": int(self.session_timeout * 1000),
                "rebalance_timeout_ms": int(self.rebalance_timeout * 1000), "member_id": self.member_id,
                "group_instance_id": None, "protocol_type": "consumer", "protocols": protocols,
            }, node=node, purpose="group", timeout=self.rebalance_timeout + self.client.request_timeout)
        except (ConnectionLost, Timeout) as exc:
            log.debug("group_join_retried", group=self.group_id, error=str(exc))
            self.client.forget_coordinator(self.group_id)
            return None
        code = reply["error_code"]
        if code == ErrorCode.MEMBER_ID_REQUIRED:
            self.member_id = reply["member_id"]
            return None
        if not self._handle_error(code, "JoinGroup"):
            return None
        self.member_id = reply["member_id"]
        self.generation = reply["generation_id"]
        self.leader = reply["leader"]
        self.protocol = reply["protocol_name"]
        assignments = []
        self.assigned_counts = None
        if self.leader == self.member_id:
            assignments = await self._assign(reply["members"])
        try:
            reply = await self.client.request(SYNC_GROUP, {
                "group_id": self.group_id, "generation_id": self.generation, "member_id": self.member_id,
                "group_instance_id": None, "assignments": assignments,
            }, node=node, purpose="group", timeout=self.rebalance_timeout + self.client.request_timeout)
        except (ConnectionLost, Timeout) as exc:
            log.debug("group_sync_retried", group=self.group_id, error=str(exc))
            return None
        if not self._handle_error(reply["error_code"], "SyncGroup"):
            return None
        return decode_assignment(reply["assignment"])

    async def _assign(self, members: list[dict]) -> list[dict]:
        """As leader: compute every member's partitions with the chosen assignor."""
        subscriptions = {m["member_id"]: decode_subscription(m["metadata"]).topics for m in members}
        wanted = sorted({t for topics in subscriptions.values() for t in topics})
        found = await self.client.refresh_metadata(wanted)
        counts = {name: len(info.partitions) for name, info in found.items() if info.error_code == ErrorCode.NONE}
        assignor = ASSIGNORS.get(self.protocol)
        if assignor is None:  # the coordinator only picks names every member listed, ours included
            raise KafkaError(ErrorCode.INCONSISTENT_GROUP_PROTOCOL, f"unknown assignor {self.protocol!r}")
        plan = assignor(subscriptions, counts)
        self.assigned_counts = counts
        return [{"member_id": member, "assignment": encode_assignment(tps)} for member, tps in plan.items()]

    def _handle_error(self, code: int, what: str) -> bool:
        """True for success; False if the caller should retry the join; raises otherwise."""
        if code == ErrorCode.NONE:
            return True
        if code == ErrorCode.UNKNOWN_MEMBER_ID:
            self.member_id = ""
            self.generation = -1
            return False
        if code in (ErrorCode.REBALANCE_IN_PROGRESS, ErrorCode.ILLEGAL_GENERATION,
                    ErrorCode.COORDINATOR_LOAD_IN_PROGRESS):
            return False
        if code in _COORDINATOR_ERRORS:
            self.client.forget_coordinator(self.group_id)
            return False
        raise KafkaError(code, f"{what} for group {self.group_id!r}")

    # --- heartbeats -----------------------------------------------------------------------------

    def request_rejoin(self, reason: str) -> None:
        if not self.needs_rejoin:
            log.info("group_rejoin_needed", group=self.group_id, reason=reason)
        self.needs_rejoin = True
        self.rejoin_needed_event.set()

    async def heartbeat_loop(self, on_rejoin_needed: Callable[[], None]) -> None:
        """Heartbeat every ``heartbeat_interval`` while we are a stable member. Runs until cancelled.

        Args:
            on_rejoin_needed: called when the coordinator says we must rejoin (to wake the
                consumer if it is waiting for records).
        """
        while True:
            await trio.sleep(self.heartbeat_interval)
            if self.needs_rejoin or self.generation < 0:
                continue
            try:
                node = await self.client.coordinator(self.group_id)
                reply = await self.client.request(HEARTBEAT, {
                    "group_id": self.group_id, "generation_id": self.generation, "member_id": self.member_id,
                    "group_instance_id": None}, node=node, purpose="group")
            except (ConnectionLost, Timeout, KafkaError) as exc:
                log.debug("heartbeat_failed", group=self.group_id, error=str(exc))
                self.client.forget_coordinator(self.group_id)
                continue
            code = reply["error_code"]
            if code == ErrorCode.NONE:
                continue
            if code in _COORDINATOR_ERRORS:
                self.client.forget_coordinator(self.group_id)
                continue
            if code == ErrorCode.UNKNOWN_MEMBER_ID:
                self.member_id = ""
            self.request_rejoin(ErrorCode.lookup(code).name if code in _REJOIN_ERRORS else f"heartbeat error {code}")
            on_rejoin_needed()

    async def metadata_loop(self, on_rejoin_needed: Callable[[], None]) -> None:
        """As leader, every ``metadata_max_age``: rejoin if a subscribed topic's partition count
        changed since the assignment was computed (Kafka's leader does the same: only it knows
        what the assignment was based on). Runs until cancelled."""
        while True:
            await trio.sleep(self.metadata_max_age)
            assigned = self.assigned_counts
            if assigned is None or self.needs_rejoin:
                continue
            try:
                found = await self.client.refresh_metadata(sorted(assigned))
            except (ConnectionLost, Timeout) as exc:
                log.debug("metadata_refresh_failed", group=self.group_id, error=str(exc))
                continue
            now = {name: len(info.partitions) for name, info in found.items() if info.error_code == ErrorCode.NONE}
            if now != assigned and self.assigned_counts is assigned:
                log.info("group_partitions_changed", group=self.group_id, before=assigned, now=now)
                self.request_rejoin("subscribed topics' partitions changed")
                on_rejoin_needed()

    async def leave(self) -> None:
        """Leave the group so it rebalances now rather than after our session timeout."""
        if not self.member_id:
            return
        try:
            node = await self.client.coordinator(self.group_id)
            version = (await self.client.connection(node, "group")).versions.get(LEAVE_GROUP, 0)
            values = {"group_id": self.group_id}
            if version >= 3:
                values["members"] = [{"member_id": self.member_id, "group_instance_id": None}]
            else:
                values["member_id"] = self.member_id
            with trio.move_on_after(self.client.request_timeout):
                await self.client.request(LEAVE_GROUP, values, node=node, purpose="group")
        except (ConnectionLost, Timeout, KafkaError) as exc:
            log.debug("group_leave_failed", group=self.group_id, error=str(exc))
        self.member_id = ""
        self.generation = -1


# --- offsets ----------------------------------------------------------------------------------------

async def commit_offsets(client: KafkaClient, group_id: str, offsets: Mapping[TopicPartition, int], *,
                         generation: int = -1, member_id: str = "", metadata: str = "",
                         member: GroupMember | None = None) -> None:
    """OffsetCommit: store "next offset to consume" per partition for ``group_id``.

    Args:
        offsets: (topic, partition) -> the next offset to read (last processed + 1).
        generation, member_id: the member's current generation and id; -1 and "" commit
            outside any membership (manual assignment), which Kafka accepts for groups with no
            active members.
        member: if given, a rebalance error asks it to rejoin.

    Raises:
        CommitFailed: the group rebalanced; the offsets were not stored.
        KafkaError: another error; Timeout: coordinator unreachable.
    """
    if not offsets:
        return
    topics: dict[str, list[dict]] = {}
    for (topic, partition), offset in sorted(offsets.items()):
        topics.setdefault(topic, []).append({"partition_index": partition, "committed_offset": offset,
                                             "committed_leader_epoch": -1, "committed_metadata": metadata})
    request = {"group_id": group_id, "generation_id_or_member_epoch": generation, "member_id": member_id,
               "group_instance_id": None, "retention_time_ms": -1,
               "topics": [{"name": t, "partitions": ps} for t, ps in topics.items()]}
    delay = 0.05
    with deadline(client.request_timeout, f"committing offsets of group {group_id!r}"):
        while True:
            reply = await _ask_coordinator(client, group_id, OFFSET_COMMIT, request, delay)
            codes = {p["error_code"] for t in reply["topics"] for p in t["partitions"]} - {ErrorCode.NONE}
            if not codes:
                return
            if codes & _REJOIN_ERRORS:
                if member is not None:
                    member.request_rejoin("commit refused")
                raise CommitFailed(f"commit for group {group_id!r} refused "
                                   f"({', '.join(ErrorCode.lookup(c).name for c in codes & _REJOIN_ERRORS)}): "
                                   "the group rebalanced")
            if codes & _COORDINATOR_ERRORS:
                client.forget_coordinator(group_id)
            elif not all(KafkaError(c).retriable for c in codes):
                raise KafkaError(min(codes), f"OffsetCommit for group {group_id!r}")
            await trio.sleep(delay)
            delay = min(delay * 2, 1.0)


async def _ask_coordinator(client: KafkaClient, group_id: str, api_key: int, request: dict,
                           delay: float) -> dict:
    """Send ``request`` to the group's coordinator, finding it again after a lost connection.

    A broker that cannot be reached is retried (the client paces the connection attempts) until
    the caller's deadline.
    """
    while True:
        try:
            node = await client.coordinator(group_id)
            return await client.request(api_key, request, node=node, purpose="group")
        except ConnectionLost:
            client.forget_coordinator(group_id)
            client.check_reachable()  # gives up once the outage outlasts the budget
            await trio.sleep(delay)


async def fetch_committed(client: KafkaClient, group_id: str,
                          partitions: Iterable[TopicPartition]) -> dict[TopicPartition, int | None]:
    """OffsetFetch: the committed offsets of ``partitions`` (None where nothing is committed).

    Raises:
        KafkaError: a non-retriable error; Timeout: coordinator unreachable.
    """
    partitions = sorted(set(partitions))
    if not partitions:
        return {}
    topics: dict[str, list[int]] = {}
    for topic, partition in partitions:
        topics.setdefault(topic, []).append(partition)
    request = {"group_id": group_id, "require_stable": False,
               "topics": [{"name": t, "partition_indexes": ps} for t, ps in topics.items()]}
    delay = 0.05
    with deadline(client.request_timeout, f"reading committed offsets of group {group_id!r}"):
        while True:
            reply = await _ask_coordinator(client, group_id, OFFSET_FETCH, request, delay)
            codes = {reply["error_code"]} | {p["error_code"] for t in reply["topics"] for p in t["partitions"]}
            codes -= {ErrorCode.NONE, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION}
            if not codes:
                result: dict[TopicPartition, int | None] = {tp: None for tp in partitions}
                for topic in reply["topics"]:
                    for part in topic["partitions"]:
                        offset = part["committed_offset"]
                        result[(topic["name"], part["partition_index"])] = offset if offset >= 0 else None
                return result
            if codes & _COORDINATOR_ERRORS:
                client.forget_coordinator(group_id)
            elif not all(KafkaError(c).retriable for c in codes):
                raise KafkaError(min(codes), f"OffsetFetch for group {group_id!r}")
            await trio.sleep(delay)
            delay = min(delay * 2, 1.0)
