"""What the log hands a front-end to wait on: data tickets and fsync jobs.

The log never waits and no thread ever touches it; instead it offers, as the group
coordinator does, values the front-end awaits on its own terms (pull mode:
``modes/pull/log_runtime.py``):

* a :class:`DataTicket` — "tell me when data past this offset exists" — is completed by the
  append that moves the high watermark past it (or by the log's close, or by a truncation),
  which calls the ticket's ``wake``, a plain function the front-end supplied;
* a :class:`FlushJob` — "fsync what is unflushed now" — carries its own duplicated
  descriptors, so its ``fsync`` can run in a worker thread while the log goes on serving.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import attrs

from broker.log.segment import Segment, with_path

__all__ = ["DataTicket", "FlushJob"]


@attrs.define(eq=False)
class DataTicket:
    """A wish to hear of data past ``offset`` in one log (see :meth:`PartitionLog.watch`).

    Attributes:
        offset: the ticket is done once the high watermark is above it.
        wake: called once, from inside the append (or close) that completes the ticket. It
            must be quick and must not raise: it only tells the front-end to look.
        done: set by the log when the ticket completes (data arrived, or the log closed), or
            when a truncation cut the log: the waiter's offset may now be past the log end, or
            the batch it waited to see committed may be gone. "Done" means "look again": the
            waiter re-reads the log's state, it never assumes that data arrived.
    """

    offset: int
    wake: Callable[[], None]
    done: bool = False
    # Wait on the log end offset rather than the high watermark (a follower's fetch).
    log_end: bool = False


@attrs.define(eq=False)
class FlushJob:
    """One fsync of a log's unflushed data, prepared by :meth:`PartitionLog.begin_flush`.

    It owns duplicates (``os.dup``) of the descriptors to fsync, so neither the file cache
    evicting a sealed segment's descriptor nor retention deleting a segment while the fsync
    runs can close a descriptor in use (or let its number be reused). :meth:`fsync` reads
    nothing else: it is safe in a worker thread while the log goes on serving.
    """

    # The segments being flushed and their sizes when the job was made.
    targets: list[tuple[Segment, int]]
    # The high watermark when the job was made: what is durable once it succeeds.
    offset: int
    descriptors: list[tuple[int, Path]]
    # The log's truncation count when the job was made (``PartitionLog.finish_flush``).
    truncations: int = 0

    def fsync(self) -> None:
        """fsync every descriptor, blocking; any thread.

        Raises:
            OSError: an fsync failed (``filename`` names the file).
        """
        for fd, path in self.descriptors:
            try:
                os.fsync(fd)
            except OSError as exc:
                raise with_path(exc, path) from None

    def close(self) -> None:
        """Close the duplicated descriptors (after :meth:`fsync`, whether it succeeded)."""
        descriptors, self.descriptors = self.descriptors, []
        for fd, _ in descriptors:
            os.close(fd)
