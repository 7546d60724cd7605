"""The interface between the runner and one delivery mode's half of ``compare``.

The runner knows *when* things happen (start consumers, run producers, sample gauges, drain,
finish) but not *how* a mode does them; a ``Side`` knows how, over that mode's SDK, and nothing
about scheduling. ``pull_side.PullSide`` (``dualmq.pull``) and ``push_side.PushSide``
(``dualmq.push``) implement it; to compare a third kind of broker, write a third ``Side``.

The runner makes a fresh side for every mode run, so a side may keep that run's
mode-specific state (open clients, gaps seen, counters read at the start) on itself.
"""

from __future__ import annotations

import abc

import trio

from dualmq.compare.state import ModeRun
from dualmq.compare.timeline import Timeline
from dualmq.compare.workload import Event

__all__ = ["Side"]


class Side(abc.ABC):
    """One mode's producers, consumers and gauges, as the runner drives them (in this order)."""

    @abc.abstractmethod
    async def prepare(self, run: ModeRun) -> None:
        """Before anything runs: create the topic or read baseline counters; fill
        ``run.log.guarantees`` with the settings the report prints beside the numbers."""

    @abc.abstractmethod
    async def run_consumers(self, run: ModeRun) -> None:
        """Run every consumer of ``run.consumers`` until cancelled.

        Each waits for its ``joined`` event, sets ``ready`` once it is subscribed or assigned,
        calls ``record`` per message received and honours ``delay_s`` and ``crash_after``.
        """

    @abc.abstractmethod
    async def run_producer(self, run: ModeRun, producer: int, timeline: Timeline) -> None:
        """Send producer ``producer``'s messages, paced, calling ``timeline.checkpoint`` at each
        event position; append a ``Send`` per message to ``run.log.sends``; end with
        ``run.note_producer_finished()``."""

    @abc.abstractmethod
    async def apply_event(self, run: ModeRun, event: Event, nursery: trio.Nursery) -> None:
        """Apply one timeline event (``timeline.apply_common`` covers the shared kinds)."""

    @abc.abstractmethod
    async def sample(self, run: ModeRun) -> None:
        """Record this mode's gauges (lag, output buffers); called every 50 ms while running."""

    @abc.abstractmethod
    async def finish(self, run: ModeRun) -> None:
        """After the run: read final counters, turn what was observed into ``run.log``."""

    async def aclose(self) -> None:
        """Close what the side holds open (an admin connection); called last, also after a run that failed."""
