"""Idempotent producers: producer ids, epochs, and per-partition duplicate detection.

What lives here: ``ProducerIdManager`` (InitProducerId: issues producer ids and bumps epochs,
never reusing an id across restarts), ``ProducerStateTable`` (one per partition: decides
whether an incoming batch is new, a retried duplicate, out of order, or from a fenced epoch,
and is rebuilt from the log's batch headers on restart) and ``ProducerRegistry`` (the id
manager plus every partition's table). What does not: batches themselves (the log parses
headers and appends), transactions (no transactional ids, no markers), the wire, the clock.

Like the rest of the core this is single-threaded: every method is called from the
front-end's one thread (pull mode's trio thread). The only blocking call is the rare block
reservation inside ``init_producer_id`` (one small file write and two fsyncs per
``block_size`` ids); it runs inline, as it always has, because it is rare and short.

Kafka's rules, in our words (from Kafka's ``ProducerStateManager`` /
``ProducerAppendInfo``):

* An idempotent producer gets a ``producer_id`` and ``epoch`` once, then numbers its batches
  per partition: ``base_sequence`` counts records, so a batch of n records covers
  ``base .. base + n - 1``; sequences are int32 that wrap from 2**31 - 1 to 0.
* Per (producer, partition) the broker remembers the last **5** batches (the client never has
  more than 5 in flight). A batch whose range equals one of them is a retry of something
  already written: answer success with the **original** offset and do not write it again.
* Otherwise, with the same epoch, the batch must start right after the last one
  (``last + 1``); anything else is OUT_OF_ORDER_SEQUENCE_NUMBER (a gap: something was lost).
* An older epoch is INVALID_PRODUCER_EPOCH (a zombie producer). A newer epoch wipes the
  remembered batches and must start at sequence 0.
* A producer the table does not know is accepted at **any** sequence. This is Kafka ≥ 2.5
  (KIP-360): its state may legitimately be gone (retention deleted its batches), and refusing
  would wedge the producer forever. The price: the first batch after such a loss cannot be
  recognised as a duplicate.
* Batches with ``producer_id == -1`` (not idempotent) are always accepted.

The file ``producer_ids`` holds one number and nothing else, so there is no "good part" to
keep when it is damaged: a damaged file stops the broker at start-up with one line naming it
(``DamagedFile``). Guessing a lower number would reuse ids; a reused id makes a new producer's
first batches look like retries of an old producer's and they would be dropped as duplicates.

How the log uses a table (per partition, in the front-end's thread, **with no await between
the three steps**, or two copies of a retry could both pass the check)::

    decision = table.check(pid, epoch, base_seq, last_sequence(base_seq, last_offset_delta))
    if decision.kind is Decision.ACCEPT:
        base = log.append(batch); table.record(pid, epoch, base_seq, last_seq, base, last, now_ms)
    elif decision.kind is Decision.DUPLICATE:
        answer NONE with decision.base_offset           # no second append
    else:
        answer decision.error                           # an ErrorKind
"""

from __future__ import annotations

import enum
import re
from collections import deque
from collections.abc import Iterable
from pathlib import Path

import attrs

from broker.errors import DamagedFile
from broker.files import write_atomically
from broker.outcome import ErrorKind
from broker.topics import Topic, TopicRegistry
from wire.kafka.batch import BatchHeader

__all__ = [
    "ProducerIdManager",
    "ProducerRegistry",
    "InitProducerIdResult",
    "ProducerStateTable",
    "Decision",
    "CheckResult",
    "last_sequence",
    "BATCHES_TO_RETAIN",
    "NO_PRODUCER_ID",
]

NO_PRODUCER_ID = -1
BATCHES_TO_RETAIN = 5  # Kafka's ProducerStateEntry.NUM_BATCHES_TO_RETAIN
SEQUENCE_SPACE = 2**31  # sequences are non-negative int32, wrapping to 0
MAX_EPOCH = 2**15 - 1  # int16


def last_sequence(base_sequence: int, delta: int) -> int:
    """The sequence of the last record of a batch: ``base + delta`` wrapped into int32.

    ``delta`` is ``records_count - 1`` (or the header's ``last_offset_delta``, which Kafka
    uses; they are equal for batches straight from a producer).
    """
    return (base_sequence + delta) % SEQUENCE_SPACE


def _next_sequence(sequence: int) -> int:
    return (sequence + 1) % SEQUENCE_SPACE


# ====================================================================== producer ids

# Producer ids are int64 on the wire; the block file can never name more.
MAX_PRODUCER_ID = 2**63 - 1
# What ``_reserve`` writes: ASCII digits and a newline. Surrounding whitespace is tolerated (a
# hand-repaired file), signs, underscores and non-ASCII digits are not (``int`` takes them).
_BLOCK_END = re.compile(rb"\s*([0-9]{1,19})\s*")


