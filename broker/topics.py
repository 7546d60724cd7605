"""The topic registry: which topics exist, their ids, configs and partition logs.

A topic is a name, a stable 16-byte id (Kafka's topic UUID, used by newer Fetch/Metadata
versions instead of the name), per-topic config overrides under their Kafka names
(``retention.ms`` …), and N partitions, each a :class:`PartitionLog` in its own directory
``<data_dir>/<topic>-<partition>`` — the same layout Kafka uses, which makes a data directory
easy to explore with ``ls``.

The list of topics lives in ``<data_dir>/topics.json``, rewritten atomically
(``broker.files.write_atomically``: temp file, fsync, rename, fsync the directory) so a crash
leaves either the old or the new list, never half of one. The ids are generated once at creation and
persisted, so they survive restarts (clients cache them).

A damaged ``topics.json`` stops the broker at start-up with one line naming the file and the
first problem (``DamagedFile``), and it is checked completely before any partition directory
is opened or created. Keeping "the part before the damage" is no option here: the file is one
JSON document, and a topic left out would look deleted — its directories would be removed
by the next create of that name — while an invented one (a stray ``"partitions": 100000``)
would create thousands of directories. The operator can repair the file by hand (the
partition directories show which topics exist and how many partitions each has), which is
better than the broker guessing.

What does not live here: auto-creation policy and default partition counts (pull mode decides),
consumer offsets and groups (``offsets.py``, ``groups.py``).
"""

from __future__ import annotations

import errno
import json
import re
import reprlib
import resource
import shutil
import uuid
from pathlib import Path

import attrs

from broker.config import LogConfig, topic_log_config
from broker.errors import ConfigError, DataDirError, InvalidPartitions, InvalidTopic, TopicExists, UnknownTopic
from broker.errors import DamagedFile
from broker.files import write_atomically
from broker.log.file_cache import default_capacity, open_file_limit
from broker.log.partition_log import PartitionLog
from broker.log.storage import LogStorage
from broker.loggers import get_logger

log = get_logger(__name__)

METADATA_FILE = "topics.json"
METADATA_VERSION = 1
# Kafka's rule (core/…/Topic.scala): ASCII letters, digits, '.', '_', '-'; at most 249
# characters (so that "<topic>-<partition>" directory names stay under 255); not "." or "..".
MAX_TOPIC_NAME_LENGTH = 249
_LEGAL_TOPIC = re.compile(r"[a-zA-Z0-9._-]+")
MAX_PARTITIONS = 10_000
# The files each partition holds open for itself: its active segment's .log, .index and
# .timeindex. Sealed segments hold none; they read through the broker-wide file cache, whose
# size is counted once (see ``partition_budget``).
FILES_PER_PARTITION = 3
# Descriptors left for everything else — connections, listeners, metadata files, the
# process's own — a quarter of the limit and at least this many.
MIN_HEADROOM_FILES = 256


