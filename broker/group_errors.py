"""Outcome names for consumer groups, committed offsets and idempotent producers.

What lives here: ``ErrorKind``, one enum naming every outcome that ``broker.groups``,
``broker.offsets`` and ``broker.producers`` can hand back to a front-end. ``GroupErrorKind`` is
the same enum under the name the group code reads best with.

What does not: numbers. The core must not know Kafka's wire types, but it may use Kafka's
*semantics*, so each member is spelled exactly like Kafka's error (``Errors.java``). The pull
front-end maps them to wire codes in one place, which is as simple as::

    KAFKA_CODE = {kind: getattr(wire.kafka.errors, kind.name) for kind in ErrorKind}

Why outcomes and not exceptions: almost every group request has an "error" that is a perfectly
normal answer (REBALANCE_IN_PROGRESS tells a consumer to re-join; UNKNOWN_MEMBER_ID tells it to
start over). They are results, not failures, so they travel as values. Exceptions
(``broker.errors.BrokerError`` subclasses) are kept for bugs in the caller and broken files.
"""

from __future__ import annotations

import enum

__all__ = ["ErrorKind", "GroupErrorKind"]


class ErrorKind(enum.Enum):
    """One outcome; the member name is the Kafka error name the front-end maps it to."""

    NONE = "NONE"

    # --- group membership (GUIDE §4.1) ---
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
    # DeleteGroups: no such group / the group still has members.
    GROUP_ID_NOT_FOUND = "GROUP_ID_NOT_FOUND"
    NON_EMPTY_GROUP = "NON_EMPTY_GROUP"

    # --- committed offsets (GUIDE §4.2) ---
    OFFSET_METADATA_TOO_LARGE = "OFFSET_METADATA_TOO_LARGE"

    # --- idempotent producers (GUIDE §2.7, §3.3) ---
    OUT_OF_ORDER_SEQUENCE_NUMBER = "OUT_OF_ORDER_SEQUENCE_NUMBER"
    INVALID_PRODUCER_EPOCH = "INVALID_PRODUCER_EPOCH"
    # Kafka answers a retried duplicate with NONE and the original offset; this name exists for
    # completeness (Produce never needs it with our duplicate handling).
    DUPLICATE_SEQUENCE_NUMBER = "DUPLICATE_SEQUENCE_NUMBER"
    UNKNOWN_PRODUCER_ID = "UNKNOWN_PRODUCER_ID"
    # InitProducerId with a transactional id: we implement no transaction coordinator.
    # Suggested wire mapping: INVALID_REQUEST (42); kafka-python and librdkafka only send a
    # transactional id when the user configured transactions.
    TRANSACTIONS_UNSUPPORTED = "TRANSACTIONS_UNSUPPORTED"

    @property
    def ok(self) -> bool:
        return self is ErrorKind.NONE


GroupErrorKind = ErrorKind
