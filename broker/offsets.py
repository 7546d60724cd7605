"""Committed consumer offsets, durable across restarts and crashes.

What lives here: ``OffsetStore`` (commit, fetch, delete, flush, compaction, recovery) and the
``CommittedOffset`` value. What does not: *whether* a commit is allowed (that is the group's
call: ``GroupCoordinator.validate_commit``), the wire (OffsetCommit / OffsetFetch encoding, the
"-1 for no commit" answer), and the clock (``now_ms`` is passed in).

Kafka keeps commits in the compacted internal topic ``__consumer_offsets``. We keep the same
idea — a log of "latest value for this key" records that is compacted now and then — with two
plain files in one directory:

* ``journal.<N>``: an append-only file of framed records. Each frame is
  ``[u32 length][u32 CRC-32C of payload][payload]``, the payload a small JSON object
  (``{"op": "commit", ...}``, ``{"op": "delete_topic", ...}``, ``{"op": "delete_group", ...}``).
  JSON because commits are rare and a learner can read the file with ``strings``.
* ``snapshot``: the whole state as the same frames, headed by
  ``{"op": "snapshot", "journal": N, "records": K}`` naming the journal that continues it and
  how many frames follow (so a snapshot cut short exactly between two frames is noticed too;
  snapshots written before the count existed lack it and are read without that check).
  It is replaced atomically: write and fsync ``snapshot.tmp`` (``broker.files``), create the
  empty ``journal.<N+1>``, rename over ``snapshot``, fsync the directory, delete the old
  journal. A crash at any point leaves either the old snapshot with its full journal, or the
  new snapshot with its (empty or growing) journal.

Durability contract: ``commit`` only updates memory and queues the record; a *flush* writes and
fsyncs everything queued. **A front-end must not acknowledge an OffsetCommit before a flush
that began after the commit has finished.** A fetch may see a commit a moment before it is
durable; that commit is acknowledged only after its flush, so nothing acknowledged is ever lost.

Threads: the store itself is single-threaded — every method is called from the front-end's
one thread. The slow part of a flush (write, fsync, maybe a compaction) is split off so it can
run elsewhere: ``begin_flush`` takes the queued bytes (and, when the journal has grown large, a
snapshot of memory) into a ``JournalFlush``; ``JournalFlush.run`` does the file work touching
nothing but the files and the job's own fields, so a front-end may run it in a worker thread
while the store goes on taking commits (they queue for the next flush); ``finish_flush``, back
in the store's thread, adopts the outcome (a compaction switches to the new journal). Flushes
must not overlap — two jobs writing the same journal, or one writing to a journal the other
is compacting away, would lose or reorder commits — so ``begin_flush`` refuses while a job is
out, and the front-end queues its flushes (pull mode: one ``trio.Lock``). ``flush`` does the
three steps inline, blocking (start-up, shutdown, tests).

Recovery (``OffsetStore.open``), one rule per file:

* The **snapshot** is all or nothing: a frame that is not intact, or a record count that does
  not match its header, refuses the start with one line naming the file
  (``OffsetStoreCorrupt``). It was fsynced before being renamed into place, so damage there is
  not an interrupted write but lost data, and starting anyway would silently rewind every
  group it held.
* The **journal** keeps every record it can prove intact. Each frame carries its own CRC, so
  a damaged frame in the middle does not condemn the ones after it: replay looks ahead for the
  next frame whose length, CRC-32C, JSON and record shape all check out, and goes on from
  there (a random false match would need a 32-bit CRC collision on bytes that are also valid
  JSON of the right shape). Each damaged stretch is logged (``offsets_journal_damage_skipped``
  with the file, byte position and bytes skipped), and the recovered state is compacted at
  once, so the damage is reported a single time. What a skipped record means: a lost commit
  lets its group resume from the commit before it — at-least-once, records consumed twice,
  none lost; a lost delete brings back the commits it had deleted.
* Damage with no intact frame after it is a **torn tail** — an append a crash cut short, never
  acknowledged — and is truncated away and logged (``offsets_journal_truncated``).
"""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path

import attrs
import crc32c

from broker.errors import DamagedFile
from broker.files import fsync_directory, temporary_path, write_temporary
from broker.loggers import get_logger
from broker.outcome import ErrorKind

__all__ = ["OffsetStore", "CommittedOffset", "JournalFlush", "OffsetStoreCorrupt", "MAX_METADATA_BYTES"]

