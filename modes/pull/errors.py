"""The one place where broker-core errors become Kafka error codes (pull mode).

The core (``broker/``) raises domain errors in its own words (``UnknownTopic``,
``BatchTooLarge`` ...) and knows nothing of Kafka; push mode maps the same errors to RESP
replies in its own single place. Handlers call :func:`error_code_for` instead of catching and
translating ad hoc, so every API reports the same condition with the same code.
"""

from __future__ import annotations

from broker.errors import (
    BatchTooLarge,
    BrokerError,
    ConfigError,
    CorruptBatch,
    InvalidTopic,
    OffsetOutOfRange,
    TopicExists,
    UnknownTopic,
)
from wire.kafka.errors import ErrorCode


class CloseConnection(Exception):
    """Kafka's answer to this request is to close the connection (no response is sent).

    Raised by the server for an unknown API key or an unadvertised version, and by Produce for
    a failed ``acks=0`` request: the client expects no response, so closing is the only way
    to tell it something went wrong (it then refreshes its metadata).
    """

# Most specific first is irrelevant here (no subclassing among them), but keep it a table so a
# reader sees the whole mapping at a glance. GUIDE §5 for the meaning of each code.
_CODES: tuple[tuple[type[BrokerError], ErrorCode], ...] = (
    (UnknownTopic, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION),
    (InvalidTopic, ErrorCode.INVALID_TOPIC_EXCEPTION),
    (TopicExists, ErrorCode.TOPIC_ALREADY_EXISTS),
    (OffsetOutOfRange, ErrorCode.OFFSET_OUT_OF_RANGE),
    (CorruptBatch, ErrorCode.CORRUPT_MESSAGE),
    (BatchTooLarge, ErrorCode.MESSAGE_TOO_LARGE),
    (ConfigError, ErrorCode.INVALID_CONFIG),
)


def error_code_for(exc: BaseException) -> ErrorCode:
    """The Kafka error code reporting ``exc``.

    A ``BrokerError`` maps by type; an ``OSError`` (the disk failed under an append or read) is
    Kafka's KAFKA_STORAGE_ERROR; anything else is UNKNOWN_SERVER_ERROR.
    """
    for kind, code in _CODES:
        if isinstance(exc, kind):
            return code
    if isinstance(exc, OSError):
        return ErrorCode.KAFKA_STORAGE_ERROR
    return ErrorCode.UNKNOWN_SERVER_ERROR
