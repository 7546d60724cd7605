"""Turning raw send and receipt logs into honest counts: delivered, lost, duplicated, reordered.

Pure functions over plain records; no I/O, no clock. The runner fills a ``ModeLog`` while the
workload runs; ``account(log)`` turns it into a ``ModeResult``. Hypothesis tests feed synthetic
logs with known losses, duplicates and reorders and check the counts exactly.

Definitions (the same for both modes, so the table compares like with like):

* **sent**: messages handed to the client library. **acknowledged**: the broker confirmed it
  (pull: the Produce response for ``acks`` >= 1; push: the PUBLISH reply). A message whose
  send failed (broker down, timeout) is *unacknowledged*: nobody promised anything about it.
* **delivered** (per consumer): distinct messages it received. Every further copy is a
  **duplicate**.
* **reordered** (per consumer): first receipts whose sequence number is lower than one already
  received from the same producer with the same key (the order both modes promise: per
  producer connection in push mode, per partition - hence per key - in pull mode).
* **promised**: a mode promises an acknowledged message to a consumer only within a *window*.
  Pull mode's log promises every acknowledged message to every reader for as long as retention
  keeps it, so its window is the whole run. Push mode promises a message only to subscribers
  connected when it is published: its windows are the consumer's subscribed periods, and a
  PUBLISH answered "0 receivers" was promised to nobody.
* **lost**: acknowledged, promised, never delivered. The reason is the end of the window it
  fell in (slow-subscriber disconnect, broker killed, consumer crashed ...) or else the first
  incident after it was sent (broker crash before fsync, retention), else ``unexplained``.
* **not delivered, not promised**: acknowledged but sent outside every window of that
  consumer: "no subscriber at publish time", with why there was none (not yet joined,
  disconnected because ...). In push mode this is the contract, not a failure - the report
  shows it in its own row.
* **still in flight**: when the run was stopped early (Ctrl-C, its deadline), an acknowledged
  message still promised but not delivered yet is neither lost nor delivered: nobody can
  tell which it would have been. It is counted apart, with the reason the run stopped.
* **delivery gap** (per consumer): the longest time between two receipts in a row (first
  receipts and duplicates alike), in ms: how long a consumer got nothing while it was being
  fed, e.g. while a broker was killed and its partitions moved (0 with fewer than two receipts).
* **cut off** (per consumer): the time between the end of each window and the start of the
  next (or the end of the run, if none followed), in ms: how long a subscriber was promised
  nothing because it was not subscribed. Pull mode's one window never ends: 0.
"""

from __future__ import annotations

import bisect
import math
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

import attrs

NO_KEY = -1
UNEXPLAINED = "unexplained"
NO_SUBSCRIBER = "no subscriber at publish time"
# ``Send.error`` of a message still awaiting its acknowledgement when the run was stopped
# (Ctrl-C, deadline): not a failed send, and counted apart from those.
STOPPED_BEFORE_ACK = "the run stopped before the acknowledgement came"
SEND_FAILED_REASON = "send failed"


class Send(NamedTuple):
    """One message handed to a producer/publisher (a tuple: one per message on the hot path)."""

    producer: int
    seq: int
    key: int                   # NO_KEY when the workload has no keys
    sent_ns: int
    acked_ns: int | None       # None: never acknowledged
    receivers: int | None = None   # push: PUBLISH's reply; pull: None
    error: str | None = None


class Receipt(NamedTuple):
    """One message as a consumer received it (duplicates are separate receipts)."""

    producer: int
    seq: int
    sent_ns: int
    received_ns: int


@attrs.frozen
class Window:
    """A period during which the mode promised delivery to a consumer.

    ``end_ns`` None means "until the end of the run"; ``end_reason`` says why it ended.
    """

    start_ns: int
    end_ns: int | None = None
    end_reason: str = ""

    def contains(self, t_ns: int) -> bool:
        return self.start_ns <= t_ns and (self.end_ns is None or t_ns < self.end_ns)


WHOLE_RUN = Window(start_ns=0)


@attrs.define
class ModeLog:
    """Everything one mode's run recorded; filled by the runner, read by ``account``."""

    mode: str
    started_ns: int = 0
    finished_ns: int = 0
    sends: list[Send] = attrs.field(factory=list)
    receipts: dict[str, list[Receipt]] = attrs.field(factory=dict)
    windows: dict[str, list[Window]] = attrs.field(factory=dict)
    incidents: list[tuple[int, str]] = attrs.field(factory=list)   # causes that may explain losses
    events: list[tuple[int, str]] = attrs.field(factory=list)      # informational (joined, back up)
    metrics: dict[str, Any] = attrs.field(factory=dict)
    guarantees: dict[str, str] = attrs.field(factory=dict)
    notes: list[str] = attrs.field(factory=list)
    stopped: str = ""        # why the run was cut short (Ctrl-C, deadline); "" when it ran to the end