log = get_logger(__name__)

# Kafka's offset.metadata.max.bytes default.
MAX_METADATA_BYTES = 4096
SNAPSHOT = "snapshot"
_FRAME = struct.Struct(">II")
# A single record is a few hundred bytes; anything above this in a length field is damage.
_MAX_FRAME = 1 << 20


class OffsetStoreCorrupt(DamagedFile):
    """The snapshot file is damaged; refusing to start rather than forget commits."""


@attrs.frozen
class CommittedOffset:
    """One committed position: the *next* offset the group will consume (Kafka's convention)."""

    offset: int
    leader_epoch: int  # -1 when the client did not send one (OffsetCommit < v6)
    metadata: str | None
    commit_timestamp_ms: int


Key = tuple[str, str, int]  # (group, topic, partition)


def _frame(record: dict) -> bytes:
    payload = json.dumps(record, separators=(",", ":")).encode()
    return _FRAME.pack(len(payload), crc32c.crc32c(payload)) + payload


# The fields of each kind of record and their JSON types. A frame whose CRC checks out but
# whose record does not have exactly this shape is treated like a damaged frame.
_RECORD_FIELDS: dict[str, dict[str, tuple[type, ...]]] = {
    "commit": {"g": (str,), "t": (str,), "p": (int,), "o": (int,), "e": (int,),
               "m": (str, type(None)), "ts": (int,)},
    "delete_topic": {"t": (str,)},
    "delete_group": {"g": (str,)},
}
# The snapshot's first frame: with the number of records after it, or (older files) without.
_SNAPSHOT_HEADERS = ({"snapshot": {"journal": (int,), "records": (int,)}}, {"snapshot": {"journal": (int,)}})
# Every payload starts like this: ``json.dumps`` keeps the dict's order and "op" is first.
# Resynchronisation looks for it to find candidate frame starts quickly.
_PAYLOAD_START = b'{"op":"'


def _has_shape(record: object, kinds: dict[str, dict[str, tuple[type, ...]]]) -> bool:
    """Whether ``record`` is one of ``kinds``, with exactly its fields and their types."""
    if not isinstance(record, dict):
        return False
    op = record.get("op")
    fields = kinds.get(op) if isinstance(op, str) else None
    if fields is None or len(record) != len(fields) + 1:
        return False
    for name, types in fields.items():
        value = record.get(name, ...)
        # JSON true/false arrive as bool, which Python counts as int: not a number here.
        if isinstance(value, bool) or not isinstance(value, types):
            return False
    return True


def _frame_at(data: bytes, position: int, kinds: dict[str, dict[str, tuple[type, ...]]]) -> tuple[dict, int] | None:
    """The record of the intact frame starting at ``position`` and where the frame ends.

    Intact means: the length stays inside ``data`` (and below ``_MAX_FRAME``), the CRC-32C of
    the payload matches, the payload is JSON, and the record has one of the shapes in ``kinds``.
    Returns None when any of this fails.
    """
    if position + _FRAME.size > len(data):
        return None
    length, crc = _FRAME.unpack_from(data, position)
    start, end = position + _FRAME.size, position + _FRAME.size + length
    if length > _MAX_FRAME or end > len(data):
        return None
    payload = data[start:end]
    if crc32c.crc32c(payload) != crc:
        return None
    try:
        record = json.loads(payload)
    except (ValueError, RecursionError):
        return None
    return (record, end) if _has_shape(record, kinds) else None


def _next_intact_frame(data: bytes, after: int) -> int | None:
    """Where the first intact journal frame starting after ``after`` is, or None.

    Candidates are the places 8 bytes (one frame header) before a ``{"op":"``. Such a place
    cannot lie inside an intact frame's payload: a header's length field starts with a zero
    byte (frames are far below 16 MiB) and ``json.dumps`` never writes one (it escapes control
    characters), so no text a client commits can imitate a frame.
    """
    search_from = after + _FRAME.size
    while (found := data.find(_PAYLOAD_START, search_from)) != -1:
        candidate = found - _FRAME.size
        if _frame_at(data, candidate, _RECORD_FIELDS) is not None:
            return candidate
        search_from = found + 1
    return None


@attrs.frozen
class _JournalScan:
    """What replaying a journal's bytes found."""

    records: list[dict]
    skipped: list[tuple[int, int]]  # (position, bytes) of each damaged stretch passed over
    intact_end: int  # the end of the last intact frame: a torn tail starts here


