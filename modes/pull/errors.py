"""The one place where broker-core errors become Kafka error codes (pull mode).

The core (``broker/``) raises domain errors in its own words (``UnknownTopic``,
``OffsetOutOfRange`` ...) and knows nothing of Kafka's error codes; push mode maps the same
errors to RESP replies in its own single place. A batch that is not acceptable raises one of
the batch format's own errors (``wire.kafka.batch``: ``CorruptBatch``, ``BatchTooLarge`` ...),
wherever it is found — the log's append or a handler's own look at the bytes; they are
mapped here too. Handlers call :func:`error_code_for` instead of catching and translating ad
hoc, so every API reports the same condition with the same code.
"""

from __future__ import annotations

from broker.errors import (
    BrokerError,
    ConfigError,
    InvalidPartitions,
    InvalidTopic,
    OffsetOutOfRange,
    TopicExists,
    UnknownTopic,
)
from broker.cluster.model import CoordinationError, InvalidReplicationFactor, NotController
from broker.outcome import ErrorKind
from wire.kafka.batch import BatchTooLarge, CorruptBatch, InvalidBatch, UnsupportedBatchFormat
from wire.kafka.errors import ErrorCode


class CloseConnection(Exception):
    """Kafka's answer to this request is to close the connection (no response is sent).

    Raised by the server for an unknown API key or an unadvertised version, and by Produce for
    a failed ``acks=0`` request: the client expects no response, so closing is the only way
    to tell it something went wrong (it then refreshes its metadata).
    """

# Most specific first is irrelevant here (no subclassing among them), but keep it a table so a
# reader sees the whole mapping at a glance. The codes mean what Kafka's protocol says they do:
# OFFSET_OUT_OF_RANGE makes a consumer apply its reset policy, CORRUPT_MESSAGE and
# MESSAGE_TOO_LARGE are reported to the producer's application, and so on.
_CODES: tuple[tuple[type[BrokerError] | type[InvalidBatch], ErrorCode], ...] = (
    (UnknownTopic, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION),
    (InvalidTopic, ErrorCode.INVALID_TOPIC_EXCEPTION),
    (TopicExists, ErrorCode.TOPIC_ALREADY_EXISTS),
    (InvalidPartitions, ErrorCode.INVALID_PARTITIONS),
    (OffsetOutOfRange, ErrorCode.OFFSET_OUT_OF_RANGE),
    (CorruptBatch, ErrorCode.CORRUPT_MESSAGE),
    # A legacy MessageSet (magic 0/1), or not exactly one batch in a Produce.
    (UnsupportedBatchFormat, ErrorCode.INVALID_RECORD),
    (BatchTooLarge, ErrorCode.MESSAGE_TOO_LARGE),
    (ConfigError, ErrorCode.INVALID_CONFIG),
    # Cluster mode (docs/cluster.md): only the controller creates topics; etcd unreachable is
    # retriable, as a request that timed out.
    (NotController, ErrorCode.NOT_CONTROLLER),
    (InvalidReplicationFactor, ErrorCode.INVALID_REPLICATION_FACTOR),
    (CoordinationError, ErrorCode.REQUEST_TIMED_OUT),
)


# The group coordinator, offset store and producer tables answer with ``ErrorKind`` values
# named exactly like Kafka's errors, so the mapping is by name — except for the one outcome
# Kafka has no name for: a transactional id given to InitProducerId. We implement no
# transaction coordinator, so, as for any request asking for something the broker does not
# do, the answer is INVALID_REQUEST (non-retriable: a client must not retry forever).
_KIND_OVERRIDES = {ErrorKind.TRANSACTIONS_UNSUPPORTED: ErrorCode.INVALID_REQUEST}
KIND_CODES: dict[ErrorKind, ErrorCode] = {
    kind: _KIND_OVERRIDES.get(kind) or ErrorCode[kind.name] for kind in ErrorKind
}


def code_for_kind(kind: ErrorKind) -> ErrorCode:
    """The Kafka error code for an outcome of the group / offset / producer core."""
    return KIND_CODES[kind]


def error_code_for(exc: BaseException) -> ErrorCode:
    """The Kafka error code reporting ``exc``.

    A ``BrokerError`` or a batch format error maps by type; an ``OSError`` (the disk failed
    under an append or read) is Kafka's KAFKA_STORAGE_ERROR; anything else is
    UNKNOWN_SERVER_ERROR.
    """
    for kind, code in _CODES:
        if isinstance(exc, kind):
            return code
    if isinstance(exc, OSError):
        return ErrorCode.KAFKA_STORAGE_ERROR
    return ErrorCode.UNKNOWN_SERVER_ERROR
