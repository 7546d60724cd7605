"""The state one mode's run shares between the runner, the event timeline and the side.

``ModeRun`` is everything the tasks of one mode's run read and write (the workload, the broker,
counters, the ``ModeLog`` being filled); ``ConsumerState`` is one consumer's live state, which
the timeline changes (joined, slowed, crashed) and the drain logic watches. A side keeps its
own mode-specific state (open clients, gaps seen, ...) on itself, not here.

No I/O here; ``trio`` only for the events consumers wait on and its clock.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import attrs
import trio

from dualmq.compare import payload
from dualmq.compare.accounting import ModeLog, Receipt
from dualmq.compare.brokers import BrokerHandle
from dualmq.compare.security import stop_if_denied
from dualmq.compare.workload import Workload

__all__ = ["ConsumerCrash", "ConsumerState", "ModeRun", "Progress", "stamp"]

Progress = Callable[[str], None]


class ConsumerCrash(Exception):
    """Raised inside a consumer loop to simulate the process dying (caught by the side)."""


@attrs.define
class ConsumerState:
    """Live state of one consumer task, shared with the timeline and the drain logic."""

    name: str
    index: int
    receipts: list[Receipt]
    joined: trio.Event = attrs.field(factory=trio.Event)    # set when it may start
    ready: trio.Event = attrs.field(factory=trio.Event)     # set once it is subscribed / assigned
    delay_s: float = 0.0
    crash_after: int | None = None                          # processed count at which it dies
    crash_down_s: float = 0.0
    crashed: bool = False
    down: bool = False
    processed: int = 0
    delivered: set[tuple[int, int]] = attrs.field(factory=set)
    last_receipt: float = 0.0                               # trio time

    def record(self, producer: int, seq: int, sent_ns: int, received_ns: int) -> None:
        self.receipts.append(Receipt(producer, seq, sent_ns, received_ns))
        self.delivered.add((producer, seq))
        self.processed += 1
        self.last_receipt = trio.current_time()


@attrs.define
class ModeRun:
    """Everything one mode's run shares between its tasks."""

    mode: str
    workload: Workload
    broker: BrokerHandle
    run_id: bytes
    target: str                       # topic (pull) or channel (push)
    log: ModeLog
    consumers: list[ConsumerState]
    progress: Progress | None = None
    stop: trio.Event = attrs.field(factory=trio.Event)
    acked: int = 0
    sent: int = 0
    producers_done: int = 0
    producers_finished_at: float = 0.0   # trio time the last producer finished (0: not yet)
    incidents_in_progress: int = 0
    # Set, except while a broker restart/kill is in progress (see ``timeline.apply_common``):
    # a consumer that lost its broker waits for it before reconnecting.
    reconnect_allowed: trio.Event = attrs.field(factory=trio.Event)

    def __attrs_post_init__(self) -> None:
        self.reconnect_allowed.set()

    @property
    def client_options(self) -> dict[str, Any]:
        """The SDK's security keyword arguments for this mode's clients (``security.ClientSecurity``)."""
        return self.broker.security.options(self.mode)

    def check_access(self, exc: BaseException) -> None:
        """Raise ``AccessDenied`` (one line, naming the mode) if ``exc`` is the broker refusing
        the clients' login or their permission on the run's topic or channel: a setup error to
        stop on, not a result to count."""
        stop_if_denied(self.mode, self.broker.kafka if self.mode == "pull" else self.broker.resp, exc)

    def key_of(self, seq: int) -> int:
        return seq % self.workload.keys if self.workload.keys else -1

    def incident(self, reason: str, *, cause: bool = False) -> None:
        """Note what happened; ``cause``: it can explain later losses (a crash, not a recovery)."""
        (self.log.incidents if cause else self.log.events).append((time.time_ns(), reason))

    def bump(self, name: str, amount: int = 1) -> None:
        self.log.metrics[name] = self.log.metrics.get(name, 0) + amount

    def high_water(self, name: str, value: float) -> None:
        self.log.metrics[name] = max(value, self.log.metrics.get(name, 0))

    def note_producer_finished(self) -> None:
        """Called by each producer task at its end; the drain's idle clock starts at the last."""
        self.producers_done += 1
        if self.producers_done == self.workload.producers:
            self.producers_finished_at = trio.current_time()


def stamp(run: ModeRun, producer: int, seq: int) -> tuple[bytes, int]:
    """A message's payload and its send timestamp."""
    sent_ns = time.time_ns()
    return payload.encode(run.run_id, producer, seq, sent_ns, run.workload.message_size), sent_ns
