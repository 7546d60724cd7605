"""What ``dualmq compare`` runs: a workload (load shape plus scenario events), named scenarios, TOML.

A ``Workload`` is a frozen value. The *same* workload is run through pull mode and push mode;
only the delivery model differs. It says:

* the load: ``producers`` each sending ``messages`` messages of ``message_size`` bytes, at
  ``rate`` messages/s in total (0 = as fast as possible), spread over ``keys`` keys
  (round-robin; 0 = no key) and, in pull mode, ``partitions`` partitions;
* the readers: ``consumers`` consumers; in pull mode each reads every partition from the
  beginning with its own group id for commits (``pull_consumers = "independent"``, the same
  fan-out push mode does) or all share one group (``"group"``: the group is the receiver);
* the guarantees asked for: ``acks``, commit cadence (``commit_every`` records, after
  processing: at-least-once), and ``broker`` settings applied when compare starts the broker
  (``{"log": {"fsync": "always"}, "resp": {"pubsub_hard_limit": ...}}``);
* for the measured scenarios (``sweeps``): ``min_seconds``, how long producers send at least
  (besides ``messages``), and ``process_us``, the time each consumer spends per message (a
  sleep, as a call to a database would be: the ``parallelism`` sweep's work). The in-process
  runner ignores both;
* a timeline of ``events``. An event fires when the producers have sent the fraction ``at``
  of their messages (progress, not seconds: a scenario then means the same thing on a fast and
  a slow machine). Producers pause at that point until the event is applied, so e.g. "messages
  sent before the subscriber joined" is an exact, reproducible set.

Event kinds:

=============== ===================================================================================
``join``        consumer ``consumer`` starts only now (until then it does not exist)
``slow``        consumer ``consumer`` sleeps ``delay_ms`` per message from now on
``crash``       consumer ``consumer`` dies (no commit, no goodbye) after it has processed
                ``at`` x total messages of its own, and restarts ``down_s`` seconds later
``restart``     the broker is stopped gracefully (SIGTERM) and started again after ``down_s``;
                the consumers reconnect ``reconnect_after_s`` seconds after it is back (producers
                and publishers retry at once, so they carry on while the consumers are away)
``kill``        the broker is killed (SIGKILL), otherwise as ``restart``. On a cluster
                (``compare --cluster N``) both stop one node: partition 0's leader in pull
                mode, the first subscriber's node in push mode; the consumers do not wait
                (``reconnect_after_s`` is ignored), they go on from the other nodes
``burst``       producer 0 sends ``count`` extra messages back to back, ignoring ``rate``
=============== ===================================================================================

TOML (``dualmq compare --workload FILE``)::

    name = "my-test"
    producers = 1
    consumers = 1
    messages = 5000
    message_size = 200
    rate = 2000
    [broker.log]
    fsync = "always"
    [[events]]
    kind = "join"
    consumer = 0
    at = 0.5

Not here: running it (``runner``), counting (``accounting``).
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import attrs

EVENT_KINDS = ("join", "slow", "crash", "restart", "kill", "burst")
PULL_CONSUMER_MODES = ("independent", "group")
BROKER_SECTIONS = ("log", "kafka", "resp", "cluster")


class WorkloadError(ValueError):
    """A workload file or flag is invalid; the message names the key."""


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise WorkloadError(message)


@attrs.frozen(kw_only=True)
class Event:
    """One scenario event on the progress timeline (see the module docstring for kinds)."""

    kind: str
    at: float
    consumer: int = 0
    delay_ms: float = 0.0
    down_s: float = 1.0
    reconnect_after_s: float = 0.0
    count: int = 0

    def __attrs_post_init__(self) -> None:
        _check(self.kind in EVENT_KINDS, f"events.kind = {self.kind!r}: allowed {', '.join(EVENT_KINDS)}")
        _check(0.0 <= self.at <= 1.0, f"events.at = {self.at!r}: a fraction in [0, 1] of the messages")
        _check(self.consumer >= 0, f"events.consumer = {self.consumer!r}: must be >= 0")
        _check(0.0 <= self.delay_ms <= 10_000, f"events.delay_ms = {self.delay_ms!r}: allowed [0, 10000]")
        _check(0.0 <= self.down_s <= 60, f"events.down_s = {self.down_s!r}: allowed [0, 60]")
        _check(0.0 <= self.reconnect_after_s <= 60,
               f"events.reconnect_after_s = {self.reconnect_after_s!r}: allowed [0, 60]")
        _check(0 <= self.count <= 10_000_000, f"events.count = {self.count!r}: allowed [0, 10000000]")


@attrs.frozen(kw_only=True)
class Workload:
    """One load shape plus its events; identical for both modes. Units are in the names."""

    name: str = "custom"
    description: str = ""
    producers: int = 1
    consumers: int = 1
    messages: int = 5000              # per producer
    message_size: int = 100           # bytes, header included
    rate: float = 0.0                 # messages/s over all producers; 0 = as fast as possible
    keys: int = 0                     # distinct keys, round-robin; 0 = no key
    partitions: int = 1
    pull_consumers: str = "independent"
    acks: str = "all"
    commit_every: int = 500           # pull: commit after this many processed records
    publish_batch: int = 100          # push: PUBLISHes per pipelined write (at full speed)
    drain_timeout_s: float = 15.0     # after the producers finish, wait at most this long
    min_seconds: float = 0.0          # measured runs: send for at least this long (and ``messages``)
    process_us: float = 0.0           # measured runs: each consumer spends this long per message
    broker: dict[str, dict[str, Any]] = attrs.field(factory=dict)
    events: tuple[Event, ...] = ()

    def __attrs_post_init__(self) -> None:
        _check(1 <= self.producers <= 64, f"producers = {self.producers!r}: allowed [1, 64]")
        _check(1 <= self.consumers <= 64, f"consumers = {self.consumers!r}: allowed [1, 64]")
        _check(1 <= self.messages <= 10_000_000, f"messages = {self.messages!r}: allowed [1, 10000000]")
        _check(1 <= self.message_size <= 1_000_000, f"message_size = {self.message_size!r}: allowed [1, 1000000]")
        _check(0 <= self.rate <= 10_000_000, f"rate = {self.rate!r}: allowed [0, 10000000] (0 = full speed)")
        _check(0 <= self.keys <= 1_000_000, f"keys = {self.keys!r}: allowed [0, 1000000]")
        _check(1 <= self.partitions <= 1000, f"partitions = {self.partitions!r}: allowed [1, 1000]")
        _check(self.pull_consumers in PULL_CONSUMER_MODES,
               f"pull_consumers = {self.pull_consumers!r}: allowed {', '.join(PULL_CONSUMER_MODES)}")
        _check(self.acks in ("all", "1", "0"), f"acks = {self.acks!r}: allowed all, 1, 0")
        _check(1 <= self.commit_every <= 1_000_000, f"commit_every = {self.commit_every!r}: allowed [1, 1000000]")
        _check(1 <= self.publish_batch <= 10_000, f"publish_batch = {self.publish_batch!r}: allowed [1, 10000]")
        _check(0.1 <= self.drain_timeout_s <= 600, f"drain_timeout_s = {self.drain_timeout_s!r}: allowed [0.1, 600]")
        _check(0 <= self.min_seconds <= 300, f"min_seconds = {self.min_seconds!r}: allowed [0, 300]")
        _check(0 <= self.process_us <= 1_000_000, f"process_us = {self.process_us!r}: allowed [0, 1000000]")
        for section, values in self.broker.items():
            _check(section in BROKER_SECTIONS,
                   f"broker.{section}: unknown section; allowed {', '.join(BROKER_SECTIONS)}")
            _check(isinstance(values, dict), f"broker.{section} must be a table")
        for event in self.events:
            if event.kind in ("join", "slow", "crash"):
                _check(event.consumer < self.consumers,
                       f"events: {event.kind} names consumer {event.consumer} but there are {self.consumers}")

    @property
    def total_messages(self) -> int:
        """Messages all producers send, bursts included."""
        return self.producers * self.messages + sum(e.count for e in self.events if e.kind == "burst")

    @property
    def needs_broker_process(self) -> bool:
        """Whether an event restarts or kills the broker (it must then be a subprocess)."""
        return any(e.kind in ("restart", "kill") for e in self.events)

    def joins_late(self, consumer: int) -> Event | None:
        return next((e for e in self.events if e.kind == "join" and e.consumer == consumer), None)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Workload:
        """Build from a dict shaped like the TOML file.

        Raises:
            WorkloadError: unknown key or bad value, naming the key.
        """
        known = {a.name for a in attrs.fields(cls)}
        unknown = sorted(set(raw) - known)
        _check(not unknown, f"unknown workload key(s) {unknown}; known: {', '.join(sorted(known))}")
        values = dict(raw)
        event_keys = {a.name for a in attrs.fields(Event)}
        events = []
        for index, item in enumerate(values.pop("events", ())):
            _check(isinstance(item, dict), f"events[{index}] must be a table")
            bad = sorted(set(item) - event_keys)
            _check(not bad, f"events[{index}]: unknown key(s) {bad}; known: {', '.join(sorted(event_keys))}")
            try:
                events.append(Event(**item))
            except TypeError as exc:
                raise WorkloadError(f"events[{index}]: {exc}") from None
        try:
            return cls(**values, events=tuple(events))
        except TypeError as exc:
            raise WorkloadError(str(exc)) from None

    @classmethod
    def from_toml(cls, path: str | Path) -> Workload:
        """Load a workload file.

        Raises:
            WorkloadError: unreadable file, bad TOML, unknown key or bad value.
        """
        try:
            with open(path, "rb") as f:
                raw = tomllib.load(f)
        except OSError as exc:
            raise WorkloadError(f"cannot read workload file {path}: {exc.strerror}") from None
        except tomllib.TOMLDecodeError as exc:
            raise WorkloadError(f"workload file {path} is not valid TOML: {exc}") from None
        raw.setdefault("name", Path(path).stem)
        return cls.from_dict(raw)


# --- named scenarios -----------------------------------------------------------------------------
#
# Sized so that each runs in a few seconds per mode on a small machine; ``--messages`` and
# ``--rate`` scale them. Each description says what to look for in the table.

SCENARIOS: dict[str, dict[str, Any]] = {
    "baseline": dict(
        description="one producer, one consumer, nothing goes wrong: both modes deliver everything; "
                    "compare latency (throughput from this one-process harness is no benchmark)",
        messages=20000, message_size=100,
    ),
    "late-joiner": dict(
        description="the consumer starts halfway: pull mode replays the log from the beginning, "
                    "push mode never sees what was published before it subscribed",
        messages=2000, rate=4000, events=(Event(kind="join", at=0.5, consumer=0),),
    ),
    "slow-consumer": dict(
        description="the consumer sleeps 2 ms per message: pull mode lets it lag and catch up, push mode "
                    "cuts it off at the output-buffer limit (256 KiB here) and it misses the rest",
        messages=2500, message_size=4096, broker={"resp": {"pubsub_hard_limit": 256 * 1024,
                                                           "pubsub_soft_limit": 0}},
        events=(Event(kind="slow", at=0.0, consumer=0, delay_ms=2.0),),
    ),
    "consumer-crash": dict(
        description="the consumer dies halfway and restarts 1 s later: pull mode resumes from the last "
                    "commit (duplicates, no loss), push mode misses what was sent while it was down",
        messages=2000, rate=2000, commit_every=300,
        events=(Event(kind="crash", at=0.5, consumer=0, down_s=1.0),),
    ),
    "broker-restart": dict(
        description="the broker is restarted gracefully a third of the way in and the consumers reconnect "
                    "0.5 s after it is back: pull mode's consumer resumes from its position in the log, push "
                    "mode's subscriber misses what was published before it resubscribed",
        messages=3000, rate=1000, events=(Event(kind="restart", at=0.34, down_s=1.0, reconnect_after_s=0.5),),
    ),
    "broker-kill": dict(
        description="the broker is SIGKILLed a quarter of the way in with a slow consumer behind, which "
                    "reconnects 0.5 s after it is back: with fsync=always and acks=all pull mode keeps every "
                    "acknowledged message, push mode loses what was queued for the subscriber and misses "
                    "everything published until it is back",
        messages=6000, rate=1500, message_size=8192, broker={"log": {"fsync": "always"}},
        events=(Event(kind="slow", at=0.0, consumer=0, delay_ms=1.0),
                Event(kind="kill", at=0.25, down_s=1.0, reconnect_after_s=0.5)),
        # ``compare --cluster N``: the killed leader stays down 5 s, longer than a failover
        # takes (a 2 s lease), so a gap shorter than that shows the partition moved.
        on_cluster=dict(
            description="on a cluster, a quarter of the way in, the leader of pull mode's partition (push: the "
                        "slow subscriber's node) is SIGKILLed and restarted 5 s later: with replication factor "
                        "3, acks=all and min.insync.replicas=2 pull mode keeps every acknowledged message and "
                        "its consumers go on from the new leader after a gap; push mode loses what was queued "
                        "for the killed node's subscribers, cut off until they subscribe on another node",
            events=(Event(kind="slow", at=0.0, consumer=0, delay_ms=1.0), Event(kind="kill", at=0.25, down_s=5.0)),
        ),
    ),
    "burst": dict(
        description="a steady 1000 msg/s with a burst of 10000 back to back halfway: latency and "
                    "buffers under a spike",
        messages=2000, rate=1000, events=(Event(kind="burst", at=0.5, count=10000),),
    ),
}

DEFAULT_SCENARIOS = ("baseline", "late-joiner")


def scenario(name: str, *, cluster: bool = False, **overrides: Any) -> Workload:
    """A named built-in scenario, optionally with some keys overridden (e.g. ``messages``).

    ``cluster``: as it runs on a cluster (``compare --cluster N``): the scenario's
    ``on_cluster`` keys, if it has any, replace its own.

    Raises:
        WorkloadError: unknown name or bad override.
    """
    _check(name in SCENARIOS, f"unknown scenario {name!r}; built in: {', '.join(SCENARIOS)}")
    values = dict(SCENARIOS[name], name=name)
    on_cluster = values.pop("on_cluster", {})
    if cluster:
        values.update(on_cluster)
    values.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return Workload(**values)
    except TypeError as exc:
        raise WorkloadError(str(exc)) from None