def _read_block_end(path: Path) -> int | None:
    """The block end saved in ``path``, or None if the file does not exist.

    Raises:
        DamagedFile: naming the file and what is wrong with it.
    """
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise DamagedFile(f"cannot read producer id file {path}: {exc.strerror}") from None
    match = _BLOCK_END.fullmatch(raw)
    if match is None or int(match.group(1)) > MAX_PRODUCER_ID:
        shown = raw[:40].decode("ascii", "backslashreplace")
        raise DamagedFile(
            f"producer id file {path} is damaged: expected one number from 0 to {MAX_PRODUCER_ID} "
            f"(the first producer id to issue after a restart), found {shown!r}{'...' if len(raw) > 40 else ''}; "
            "refusing to start rather than reuse producer ids")
    return int(match.group(1))


@attrs.frozen
class InitProducerIdResult:
    error: ErrorKind
    producer_id: int = -1
    producer_epoch: int = -1


class ProducerIdManager:
    """Issues producer ids (monotonic int64) and epochs for InitProducerId.

    Ids are handed out from *blocks* of ``block_size``: before the first id of a block is
    used, the block's end is written to ``<directory>/producer_ids`` (atomically, see
    ``broker.files``). After a restart we continue from the saved end, skipping whatever was
    left of the block — ids are plentiful, reuse is not allowed (a reused id would make a new
    producer look like a duplicate of an old one). Kafka does the same with blocks of 1000.
    One write per block, so ``init_producer_id`` is almost always pure memory.
    """

    FILE = "producer_ids"

    def __init__(self, directory: Path, *, block_size: int = 1000) -> None:
        self._path = Path(directory) / self.FILE
        self._block_size = block_size
        self._next_id = 0
        self._block_end = 0  # ids < _block_end are reserved on disk
        self._epochs: dict[int, int] = {}  # producer id -> current epoch (this process)
        # In a cluster, blocks come from the cluster's one counter (``adopt_block``), not from
        # this directory alone: two brokers counting on their own would issue the same ids.
        self._shared = False
        # Above every id this broker knows of (issued here, or seen in a log): a cluster
        # counter that starts lower must skip to it.
        self._floor = 0

    @classmethod
    def open(cls, directory: Path, *, block_size: int = 1000) -> ProducerIdManager:
        """Open (creating the directory if needed) and continue after the last reserved block.

        A missing file means no id was ever issued. A file that is there but does not hold
        one plain non-negative number is refused rather than guessed at: starting lower than
        the true block end would hand out an id again, and a new producer with an old id
        looks like a retry of the old producer's batches (they would be dropped as
        duplicates). The operator can repair it by writing a number at least as large as any
        producer id ever issued.

        Raises:
            DamagedFile: the file is unreadable, not a number, negative or too large.
        """
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        manager = cls(directory, block_size=block_size)
        block_end = _read_block_end(manager._path)
        if block_end is not None:
            manager._next_id = manager._block_end = block_end
        return manager

    def observe(self, producer_id: int, producer_epoch: int) -> None:
        """Learn an id/epoch seen in the log on recovery (belt and braces for the file)."""
        if producer_id >= 0:
            self._epochs[producer_id] = max(self._epochs.get(producer_id, -1), producer_epoch)
            self._floor = max(self._floor, producer_id + 1)
            if producer_id >= self._next_id and not self._shared:
                self._next_id = producer_id + 1

    # --- in a cluster --------------------------------------------------------------------

    def share_blocks(self) -> None:
        """Take blocks from the cluster from now on (``adopt_block``): another broker's ids,
        met in replicated logs, no longer move this broker's next id, and the block left from
        before is not used (the cluster's counter may have handed it to another broker)."""
        self._shared = True
        self._floor = max(self._floor, self._next_id, self._block_end)
        self._block_end = self._next_id

    @property
    def needs_block(self) -> bool:
        """In a cluster: no id is left in the current block (get one before InitProducerId)."""
        return self._shared and self._next_id >= self._block_end

    @property
    def block_size(self) -> int:
        return self._block_size

    @property
    def floor(self) -> int:
        """Above every producer id this broker has issued or seen: a new block starts here or later."""
        return max(self._floor, self._next_id)

    def adopt_block(self, start: int, end: int) -> None:
        """Issue ids ``[start, end)``, a block the cluster's counter reserved for this broker;
        saved locally too, so a later single-broker start never issues them again.

        Raises:
            ValueError: an empty block, or one starting below what this broker knows of.
            OSError: the local block file could not be written (the block is not adopted).
        """
        if not self.floor <= start < end <= MAX_PRODUCER_ID:
            raise ValueError(f"producer id block [{start}, {end}) is empty or below {self.floor}")
        self._reserve(end)
        self._next_id = start
        self._floor = max(self._floor, end)

    def init_producer_id(self, transactional_id: str | None = None, producer_id: int = -1,
                         producer_epoch: int = -1) -> InitProducerIdResult:
        """InitProducerId.

        ``producer_id == -1``: a new id with epoch 0. Otherwise (v3+, KIP-360) the producer
        asks to bump its epoch: the same id with epoch + 1 if ``producer_epoch`` is its current
        epoch, INVALID_PRODUCER_EPOCH if not, UNKNOWN_PRODUCER_ID for an id never issued. An
        id whose epoch would overflow int16 is retired and a new id (epoch 0) is returned.
        (Real Kafka gives a non-transactional producer a fresh id every time; clients accept
        either, and keeping the id makes the fencing of the old epoch visible.)
        An id we issued before a restart but whose epoch we no longer know is bumped as given.

        Raises:
            OSError: a new block could not be reserved on disk (no id is issued then).
        """
        if transactional_id is not None:
            return InitProducerIdResult(ErrorKind.TRANSACTIONS_UNSUPPORTED)
        if producer_id < 0 or self._shared:
            # In a cluster a producer asking for an epoch bump may have its id from another
            # broker, which alone knows its epoch: a new id, as Kafka answers every
            # non-transactional InitProducerId.
            return self._issue()
        if producer_id >= self._next_id:
            return InitProducerIdResult(ErrorKind.UNKNOWN_PRODUCER_ID)
        current = self._epochs.get(producer_id, producer_epoch)
        if producer_epoch < 0 or producer_epoch != current:
            return InitProducerIdResult(ErrorKind.INVALID_PRODUCER_EPOCH)
        if current >= MAX_EPOCH:
            return self._issue()
        self._epochs[producer_id] = current + 1
        return InitProducerIdResult(ErrorKind.NONE, producer_id, current + 1)

    def _issue(self) -> InitProducerIdResult:
        if self._next_id >= self._block_end:
            if self._shared:
                # The caller gets a block from the cluster first (``needs_block``); without
                # one, no id: a retriable answer, never a guess.
                return InitProducerIdResult(ErrorKind.COORDINATOR_NOT_AVAILABLE)
            self._reserve(self._next_id + self._block_size)
        producer_id = self._next_id
        self._next_id += 1
        self._epochs[producer_id] = 0
        return InitProducerIdResult(ErrorKind.NONE, producer_id, 0)

    def _reserve(self, block_end: int) -> None:
        write_atomically(self._path, f"{block_end}\n".encode())
        self._block_end = block_end


