"""The exceptions the dualmq SDK raises, for both modes.

Everything the SDK raises on purpose derives from ``DualmqError``, so an application can catch
"anything the messaging layer told me" in one place while programming errors (TypeError, ...)
still surface as themselves. Cancellation (trio.Cancelled) is never wrapped.

Pull mode (Kafka protocol) adds ``KafkaError``, which carries the broker's int16 error code
(``wire.kafka.errors.ErrorCode``) so callers can branch on the code rather than on message text.
"""

from __future__ import annotations

from wire.kafka.errors import ErrorCode


class DualmqError(Exception):
    """Base class of every error the SDK raises on purpose."""


class ConnectionLost(DualmqError):
    """The connection to a server broke (or could not be opened) before a reply arrived."""


class ServerError(DualmqError):
    """The server answered with an error."""


class Timeout(DualmqError):
    """An operation did not complete within its deadline."""


class AuthenticationError(ServerError):
    """The server refused the credentials given, or asks for credentials none were given for
    (Redis AUTH / HELLO AUTH, Kafka SASL).

    Trying again with the same settings cannot help: the username or password must change.
    The message never contains the password.
    """


class ProtocolMismatch(DualmqError):
    """The server at that address speaks another protocol: a Kafka client at a RESP port, or the reverse.

    Not a ``ConnectionLost``: trying again cannot help, the address is wrong.
    """


# --- pull mode (Kafka protocol) ------------------------------------------------------------------


class KafkaError(ServerError):
    """A Kafka broker answered with a non-zero error code.

    Attributes:
        code: the Kafka error code (an ``ErrorCode`` member, or a plain int for codes newer
            than our table).
        message: a human-readable description (the broker's error_message when it sent one).
    """

    def __init__(self, code: int, message: str = "") -> None:
        self.code = ErrorCode.lookup(code)
        name = self.code.name if isinstance(self.code, ErrorCode) else f"error {code}"
        self.message = message
        super().__init__(f"{name}: {message}" if message else name)

    @property
    def retriable(self) -> bool:
        """Whether Kafka's clients would retry the same request unchanged."""
        return isinstance(self.code, ErrorCode) and self.code.retriable


class UnsupportedVersion(DualmqError):
    """The broker does not implement an API (or any version of it) the SDK needs."""


class OffsetOutOfRange(KafkaError):
    """A consumer position lies outside the log and ``auto_offset_reset="none"`` forbids a reset.

    Attributes:
        partitions: the ``(topic, partition)`` pairs concerned.
    """

    def __init__(self, partitions: list[tuple[str, int]]) -> None:
        self.partitions = partitions
        super().__init__(1, f"no reset policy for {partitions}")


class CommitFailed(DualmqError):
    """An offset commit was rejected because the group rebalanced (the offsets are not stored)."""