@attrs.frozen
class Latency:
    """End-to-end latency (send timestamp to first receipt), milliseconds."""

    count: int
    p50_ms: float
    p99_ms: float
    p999_ms: float
    max_ms: float


@attrs.frozen
class ConsumerResult:
    name: str
    receipts: int
    delivered: int
    duplicated: int
    reordered: int
    lost: int
    lost_reasons: dict[str, int]
    not_promised: int
    not_promised_reasons: dict[str, int]
    unacknowledged_not_delivered: int
    # Why those were not acknowledged: SEND_FAILED_REASON or STOPPED_BEFORE_ACK -> count.
    unacknowledged_reasons: dict[str, int] = attrs.field(factory=dict)
    still_in_flight: int = 0   # promised, not delivered yet when the run was stopped early
    longest_gap_ms: float = 0.0   # the longest time between two receipts in a row
    cut_off_ms: float = 0.0       # time outside every window after the first (push: unsubscribed)


@attrs.frozen
class ModeResult:
    mode: str
    sent: int
    acknowledged: int
    unacknowledged: int
    consumers: tuple[ConsumerResult, ...]
    delivered: int
    duplicated: int
    reordered: int
    lost: int
    not_promised: int
    duration_s: float
    send_rate: float
    delivery_rate: float
    latency: Latency                               # of the messages delivered (first receipts)
    # (latency ms, fraction of the messages *sent* delivered within it), per consumer: it ends
    # at delivered / (sent x consumers), so a mode that delivered 18 % never climbs past 0.18.
    cdf: tuple[tuple[float, float], ...]
    timeline: tuple[tuple[float, float, float], ...]  # (t s, sent/s, delivered/s) per bucket
    # (t s, sent so far, delivered so far): delivered counts first receipts over all consumers.
    progress: tuple[tuple[float, int, int], ...]
    metrics: dict[str, Any]
    guarantees: dict[str, str]
    incidents: tuple[tuple[float, str], ...]       # (t s since start, what happened)
    notes: tuple[str, ...]
    stopped: str = ""                              # ModeLog.stopped
    unanswered_at_stop: int = 0                    # of ``unacknowledged``: awaiting the ack at the stop

    @property
    def longest_gap_ms(self) -> float:
        """The longest delivery gap of any consumer (``ConsumerResult.longest_gap_ms``)."""
        return max((c.longest_gap_ms for c in self.consumers), default=0.0)

    @property
    def cut_off_ms(self) -> float:
        """The longest time any consumer was cut off (``ConsumerResult.cut_off_ms``)."""
        return max((c.cut_off_ms for c in self.consumers), default=0.0)

    @property
    def lost_reasons(self) -> dict[str, int]:
        return _merge(c.lost_reasons for c in self.consumers)

    @property
    def not_promised_reasons(self) -> dict[str, int]:
        return _merge(c.not_promised_reasons for c in self.consumers)


def _merge(counters: Iterable[dict[str, int]]) -> dict[str, int]:
    total: Counter[str] = Counter()
    for counter in counters:
        total.update(counter)
    return dict(total.most_common())


# --- the counting -----------------------------------------------------------------------------