def _scan_journal(data: bytes) -> _JournalScan:
    """Decode every intact frame of a journal, stepping over damaged stretches in the middle.

    At a frame that is not intact, look ahead for the next intact one. If there is one, the
    bytes in between are damaged (skipped and reported); if not, the rest is a torn tail.
    """
    records: list[dict] = []
    skipped: list[tuple[int, int]] = []
    position = 0
    while position < len(data):
        decoded = _frame_at(data, position, _RECORD_FIELDS)
        if decoded is not None:
            records.append(decoded[0])
            position = decoded[1]
            continue
        resume = _next_intact_frame(data, position)
        if resume is None:
            break
        skipped.append((position, resume - position))
        position = resume
    return _JournalScan(records, skipped, position)


def _read_snapshot(path: Path) -> tuple[int, list[dict]]:
    """The journal number a snapshot names and its records (the header left out).

    Raises:
        OffsetStoreCorrupt: the file is unreadable, empty, or any frame in it is not intact.
    """
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise OffsetStoreCorrupt(f"cannot read offsets snapshot {path}: {exc.strerror}") from None
    header = next(filter(None, (_frame_at(data, 0, kinds) for kinds in _SNAPSHOT_HEADERS)), None)
    position = header[1] if header is not None else 0
    records = []
    while header is not None and position < len(data):
        decoded = _frame_at(data, position, _RECORD_FIELDS)
        if decoded is None:
            break
        records.append(decoded[0])
        position = decoded[1]
    if header is None or position != len(data) or header[0]["journal"] < 0:
        raise OffsetStoreCorrupt(
            f"offsets snapshot {path} is damaged at byte {position} of {len(data)}; refusing to start "
            "rather than forget committed offsets (it was complete when written, so this is not an "
            "interrupted write)")
    expected = header[0].get("records", len(records))
    if expected != len(records):
        raise OffsetStoreCorrupt(
            f"offsets snapshot {path} is damaged: it holds {len(records)} records, its header says "
            f"{expected}; refusing to start rather than forget committed offsets")
    return header[0]["journal"], records


