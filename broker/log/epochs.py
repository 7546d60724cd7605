"""The leader-epoch cache of one partition: where each leader epoch's records start.

Every batch carries the ``partitionLeaderEpoch`` of the leader that first appended it; along a
log the epochs never decrease. The cache holds one entry ``(epoch, start_offset)`` per epoch
present in the log — the epoch and the base offset of its first batch — in increasing order of
both. A follower that changes leader asks the new leader for the end of its own latest epoch
(Kafka's OffsetForLeaderEpoch) and truncates its log there: whatever it holds past that offset
was never written by the new leader, so it must go before fetching resumes. This is Kafka's
``LeaderEpochFileCache``, in our terms.

The invariant the partition log keeps: the cache is exactly the list of epoch changes of the
batches in the log. Appends add an entry when a batch brings a new epoch, truncation at the end
drops the entries starting at or past the cut, retention collapses the entries before the new
log start into one starting there (Kafka's ``truncateFromStart``), and recovery, which reads
every batch header anyway (``verify.py``), knows the true list at each start.

On disk: ``leader-epoch-checkpoint`` in the partition directory, Kafka's text layout::

    0            format version
    2            number of entries
    0 0          epoch, start offset
    3 1200

It is replaced atomically (temp file, fsync, rename, directory fsync) and only when the cache
changes, which happens once per leader change, not per append. At open the checkpoint is read
and compared with what the verification walk found; a missing, unreadable or disagreeing file
is rewritten from the walk (logged). That rebuild costs no extra read: the walk that verifies
every batch at start-up (``verify.py``) already decodes each header.
"""

from __future__ import annotations

import bisect
from pathlib import Path

import attrs

from broker.files import write_atomically
from broker.loggers import get_logger

__all__ = ["CHECKPOINT_FILE", "LeaderEpochCache", "UNDEFINED_EPOCH", "UNDEFINED_OFFSET",
           "EpochCheckpointError", "read_checkpoint"]

log = get_logger(__name__)

CHECKPOINT_FILE = "leader-epoch-checkpoint"
_VERSION = 0
# Kafka's answers when no epoch is known (OffsetForLeaderEpoch: UNDEFINED_EPOCH and
# UNDEFINED_EPOCH_OFFSET).
UNDEFINED_EPOCH = -1
UNDEFINED_OFFSET = -1


class EpochCheckpointError(ValueError):
    """The checkpoint file's content is not a valid epoch list (says why)."""


def encode_checkpoint(entries: list[tuple[int, int]]) -> bytes:
    lines = [str(_VERSION), str(len(entries))] + [f"{epoch} {start}" for epoch, start in entries]
    return ("\n".join(lines) + "\n").encode()


def decode_checkpoint(data: bytes) -> list[tuple[int, int]]:
    """Parse a checkpoint file's content.

    Raises:
        EpochCheckpointError: not our format, or the entries do not increase.
    """
    try:
        lines = data.decode("ascii").splitlines()
    except UnicodeDecodeError:
        raise EpochCheckpointError("not ASCII text") from None
    if len(lines) < 2 or lines[0].strip() != str(_VERSION):
        raise EpochCheckpointError(f"first line is not the version {_VERSION}")
    try:
        count = int(lines[1])
        entries = []
        for line in lines[2:]:
            epoch_text, start_text = line.split()
            entries.append((int(epoch_text), int(start_text)))
    except ValueError:
        raise EpochCheckpointError("a line is not two integers") from None
    if count != len(entries):
        raise EpochCheckpointError(f"says {count} entries, holds {len(entries)}")
    for (epoch, start), (next_epoch, next_start) in zip(entries, entries[1:]):
        if next_epoch <= epoch or next_start <= start:
            raise EpochCheckpointError(f"entries do not increase: ({epoch}, {start}) then ({next_epoch}, {next_start})")
    if entries and (entries[0][0] < 0 or entries[0][1] < 0):
        raise EpochCheckpointError(f"negative first entry {entries[0]}")
    return entries


def read_checkpoint(directory: Path) -> list[tuple[int, int]] | None:
    """The entries of ``directory``'s checkpoint, or None if there is no such file.

    Raises:
        EpochCheckpointError: the file is unreadable as a checkpoint.
        OSError: reading failed.
    """
    try:
        data = (Path(directory) / CHECKPOINT_FILE).read_bytes()
    except FileNotFoundError:
        return None
    return decode_checkpoint(data)


