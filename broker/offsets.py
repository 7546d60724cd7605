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
* ``snapshot``: the whole state as the same frames, headed by ``{"op": "snapshot", "journal": N}``
  naming the journal that continues it. It is replaced atomically: write ``snapshot.tmp``,
  fsync, create the empty ``journal.<N+1>``, rename over ``snapshot``, fsync the directory,
  delete the old journal. A crash at any point leaves either the old snapshot with its full
  journal, or the new snapshot with its (empty or growing) journal.

Durability contract: ``commit`` only updates memory and queues the record; ``flush`` writes and
fsyncs everything queued. **A front-end must not acknowledge an OffsetCommit before ``flush``
returned**: call ``await trio.to_thread.run_sync(store.flush)`` once per OffsetCommit request
(commits are rare, so one fsync per request is cheap, and doing it in a thread keeps the event
loop free). ``commit``/``fetch`` may be called from the trio thread while a ``flush`` runs in
a worker thread: a short lock guards memory, a second lock serialises file work.
A fetch may see a commit a moment before it is durable; that commit is acknowledged only
after ``flush``, so nothing acknowledged is ever lost.

Recovery (``OffsetStore.open``): load the snapshot (a damaged snapshot is refused: it was
fsynced before being renamed into place, so damage is not a torn write but lost data), then
replay its journal up to the first incomplete or corrupt frame; the torn tail — an append a
crash cut short, never acknowledged — is truncated away and logged (``offsets_journal_truncated``).
"""

from __future__ import annotations

import json
import os
import struct
import threading
from pathlib import Path

import attrs
import crc32c
import structlog

from broker.errors import BrokerError
from broker.group_errors import ErrorKind

__all__ = ["OffsetStore", "CommittedOffset", "OffsetStoreCorrupt", "MAX_METADATA_BYTES"]

log = structlog.get_logger("dualmq.offsets")

# Kafka's offset.metadata.max.bytes default.
MAX_METADATA_BYTES = 4096
SNAPSHOT = "snapshot"
_FRAME = struct.Struct(">II")
# A single record is a few hundred bytes; anything above this in a length field is damage.
_MAX_FRAME = 1 << 20


class OffsetStoreCorrupt(BrokerError):
    """The snapshot file is damaged; refusing to start rather than forget commits."""


@attrs.frozen
class CommittedOffset:
    """One committed position: the *next* offset the group will consume (GUIDE §4.2)."""

    offset: int
    leader_epoch: int  # -1 when the client did not send one (OffsetCommit < v6)
    metadata: str | None
    commit_timestamp_ms: int


Key = tuple[str, str, int]  # (group, topic, partition)


def _frame(record: dict) -> bytes:
    payload = json.dumps(record, separators=(",", ":")).encode()
    return _FRAME.pack(len(payload), crc32c.crc32c(payload)) + payload


def _read_frames(data: bytes) -> tuple[list[dict], int]:
    """Decode frames from the start of ``data``; return them and where the good part ends."""
    records, position = [], 0
    while position + _FRAME.size <= len(data):
        length, crc = _FRAME.unpack_from(data, position)
        start, end = position + _FRAME.size, position + _FRAME.size + length
        if length > _MAX_FRAME or end > len(data):
            break
        payload = data[start:end]
        if crc32c.crc32c(payload) != crc:
            break
        try:
            records.append(json.loads(payload))
        except ValueError:
            break
        position = end
    return records, position


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class OffsetStore:
    """Committed offsets of every group. Open with ``OffsetStore.open(directory)``."""

    def __init__(self, directory: Path, *, compact_after_bytes: int) -> None:
        self._dir = directory
        self._compact_after_bytes = compact_after_bytes
        self._offsets: dict[Key, CommittedOffset] = {}
        self._pending = bytearray()
        self._state_lock = threading.Lock()  # memory + pending queue; held briefly
        self._file_lock = threading.Lock()  # journal writes, fsync, compaction
        self._journal_number = 0
        self._journal_fd: int | None = None
        self._journal_bytes = 0

    # ------------------------------------------------------------------ opening

    @classmethod
    def open(cls, directory: Path, *, compact_after_bytes: int = 4 * 1024 * 1024) -> OffsetStore:
        """Open (creating if needed) the store in ``directory`` and recover its state.

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
            data = snapshot.read_bytes()
            records, good = _read_frames(data)
            if good != len(data) or not records or records[0].get("op") != "snapshot":
                raise OffsetStoreCorrupt(f"{snapshot} is damaged at byte {good} of {len(data)}")
            self._journal_number = records[0]["journal"]
            for record in records[1:]:
                self._apply(record)
        (self._dir / (SNAPSHOT + ".tmp")).unlink(missing_ok=True)
        journal = self._journal_path(self._journal_number)
        if journal.exists():
            data = journal.read_bytes()
            records, good = _read_frames(data)
            for record in records:
                self._apply(record)
            if good != len(data):
                log.warning("offsets_journal_truncated", path=str(journal),
                            kept_bytes=good, dropped_bytes=len(data) - good)
                with open(journal, "r+b") as f:
                    f.truncate(good)
                    os.fsync(f.fileno())
        # Journals other than the live one are leftovers of an interrupted compaction.
        for stray in self._dir.glob("journal.*"):
            if stray != journal:
                stray.unlink()
        self._open_journal()

    def _journal_path(self, number: int) -> Path:
        return self._dir / f"journal.{number}"

    def _open_journal(self) -> None:
        path = self._journal_path(self._journal_number)
        self._journal_fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self._journal_bytes = os.fstat(self._journal_fd).st_size
        _fsync_dir(self._dir)

    # ------------------------------------------------------------------ the API

    def commit(self, group_id: str, topic: str, partition: int, offset: int, leader_epoch: int,
               metadata: str | None, now_ms: int) -> ErrorKind:
        """Record a commit in memory and queue it for ``flush``.

        Returns:
            NONE, or OFFSET_METADATA_TOO_LARGE (metadata above 4096 UTF-8 bytes; nothing stored).
        """
        if metadata is not None and len(metadata.encode()) > MAX_METADATA_BYTES:
            return ErrorKind.OFFSET_METADATA_TOO_LARGE
        record = {"op": "commit", "g": group_id, "t": topic, "p": partition, "o": offset,
                  "e": leader_epoch, "m": metadata, "ts": now_ms}
        with self._state_lock:
            self._apply(record)
            self._pending += _frame(record)
        return ErrorKind.NONE

    def fetch(self, group_id: str, topic: str, partition: int) -> CommittedOffset | None:
        """The committed offset, or None (OffsetFetch then answers offset -1, epoch -1, "")."""
        with self._state_lock:
            return self._offsets.get((group_id, topic, partition))

    def fetch_all(self, group_id: str) -> dict[tuple[str, int], CommittedOffset]:
        """Every commit of a group (OffsetFetch with topics = null), by (topic, partition)."""
        with self._state_lock:
            return {(t, p): c for (g, t, p), c in self._offsets.items() if g == group_id}

    def groups(self) -> list[str]:
        """Groups with at least one commit, sorted (for ListGroups after a restart)."""
        with self._state_lock:
            return sorted({g for g, _, _ in self._offsets})

    def delete_topic(self, topic: str) -> None:
        """Forget every group's commits for ``topic`` (the topic was deleted). Queued."""
        self._queue({"op": "delete_topic", "t": topic})

    def delete_group(self, group_id: str) -> None:
        """Forget a group's commits (DeleteGroups). Queued."""
        self._queue({"op": "delete_group", "g": group_id})

    def flush(self) -> None:
        """Write and fsync everything queued; compact if the journal grew large.

        Blocking (fsync): from trio, call it via ``trio.to_thread.run_sync``.
        """
        with self._file_lock:
            with self._state_lock:
                data, self._pending = bytes(self._pending), bytearray()
            if data:
                view = memoryview(data)
                while view:
                    written = os.write(self._journal_fd, view)
                    view = view[written:]
                os.fsync(self._journal_fd)
                self._journal_bytes += len(data)
            if self._journal_bytes > self._compact_after_bytes:
                self._compact_locked()

    def compact(self) -> None:
        """Flush, then rewrite the snapshot and start an empty journal."""
        self.flush()
        with self._file_lock:
            self._compact_locked()

    def close(self) -> None:
        """Flush and close. The store is unusable afterwards."""
        if self._journal_fd is None:
            return
        self.flush()
        os.close(self._journal_fd)
        self._journal_fd = None

    # ------------------------------------------------------------------ internals

    def _queue(self, record: dict) -> None:
        with self._state_lock:
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

    def _compact_locked(self) -> None:
        # Copy memory under the short lock. Commits queued after the copy are in it *and*
        # will be written to the new journal: replaying them twice gives the same state.
        with self._state_lock:
            entries = list(self._offsets.items())
            # Anything queued but not yet written goes to the new journal, after the snapshot.
        number = self._journal_number + 1
        parts = [_frame({"op": "snapshot", "journal": number})]
        parts.extend(_frame({"op": "commit", "g": g, "t": t, "p": p, "o": c.offset,
                             "e": c.leader_epoch, "m": c.metadata, "ts": c.commit_timestamp_ms})
                     for (g, t, p), c in entries)
        tmp = self._dir / (SNAPSHOT + ".tmp")
        with open(tmp, "wb") as f:
            f.write(b"".join(parts))
            f.flush()
            os.fsync(f.fileno())
        old_fd, old_number = self._journal_fd, self._journal_number
        self._journal_number = number
        self._open_journal()  # creates journal.<N+1> and fsyncs the directory
        os.replace(tmp, self._dir / SNAPSHOT)
        _fsync_dir(self._dir)
        os.close(old_fd)
        self._journal_path(old_number).unlink(missing_ok=True)
        log.info("offsets_compacted", entries=len(entries), journal=number)