# ====================================================================== per-partition state


class Decision(enum.Enum):
    ACCEPT = "accept"
    DUPLICATE = "duplicate"  # answer NONE with the original offsets, do not append
    OUT_OF_ORDER_SEQUENCE = "out_of_order_sequence"
    INVALID_PRODUCER_EPOCH = "invalid_producer_epoch"


_DECISION_ERROR = {
    Decision.ACCEPT: ErrorKind.NONE,
    Decision.DUPLICATE: ErrorKind.NONE,
    Decision.OUT_OF_ORDER_SEQUENCE: ErrorKind.OUT_OF_ORDER_SEQUENCE_NUMBER,
    Decision.INVALID_PRODUCER_EPOCH: ErrorKind.INVALID_PRODUCER_EPOCH,
}


@attrs.frozen
class CheckResult:
    kind: Decision
    base_offset: int = -1  # DUPLICATE: where the original batch was written
    last_offset: int = -1

    @property
    def error(self) -> ErrorKind:
        """What Produce answers for this partition."""
        return _DECISION_ERROR[self.kind]


_ACCEPT = CheckResult(Decision.ACCEPT)


@attrs.frozen
class _BatchMeta:
    first_sequence: int
    last_sequence: int
    base_offset: int
    last_offset: int


@attrs.define
class _ProducerEntry:
    epoch: int
    batches: deque[_BatchMeta] = attrs.field(factory=lambda: deque(maxlen=BATCHES_TO_RETAIN))
    last_timestamp_ms: int = 0


