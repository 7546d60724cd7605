"""dualmq: one broker, two delivery models (Kafka-like pull, Redis-like push).

This package is the public face: the SDK clients for both modes, the embedded broker and the
``dualmq`` command line. The clients speak the real wire protocols, so the same code works
against ``dualmq serve``, a Kafka cluster or a Redis server::

    from dualmq.push import Publisher, subscribe      # push mode (RESP)
    from dualmq.pull import Producer, Consumer, Admin  # pull mode (Kafka protocol)

``dualmq.embedded.broker()`` starts a real broker in-process on free ports (tests, examples);
``dualmq.process.BrokerProcess`` runs ``dualmq serve`` as a child process, to kill and restart it.

The SDK never configures logging and prints nothing by itself: it logs to standard-library
loggers under ``dualmq`` (``dualmq.pull.group``...), which stay silent until your program
configures ``logging`` (``dualmq.sdk_logging`` explains the events and their levels).
"""

from importlib.metadata import PackageNotFoundError, version

from dualmq import pull, push
from dualmq.errors import (
    AuthenticationError,
    CommitFailed,
    ConnectionLost,
    DualmqError,
    KafkaError,
    OffsetOutOfRange,
    ProtocolMismatch,
    ServerError,
    Timeout,
    UnsupportedVersion,
)
from dualmq.pull import Admin, Consumer, ConsumerRecord, Producer, consume
from dualmq.push import Backoff, Gap, Message, Publisher, Subscription, subscribe

try:
    __version__ = version("dualmq")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

__all__ = [
    "Admin", "AuthenticationError", "Backoff", "CommitFailed", "ConnectionLost", "Consumer", "ConsumerRecord", "DualmqError",
    "Gap", "KafkaError", "Message", "OffsetOutOfRange", "Producer", "ProtocolMismatch", "Publisher", "ServerError",
    "Subscription", "Timeout", "UnsupportedVersion", "__version__", "consume", "pull", "push",
    "subscribe",
]