def partition_budget(open_segment_files: int | None = None) -> int:
    """How many partitions this process can hold open, from its open-file limit.

    What is really held: three files per partition (its active segment), plus the shared
    cache of sealed segments' files (``open_segment_files``, default: the size
    ``[log] max_open_segment_files = 0`` gives), plus headroom for connections and the rest
    (a quarter of the limit, at least 256). Without this cap a single CreateTopics or
    CreatePartitions asking for thousands of partitions would use up every file descriptor
    and leave the broker unable to accept a connection. How many *segments* a partition
    retains does not matter any more.

    Args:
        open_segment_files: the size of the shared cache of open segment files.
    """
    soft = open_file_limit()
    if soft is None:
        return MAX_PARTITIONS * 100
    if open_segment_files is None:
        open_segment_files = default_capacity(soft)
    headroom = max(MIN_HEADROOM_FILES, soft // 4)
    return max(1, (soft - headroom - open_segment_files) // FILES_PER_PARTITION)


def validate_topic_name(name: str) -> None:
    """Raises InvalidTopic, naming the rule broken, unless ``name`` is a legal Kafka topic name."""
    if not isinstance(name, str) or not name:
        raise InvalidTopic("topic name is empty")
    if name in (".", ".."):
        raise InvalidTopic(f"topic name {name!r} is not allowed")
    if len(name) > MAX_TOPIC_NAME_LENGTH:
        raise InvalidTopic(f"topic name is {len(name)} characters, the maximum is {MAX_TOPIC_NAME_LENGTH}")
    if not _LEGAL_TOPIC.fullmatch(name):
        raise InvalidTopic(f"topic name {name!r} may contain only ASCII letters, digits, '.', '_' and '-'")


class MetadataInvalid(Exception):
    """``topics.json`` is not what ``_save_metadata`` writes; the message says where and why."""


_METADATA_KEYS = {"version", "topics"}
_TOPIC_KEYS = {"name", "topic_id", "partitions", "overrides"}
_TOPIC_ID_HEX = re.compile(r"[0-9a-fA-F]{32}")


# reprlib cuts long strings, numbers and containers short and stops at a few levels of
# nesting, so showing a value from a damaged file can neither flood the message nor recurse
# too deeply.
_SHORT_REPR = reprlib.Repr()
_SHORT_REPR.maxlevel, _SHORT_REPR.maxstring, _SHORT_REPR.maxlong, _SHORT_REPR.maxother = 3, 40, 40, 40


def _shown(value: object) -> str:
    """A value for an error message: its repr, cut short (a damaged file can hold anything)."""
    return _SHORT_REPR.repr(value)


def _refuse_duplicate_keys(pairs: list[tuple[str, object]]) -> dict[str, object]:
    # json.loads keeps the last of two equal keys; which one was meant is a guess.
    document: dict[str, object] = {}
    for key, value in pairs:
        if key in document:
            raise MetadataInvalid(f"key {_shown(key)} appears twice in one object")
        document[key] = value
    return document


def parse_topics_metadata(raw: bytes, base: LogConfig) -> list[dict]:
    """Check the bytes of ``topics.json`` completely and return its topic entries.

    Nothing is created or opened here: a damaged file must be refused *before* the registry
    makes a partition directory for it. Every field is checked as ``create`` would check it
    (legal, unique names; 16-byte, non-zero, unique ids; 1 to ``MAX_PARTITIONS`` partitions;
    overrides that ``topic_log_config`` accepts), and keys we do not write are refused too:
    the next rewrite of the file would silently drop them.

    Args:
        raw: the file's bytes.
        base: the broker's log config, which the overrides are applied to.
    Returns:
        One dict per topic with ``name``, ``topic_id`` (hex), ``partitions`` and ``overrides``.
    Raises:
        MetadataInvalid: with a one-line description of the first problem found.
    """
    try:
        document = json.loads(raw, object_pairs_hook=_refuse_duplicate_keys)
    except (ValueError, RecursionError) as exc:  # bad JSON or UTF-8; absurdly deep nesting
        raise MetadataInvalid(f"not valid JSON ({exc})") from None
    if not isinstance(document, dict) or set(document) != _METADATA_KEYS:
        raise MetadataInvalid(f"expected an object with the keys {sorted(_METADATA_KEYS)}, found {_shown(document)}")
    version = document["version"]
    if type(version) is not int or version != METADATA_VERSION:
        raise MetadataInvalid(f"version = {_shown(version)}, this broker reads version {METADATA_VERSION}")
    topics = document["topics"]
    if not isinstance(topics, list):
        raise MetadataInvalid(f"topics = {_shown(topics)}, expected a list")
    names: set[str] = set()
    ids: set[bytes] = set()
    for number, entry in enumerate(topics):
        where = f"topics[{number}]"
        if not isinstance(entry, dict) or set(entry) != _TOPIC_KEYS:
            raise MetadataInvalid(f"{where} = {_shown(entry)}, expected an object with the keys {sorted(_TOPIC_KEYS)}")
        name = entry["name"]
        if not isinstance(name, str):
            raise MetadataInvalid(f"{where}: name = {_shown(name)}, expected a string")
        try:
            validate_topic_name(name)
        except InvalidTopic as exc:
            raise MetadataInvalid(f"{where}: {exc}") from None
        where = f"topic {name!r}"
        if name in names:
            raise MetadataInvalid(f"{where} is listed twice")
        topic_id = entry["topic_id"]
        if not isinstance(topic_id, str) or not _TOPIC_ID_HEX.fullmatch(topic_id):
            raise MetadataInvalid(f"{where}: topic_id = {_shown(topic_id)}, expected 32 hex digits")
        id_bytes = bytes.fromhex(topic_id)
        if not any(id_bytes):
            raise MetadataInvalid(f"{where}: topic_id is all zeros, which means 'no id'")
        if id_bytes in ids:
            raise MetadataInvalid(f"{where}: topic_id {topic_id} belongs to another topic too")
        partitions = entry["partitions"]
        if type(partitions) is not int or not 1 <= partitions <= MAX_PARTITIONS:
            raise MetadataInvalid(f"{where}: partitions = {_shown(partitions)}, allowed range is [1, {MAX_PARTITIONS}]")
        overrides = entry["overrides"]
        if not isinstance(overrides, dict) or not all(isinstance(v, str) for v in overrides.values()):
            raise MetadataInvalid(f"{where}: overrides = {_shown(overrides)}, expected an object of strings")
        try:
            topic_log_config(base, overrides)
        except ConfigError as exc:
            raise MetadataInvalid(f"{where}: {exc}") from None
        names.add(name)
        ids.add(id_bytes)
    return topics


def _new_topic_id() -> bytes:
    # The all-zero UUID means "no id" in Kafka's protocol, so never hand it out.
    while True:
        topic_id = uuid.uuid4().bytes
        if any(topic_id):
            return topic_id


@attrs.frozen(kw_only=True)
class MaintenanceCounts:
    """What one maintenance pass did, summed over every partition."""

    segments_rolled: int
    segments_deleted: int


@attrs.define(eq=False)
class Topic:
    """A topic and its open partition logs (state: the logs change)."""

    name: str
    topic_id: bytes
    overrides: dict[str, str]
    config: LogConfig
    partitions: list[PartitionLog]


@attrs.define(eq=False)
class TopicRegistry:
    """Every topic of the broker. Build it with :meth:`TopicRegistry.open`."""

    data_dir: Path
    config: LogConfig
    # What every partition log shares: the bounded cache of open segment files and the I/O
    # error reporter (one per broker, so the open-file bound holds for all partitions together).
    storage: LogStorage = attrs.field(
        default=attrs.Factory(lambda self: LogStorage.from_config(self.config.max_open_segment_files), takes_self=True))
    # The most partitions all topics together may have (see ``partition_budget``).
    max_total_partitions: int = attrs.field(
        default=attrs.Factory(lambda self: partition_budget(self.storage.files.capacity), takes_self=True))
    _topics: dict[str, Topic] = attrs.field(factory=dict)
    _by_id: dict[bytes, Topic] = attrs.field(factory=dict)

    @classmethod
    def open(cls, data_dir: Path, config: LogConfig, *, now_ms: int) -> TopicRegistry:
        """Load ``topics.json`` and open (recovering) every partition log.

        Raises:
            DataDirError: the directory cannot be created, or the topics need more partitions
                than the open-file limit allows.
            DamagedFile: ``topics.json`` is unreadable or not a valid topic list (a
                ``DataDirError`` too). Nothing has been created then.
        """
        data_dir = Path(data_dir)
        try:
            data_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DataDirError(f"cannot create data directory {data_dir}: {exc.strerror}") from None
        registry = cls(data_dir=data_dir, config=config)
        for entry in registry._load_metadata():
            overrides = dict(entry["overrides"])
            topic = Topic(
                name=entry["name"],
                topic_id=bytes.fromhex(entry["topic_id"]),
                overrides=overrides,
                config=topic_log_config(config, overrides),
                partitions=[],
            )
            for index in range(int(entry["partitions"])):
                topic.partitions.append(
                    PartitionLog.open(registry._partition_dir(topic.name, index), topic.config, now_ms=now_ms,
                                      storage=registry.storage)
                )
            registry._topics[topic.name] = topic
            registry._by_id[topic.topic_id] = topic
        return registry

    # -- metadata file -----------------------------------------------------------------------

    def _partition_dir(self, name: str, index: int) -> Path:
        return self.data_dir / f"{name}-{index}"

    def _load_metadata(self) -> list[dict]:
        """The topics of ``topics.json``, every field checked, before anything is opened.

        Returns:
            One dict per topic with ``name``, ``topic_id`` (32 hex digits), ``partitions``
            (int) and ``overrides`` (str to str), all valid; [] if there is no file yet.
        Raises:
            DamagedFile: the file cannot be read or is not a valid topic list.
            DataDirError: its partitions together exceed ``max_total_partitions``.
        """
        path = self.data_dir / METADATA_FILE
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise DamagedFile(f"cannot read {path}: {exc.strerror}") from None
        try:
            topics = parse_topics_metadata(raw, self.config)
        except MetadataInvalid as exc:
            raise DamagedFile(f"{path} is damaged: {exc}; refusing to start rather than guess "
                              "which topics exist") from None
        total = sum(entry["partitions"] for entry in topics)
        if total > self.max_total_partitions:
            raise DataDirError(
                f"{path} names {total} partitions, more than this broker can keep open "
                f"({self.max_total_partitions} with an open-file limit of "
                f"{resource.getrlimit(resource.RLIMIT_NOFILE)[0]}): raise the limit with ulimit -n")
        return topics

    def _save_metadata(self) -> None:
        document = {
            "version": METADATA_VERSION,
            "topics": [
                {"name": t.name, "topic_id": t.topic_id.hex(), "partitions": len(t.partitions),
                 "overrides": t.overrides}
                for t in self._topics.values()
            ],
        }
        write_atomically(self.data_dir / METADATA_FILE, json.dumps(document, indent=2, sort_keys=True).encode())

    # -- topics ------------------------------------------------------------------------------

    def create(self, name: str, partitions: int, overrides: dict[str, str] | None = None, *,
               now_ms: int, topic_id: bytes | None = None) -> Topic:
        """Create a topic with ``partitions`` empty partition logs.

        ``topic_id`` is new and random unless given (a cluster's brokers all use the id the
        controller chose, docs/cluster.md).

        Raises:
            InvalidTopic: illegal name.
            TopicExists: a topic with this name exists.
            ConfigError: a bad override, or ``partitions`` outside [1, 10000].
            InvalidPartitions: more partitions than the broker can keep open (``partition_budget``).
            OSError: the disk refused; nothing of the topic is left behind.
        """
        validate_topic_name(name)
        if name in self._topics:
            raise TopicExists(f"topic {name!r} already exists")
        if isinstance(partitions, bool) or not isinstance(partitions, int) or not 1 <= partitions <= MAX_PARTITIONS:
            raise ConfigError(f"partitions = {partitions!r}: allowed range is [1, {MAX_PARTITIONS}]")
        overrides = dict(overrides or {})
        config = topic_log_config(self.config, overrides)
        self._check_budget(partitions)
        topic = Topic(name=name, topic_id=topic_id or _new_topic_id(), overrides=overrides, config=config,
                      partitions=self._fresh_partitions(name, range(partitions), config, now_ms))
        self._topics[name] = topic
        self._by_id[topic.topic_id] = topic
        try:
            self._save_metadata()
        except OSError:
            del self._topics[name], self._by_id[topic.topic_id]
            self._discard_partitions(name, topic.partitions, 0)
            raise
        log.info("topic_created", topic=name, partitions=partitions, overrides=overrides)
        return topic

    def add_partitions(self, name: str, total: int, *, now_ms: int, validate_only: bool = False) -> Topic:
        """Grow topic ``name`` to ``total`` partitions (Kafka never shrinks a topic).

        The new partitions start empty. Keyed records written before the change keep their
        partitions; new ones may hash elsewhere now (the partitioner takes the count modulo),
        which is why Kafka warns before adding partitions to a topic with keys.

        The new logs are opened before the metadata names them, so a crash in between leaves
        only directories the metadata does not know (removed when they are created again).

        Raises:
            UnknownTopic: no such topic.
            InvalidPartitions: ``total`` not above the current count, above the maximum, or more
                than the broker can keep open (``partition_budget``).
            OSError: the disk refused; the topic keeps its partitions as they were.
        """
        topic = self._topics.get(name)
        if topic is None:
            raise UnknownTopic(f"topic {name!r} does not exist")
        current = len(topic.partitions)
        if isinstance(total, bool) or not isinstance(total, int) or total <= current:
            raise InvalidPartitions(f"topic {name!r} has {current} partitions; the new count must be higher, "
                                    f"not {total!r}")
        if total > MAX_PARTITIONS:
            raise InvalidPartitions(f"{total} partitions: the maximum is {MAX_PARTITIONS}")
        self._check_budget(total - current)
        if validate_only:
            return topic
        topic.partitions.extend(self._fresh_partitions(name, range(current, total), topic.config, now_ms))
        try:
            self._save_metadata()
        except OSError:
            self._discard_partitions(name, topic.partitions[current:], current)
            del topic.partitions[current:]
            raise
        log.info("partitions_added", topic=name, partitions=total, before=current)
        return topic

    def _check_budget(self, adding: int) -> None:
        held = sum(len(topic.partitions) for topic in self._topics.values())
        if held + adding > self.max_total_partitions:
            raise InvalidPartitions(
                f"{adding} more partitions would make {held + adding}; this broker holds at most "
                f"{self.max_total_partitions} (each keeps {FILES_PER_PARTITION} files open, and the open-file "
                f"limit is {resource.getrlimit(resource.RLIMIT_NOFILE)[0]}: raise it with ulimit -n)")

    def _fresh_partitions(self, name: str, indexes: range, config: LogConfig, now_ms: int) -> list[PartitionLog]:
        """Open new, empty partition logs; all of them or (on a disk error) none.

        Raises:
            OSError: a log could not be created; the ones already opened are closed and removed.
        """
        opened: list[PartitionLog] = []
        try:
            for index in indexes:
                directory = self._partition_dir(name, index)
                # A directory the metadata does not know is a leftover of a deletion (or growth)
                # interrupted by a crash; its data belongs to no topic now.
                if directory.exists():
                    shutil.rmtree(directory)
                opened.append(PartitionLog.open(directory, config, now_ms=now_ms, storage=self.storage))
        except OSError:
            self._discard_partitions(name, opened, indexes.start)
            # And whatever the failed one had made of its directory.
            shutil.rmtree(self._partition_dir(name, indexes.start + len(opened)), ignore_errors=True)
            raise
        return opened

    def _discard_partitions(self, name: str, logs: list[PartitionLog], first_index: int) -> None:
        """Close and remove new partition logs (``first_index`` onwards) the metadata will not name."""
        for index, partition in enumerate(logs, start=first_index):
            partition.close()
            shutil.rmtree(self._partition_dir(name, index), ignore_errors=True)

    def delete(self, name: str) -> None:
        """Delete a topic and its data.

        The metadata is rewritten first, so a crash half-way through removing directories
        cannot bring the topic back; leftover directories are removed by a later create.

        Raises:
            UnknownTopic: no such topic.
        """
        topic = self._topics.pop(name, None)
        if topic is None:
            raise UnknownTopic(f"topic {name!r} does not exist")
        del self._by_id[topic.topic_id]
        self._save_metadata()
        for index, partition in enumerate(topic.partitions):
            partition.close()
            shutil.rmtree(self._partition_dir(name, index), ignore_errors=True)
        log.info("topic_deleted", topic=name, partitions=len(topic.partitions))

    def get(self, name: str) -> Topic | None:
        return self._topics.get(name)

    def by_id(self, topic_id: bytes) -> Topic | None:
        return self._by_id.get(bytes(topic_id))

    def topics(self) -> list[Topic]:
        return list(self._topics.values())

    def partition(self, name: str, index: int) -> PartitionLog:
        """The log of partition ``index`` of topic ``name``.

        Raises:
            UnknownTopic: no such topic, or no such partition in it.
        """
        topic = self._topics.get(name)
        if topic is None:
            raise UnknownTopic(f"topic {name!r} does not exist")
        if not 0 <= index < len(topic.partitions):
            raise UnknownTopic(f"topic {name!r} has no partition {index} (it has {len(topic.partitions)})")
        return topic.partitions[index]

    # -- upkeep ------------------------------------------------------------------------------

    def maintain(self, now_ms: int) -> MaintenanceCounts:
        """Roll aged segments, then apply retention, on every partition; report the I/O errors
        whose log lines the rate limit held back (see ``broker.log.io_errors``)."""
        rolled = deleted = 0
        for topic in self._topics.values():
            for partition in topic.partitions:
                rolled += partition.roll_if_aged(now_ms)
                deleted += partition.apply_retention(now_ms)
        self.storage.io_errors.report_suppressed(now_ms)
        return MaintenanceCounts(segments_rolled=rolled, segments_deleted=deleted)

    def logs_to_flush(self) -> list[PartitionLog]:
        """Every partition log with unflushed data, now (a list: flushing it may await, and a
        topic may be created or deleted meanwhile)."""
        return [partition for topic in self._topics.values() for partition in topic.partitions
                if partition.has_unflushed]

    def close(self) -> None:
        """Flush and close every partition log, then the shared file cache.

        A partition whose final fsync fails is logged (``partition_close_failed``, naming the
        file and errno) and the others are still flushed and closed.
        """
        for topic in self._topics.values():
            for partition in topic.partitions:
                try:
                    partition.close()
                except OSError as exc:
                    log.error("partition_close_failed", directory=str(partition.directory), path=exc.filename,
                              errno=errno.errorcode.get(exc.errno, exc.errno), error=exc.strerror)
        self.storage.files.close_all()