def percentile(sorted_values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile of an ascending sequence (0.0 for an empty one)."""
    if not sorted_values:
        return 0.0
    rank = max(1, math.ceil(fraction * len(sorted_values)))
    return float(sorted_values[min(rank, len(sorted_values)) - 1])


def _window_of(windows: Sequence[Window], t_ns: int) -> Window | None:
    for window in windows:
        if window.contains(t_ns):
            return window
    return None


def _why_no_window(windows: Sequence[Window], t_ns: int) -> str:
    """Why a consumer had no window at ``t_ns``: not yet joined, or the previous one's end."""
    previous = [w for w in windows if w.end_ns is not None and w.end_ns <= t_ns]
    if not previous:
        return f"{NO_SUBSCRIBER} (not subscribed yet)"
    reason = max(previous, key=lambda w: w.end_ns).end_reason or "disconnected"
    return f"{NO_SUBSCRIBER} ({reason})"


def _incident_after(incidents: Sequence[tuple[int, str]], t_ns: int) -> str | None:
    after = [(at, reason) for at, reason in incidents if at >= t_ns]
    return min(after)[1] if after else None


def longest_gap_ms(receipts: Sequence[Receipt]) -> float:
    """The longest time between two receipts in a row, in ms (0 with fewer than two)."""
    times = sorted(r.received_ns for r in receipts)
    return max((b - a for a, b in zip(times, times[1:])), default=0) / 1e6


def cut_off_ms(windows: Sequence[Window], end_ns: int | None) -> float:
    """Time from the end of each window to the start of the next (or to ``end_ns``), in ms."""
    ordered = sorted(windows, key=lambda w: w.start_ns)
    total = 0
    for index, window in enumerate(ordered):
        if window.end_ns is None:
            continue
        resumed = ordered[index + 1].start_ns if index + 1 < len(ordered) else end_ns
        if resumed is not None:
            total += max(0, resumed - window.end_ns)
    return total / 1e6


def account_consumer(name: str, sends: Sequence[Send], receipts: Sequence[Receipt],
                     windows: Sequence[Window], incidents: Sequence[tuple[int, str]] = (),
                     stopped: bool = False, end_ns: int | None = None) -> ConsumerResult:
    """Count one consumer's receipts against what was sent (see the module docstring).

    Args:
        name: the consumer's name, for the report.
        sends: every message sent in this mode's run.
        receipts: this consumer's receipts in arrival order.
        windows: the periods during which delivery to it was promised.
        incidents: ``(t_ns, reason)`` events that explain losses inside an open window.
        stopped: the run was cut short: promised messages of a window still open are
            "still in flight", not lost.
        end_ns: the end of the run: a consumer whose last window ended was cut off until then.
    """
    keys = {(s.producer, s.seq): s.key for s in sends}
    seen: set[tuple[int, int]] = set()
    highest: dict[tuple[int, int], int] = {}
    duplicated = reordered = 0
    for receipt in receipts:
        ident = (receipt.producer, receipt.seq)
        if ident in seen:
            duplicated += 1
            continue
        seen.add(ident)
        stream = (receipt.producer, keys.get(ident, NO_KEY))
        top = highest.get(stream, -1)
        if receipt.seq < top:
            reordered += 1
        else:
            highest[stream] = receipt.seq
    lost: Counter[str] = Counter()
    not_promised: Counter[str] = Counter()
    unacked: Counter[str] = Counter()
    in_flight = 0
    for send in sends:
        if (send.producer, send.seq) in seen:
            continue
        if send.acked_ns is None:
            unacked[STOPPED_BEFORE_ACK if send.error == STOPPED_BEFORE_ACK else SEND_FAILED_REASON] += 1
            continue
        window = _window_of(windows, send.sent_ns)
        if window is None:
            not_promised[_why_no_window(windows, send.sent_ns)] += 1
        elif send.receivers == 0:
            # The server itself said nobody was subscribed when it handled the PUBLISH (the
            # connection was already gone although we had not noticed yet).
            not_promised[f"{NO_SUBSCRIBER} ({window.end_reason or 'disconnected'})"] += 1
        elif window.end_ns is not None and window.end_reason:
            lost[window.end_reason] += 1
        elif stopped:
            in_flight += 1
        else:
            lost[_incident_after(incidents, send.sent_ns) or UNEXPLAINED] += 1
    return ConsumerResult(
        name=name, receipts=len(receipts), delivered=len(seen), duplicated=duplicated,
        reordered=reordered, lost=sum(lost.values()), lost_reasons=dict(lost.most_common()),
        not_promised=sum(not_promised.values()), not_promised_reasons=dict(not_promised.most_common()),
        unacknowledged_not_delivered=sum(unacked.values()), unacknowledged_reasons=dict(unacked),
        still_in_flight=in_flight, longest_gap_ms=longest_gap_ms(receipts), cut_off_ms=cut_off_ms(windows, end_ns),
    )


def _first_receipt_latencies(receipts: dict[str, list[Receipt]]) -> tuple[list[float], list[int]]:
    latencies: list[float] = []
    times: list[int] = []
    for consumer_receipts in receipts.values():
        seen: set[tuple[int, int]] = set()
        for r in consumer_receipts:
            ident = (r.producer, r.seq)
            if ident in seen:
                continue
            seen.add(ident)
            latencies.append(max(0, r.received_ns - r.sent_ns) / 1e6)
            times.append(r.received_ns)
    return latencies, times


def _cdf(sorted_latencies: Sequence[float], expected: int, points: int = 200) -> tuple[tuple[float, float], ...]:
    """Latency percentiles of the delivered messages, scaled to fractions of ``expected`` (the
    messages sent times the consumers): the curve's end says how much was delivered at all."""
    n = len(sorted_latencies)
    if n == 0 or expected <= 0:
        return ()
    delivered_share = min(1.0, n / expected)
    fractions = sorted({min(1.0, i / points) for i in range(1, points + 1)} | {0.5, 0.99, 0.999})
    return tuple((percentile(sorted_latencies, f), f * delivered_share) for f in fractions)


def _progress(start_ns: int, end_ns: int, sent: Iterable[int], delivered: Iterable[int],
              points: int = 120) -> tuple[tuple[float, int, int], ...]:
    """Cumulative counts of sends and first receipts at ``points`` + 1 instants from start to end."""
    sent_sorted, delivered_sorted = sorted(sent), sorted(delivered)
    span = max(end_ns - start_ns, 1)
    result = []
    for i in range(points + 1):
        t = start_ns + span * i / points
        result.append((span * i / points / 1e9, bisect.bisect_right(sent_sorted, t),
                       bisect.bisect_right(delivered_sorted, t)))
    return tuple(result)


def _timeline(start_ns: int, end_ns: int, sent: Iterable[int], delivered: Iterable[int],
              buckets: int = 60) -> tuple[tuple[float, float, float], ...]:
    span = max(end_ns - start_ns, 1)
    width = max(span / buckets, 10_000_000)  # at least 10 ms per bucket
    count = max(1, math.ceil(span / width))
    sent_counts = [0] * count
    delivered_counts = [0] * count
    for values, counts in ((sent, sent_counts), (delivered, delivered_counts)):
        for t in values:
            index = int((t - start_ns) / width)
            if 0 <= index < count:
                counts[index] += 1
    seconds = width / 1e9
    return tuple(((i + 0.5) * seconds, sent_counts[i] / seconds, delivered_counts[i] / seconds) for i in range(count))


def account(log: ModeLog) -> ModeResult:
    """Everything the report shows about one mode's run."""
    sends = log.sends
    consumers = tuple(
        account_consumer(name, sends, receipts, log.windows.get(name, [WHOLE_RUN]), log.incidents,
                         stopped=bool(log.stopped), end_ns=log.finished_ns or None)
        for name, receipts in sorted(log.receipts.items())
    )
    latencies, receipt_times = _first_receipt_latencies(log.receipts)
    latencies.sort()
    latency = Latency(count=len(latencies), p50_ms=percentile(latencies, 0.5), p99_ms=percentile(latencies, 0.99),
                      p999_ms=percentile(latencies, 0.999), max_ms=latencies[-1] if latencies else 0.0)
    send_times = [s.sent_ns for s in sends]
    start = min(send_times, default=log.started_ns)
    last_send = max(send_times, default=start)
    last_receipt = max(receipt_times, default=start)
    end = max(last_send, last_receipt, log.finished_ns if log.finished_ns else 0)
    delivered = sum(c.delivered for c in consumers)
    return ModeResult(
        mode=log.mode,
        sent=len(sends),
        acknowledged=sum(1 for s in sends if s.acked_ns is not None),
        unacknowledged=sum(1 for s in sends if s.acked_ns is None),
        consumers=consumers,
        delivered=delivered,
        duplicated=sum(c.duplicated for c in consumers),
        reordered=sum(c.reordered for c in consumers),
        lost=sum(c.lost for c in consumers),
        not_promised=sum(c.not_promised for c in consumers),
        duration_s=(end - start) / 1e9,
        send_rate=len(sends) / max((last_send - start) / 1e9, 1e-3),
        delivery_rate=delivered / max((last_receipt - start) / 1e9, 1e-3) if delivered else 0.0,
        latency=latency,
        cdf=_cdf(latencies, len(sends) * len(consumers)),
        timeline=_timeline(start, end, send_times, receipt_times),
        progress=_progress(start, end, send_times, receipt_times),
        metrics=dict(log.metrics),
        guarantees=dict(log.guarantees),
        incidents=tuple(((at - start) / 1e9, reason) for at, reason in sorted(log.incidents + log.events)),
        notes=tuple(log.notes),
        stopped=log.stopped,
        unanswered_at_stop=sum(1 for s in sends if s.acked_ns is None and s.error == STOPPED_BEFORE_ACK),
    )
