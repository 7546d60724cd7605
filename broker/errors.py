"""Domain errors of the broker core.

Each front-end maps these to its protocol in one place (Kafka error codes in pull mode, RESP
error replies in push mode). They say what went wrong in the broker's own terms.

A record batch that is not acceptable (damaged, a legacy format, too large) raises the batch
format's own errors, ``wire.kafka.batch.CorruptBatch`` and its siblings: the log stores
Kafka's format, and that module is its one definition, errors included.
"""

from __future__ import annotations


class BrokerError(Exception):
    """Base class of every domain error the core raises on purpose."""


class ConfigError(BrokerError):
    """A configuration key has a value outside its allowed range, or is unknown."""


class OffsetOutOfRange(BrokerError):
    """An offset below the log start offset or beyond the high watermark was requested."""


class ReplicaOffsetMismatch(BrokerError):
    """A batch copied from a partition's leader does not start at the follower's log end."""


class UnknownTopic(BrokerError):
    """The topic (or partition) does not exist."""


class InvalidTopic(BrokerError):
    """The topic name is not a legal Kafka topic name."""


class TopicExists(BrokerError):
    """A topic with this name exists already."""


class InvalidPartitions(BrokerError):
    """A partition count that cannot be: not above the current one, or above the maximum."""


class DataDirError(BrokerError):
    """The data directory is missing, unwritable, or locked by another broker."""


class DamagedFile(DataDirError):
    """A file the broker keeps in its data directory is damaged and cannot be trusted.

    Raised at start-up, before anything is changed, when reading on would mean guessing
    (reusing producer ids, inventing partitions, forgetting committed offsets). The message
    names the file and what is wrong with it, on one line.
    """