@attrs.define(eq=False)
class JournalFlush:
    """The file work of one flush, made by :meth:`OffsetStore.begin_flush`.

    :meth:`run` uses only the paths, descriptor and bytes given here and records what it got
    done in its own fields; it never touches the store, so it may run in a worker thread.
    Hand the job back with :meth:`OffsetStore.finish_flush` whether ``run`` succeeded or not.
    """

    directory: Path
    # The live journal: its descriptor (the store's; not closed here) and path.
    journal_fd: int
    journal: Path
    # Frames queued since the last flush, appended to the journal.
    data: bytes
    # A compaction, when the journal has grown past its threshold: the whole state as a
    # snapshot naming ``next_journal``, which the store switches to.
    snapshot: bytes | None = None
    next_journal: Path | None = None
    # What ``run`` got done, for ``finish_flush``.
    written: bool = False
    next_journal_fd: int | None = None
    switched: bool = False

    def run(self) -> None:
        """Append ``data`` and fsync it; then compact, if asked. Blocking; any thread.

        Raises:
            OSError: a write, fsync, rename or delete failed. What succeeded before is
                recorded (``written``, ``switched``), so the store stays consistent.
        """
        if self.data:
            view = memoryview(self.data)
            while view:
                view = view[os.write(self.journal_fd, view):]
            os.fsync(self.journal_fd)
        self.written = True
        if self.snapshot is None or self.next_journal is None:
            return
        snapshot_path = self.directory / SNAPSHOT
        temporary = write_temporary(snapshot_path, self.snapshot)
        # The journal the new snapshot names exists before the snapshot does (an empty one
        # would do too, but this way a start after any crash finds the files it expects).
        self.next_journal_fd = os.open(self.next_journal, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.replace(temporary, snapshot_path)
        # From here on the snapshot on disk names the new journal: the old one is finished,
        # whatever fails below.
        self.switched = True
        fsync_directory(self.directory)
        self.journal.unlink(missing_ok=True)


class OffsetStore:
    """Committed offsets of every group. Open with ``OffsetStore.open(directory)``.

    Single-threaded: see the module docstring for how a flush's file work may still run in
    another thread.
    """

    def __init__(self, directory: Path, *, compact_after_bytes: int) -> None:
        self._dir = directory
        self._compact_after_bytes = compact_after_bytes
        self._offsets: dict[Key, CommittedOffset] = {}
        # Frames committed in memory, not yet handed to a flush.
        self._pending = bytearray()
        self._journal_number = 0
        self._journal_fd: int | None = None
        self._journal_bytes = 0
        # A JournalFlush is out (between begin_flush and finish_flush).
        self._flushing = False

    # ------------------------------------------------------------------ opening

    @classmethod
    def open(cls, directory: Path, *, compact_after_bytes: int = 4 * 1024 * 1024) -> OffsetStore:
        """Open (creating if needed) the store in ``directory`` and recover its state.

        Blocking (file reads; fsyncs when repairing): called once at start-up.

        Args:
            compact_after_bytes: rewrite the snapshot once the journal grows past this.
        Raises:
            OffsetStoreCorrupt: the snapshot is damaged.
        """
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        store = cls(directory, compact_after_bytes=compact_after_bytes)
        store._recover()
        return store

    def _recover(self) -> None:
        snapshot = self._dir / SNAPSHOT
        if snapshot.exists():
            self._journal_number, records = _read_snapshot(snapshot)
            for record in records:
                self._apply(record)
        temporary_path(snapshot).unlink(missing_ok=True)
        journal = self._journal_path(self._journal_number)
        scan = _JournalScan([], [], 0)
        if journal.exists():
            data = journal.read_bytes()
            scan = _scan_journal(data)
            for record in scan.records:
                self._apply(record)
            for position, count in scan.skipped:
                log.warning("offsets_journal_damage_skipped", path=str(journal), position=position,
                            skipped_bytes=count,
                            consequence="a commit lost here lets its group resume from its previous "
                                        "commit: records may be consumed twice, none are lost")
            if scan.intact_end != len(data):
                log.warning("offsets_journal_truncated", path=str(journal),
                            kept_bytes=scan.intact_end, dropped_bytes=len(data) - scan.intact_end)
                with open(journal, "r+b") as f:
                    f.truncate(scan.intact_end)
                    os.fsync(f.fileno())
        # Journals other than the live one are leftovers of an interrupted compaction.
        for stray in self._dir.glob("journal.*"):
            if stray != journal:
                stray.unlink()
        self._journal_fd = os.open(journal, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self._journal_bytes = os.fstat(self._journal_fd).st_size
        fsync_directory(self._dir)
        if scan.skipped:
            # Rewrite what was recovered as a fresh snapshot, so the damage is reported once
            # and new commits do not go after bytes every start would have to step over.
            self.compact()

    def _journal_path(self, number: int) -> Path:
        return self._dir / f"journal.{number}"

    # ------------------------------------------------------------------ the API

    def commit(self, group_id: str, topic: str, partition: int, offset: int, leader_epoch: int,
               metadata: str | None, now_ms: int) -> ErrorKind:
        """Record a commit in memory and queue it for the next flush.

        Returns:
            NONE, or OFFSET_METADATA_TOO_LARGE (metadata above 4096 UTF-8 bytes; nothing stored).
        """
        if metadata is not None and len(metadata.encode()) > MAX_METADATA_BYTES:
            return ErrorKind.OFFSET_METADATA_TOO_LARGE
        self._queue({"op": "commit", "g": group_id, "t": topic, "p": partition, "o": offset,
                     "e": leader_epoch, "m": metadata, "ts": now_ms})
        return ErrorKind.NONE

    def fetch(self, group_id: str, topic: str, partition: int) -> CommittedOffset | None:
        """The committed offset, or None (OffsetFetch then answers offset -1, epoch -1, "")."""
        return self._offsets.get((group_id, topic, partition))

    def fetch_all(self, group_id: str) -> dict[tuple[str, int], CommittedOffset]:
        """Every commit of a group (OffsetFetch with topics = null), by (topic, partition)."""
        return {(t, p): c for (g, t, p), c in self._offsets.items() if g == group_id}

    def groups(self) -> list[str]:
        """Groups with at least one commit, sorted (for ListGroups after a restart)."""
        return sorted({g for g, _, _ in self._offsets})

    def delete_topic(self, topic: str) -> None:
        """Forget every group's commits for ``topic`` (the topic was deleted). Queued."""
        self._queue({"op": "delete_topic", "t": topic})

    def delete_group(self, group_id: str) -> None:
        """Forget a group's commits (DeleteGroups). Queued."""
        self._queue({"op": "delete_group", "g": group_id})

    def begin_flush(self, *, compact: bool = False) -> JournalFlush | None:
        """Take everything queued into a job that writes and fsyncs it (see the module docstring).

        The job also compacts when the journal would grow past ``compact_after_bytes`` (or
        ``compact`` asks): its snapshot is memory as it is now, which holds exactly the
        records written so far plus the ones this job writes.

        Args:
            compact: compact even if the journal is small.
        Returns:
            The job, or None when there is nothing to do.
        Raises:
            RuntimeError: another job is out: flushes must be serialised by the caller.
        """
        if self._flushing:
            raise RuntimeError("an offsets flush is already running; flushes must not overlap")
        if self._journal_fd is None:
            raise RuntimeError("the offset store is closed")
        data, self._pending = bytes(self._pending), bytearray()
        compact = compact or self._journal_bytes + len(data) > self._compact_after_bytes
        if not data and not compact:
            return None
        job = JournalFlush(self._dir, self._journal_fd, self._journal_path(self._journal_number), data)
        if compact:
            entries = self._offsets.items()
            parts = [_frame({"op": "snapshot", "journal": self._journal_number + 1, "records": len(entries)})]
            parts.extend(_frame({"op": "commit", "g": g, "t": t, "p": p, "o": c.offset,
                                 "e": c.leader_epoch, "m": c.metadata, "ts": c.commit_timestamp_ms})
                         for (g, t, p), c in entries)
            job.snapshot = b"".join(parts)
            job.next_journal = self._journal_path(self._journal_number + 1)
        self._flushing = True
        return job

    def finish_flush(self, job: JournalFlush) -> None:
        """Adopt what ``job.run()`` got done, whether it succeeded or raised.

        A job whose frames were not written and fsynced gives them back, ahead of anything
        queued since, so the next flush writes them again: another request may have queued
        its commit before this job took it, and that request's own flush must not find the
        queue empty and acknowledge a commit that is not on disk. (Part of a failed write may
        have reached the journal; written again after it, the frames stay in order, and the
        partial one is a damaged stretch that recovery steps over.)
        """
        self._flushing = False
        if job.written:
            self._journal_bytes += len(job.data)
        else:
            self._pending[0:0] = job.data
        if job.switched:
            os.close(self._journal_fd)
            self._journal_fd, job.next_journal_fd = job.next_journal_fd, None
            self._journal_number += 1
            self._journal_bytes = 0
            log.info("offsets_compacted", entries=len(self._offsets), journal=self._journal_number)
        elif job.next_journal_fd is not None:
            # The compaction failed before the rename: the old journal stays live. The new one
            # is empty; the next start removes it as a stray.
            os.close(job.next_journal_fd)
            job.next_journal_fd = None

    def flush(self, *, compact: bool = False) -> None:
        """Write and fsync everything queued (compacting if due, or if ``compact``), blocking.

        For start-up, shutdown and tests; a front-end that must not block runs the job of
        ``begin_flush`` in a thread instead.

        Raises:
            OSError: the write, fsync or compaction failed.
        """
        job = self.begin_flush(compact=compact)
        if job is None:
            return
        try:
            job.run()
        finally:
            self.finish_flush(job)

    def compact(self) -> None:
        """Flush, then rewrite the snapshot and start an empty journal."""
        self.flush(compact=True)

    def close(self) -> None:
        """Flush and close. The store is unusable afterwards."""
        if self._journal_fd is None:
            return
        self.flush()
        os.close(self._journal_fd)
        self._journal_fd = None

    # ------------------------------------------------------------------ internals

    def _queue(self, record: dict) -> None:
        self._apply(record)
        self._pending += _frame(record)

    def _apply(self, record: dict) -> None:
        op = record["op"]
        if op == "commit":
            self._offsets[(record["g"], record["t"], record["p"])] = CommittedOffset(
                record["o"], record["e"], record["m"], record["ts"])
        elif op == "delete_topic":
            for key in [k for k in self._offsets if k[1] == record["t"]]:
                del self._offsets[key]
        elif op == "delete_group":
            for key in [k for k in self._offsets if k[0] == record["g"]]:
                del self._offsets[key]
        else:
            raise OffsetStoreCorrupt(f"unknown record {op!r} in the offsets store")