@attrs.define(eq=False)
class LeaderEpochCache:
    """``(epoch, start_offset)`` entries, both strictly increasing, persisted on change."""

    directory: Path
    _entries: list[tuple[int, int]] = attrs.field(factory=list)
    # Epochs alone, kept in step with ``_entries``, for bisect.
    _epochs: list[int] = attrs.field(factory=list)

    @classmethod
    def load(cls, directory: Path, found: list[tuple[int, int]]) -> LeaderEpochCache:
        """The cache of a partition just recovered, whose batches show the epoch changes
        ``found`` (the truth). The checkpoint file is rewritten unless it says the same.

        Raises:
            OSError: the checkpoint could not be read or rewritten.
        """
        cache = cls(Path(directory))
        cache._set(list(found))
        reason = None
        try:
            stored = read_checkpoint(directory)
            if stored is None:
                # No file and no epochs is a log that never had any (or a first start): an
                # absent file is an empty cache, nothing to write.
                reason = "missing" if found else None
            elif stored != found:
                reason = f"it disagrees with the log ({len(stored)} entries, the log shows {len(found)})"
        except EpochCheckpointError as exc:
            reason = f"unreadable: {exc}"
        if reason is not None:
            # A missing file is expected in a directory written before epochs were recorded;
            # a damaged or wrong one is worth a warning.
            report = log.info if reason == "missing" else log.warning
            report("leader_epoch_checkpoint_rebuilt", directory=str(directory), reason=reason, entries=len(found))
            cache._persist()
        return cache

    # -- queries -----------------------------------------------------------------------------

    @property
    def entries(self) -> list[tuple[int, int]]:
        return list(self._entries)

    @property
    def latest_epoch(self) -> int:
        return self._entries[-1][0] if self._entries else UNDEFINED_EPOCH

    def end_offset_for(self, epoch: int, log_end_offset: int) -> tuple[int, int]:
        """OffsetForLeaderEpoch: the largest epoch <= ``epoch`` and the offset its records end
        at (the next epoch's start, or ``log_end_offset`` for the latest); ``(-1, -1)`` when
        no such epoch is known."""
        i = bisect.bisect_right(self._epochs, epoch) - 1
        if i < 0:
            return UNDEFINED_EPOCH, UNDEFINED_OFFSET
        end = self._entries[i + 1][1] if i + 1 < len(self._entries) else log_end_offset
        return self._entries[i][0], end

    # -- changes -----------------------------------------------------------------------------

    def check_epoch(self, epoch: int) -> None:
        """Raise ValueError if ``epoch`` may not be appended (negative, or below the latest)."""
        if epoch < 0:
            raise ValueError(f"leader epoch {epoch} is negative")
        latest = self.latest_epoch
        if epoch < latest:
            raise ValueError(f"leader epoch {epoch} is below the log's latest epoch {latest}: "
                             "a stale leader's append, or a follower that did not truncate first")

    def assign(self, epoch: int, start_offset: int) -> bool:
        """Record that ``epoch`` starts at ``start_offset`` if it is new (after ``check_epoch``).

        Returns:
            Whether an entry was added (and the checkpoint rewritten).

        Raises:
            OSError: the checkpoint could not be written (the entry is kept in memory; the
                next open rebuilds the file from the log).
        """
        self.check_epoch(epoch)
        if self._entries and epoch == self._entries[-1][0]:
            return False
        self._entries.append((epoch, start_offset))
        self._epochs.append(epoch)
        self._persist()
        return True

    def truncate_from_end(self, end_offset: int) -> bool:
        """Drop the entries starting at or past ``end_offset`` (the log was cut there)."""
        keep = len(self._entries)
        while keep and self._entries[keep - 1][1] >= end_offset:
            keep -= 1
        if keep == len(self._entries):
            return False
        self._set(self._entries[:keep])
        self._persist()
        return True

    def truncate_from_start(self, start_offset: int, end_offset: int) -> bool:
        """The log now holds ``[start_offset, end_offset)``: the entries before the start
        collapse into one, the latest of them, moved to start there (its epoch still covers
        that offset) — unless the log is empty now, which holds no epoch at all (unlike
        Kafka, which keeps that entry: here the cache is always the batches' epochs)."""
        if start_offset >= end_offset:
            if not self._entries:
                return False
            self._set([])
            self._persist()
            return True
        i = bisect.bisect_right([start for _, start in self._entries], start_offset) - 1
        if i < 0 or (i == 0 and self._entries[0][1] == start_offset):
            return False
        self._set([(self._entries[i][0], start_offset)] + self._entries[i + 1:])
        self._persist()
        return True

    def _set(self, entries: list[tuple[int, int]]) -> None:
        self._entries = entries
        self._epochs = [epoch for epoch, _ in entries]

    def _persist(self) -> None:
        write_atomically(self.directory / CHECKPOINT_FILE, encode_checkpoint(self._entries))
