"""The outcome of a group, committed-offset or idempotent-producer request, as a value.

What lives here: ``ErrorKind``, one enum naming every outcome that ``broker.groups``,
``broker.offsets`` and ``broker.producers`` can hand back to a front-end; ``ErrorKind.NONE``
is success, as Kafka's error code 0 is called NONE.

What does not: numbers. The core must not know Kafka's wire types, but it may use Kafka's
*semantics*, so each member is spelled exactly like Kafka's error (``Errors.java``). The pull
front-end maps them to wire codes in one place (``modes/pull/errors.py``), by name::

    KIND_CODES = {kind: ErrorCode[kind.name] for kind in ErrorKind}   # plus one override

Why the name ``ErrorKind`` and not ``Outcome``: every value is one of Kafka's error names,
success included, so ``ErrorKind.NONE`` reads as what it is ("no error") where
``Outcome.NONE`` would read as "no outcome"; and the front-end's mapping speaks of kinds.

Why outcomes and not exceptions: almost every group request has an "error" that is a perfectly
normal answer (REBALANCE_IN_PROGRESS tells a consumer to re-join; UNKNOWN_MEMBER_ID tells it to
start over). They are results, not failures, so they travel as values. Exceptions
(``broker.errors.BrokerError`` subclasses) are kept for bugs in the caller and broken files.
"""

from __future__ import annotations

import enum

__all__ = ["ErrorKind"]


class ErrorKind(enum.Enum):
    """One outcome; the member name is the Kafka error name the front-end maps it to."""

    NONE = "NONE"

    # --- consumer-group membership (JoinGroup, SyncGroup, Heartbeat, LeaveGroup) ---
    # The group id is empty: no group can be called "".
    INVALID_GROUP_ID = "INVALID_GROUP_ID"
    # The member id is not (or no longer) in the group: the client must join afresh with "".
    UNKNOWN_MEMBER_ID = "UNKNOWN_MEMBER_ID"
    # The member speaks for a generation that is over: it must re-join.
    ILLEGAL_GENERATION = "ILLEGAL_GENERATION"
    # A rebalance is running (or a commit arrived before SyncGroup finished): re-join / retry.
    REBALANCE_IN_PROGRESS = "REBALANCE_IN_PROGRESS"
    # Protocol type differs from the group's, or no assignor is common to all members.
    INCONSISTENT_GROUP_PROTOCOL = "INCONSISTENT_GROUP_PROTOCOL"
    # session_timeout_ms outside [group_min_session_timeout_ms, group_max_session_timeout_ms].
    INVALID_SESSION_TIMEOUT = "INVALID_SESSION_TIMEOUT"
    # JoinGroup v4+ first round: "here is your member id, join again with it".
    MEMBER_ID_REQUIRED = "MEMBER_ID_REQUIRED"
    # A static member (group.instance.id) was replaced by a newer incarnation of itself.
    FENCED_INSTANCE_ID = "FENCED_INSTANCE_ID"
    # The group is being deleted (state Dead).
    COORDINATOR_NOT_AVAILABLE = "COORDINATOR_NOT_AVAILABLE"
    # Cluster mode: another broker coordinates the group (its __consumer_offsets partition's
    # leader), or this one is still reading that partition (docs/cluster.md#groups).
    NOT_COORDINATOR = "NOT_COORDINATOR"
    COORDINATOR_LOAD_IN_PROGRESS = "COORDINATOR_LOAD_IN_PROGRESS"
    # DeleteGroups: no such group / the group still has members.
    GROUP_ID_NOT_FOUND = "GROUP_ID_NOT_FOUND"
    NON_EMPTY_GROUP = "NON_EMPTY_GROUP"
    # The principal may not use this group (the authorizer said no; pull mode decides it).
    GROUP_AUTHORIZATION_FAILED = "GROUP_AUTHORIZATION_FAILED"

    # --- committed offsets (OffsetCommit) ---
    # The metadata string a consumer stores with its offset is longer than the broker keeps.
    OFFSET_METADATA_TOO_LARGE = "OFFSET_METADATA_TOO_LARGE"

    # --- idempotent producers (InitProducerId, Produce) ---
    # A batch's first sequence number is not the one after the last accepted batch's.
    OUT_OF_ORDER_SEQUENCE_NUMBER = "OUT_OF_ORDER_SEQUENCE_NUMBER"
    # The producer id is known but a newer epoch of it exists (a zombie producer).
    INVALID_PRODUCER_EPOCH = "INVALID_PRODUCER_EPOCH"
    # Kafka answers a retried duplicate with NONE and the original offset; this name exists for
    # completeness (Produce never needs it with our duplicate handling).
    DUPLICATE_SEQUENCE_NUMBER = "DUPLICATE_SEQUENCE_NUMBER"
    # InitProducerId names a producer id the broker never issued.
    UNKNOWN_PRODUCER_ID = "UNKNOWN_PRODUCER_ID"
    # InitProducerId with a transactional id: we implement no transaction coordinator.
    # Suggested wire mapping: INVALID_REQUEST (42); kafka-python and librdkafka only send a
    # transactional id when the user configured transactions.
    TRANSACTIONS_UNSUPPORTED = "TRANSACTIONS_UNSUPPORTED"

    @property
    def ok(self) -> bool:
        return self is ErrorKind.NONE