class ProducerStateTable:
    """Idempotence state of one partition. See the module docstring for the rules."""

    def __init__(self) -> None:
        self._producers: dict[int, _ProducerEntry] = {}

    @classmethod
    def rebuilt(cls, batches: Iterable[tuple[int, BatchHeader]]) -> ProducerStateTable:
        table = cls()
        table.rebuild(batches)
        return table

    def check(self, producer_id: int, producer_epoch: int, base_sequence: int,
              last_sequence: int) -> CheckResult:
        """Decide about a batch before appending it. Changes nothing."""
        if producer_id < 0:
            return _ACCEPT
        entry = self._producers.get(producer_id)
        if entry is None:
            # Unknown producer: any sequence (see the module docstring), but a negative one
            # is not a sequence at all.
            return _ACCEPT if base_sequence >= 0 else CheckResult(Decision.OUT_OF_ORDER_SEQUENCE)
        if producer_epoch < entry.epoch:
            return CheckResult(Decision.INVALID_PRODUCER_EPOCH)
        if producer_epoch > entry.epoch:
            # A bumped epoch starts its numbering afresh.
            return _ACCEPT if base_sequence == 0 else CheckResult(Decision.OUT_OF_ORDER_SEQUENCE)
        for meta in entry.batches:
            if meta.first_sequence == base_sequence and meta.last_sequence == last_sequence:
                return CheckResult(Decision.DUPLICATE, meta.base_offset, meta.last_offset)
        if not entry.batches or base_sequence == _next_sequence(entry.batches[-1].last_sequence):
            return _ACCEPT
        return CheckResult(Decision.OUT_OF_ORDER_SEQUENCE)

    def record(self, producer_id: int, producer_epoch: int, base_sequence: int,
               last_sequence: int, base_offset: int, last_offset: int, now_ms: int) -> None:
        """Remember a batch that ``check`` accepted and the log appended."""
        if producer_id < 0:
            return
        entry = self._producers.get(producer_id)
        if entry is None or producer_epoch > entry.epoch:
            entry = self._producers[producer_id] = _ProducerEntry(producer_epoch)
        entry.batches.append(_BatchMeta(base_sequence, last_sequence, base_offset, last_offset))
        entry.last_timestamp_ms = max(entry.last_timestamp_ms, now_ms)

    def rebuild(self, batches: Iterable[tuple[int, BatchHeader]]) -> None:
        """Replay batch headers from the log, oldest first (on restart).

        The log is the truth: nothing is checked, every idempotent batch is recorded, so a
        producer retrying across a broker restart is still recognised.
        """
        for base_offset, header in batches:
            if header.producer_id < 0:
                continue
            self.record(header.producer_id, header.producer_epoch, header.base_sequence,
                        last_sequence(header.base_sequence, header.last_offset_delta),
                        base_offset, base_offset + header.last_offset_delta, header.max_timestamp)

    def producers(self) -> dict[int, int]:
        """Producer id -> epoch, e.g. to feed ``ProducerIdManager.observe`` on recovery."""
        return {pid: entry.epoch for pid, entry in self._producers.items()}

    def remove_expired(self, now_ms: int, expiration_ms: int = 86_400_000) -> int:
        """Forget producers idle longer than ``expiration_ms`` (Kafka's
        ``producer.id.expiration.ms``, one day). Returns how many were forgotten."""
        stale = [pid for pid, e in self._producers.items()
                 if now_ms - e.last_timestamp_ms > expiration_ms]
        for pid in stale:
            del self._producers[pid]
        return len(stale)


# ====================================================================== all partitions


@attrs.define(eq=False)
class ProducerRegistry:
    """Producer ids and every partition's idempotence table (keyed by topic id, partition).

    Keyed by the topic *id*, not its name: a topic deleted and created again under the same
    name is a new topic with an empty log, and must not inherit the old producers' state.
    """

    ids: ProducerIdManager
    _tables: dict[tuple[bytes, int], ProducerStateTable] = attrs.field(factory=dict)

    def table(self, topic: Topic, partition: int) -> ProducerStateTable:
        """The partition's table, rebuilt from its log's batch headers on first use."""
        key = (bytes(topic.topic_id), partition)
        table = self._tables.get(key)
        if table is None:
            table = self._tables[key] = ProducerStateTable.rebuilt(topic.partitions[partition].batches())
            for producer_id, epoch in table.producers().items():
                self.ids.observe(producer_id, epoch)
        return table

    def rebuild_partition(self, topic: Topic, partition: int) -> ProducerStateTable:
        """Forget the partition's table and rebuild it from its log now, as at start-up
        (:meth:`table`): after ``PartitionLog.truncate_to`` removed batches the old table
        remembers (a follower cut back to its new leader's log), a retry of such a batch
        must not be answered as a duplicate of records that are gone.

        Blocking: reads every batch header of the partition's log, like the start-up rebuild.
        """
        self._tables.pop((bytes(topic.topic_id), partition), None)
        return self.table(topic, partition)

    def producer_ids(self) -> set[int]:
        """Idempotent producers with state in at least one partition (metrics, INFO)."""
        return {pid for table in self._tables.values() for pid in table.producers()}

    def rebuild_all(self, topics: TopicRegistry) -> int:
        """Rebuild every partition's table now (start-up); returns how many producers."""
        for topic in topics.topics():
            for index in range(len(topic.partitions)):
                self.table(topic, index)
        return sum(len(t.producers()) for t in self._tables.values())

    def forget_topic(self, topic_id: bytes) -> None:
        """Drop the tables of a deleted topic."""
        for key in [k for k in self._tables if k[0] == bytes(topic_id)]:
            del self._tables[key]
